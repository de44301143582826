"""test_mock.py - the mock upstream's own test: every behaviour the proxy
tests rely on, checked directly against the mock (no proxy in between), so
that a failing integration test points at the proxy, not at the mock."""
import base64
import http.client
import json
import os
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import harness as H  # noqa: E402


class MockTest(H.ProcTestCase):
    def setUp(self):
        self.m = self.mock("--fingerprint", "fp_test_1")

    def test_chat_non_stream(self):
        st, h, doc, _ = H.post_json(self.m.addr, "/v1/chat/completions",
                                    H.chat("gpt-4o-mini", "say hi please"))
        self.assertEqual(st, 200)
        self.assertEqual(h["content-type"], "application/json")
        self.assertEqual(doc["object"], "chat.completion")
        self.assertEqual(doc["id"], "chatcmpl-mock-1")
        self.assertEqual(doc["model"], "gpt-4o-mini")
        self.assertEqual(doc["system_fingerprint"], "fp_test_1")
        msg = doc["choices"][0]["message"]
        self.assertEqual(msg["role"], "assistant")
        self.assertEqual(msg["content"], "mock answer to: say hi please")
        self.assertEqual(doc["choices"][0]["finish_reason"], "stop")
        self.assertEqual(doc["usage"], {"prompt_tokens": 3, "completion_tokens": 6,
                                        "total_tokens": 9})

    def test_chat_stream_with_usage(self):
        s = H.SSE(self.m.addr, "/v1/chat/completions",
                  H.chat("m1", "a b", stream=True, stream_options={"include_usage": True}))
        self.addCleanup(s.close)
        self.assertEqual(s.status, 200)
        self.assertTrue(s.headers["content-type"].startswith("text/event-stream"))
        ev = s.read_all()
        self.assertEqual(ev[-1], "[DONE]")
        chunks = H.json_events(ev)
        self.assertEqual(chunks[0]["choices"][0]["delta"]["role"], "assistant")
        content = "".join(c["choices"][0]["delta"].get("content") or ""
                          for c in chunks if c["choices"])
        self.assertEqual(content, "mock answer to: a b")
        self.assertGreaterEqual(sum(1 for c in chunks if c["choices"] and
                                    c["choices"][0]["delta"].get("content")), 3)
        self.assertEqual(chunks[-2]["choices"][0]["finish_reason"], "stop")
        self.assertEqual(chunks[-1]["choices"], [])
        self.assertEqual(chunks[-1]["usage"]["total_tokens"], 2 + 5)
        for c in chunks[:-1]:
            self.assertIsNone(c["usage"])
        st = self.m.stats()
        self.assertEqual(st["streams_started"], 1)
        self.assertEqual(st["streams_completed"], 1)

    def test_stream_without_usage_has_no_usage_chunk(self):
        s = H.SSE(self.m.addr, "/v1/chat/completions", H.chat("m1", "x", stream=True))
        self.addCleanup(s.close)
        chunks = H.json_events(s.read_all())
        self.assertTrue(all(c["choices"] for c in chunks))
        self.assertTrue(all("usage" not in c for c in chunks))

    def test_slowstream_is_spread_in_time(self):
        s = H.SSE(self.m.addr, "/v1/chat/completions", H.chat("mock-slowstream", "a b c", stream=True))
        self.addCleanup(s.close)
        s.read_all()
        times = [t for t, _ in s.events]
        self.assertGreaterEqual(len(times), 6)
        # 50 ms between chunks: the first arrives well before the last
        self.assertGreater(times[-1] - times[0], 0.2)

    def test_tools(self):
        st, _, doc, _ = H.post_json(self.m.addr, "/v1/chat/completions", H.chat("mock-tools"))
        self.assertEqual(st, 200)
        calls = doc["choices"][0]["message"]["tool_calls"]
        self.assertEqual([c["function"]["name"] for c in calls], ["get_weather", "get_time"])
        self.assertEqual(json.loads(calls[0]["function"]["arguments"]), {"city": "Paris"})
        self.assertEqual(doc["choices"][0]["finish_reason"], "tool_calls")

        s = H.SSE(self.m.addr, "/v1/chat/completions", H.chat("mock-tools", stream=True))
        self.addCleanup(s.close)
        chunks = H.json_events(s.read_all())
        acc = {}
        for c in chunks:
            for tc in c["choices"][0]["delta"].get("tool_calls") or []:
                a = acc.setdefault(tc["index"], {"name": None, "args": ""})
                if "id" in tc:
                    self.assertIsNone(a["name"], "second head delta for one index")
                    a["name"] = tc["function"]["name"]
                a["args"] += tc["function"].get("arguments", "")
        self.assertEqual(sorted(acc), [0, 1])
        self.assertEqual(acc[1]["name"], "get_time")
        self.assertEqual(json.loads(acc[1]["args"]), {"tz": "UTC"})
        self.assertEqual(chunks[-1]["choices"][0]["finish_reason"], "tool_calls")

    def test_errors(self):
        st, h, doc, _ = H.post_json(self.m.addr, "/v1/chat/completions", H.chat("mock-500"))
        self.assertError(st, doc, 500, code="mock_500")
        st, h, doc, _ = H.post_json(self.m.addr, "/v1/chat/completions", H.chat("mock-429"))
        self.assertError(st, doc, 429, code="rate_limit_exceeded")
        self.assertEqual(h["retry-after"], "1")
        st, h, doc, _ = H.post_json(self.m.addr, "/v1/chat/completions", H.chat("mock-401"))
        self.assertError(st, doc, 401, code="invalid_api_key")
        st, h, doc, raw = H.post_json(self.m.addr, "/v1/chat/completions", H.chat("mock-garbage"))
        self.assertEqual(st, 200)
        self.assertIsNone(doc)
        self.assertTrue(raw.startswith(b"<html>"))

    def test_body_faults(self):
        st, h, doc, _ = H.post_json(self.m.addr, "/v1/chat/completions", H.chat("mock-503"))
        self.assertError(st, doc, 503, code="mock_503")
        # truncated: a clean response whose JSON stops halfway
        st, h, doc, raw = H.post_json(self.m.addr, "/v1/chat/completions", H.chat("mock-truncate"))
        self.assertEqual(st, 200)
        self.assertIsNone(doc)
        self.assertTrue(raw.startswith(b'{"id":"chatcmpl-mock-'), raw)
        self.assertEqual(int(h["content-length"]), len(raw))
        # not streamed, stall and reset come after the head and half the body
        c = H.connect(self.m.addr, timeout=1.0)
        self.addCleanup(c.close)
        c.request("POST", "/v1/chat/completions", body=json.dumps(H.chat("mock-stall")),
                  headers={"Content-Type": "application/json"})
        r = c.getresponse()
        self.assertEqual(r.status, 200)
        with self.assertRaises(socket.timeout):
            r.read()
        c2 = H.connect(self.m.addr, timeout=5.0)
        self.addCleanup(c2.close)
        c2.request("POST", "/v1/chat/completions", body=json.dumps(H.chat("mock-reset")),
                   headers={"Content-Type": "application/json"})
        r = c2.getresponse()
        self.assertEqual(r.status, 200)
        with self.assertRaises((ConnectionError, http.client.HTTPException)):
            r.read()
        # over 64 MiB, in one body and in one event
        st, h, raw = H.request(self.m.addr, "POST", "/v1/chat/completions", H.chat("mock-huge"))
        self.assertGreater(len(raw), 64 << 20)
        self.assertEqual(json.loads(raw)["choices"][0]["message"]["content"], "x" * ((64 << 20) + 4096))
        s = H.SSE(self.m.addr, "/v1/chat/completions", H.chat("mock-huge", stream=True))
        self.addCleanup(s.close)
        ev = s.read_all()
        self.assertEqual(len(ev), 2)
        self.assertGreater(len(ev[0]), 64 << 20)
        self.assertEqual(ev[1], "[DONE]")

    def test_event_faults(self):
        s = H.SSE(self.m.addr, "/v1/chat/completions", H.chat("mock-garbage", stream=True))
        self.addCleanup(s.close)
        self.assertEqual(s.read_all(), ["<html>this is not JSON {{{", "[DONE]"])
        s = H.SSE(self.m.addr, "/v1/chat/completions", H.chat("mock-truncate-event", stream=True))
        self.addCleanup(s.close)
        ev = s.read_all()
        self.assertEqual(len(ev), 3)
        json.loads(ev[1])
        with self.assertRaises(ValueError):
            json.loads(ev[2])
        self.assertIsNone(s.error)
        s = H.SSE(self.m.addr, "/v1/chat/completions", H.chat("mock-sse-always", "a b"))
        self.addCleanup(s.close)
        self.assertTrue(s.headers["content-type"].startswith("text/event-stream"))
        self.assertEqual(s.read_all()[-1], "[DONE]")
        # trickle: one byte per 100 ms, so the first event takes seconds
        s = H.SSE(self.m.addr, "/v1/chat/completions", H.chat("mock-trickle", stream=True), timeout=5.0)
        self.addCleanup(s.close)
        t0 = time.monotonic()
        c = s.resp.read(5)
        self.assertEqual(c, b"data:")
        self.assertGreater(time.monotonic() - t0, 0.3)

    def test_timeout_never_answers_and_cancel_is_counted(self):
        c = H.connect(self.m.addr, timeout=0.5)
        c.request("POST", "/v1/chat/completions", body=json.dumps(H.chat("mock-timeout")),
                  headers={"Content-Type": "application/json"})
        with self.assertRaises(socket.timeout):
            c.getresponse()
        c.close()
        self.assertTrue(H.wait_until(lambda: self.m.stats()["requests_cancelled_by_client"] == 1))

    def test_slow_first_byte(self):
        t0 = time.monotonic()
        st, _, doc, _ = H.post_json(self.m.addr, "/v1/chat/completions", H.chat("mock-slow-first-byte", "q"))
        self.assertEqual(st, 200)
        self.assertEqual(doc["choices"][0]["message"]["content"], "mock answer to: q")
        self.assertGreaterEqual(time.monotonic() - t0, 1.4)

    def test_stall_and_reset(self):
        s = H.SSE(self.m.addr, "/v1/chat/completions", H.chat("mock-stall", stream=True), timeout=1.0)
        self.addCleanup(s.close)
        self.assertIsNotNone(s.next_event())
        self.assertIsNotNone(s.next_event())
        self.assertIsNone(s.next_event())
        self.assertIsInstance(s.error, socket.timeout)

        s = H.SSE(self.m.addr, "/v1/chat/completions", H.chat("mock-reset", stream=True), timeout=5.0)
        self.addCleanup(s.close)
        ev = s.read_all()
        self.assertEqual(len(ev), 2)
        self.assertIsNotNone(s.error, "stream should end by an error, not cleanly")

    def test_client_cancel_mid_stream(self):
        s = H.SSE(self.m.addr, "/v1/chat/completions", H.chat("mock-long", stream=True))
        for _ in range(5):
            self.assertIsNotNone(s.next_event())
        s.close()
        self.assertTrue(H.wait_until(lambda: self.m.stats()["streams_cancelled_by_client"] == 1, 2.0))
        st = self.m.stats()
        self.assertEqual(st["streams_completed"], 0)

    def test_forever_keeps_streaming(self):
        s = H.SSE(self.m.addr, "/v1/chat/completions", H.chat("mock-forever", stream=True))
        for _ in range(4):
            self.assertIsNotNone(s.next_event())
        self.assertEqual(json.loads(s.events[-1][1])["choices"][0]["delta"]["content"], "tick ")
        s.close()
        self.assertTrue(H.wait_until(lambda: self.m.stats()["streams_cancelled_by_client"] == 1, 2.0))

    def test_long_stream_length(self):
        s = H.SSE(self.m.addr, "/v1/chat/completions", H.chat("mock-long", stream=True))
        self.addCleanup(s.close)
        ev = s.read_all()
        self.assertEqual(len(ev), 1 + 200 + 1 + 1)

    def test_completions(self):
        st, _, doc, _ = H.post_json(self.m.addr, "/v1/completions",
                                    {"model": "m", "prompt": "one two"})
        self.assertEqual(st, 200)
        self.assertEqual(doc["object"], "text_completion")
        self.assertEqual(doc["choices"][0]["text"], "mock answer to: one two")
        s = H.SSE(self.m.addr, "/v1/completions", {"model": "m", "prompt": "x", "stream": True,
                                                   "stream_options": {"include_usage": True}})
        self.addCleanup(s.close)
        ev = s.read_all()
        self.assertEqual(ev[-1], "[DONE]")
        chunks = H.json_events(ev)
        self.assertEqual("".join(c["choices"][0]["text"] for c in chunks if c["choices"]),
                         "mock answer to: x")
        self.assertEqual(chunks[-1]["usage"]["prompt_tokens"], 1)

    def test_embeddings(self):
        st, _, doc, _ = H.post_json(self.m.addr, "/v1/embeddings", {"model": "e", "input": ["a", "b"]})
        self.assertEqual(st, 200)
        self.assertEqual(len(doc["data"]), 2)
        v0 = doc["data"][0]["embedding"]
        self.assertEqual(len(v0), 8)
        st, _, doc2, _ = H.post_json(self.m.addr, "/v1/embeddings",
                                     {"model": "e", "input": "a", "encoding_format": "base64"})
        self.assertEqual(st, 200)
        raw = base64.b64decode(doc2["data"][0]["embedding"])
        self.assertEqual(list(struct.unpack("<8f", raw)), v0)

    def test_models_and_responses(self):
        st, _, body = H.request(self.m.addr, "GET", "/v1/models")
        self.assertEqual(st, 200)
        self.assertIn("mock-model", [m["id"] for m in json.loads(body)["data"]])
        st, _, body = H.request(self.m.addr, "GET", "/v1/models/gpt-4o")
        self.assertEqual(json.loads(body)["id"], "gpt-4o")
        st, _, doc, _ = H.post_json(self.m.addr, "/v1/responses", {"model": "x", "input": "hi"})
        self.assertEqual(st, 200)
        self.assertEqual(doc["echo"], {"model": "x", "input": "hi"})

    def test_azure_path_and_echo(self):
        st, _, doc, _ = H.post_json(
            self.m.addr, "/openai/deployments/mock-echo/chat/completions?api-version=2024-06-01",
            {"messages": [{"role": "user", "content": "x"}]}, headers={"api-key": "azkey"})
        self.assertEqual(st, 200)
        self.assertEqual(doc["model"], "mock-echo")
        echo = json.loads(doc["choices"][0]["message"]["content"])
        self.assertEqual(echo["query"], "api-version=2024-06-01")
        self.assertEqual(echo["headers"]["api-key"], "azkey")
        st = self.m.stats()
        self.assertEqual(st["last_request_query"], "api-version=2024-06-01")
        self.assertEqual(st["last_request_headers"]["api-key"], "azkey")

    def test_keepalive_and_stats(self):
        conn = H.connect(self.m.addr)
        self.addCleanup(conn.close)
        for i in range(20):
            st, _, doc, _ = H.post_json(self.m.addr, "/v1/chat/completions", H.chat("m", "n%d" % i), conn=conn)
            self.assertEqual(st, 200)
        st = self.m.stats()
        self.assertEqual(st["requests"], 20)
        self.assertEqual(st["connections_accepted"], 2)  # ours + the stats call
        self.assertEqual(json.loads(st["last_request_body"])["messages"][0]["content"], "n19")
        big = "w " * (512 * 1024)
        st, _, doc, _ = H.post_json(self.m.addr, "/v1/chat/completions", H.chat("m", big))
        self.assertEqual(st, 200)
        self.assertEqual(self.m.stats()["last_request_body_length"], len(json.dumps(H.chat("m", big))))
        self.m.reset()
        self.assertEqual(self.m.stats()["requests"], 0)

    def test_config_fingerprint_and_served_model(self):
        self.m.config(fingerprint="fp_other", served_model="gpt-4o-2024-08-06")
        st, _, doc, _ = H.post_json(self.m.addr, "/v1/chat/completions", H.chat("gpt-4o"))
        self.assertEqual(doc["system_fingerprint"], "fp_other")
        self.assertEqual(doc["model"], "gpt-4o-2024-08-06")
        self.m.config(fingerprint=None, served_model=None, delay_ms=300)
        t0 = time.monotonic()
        st, _, doc, _ = H.post_json(self.m.addr, "/v1/chat/completions", H.chat("gpt-4o"))
        self.assertGreaterEqual(time.monotonic() - t0, 0.25)
        self.assertIsNone(doc["system_fingerprint"])
        self.assertEqual(doc["model"], "gpt-4o")


