"""test_fallback.py - fallback chains and retries through the real binary.

A route in fallback mode tries mock upstream A, then mock upstream B (or the
pinned local model). Each way A can fail before the first byte (HTTP 500,
connection refused, no first byte in time, 429 with Retry-After, a 2xx body
that is not JSON) must end in B's answer with x-llmpin-fallback naming the
reason. A stream that fails before its first chunk falls back just as
transparently; one that fails after it must end with an error event and no
[DONE]. fallback_on decides which failures move on, and retry.max_attempts
how often a target is tried."""
import json
import time

from e2e_common import H, E2ETestCase, doc, up, stories, main

ANSWER = "mock answer to: hello there"
FAST = {"max_attempts": 1}


class FallbackTest(E2ETestCase):
    def setUp(self):
        super().setUp()
        self.a = self.mock()
        self.b = self.mock()

    def start(self, a_target, a_up=None, retry=FAST, fallback_on=None, second="b",
              server=None, local=False):
        route = {"name": "r", "match": "chat", "mode": "fallback",
                 "targets": [a_target, second], "retry": retry}
        if fallback_on is not None:
            route["fallback_on"] = fallback_on
        cfg = doc({"a": a_up or up(self.a.base_url), "b": up(self.b.base_url)}, [route],
                  server=server, local={"stories": stories()} if local else None,
                  drift={"db_path": self.db})
        self.p = self.llmpin(config=cfg)
        return self.p

    def test_5xx_falls_back(self):
        p = self.start({"upstream": "a", "model": "mock-500"})
        self.assertServed(self.chat(p, "chat"), "b", ANSWER, fallback="5xx")
        self.assertEqual(self.a.stats()["requests"], 1)
        self.assertEqual(self.b.stats()["requests"], 1)
        self.assertEqual(H.wait_until(lambda: len(p.log_lines()) >= 1) and p.log_lines()[-1]["fallback"], "5xx")
        m = p.metrics()
        self.assertEqual(sum(v for l, v in H.metric_samples(m, "llmpin_fallbacks_total")
                             if l.get("route") == "r" and l.get("reason") == "5xx"), 1)

    def test_connect_refused_falls_back(self):
        dead = "http://127.0.0.1:%d/v1" % H.free_port()
        p = self.start({"upstream": "a"}, a_up=up(dead, connect="2s"))
        self.assertServed(self.chat(p, "chat"), "b", "mock answer to: hello there", fallback="connect")

    def test_first_byte_timeout_falls_back(self):
        p = self.start({"upstream": "a", "model": "mock-timeout"},
                       a_up=up(self.a.base_url, first_byte="300ms"))
        self.assertServed(self.chat(p, "chat"), "b", ANSWER, fallback="timeout")
        self.assertEqual(self.a.stats()["requests"], 1)

    def test_429_retry_honours_retry_after(self):
        # the mock answers 429 with Retry-After: 1; one retry after exactly
        # that wait, then the fallback
        p = self.start({"upstream": "a", "model": "mock-429"},
                       retry={"max_attempts": 2, "base": "10ms", "max": "20ms"})
        t0 = time.monotonic()
        resp = self.chat(p, "chat")
        elapsed = time.monotonic() - t0
        self.assertServed(resp, "b", ANSWER, fallback="429")
        self.assertEqual(self.a.stats()["requests"], 2)
        self.assertGreaterEqual(elapsed, 0.95, "the retry did not wait for Retry-After: 1")

    def test_429_no_retry_past_deadline(self):
        # waiting 1 s would pass the 700 ms request deadline: no retry
        p = self.start({"upstream": "a", "model": "mock-429"},
                       retry={"max_attempts": 3, "base": "10ms", "max": "20ms"},
                       server={"request_timeout": "700ms"})
        self.assertServed(self.chat(p, "chat"), "b", ANSWER, fallback="429")
        self.assertEqual(self.a.stats()["requests"], 1)

    def test_garbage_body_falls_back(self):
        p = self.start({"upstream": "a", "model": "mock-garbage"})
        # a 2xx body that is not JSON counts as an upstream failure; the
        # header names it precisely
        self.assertServed(self.chat(p, "chat"), "b", ANSWER, fallback="bad_response")

    def test_local_model_is_the_fallback(self):
        p = self.start({"upstream": "a", "model": "mock-500"}, second="local:stories", local=True)
        d = self.assertServed(self.chat(p, "chat", max_tokens=8), "local:stories", fallback="5xx")
        self.assertTrue(d["choices"][0]["message"]["content"])
        self.assertTrue(d["system_fingerprint"].startswith("llmpin-78c4953cf6ef"), d)
        self.assertEqual(d["usage"]["completion_tokens"], 8)

    # ---- fallback by capability ----

    TOOLS = [{"type": "function", "function": {"name": "get_weather",
                                               "parameters": {"type": "object", "properties": {}}}}]

    def test_local_model_without_the_capability_is_skipped(self):
        # tools and a JSON schema keyword it cannot constrain to need what
        # the local model lacks: it is skipped before
        # anything is sent, and B serves
        p = self.start("local:stories", second="b", local=True)
        extras = [{"tools": self.TOOLS, "response_format": {"type": "json_object"}},
                  {"response_format": {"type": "json_schema",
                                       "json_schema": {"name": "x", "schema": {"type": "string", "minLength": 2}}}}]
        for i, extra in enumerate(extras):
            self.assertServed(self.chat(p, "chat", **extra), "b", ANSWER, fallback="unsupported")
            self.assertEqual(self.b.stats()["requests"], i + 1)
        # a request it can serve stays local
        self.assertServed(self.chat(p, "chat", max_tokens=4), "local:stories")
        m = p.metrics()
        self.assertEqual(sum(v for l, v in H.metric_samples(m, "llmpin_fallbacks_total")
                             if l.get("route") == "r" and l.get("reason") == "unsupported"), len(extras))
        self.assertEqual(H.wait_until(lambda: len(p.log_lines()) >= len(extras) + 1) and p.log_lines()[0]["fallback"],
                         "unsupported")

    def test_no_target_can_serve_is_a_503_naming_each(self):
        # A fails, then the local model cannot take tools with a JSON mode: never a 400
        # blaming the request, but a 503 that says what each target did
        p = self.start({"upstream": "a", "model": "mock-500"}, second="local:stories", local=True)
        st, h, d, raw = self.chat(p, "chat", tools=self.TOOLS, response_format={"type": "json_object"})
        err = self.assertError(st, d, 503, code="no_capable_target", param="response_format")
        self.assertEqual(err["message"],
                         "No target of route 'r' can serve this request: a:mock-500: HTTP 500; local:stories: "
                         "'response_format' together with 'tools' is not supported by the local model 'stories'.")
        self.assertEqual(h.get("x-llmpin-fallback"), "5xx")
        self.assertEqual(self.a.stats()["requests"], 1)

    # ---- streams ----

    def stream(self, p, model="chat", **extra):
        s = H.SSE(p.addr, "/v1/chat/completions", H.chat(model, stream=True, **extra))
        self.addCleanup(s.close)
        return s

    def test_stream_fails_before_first_chunk(self):
        p = self.start({"upstream": "a", "model": "mock-500"})
        s = self.stream(p)
        self.assertEqual(s.status, 200)
        self.assertEqual(s.headers.get("x-llmpin-target"), "b")
        self.assertEqual(s.headers.get("x-llmpin-fallback"), "5xx")
        ev = s.read_all()
        self.assertEqual(ev[-1], "[DONE]")
        text = "".join(c["choices"][0]["delta"].get("content") or ""
                       for c in H.json_events(ev) if c.get("choices"))
        self.assertEqual(text, ANSWER)

    def test_stream_connect_refused_falls_back_to_local(self):
        dead = "http://127.0.0.1:%d/v1" % H.free_port()
        p = self.start({"upstream": "a"}, a_up=up(dead), second="local:stories", local=True)
        s = self.stream(p, max_tokens=6)
        self.assertEqual(s.status, 200)
        self.assertEqual(s.headers.get("x-llmpin-target"), "local:stories")
        self.assertEqual(s.headers.get("x-llmpin-fallback"), "connect")
        ev = s.read_all()
        self.assertEqual(ev[-1], "[DONE]")
        self.assertFalse(any('"error"' in e for e in ev), ev)

    def check_broken_stream(self, s, code):
        self.assertEqual(s.status, 200)
        self.assertEqual(s.headers.get("x-llmpin-target"), "a:%s" % s.model)
        self.assertIsNone(s.headers.get("x-llmpin-fallback"))
        ev = s.read_all()
        self.assertNotIn("[DONE]", ev)
        chunks = H.json_events(ev)
        # the mock sent two chunks (role, first word) before failing
        self.assertEqual(len(chunks), 3, ev)
        self.assertEqual(chunks[1]["choices"][0]["delta"]["content"], "mock ")
        self.assertEqual(set(chunks[2]), {"error"}, chunks[2])
        self.assertEqual(chunks[2]["error"]["code"], code)
        self.assertEqual(self.b.stats()["requests"], 0, "a started stream was spliced with B")

    def test_stream_reset_after_first_chunk(self):
        p = self.start({"upstream": "a", "model": "mock-reset"})
        s = self.stream(p)
        s.model = "mock-reset"
        self.check_broken_stream(s, "upstream_stream_broken")
        m = p.metrics()
        self.assertEqual(sum(v for l, v in H.metric_samples(m, "llmpin_stream_errors_total")
                             if l.get("code") == "upstream_stream_broken"), 1)

    def test_stream_stall_after_first_chunk(self):
        p = self.start({"upstream": "a", "model": "mock-stall"},
                       a_up=up(self.a.base_url, idle="400ms"))
        s = self.stream(p)
        s.model = "mock-stall"
        self.check_broken_stream(s, "upstream_timeout")


