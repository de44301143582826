"""test_streaming.py - SSE through llmpin: events pass through one by one as
the upstream sends them (not buffered), the usage chunk and [DONE] survive,
parallel tool-call indices are preserved, an upstream reset ends the
client's stream with an error event, and a client that goes away cancels
the upstream stream."""
import json
import time

import harness as H


class StreamingTest(H.ProcTestCase):
    def setUp(self):
        self.m = self.mock("--fingerprint", "fp_stream_1")
        self.direct = self.mock("--fingerprint", "fp_stream_1")
        self.p = self.llmpin(upstream=self.m.base_url, extra=["--no-drift"])

    def stream(self, addr, body, path="/v1/chat/completions", timeout=30.0):
        s = H.SSE(addr, path, body, timeout=timeout)
        self.addCleanup(s.close)
        return s

    def test_events_pass_through_unchanged(self):
        body = H.chat("gpt-4o-mini", "one two three", stream=True,
                      stream_options={"include_usage": True})
        s = self.stream(self.p.addr, body)
        self.assertEqual(s.status, 200)
        self.assertTrue(s.headers.get("content-type", "").startswith("text/event-stream"), s.headers)
        self.assertTrue(s.headers.get("x-request-id"))
        got = s.read_all()
        self.assertIsNone(s.error, "stream ended by %r" % s.error)
        want = self.stream(self.direct.addr, body).read_all()
        self.assertEqual(got[-1], "[DONE]")
        self.assertEqual(len(got), len(want))
        self.assertEqual(H.json_events(got), H.json_events(want))
        last = H.json_events(got)[-1]
        self.assertEqual(last["choices"], [])
        self.assertEqual(last["usage"], {"prompt_tokens": 3, "completion_tokens": 6, "total_tokens": 9})

    def test_completions_stream(self):
        body = {"model": "gpt-3.5-turbo-instruct", "prompt": "a b", "stream": True}
        got = self.stream(self.p.addr, body, "/v1/completions").read_all()
        want = self.stream(self.direct.addr, body, "/v1/completions").read_all()
        self.assertEqual(got[-1], "[DONE]")
        self.assertEqual(H.json_events(got), H.json_events(want))

    def test_first_chunk_arrives_before_upstream_finished(self):
        # mock-slowstream waits 50 ms between its ~12 events: a proxy that
        # buffers delivers them all at once at the end.
        s = self.stream(self.p.addr, H.chat("mock-slowstream", "a b c d e f", stream=True))
        got = s.read_all()
        self.assertEqual(got[-1], "[DONE]")
        first, last = s.events[0][0], s.events[-1][0]
        self.assertGreater(len(s.events), 10)
        self.assertGreater(last - first, 0.3,
                           "events arrived together: llmpin buffered the stream")
        # and each event was usable as it came: the content arrives in order
        content = "".join(c["choices"][0]["delta"].get("content") or ""
                          for c in H.json_events(got) if c["choices"])
        self.assertEqual(content, "mock answer to: a b c d e f")

    def test_tool_calls_stream(self):
        s = self.stream(self.p.addr, H.chat("mock-tools", "weather and time", stream=True,
                                           stream_options={"include_usage": True}))
        chunks = H.json_events(s.read_all())
        calls = {}
        for c in chunks:
            if not c["choices"]:
                continue
            for tc in c["choices"][0]["delta"].get("tool_calls") or []:
                a = calls.setdefault(tc["index"], {"id": None, "name": None, "args": ""})
                if tc.get("id"):
                    a["id"] = tc["id"]
                    a["name"] = tc["function"]["name"]
                    self.assertEqual(tc["type"], "function")
                a["args"] += tc["function"].get("arguments") or ""
        self.assertEqual(sorted(calls), [0, 1])
        self.assertEqual(calls[0]["name"], "get_weather")
        self.assertEqual(calls[1]["name"], "get_time")
        self.assertEqual(calls[0]["id"], "call_mock_0")
        self.assertEqual(json.loads(calls[0]["args"]), {"city": "Paris"})
        self.assertEqual(json.loads(calls[1]["args"]), {"tz": "UTC"})
        finish = [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]]
        self.assertEqual(finish[-1], "tool_calls")
        self.assertIn("usage", chunks[-1])

    def test_upstream_reset_mid_stream_ends_with_error_event(self):
        s = self.stream(self.p.addr, H.chat("mock-reset", stream=True), timeout=20.0)
        self.assertEqual(s.status, 200)
        got = s.read_all()
        self.assertGreaterEqual(len(got), 3, got)
        self.assertNotIn("[DONE]", got)
        last = json.loads(got[-1])
        self.assertIn("error", last, "stream ended without an error event: %r" % got[-1])
        for k in ("message", "type", "code"):
            self.assertIn(k, last["error"])
        # the two upstream chunks came first, unchanged
        self.assertEqual(json.loads(got[0])["choices"][0]["delta"]["role"], "assistant")

    def test_upstream_stream_ending_without_done_is_not_silent(self):
        # the upstream closes its body cleanly after two chunks but never
        # sends [DONE]: a truncated answer, which must not pass for a whole one
        s = self.stream(self.p.addr, H.chat("mock-truncate", stream=True), timeout=20.0)
        self.assertEqual(s.status, 200)
        got = s.read_all()
        self.assertNotIn("[DONE]", got)
        self.assertEqual(json.loads(got[-1])["error"]["code"], "upstream_stream_broken", got[-1])
        self.assertEqual(json.loads(got[0])["choices"][0]["delta"]["role"], "assistant")

    def test_client_disconnect_cancels_upstream(self):
        self.m.reset()
        s = H.SSE(self.p.addr, "/v1/chat/completions", H.chat("mock-long", stream=True))
        for _ in range(5):
            self.assertIsNotNone(s.next_event())
        s.close()
        self.assertTrue(H.wait_until(lambda: self.m.stats()["streams_cancelled_by_client"] >= 1, 2.0),
                        "mock-long kept streaming after the client left: %r" % self.m.stats())
        self.assertEqual(self.m.stats()["streams_completed"], 0)
        # llmpin is still healthy and counts nothing in flight
        st, _, body = H.request(self.p.addr, "GET", "/healthz")
        self.assertEqual(st, 200)
        # an abandoned stream is logged and counted as 499, not as the 200
        # of its head (nginx's convention, docs/operations.md)
        line = H.wait_until(lambda: [l for l in self.p.log_lines() if l.get("model") == "mock-long"], 5.0)
        self.assertTrue(line, self.p.stderr()[-2000:])
        self.assertEqual(line[-1]["status"], 499, line[-1])
        self.assertEqual(line[-1]["outcome"], "client_disconnected", line[-1])
        self.assertTrue(any(l.get("status") == "499" and v == 1
                            for l, v in H.metric_samples(self.p.metrics(), "llmpin_requests_total")),
                        self.p.metrics())

    def test_many_streams_in_turn_on_one_connection(self):
        conn = H.connect(self.p.addr)
        self.addCleanup(conn.close)
        for i in range(5):
            body = json.dumps(H.chat("gpt-4o-mini", "n%d" % i, stream=True))
            conn.request("POST", "/v1/chat/completions", body=body,
                         headers={"Content-Type": "application/json"})
            r = conn.getresponse()
            data = r.read().decode()
            self.assertEqual(r.status, 200)
            self.assertTrue(data.rstrip().endswith("data: [DONE]"), data[-200:])
            self.assertIn('"mock "', data)