class MockOptionsTest(H.ProcTestCase):
    def test_require_key(self):
        m = self.mock("--require-key", "sk-mock-secret")
        st, _, doc, _ = H.post_json(m.addr, "/v1/chat/completions", H.chat("m"))
        self.assertError(st, doc, 401, code="invalid_api_key")
        st, _, doc, _ = H.post_json(m.addr, "/v1/chat/completions", H.chat("m"),
                                    headers={"Authorization": "Bearer sk-mock-secret"})
        self.assertEqual(st, 200)
        st, _, doc, _ = H.post_json(m.addr, "/v1/chat/completions", H.chat("m"),
                                    headers={"api-key": "sk-mock-secret"})
        self.assertEqual(st, 200)
        self.assertEqual(m.stats()["last_request_headers"]["api-key"], "sk-mock-secret")

    def test_changes(self):
        m = self.mock("--fingerprint", "fpA", "--fingerprint-change-at", "2",
                      "--accuracy-change-at", "3")
        fps, answers = [], []
        for _ in range(4):
            st, _, doc, _ = H.post_json(m.addr, "/v1/chat/completions",
                                        H.chat("m", "Is 15 a prime number? Think step by step."))
            fps.append(doc["system_fingerprint"])
            answers.append(doc["choices"][0]["message"]["content"])
        self.assertEqual(fps, ["fpA", "fpA", "fpA-changed", "fpA-changed"])
        self.assertEqual(answers, ["[No]", "[No]", "[No]", "[Yes]"])

    def test_sigterm_exits_zero(self):
        m = Mock_ = self.mock()
        self.assertEqual(Mock_.terminate(), 0)
        del m


if __name__ == "__main__":
    H.main()
