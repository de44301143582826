"""test_fault_matrix.py - every upstream fault, every way a client asks,
every kind of fallback, with drift recording on and off.

Why: a gateway earns its place by what it does when the upstream breaks.
Each cell of {fault} x {stream, non-stream} x {fallback to a second
upstream, fallback to the local model, no fallback} x {drift on, off} must
end in one of two ways: the fallback's answer (marked with
x-llmpin-fallback), or an OpenAI-shaped error with the status an SDK
expects (5xx/429/504 retried by SDKs; never a 200 carrying an error, never
a 4xx for an upstream fault). A stream whose first chunk already reached
the client cannot fall back: it must end with an error event and no
[DONE]. No cell may take longer than the configured upstream timeouts
allow.

One llmpin per (fallback kind, drift) serves one route per fault; the
cells of one llmpin run concurrently so the matrix stays quick."""
import json
import time
from concurrent.futures import ThreadPoolExecutor

from e2e_common import H, E2ETestCase, doc, up, stories, wait_rows, main

# fault name -> (upstream, model asked of it)
FAULTS = {
    "500": ("a", "mock-500"),
    "503": ("a", "mock-503"),
    "429": ("a", "mock-429"),
    "refused": ("dead", "mock-model"),
    "first_byte_timeout": ("a", "mock-timeout"),
    "stall": ("a", "mock-stall"),
    "reset": ("a", "mock-reset"),
    "non_json": ("a", "mock-garbage"),
    "truncated": ("a", "mock-truncate-event"),
    "trickle": ("a", "mock-trickle"),
    "over_limit": ("big", "mock-huge"),
}

# What the fallback header says for each fault (fallback cells), and the
# status a client gets without a fallback. Faults after the first chunk of
# a stream are in MID_STREAM: there the stream is already the client's.
REASON = {"500": "5xx", "503": "5xx", "429": "429", "refused": "connect",
          "first_byte_timeout": "timeout", "stall": "timeout", "reset": "connect",
          "non_json": "bad_response", "truncated": "bad_response", "trickle": "timeout",
          "over_limit": "bad_response"}
STATUS = {"500": 500, "503": 503, "429": 429, "refused": 502, "first_byte_timeout": 504,
          "stall": 504, "reset": 502, "non_json": 502, "truncated": 502, "trickle": 504,
          "over_limit": 502}
MID_STREAM = {"stall": "upstream_timeout", "reset": "upstream_stream_broken",
              "truncated": "upstream_bad_response"}

TIMEOUTS = {"connect": "1s", "first_byte": "1s", "idle": "1s", "total": "3s"}
# the slowest cell waits for `total`; the rest is the sanitizer build's slack
CELL_LIMIT = 10.0 + 10.0


def openai_error(test, body, where):
    test.assertIsInstance(body, dict, where)
    test.assertEqual(set(body), {"error"}, where)
    err = body["error"]
    test.assertEqual(set(err), {"message", "type", "param", "code"}, where)
    test.assertIsInstance(err["message"], str, where)
    test.assertTrue(err["message"], where)
    return err


