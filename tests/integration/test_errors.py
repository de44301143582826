"""test_errors.py - every failure is an OpenAI-shaped JSON error with the
right status, code and param, never a 200: request validation, unknown
models, client keys, body limits, unreachable and slow upstreams, and
upstream errors passed through with their own status and body."""
import json

import harness as H


def one_route(base_url, match="*", timeouts=None, keys=None, server=None, name="main"):
    return H.config({"mock": H.upstream(base_url, timeouts=timeouts)},
                    [{"name": name, "match": match, "mode": "remote",
                      "targets": [{"upstream": "mock"}],
                      "retry": {"max_attempts": 1}}],
                    keys=keys, server=server)


class ValidationTest(H.ProcTestCase):
    def setUp(self):
        self.m = self.mock()
        self.p = self.llmpin(upstream=self.m.base_url, extra=["--no-drift"])

    def post(self, body, path="/v1/chat/completions"):
        st, h, doc, raw = H.post_json(self.p.addr, path, body)
        self.assertTrue(h.get("x-request-id"), "error response without x-request-id")
        return st, doc

    def test_malformed_json(self):
        st, doc = self.post(b'{"model": "gpt-4o", "messages": [')
        self.assertError(st, doc, 400, code="invalid_json")
        st, doc = self.post(b'')
        self.assertError(st, doc, 400)
        st, doc = self.post(b'[1, 2]')
        self.assertError(st, doc, 400)

    def test_wrong_type_names_the_field(self):
        st, doc = self.post(H.chat("gpt-4o", temperature="hot"))
        err = self.assertError(st, doc, 400, code="invalid_type", param="temperature")
        self.assertIn("temperature", err["message"])
        st, doc = self.post(H.chat("gpt-4o", max_tokens="ten"))
        self.assertError(st, doc, 400, code="invalid_type", param="max_tokens")
        st, doc = self.post(H.chat("gpt-4o", stream="yes"))
        self.assertError(st, doc, 400, param="stream")

    def test_missing_model(self):
        st, doc = self.post({"messages": [{"role": "user", "content": "hi"}]})
        self.assertError(st, doc, 400, param="model")
        st, doc = self.post({"model": 5, "messages": [{"role": "user", "content": "hi"}]})
        self.assertError(st, doc, 400, param="model")

    def test_messages_not_array(self):
        st, doc = self.post({"model": "gpt-4o", "messages": "hi"})
        self.assertError(st, doc, 400, param="messages")
        st, doc = self.post({"model": "gpt-4o"})
        self.assertError(st, doc, 400, param="messages")

    def test_invalid_requests_never_reach_upstream(self):
        self.m.reset()
        self.post(H.chat("gpt-4o", temperature="hot"))
        self.post(b"{not json")
        self.assertEqual(self.m.stats()["requests"], 0)

    def test_unknown_path_is_not_200(self):
        st, h, body = H.request(self.p.addr, "GET", "/nope")
        self.assertEqual(st, 404, body)
        self.assertIn("error", json.loads(body))