class StreamErrorsBeforeFirstByteTest(H.ProcTestCase):
    """A stream that fails before any byte was sent is a plain JSON error
    with the real status, not a 200 event stream."""

    def test_errors_before_first_byte(self):
        m = self.mock()
        cfg = H.config({"mock": H.upstream(m.base_url, timeouts={"first_byte": "500ms"})},
                       [{"name": "main", "match": "*", "mode": "remote",
                         "targets": [{"upstream": "mock"}], "retry": {"max_attempts": 1}}])
        p = self.llmpin(config=cfg)
        for model, status, code in (("mock-500", 500, "mock_500"), ("mock-429", 429, "rate_limit_exceeded"),
                                    ("mock-timeout", 504, "upstream_timeout")):
            st, h, doc, raw = H.post_json(p.addr, "/v1/chat/completions", H.chat(model, stream=True))
            self.assertError(st, doc, status, code=code)
            self.assertTrue(h.get("content-type", "").startswith("application/json"), (model, h))


class StreamTimeoutTest(H.ProcTestCase):
    def test_idle_timeout_mid_stream_ends_with_error_event(self):
        m = self.mock()
        cfg = H.config({"mock": H.upstream(m.base_url, timeouts={"idle": "500ms"})},
                       [{"name": "main", "match": "*", "mode": "remote",
                         "targets": [{"upstream": "mock"}], "retry": {"max_attempts": 1}}])
        p = self.llmpin(config=cfg)
        s = H.SSE(p.addr, "/v1/chat/completions", H.chat("mock-stall", stream=True), timeout=20.0)
        self.addCleanup(s.close)
        t0 = time.monotonic()
        got = s.read_all()
        self.assertLess(time.monotonic() - t0, 15.0)
        self.assertNotIn("[DONE]", got)
        self.assertIn("error", json.loads(got[-1]), got[-1])


if __name__ == "__main__":
    H.main()