class FaultMatrixTest(E2ETestCase):
    def setUp(self):
        super().setUp()
        self.a = self.mock()
        self.b = self.mock()
        self.dead = "http://127.0.0.1:%d/v1" % H.free_port()

    def start(self, second, drift):
        routes = []
        for fault, (upname, model) in FAULTS.items():
            targets = [{"upstream": upname, "model": model}]
            if second:
                targets.append(second)
            routes.append({"name": "f-" + fault, "match": "f-" + fault, "mode": "fallback",
                           "targets": targets, "retry": {"max_attempts": 1}})
        ups = {"a": up(self.a.base_url, **TIMEOUTS), "b": up(self.b.base_url),
               "dead": up(self.dead, **TIMEOUTS),
               # building and sending 64 MiB on a busy sanitizer build may take
               # more than a second before the first byte, or pause a second
               # between reads (CI saw the idle timeout fire at 1.9 s)
               "big": up(self.a.base_url, **dict(TIMEOUTS, first_byte="5s", idle="5s", total="10s"))}
        cfg = doc(ups, routes, local={"stories": stories()} if second == "local:stories" else None,
                  drift={"db_path": self.db} if drift else {"enabled": False},
                  breaker={"consecutive_failures": 0, "min_requests": 100000})
        return self.llmpin(config=cfg)

    def cell(self, p, fault, stream):
        """One request; returns what happened, for the checks."""
        body = H.chat("f-" + fault, max_tokens=4)
        t0 = time.monotonic()
        if stream:
            body["stream"] = True
            s = H.SSE(p.addr, "/v1/chat/completions", body, timeout=60.0)
            try:
                if s.status == 200 and s.headers.get("content-type", "").startswith("text/event-stream"):
                    events = s.read_all()
                    out = {"status": 200, "headers": s.headers, "events": events, "error": s.error}
                else:
                    raw = s.resp.read()
                    out = {"status": s.status, "headers": s.headers, "raw": raw}
            finally:
                s.close()
        else:
            st, h, d, raw = H.post_json(p.addr, "/v1/chat/completions", body, timeout=60.0)
            out = {"status": st, "headers": h, "doc": d, "raw": raw}
        out["elapsed"] = time.monotonic() - t0
        return out

    def check(self, second, fault, stream, r):
        where = "%s fault=%s stream=%s: %r" % (second or "no fallback", fault, stream,
                                                {k: (v[:300] if isinstance(v, (bytes, str)) else v)
                                                 for k, v in r.items() if k != "events"}
                                                | {"events": [e[:200] for e in r.get("events", [])]})
        self.assertLess(r["elapsed"], CELL_LIMIT, where)
        h = r["headers"]
        if stream and fault in MID_STREAM:
            # the first chunks came from A and reached the client: no splice
            self.assertEqual(r["status"], 200, where)
            self.assertEqual(h.get("x-llmpin-target"), "%s:%s" % FAULTS[fault], where)
            ev = r["events"]
            self.assertNotIn("[DONE]", ev, where)
            chunks = [json.loads(e) for e in ev]  # every event is JSON: no raw half event
            self.assertGreaterEqual(len(chunks), 3, where)
            self.assertEqual(chunks[1]["choices"][0]["delta"]["content"], "mock ", where)
            err = openai_error(self, chunks[-1], where)
            self.assertEqual(err["code"], MID_STREAM[fault], where)
            for c in chunks[:-1]:
                self.assertNotIn("error", c, where)
            return
        if second:
            self.assertEqual(r["status"], 200, where)
            self.assertEqual(h.get("x-llmpin-target"), second, where)
            self.assertEqual(h.get("x-llmpin-fallback"), REASON[fault], where)
            if stream:
                ev = r["events"]
                self.assertEqual(ev[-1], "[DONE]", where)
                chunks = H.json_events(ev)
                self.assertFalse(any("error" in c for c in chunks), where)
                text = "".join(c["choices"][0]["delta"].get("content") or ""
                               for c in chunks if c.get("choices"))
            else:
                text = r["doc"]["choices"][0]["message"]["content"]
            self.assertTrue(text, where)
            if second == "b":
                self.assertEqual(text, "mock answer to: hello there", where)
            return
        # no fallback: an OpenAI-shaped error with the right status
        self.assertEqual(r["status"], STATUS[fault], where)
        raw = r["raw"]
        err = openai_error(self, json.loads(raw), where)
        if fault == "429":
            self.assertEqual(h.get("retry-after"), "1", where)
        if STATUS[fault] in (502, 504):
            self.assertTrue(err["code"].startswith("upstream_"), where)

    def run_matrix(self, second, drift):
        p = self.start(second, drift)
        cells = [(f, s) for f in FAULTS for s in (False, True)]
        with ThreadPoolExecutor(max_workers=8) as ex:
            results = list(ex.map(lambda c: self.cell(p, c[0], c[1]), cells))
        failures = []
        for (fault, stream), r in zip(cells, results):
            try:
                self.check(second, fault, stream, r)
            except AssertionError as e:
                failures.append(str(e)[:1500])
        self.assertFalse(failures, "\n\n".join(failures))
        # llmpin is still healthy and answers a normal request
        st, _, d, raw = H.post_json(p.addr, "/v1/chat/completions", H.chat("f-500"))
        if second:
            self.assertEqual(st, 200, raw)
        else:
            self.assertEqual(st, 500, raw)
        if drift:
            self.check_records(second, cells, results)

    def check_records(self, second, cells, results):
        """A broken answer is never on the record as a good one; a fallback's
        answer is recorded under the target that gave it."""
        ids = [r["headers"].get("x-request-id") for r in results]
        rows = wait_rows(self.db, "SELECT request_id, target, status FROM drift_records",
                         n=len([1 for r in results if r["status"] == 200]), timeout=20.0)
        by_id = {}
        for row in rows:
            by_id.setdefault(row["request_id"], []).append(row)
        for (fault, stream), r, rid in zip(cells, results, ids):
            where = "%s fault=%s stream=%s: records %r" % (second, fault, stream, by_id.get(rid))
            recs = by_id.get(rid, [])
            good = [x for x in recs if x["status"] == 200]
            if stream and fault in MID_STREAM:
                self.assertFalse(good, where)
            elif second:
                self.assertEqual([x["target"] for x in good], [second], where)
            else:
                self.assertFalse(good, where)

    def test_client_leaves_during_every_fault(self):
        # the client hangs up while each fault is under way (waiting for a
        # first byte, mid-body, mid-trickle, during a fallback): every
        # transfer is cancelled exactly once (the sanitizer build checks
        # the ownership rule of adapters/upstream.h), each request is
        # logged 499, and llmpin serves on
        p = self.start("b", True)
        def leave(cell):
            fault, stream = cell
            body = H.chat("f-" + fault, max_tokens=4, stream=stream)
            c = H.connect(p.addr, timeout=10.0)
            c.putrequest("POST", "/v1/chat/completions")
            raw = json.dumps(body).encode()
            c.putheader("Content-Type", "application/json")
            c.putheader("Content-Length", str(len(raw)))
            c.endheaders(raw)
            time.sleep(0.15)
            c.sock.shutdown(2)
            c.close()
        slow = ["first_byte_timeout", "stall", "trickle"]
        cells = [(f, s) for f in slow for s in (False, True)]
        with ThreadPoolExecutor(max_workers=6) as ex:
            list(ex.map(leave, cells))
        lines = H.wait_until(lambda: (lambda l: l if len(l) >= len(cells) else None)(
            [x for x in p.log_lines() if x.get("route", "").startswith("f-")]), 20.0)
        self.assertTrue(lines, p.stderr()[-3000:])
        for x in lines:
            self.assertEqual(x["status"], 499, x)
            self.assertEqual(x["outcome"], "client_disconnected", x)
        self.assertTrue(H.wait_until(lambda: self.a.stats()["requests_cancelled_by_client"] +
                                     self.a.stats()["streams_cancelled_by_client"] >= len(cells), 10.0),
                        self.a.stats())
        st, h, d, raw = self.chat(p, "f-500")
        self.assertEqual(st, 200, raw)

    def test_event_stream_to_a_non_stream_request(self):
        # an upstream that streams although the client asked stream:false:
        # not passed on as a 200 the client cannot read
        cfg = doc({"a": up(self.a.base_url, **TIMEOUTS), "b": up(self.b.base_url)},
                  [{"name": "fb", "match": "fb", "mode": "fallback", "retry": {"max_attempts": 1},
                    "targets": [{"upstream": "a", "model": "mock-sse-always"}, "b"]},
                   {"name": "solo", "match": "solo", "targets": [{"upstream": "a", "model": "mock-sse-always"}]}],
                  drift={"enabled": False})
        p = self.llmpin(config=cfg)
        self.assertServed(self.chat(p, "fb"), "b", "mock answer to: hello there", fallback="bad_response")
        st, h, d, raw = self.chat(p, "solo")
        self.assertEqual(st, 502, raw)
        err = openai_error(self, d, raw)
        self.assertEqual(err["code"], "upstream_bad_response", raw)
        self.assertIn('"stream": false', err["message"])
        # asked as a stream, the same upstream is a normal stream
        s = H.SSE(p.addr, "/v1/chat/completions", H.chat("solo", stream=True))
        self.addCleanup(s.close)
        self.assertEqual(s.read_all()[-1], "[DONE]")

    def test_fallback_to_second_upstream_drift_on(self):
        self.run_matrix("b", True)

    def test_fallback_to_second_upstream_drift_off(self):
        self.run_matrix("b", False)

    def test_fallback_to_local_model_drift_on(self):
        self.run_matrix("local:stories", True)

    def test_fallback_to_local_model_drift_off(self):
        self.run_matrix("local:stories", False)

    def test_no_fallback_drift_on(self):
        self.run_matrix(None, True)

    def test_no_fallback_drift_off(self):
        self.run_matrix(None, False)


if __name__ == "__main__":
    main()