class ConfigErrorsTest(H.ProcTestCase):
    def test_unknown_model(self):
        m = self.mock()
        p = self.llmpin(config=one_route(m.base_url, match=["gpt-4o", "gpt-4o-mini"]))
        st, h, doc, raw = H.post_json(p.addr, "/v1/chat/completions", H.chat("claude-unknown"))
        err = self.assertError(st, doc, 404, code="model_not_found")
        self.assertIn("claude-unknown", err["message"])
        st, h, doc, raw = H.post_json(p.addr, "/v1/chat/completions", H.chat("gpt-4o"))
        self.assertEqual(st, 200, raw)

    def test_client_keys(self):
        m = self.mock()
        keys = [{"name": "team-a", "key": "sk-client-aaaa1111"}]
        p = self.llmpin(config=one_route(m.base_url, keys=keys))
        body = H.chat("gpt-4o")
        st, h, doc, raw = H.post_json(p.addr, "/v1/chat/completions", body)
        self.assertError(st, doc, 401, code="invalid_api_key")
        st, h, doc, raw = H.post_json(p.addr, "/v1/chat/completions", body,
                                      headers={"Authorization": "Bearer sk-wrong-zzzz9999"})
        err = self.assertError(st, doc, 401, code="invalid_api_key")
        self.assertNotIn("sk-wrong-zzzz9999", raw.decode())
        self.assertNotIn("sk-client-aaaa1111", raw.decode())
        st, h, doc, raw = H.post_json(p.addr, "/v1/chat/completions", body,
                                      headers={"Authorization": "Bearer sk-client-aaaa1111"})
        self.assertEqual(st, 200, raw)
        # the client's key is llmpin's, never the upstream's
        hdrs = m.stats()["last_request_headers"]
        self.assertNotIn("sk-client-aaaa1111", json.dumps(hdrs))
        log = p.stderr()
        self.assertNotIn("sk-client-aaaa1111", log)
        self.assertNotIn("sk-wrong-zzzz9999", log)

    def test_body_too_large(self):
        m = self.mock()
        p = self.llmpin(config=one_route(m.base_url, server={"max_body_bytes": 2048}))
        st, h, doc, raw = H.post_json(p.addr, "/v1/chat/completions", H.chat("gpt-4o", "x" * 8192))
        self.assertError(st, doc, 413, code="request_too_large")
        st, h, doc, raw = H.post_json(p.addr, "/v1/chat/completions", H.chat("gpt-4o", "small"))
        self.assertEqual(st, 200, raw)

    def test_upstream_unreachable(self):
        port = H.free_port()
        p = self.llmpin(config=one_route("http://127.0.0.1:%d/v1" % port,
                                         timeouts={"connect": "2s"}))
        st, h, doc, raw = H.post_json(p.addr, "/v1/chat/completions", H.chat("gpt-4o"))
        self.assertError(st, doc, 502, code="upstream_unreachable")

    def test_upstream_unreachable_flags_mode(self):
        port = H.free_port()
        p = self.llmpin(upstream="http://127.0.0.1:%d/v1" % port, extra=["--no-drift"])
        st, h, doc, raw = H.post_json(p.addr, "/v1/chat/completions", H.chat("gpt-4o"))
        self.assertError(st, doc, 502, code="upstream_unreachable")

    def test_upstream_timeout(self):
        m = self.mock()
        p = self.llmpin(config=one_route(m.base_url, timeouts={"first_byte": "500ms"}))
        st, h, doc, raw = H.post_json(p.addr, "/v1/chat/completions", H.chat("mock-timeout"))
        self.assertError(st, doc, 504, code="upstream_timeout")
        # llmpin gave up on the upstream request: the mock sees it cancelled
        self.assertTrue(H.wait_until(lambda: m.stats()["requests_cancelled_by_client"] >= 1, 3.0),
                        "llmpin kept the timed-out upstream request open")

    def test_upstream_errors_pass_through(self):
        m = self.mock()
        p = self.llmpin(config=one_route(m.base_url))
        for model, status, code in (("mock-500", 500, "mock_500"), ("mock-429", 429, "rate_limit_exceeded"),
                                    ("mock-401", 401, "invalid_api_key")):
            st, h, doc, raw = H.post_json(p.addr, "/v1/chat/completions", H.chat(model))
            self.assertError(st, doc, status, code=code)
            self.assertEqual(doc["error"]["message"], {
                "mock-500": "The mock upstream failed (mock-500).",
                "mock-429": "Rate limit reached (mock-429).",
                "mock-401": "Incorrect API key provided (mock-401)."}[model])
            if status == 429:
                self.assertEqual(h.get("retry-after"), "1")

    def test_upstream_garbage_is_an_error(self):
        m = self.mock()
        p = self.llmpin(config=one_route(m.base_url))
        st, h, doc, raw = H.post_json(p.addr, "/v1/chat/completions", H.chat("mock-garbage"))
        self.assertNotEqual(st, 200, "a non-JSON upstream body must not be a 200: %r" % raw[:200])
        self.assertError(st, doc, st)
        self.assertGreaterEqual(st, 500)

    def test_bad_config_fails_to_start(self):
        cfg = one_route("http://127.0.0.1:1/v1")
        cfg["routes"][0]["targets"] = [{"upstream": "no-such-upstream"}]
        with self.assertRaises(AssertionError) as ctx:
            self.llmpin(config=cfg)
        self.assertIn("no-such-upstream", str(ctx.exception))


if __name__ == "__main__":
    H.main()