class FallbackOnAndRetryTest(E2ETestCase):
    def test_fallback_on_without_5xx_passes_the_500(self):
        a, b = self.mock(), self.mock()
        cfg = doc({"a": up(a.base_url), "b": up(b.base_url)},
                  [{"name": "r", "match": "chat", "mode": "fallback",
                    "targets": [{"upstream": "a", "model": "mock-500"}, "b"],
                    "fallback_on": ["connect", "timeout", "429"], "retry": FAST}],
                  drift={"db_path": self.db})
        p = self.llmpin(config=cfg)
        st, h, d, raw = self.chat(p, "chat")
        self.assertEqual(st, 500, raw)
        self.assertEqual(d["error"]["code"], "mock_500")
        self.assertEqual(h.get("x-llmpin-target"), "a:mock-500")
        self.assertIsNone(h.get("x-llmpin-fallback"))
        self.assertEqual(b.stats()["requests"], 0)

    def test_max_attempts_3(self):
        a = self.mock()
        cfg = doc({"a": up(a.base_url)},
                  [{"name": "r", "match": "chat", "mode": "remote",
                    "targets": [{"upstream": "a", "model": "mock-500"}],
                    "retry": {"max_attempts": 3, "base": "10ms", "max": "50ms"}}],
                  breaker={"consecutive_failures": 10}, drift={"db_path": self.db})
        p = self.llmpin(config=cfg)
        st, h, d, raw = self.chat(p, "chat")
        self.assertEqual(st, 500, raw)
        self.assertEqual(d["error"]["code"], "mock_500")
        self.assertEqual(a.stats()["requests"], 3)
        m = p.metrics()
        self.assertEqual(sum(v for l, v in H.metric_samples(m, "llmpin_upstream_errors_total")
                             if l.get("target") == "a:mock-500" and l.get("kind") == "5xx"), 3)


if __name__ == "__main__":
    main()
