"""test_passthrough.py - llmpin as a drop-in: every endpoint answers like the
upstream would, bodies pass through unchanged, and llmpin adds its own
headers (x-request-id, x-llmpin-route, x-llmpin-target), health endpoints
and metrics.

"Unchanged" is checked against a second, fresh mock asked directly: both
mocks number their answers from 1, so the parsed bodies must be equal."""
import json

import harness as H


def route_config(mock, name="main", match="*", extra_routes=(), keys=None, server=None):
    routes = list(extra_routes) + [{"name": name, "match": match, "mode": "remote",
                                    "targets": [{"upstream": "mock"}]}]
    return H.config({"mock": H.upstream(mock.base_url)}, routes, keys=keys, server=server)


class FlagsModeTest(H.ProcTestCase):
    """llmpin serve --upstream URL: every model goes to the upstream."""

    def setUp(self):
        self.m = self.mock("--fingerprint", "fp_pass_1")
        self.direct = self.mock("--fingerprint", "fp_pass_1")
        self.p = self.llmpin(upstream=self.m.base_url, extra=["--no-drift"])

    def same_as_direct(self, path, body):
        st1, h1, doc1, raw1 = H.post_json(self.p.addr, path, body)
        st2, h2, doc2, raw2 = H.post_json(self.direct.addr, path, body)
        self.assertEqual(st1, st2, raw1)
        self.assertIsNotNone(doc1, "llmpin's body is not JSON: %r" % raw1[:200])
        self.assertEqual(doc1, doc2)
        self.assertTrue(h1.get("content-type", "").startswith("application/json"), h1)
        return h1, doc1

    def test_chat_non_stream_unchanged(self):
        h, doc = self.same_as_direct("/v1/chat/completions",
                                     H.chat("gpt-4o-mini", "what is two plus two", temperature=0.5,
                                            seed=7, max_tokens=20))
        self.assertEqual(doc["id"], "chatcmpl-mock-1")
        self.assertEqual(doc["system_fingerprint"], "fp_pass_1")
        self.assertEqual(doc["model"], "gpt-4o-mini")
        self.assertEqual(doc["choices"][0]["message"]["content"], "mock answer to: what is two plus two")
        self.assertEqual(doc["usage"], {"prompt_tokens": 5, "completion_tokens": 8, "total_tokens": 13})
        self.assertTrue(h.get("x-request-id"), "no x-request-id header")
        self.assertTrue(h.get("x-llmpin-route"), "no x-llmpin-route header")
        self.assertTrue(h.get("x-llmpin-target"), "no x-llmpin-target header")

    def test_request_reaches_upstream_intact(self):
        body = H.chat("gpt-4o-mini", "x", temperature=0.25, top_p=0.9, seed=42, max_tokens=5,
                      stop=["\n"], user="u-1", response_format={"type": "text"})
        st, _, doc, raw = H.post_json(self.p.addr, "/v1/chat/completions", body)
        self.assertEqual(st, 200, raw)
        got = json.loads(self.m.stats()["last_request_body"])
        for k, v in body.items():
            self.assertEqual(got.get(k), v, "field %r changed on the way upstream" % k)
        self.assertEqual(self.m.stats()["last_request_path"], "/v1/chat/completions")

    def test_dot_segments_are_resolved_before_routing(self):
        # the path llmpin routes on is the path the upstream sees
        body = H.chat("gpt-4o-mini", "dots")
        st, h, doc, raw = H.post_json(self.p.addr, "/v1/files/%2e%2E/./chat//completions", body)
        self.assertEqual(st, 200, raw)
        self.assertEqual(self.m.stats()["last_request_path"], "/v1/chat/completions")
        self.assertEqual(doc["choices"][0]["message"]["content"], "mock answer to: dots")

    def test_path_cannot_escape_base_url(self):
        before = self.m.stats()["requests"]
        for path in ("/v1/../../admin", "/v1/%2e%2e/%2e%2e/admin", "/v1/files%2f..%2f..%2fadmin",
                     "/v1/files\\..\\admin", "/v1/files/%00"):
            st, h, doc, raw = H.post_json(self.p.addr, path, {"model": "gpt-4o-mini"})
            err = self.assertError(st, doc, 400, code="invalid_path")
            self.assertTrue(err["message"], path)
        self.assertEqual(self.m.stats()["requests"], before, "a refused path reached the upstream")

    def test_served_model_and_missing_fingerprint_pass_through(self):
        for mk in (self.m, self.direct):
            mk.config(served_model="gpt-4o-2024-08-06", fingerprint=None)
        _, doc = self.same_as_direct("/v1/chat/completions", H.chat("gpt-4o"))
        self.assertEqual(doc["model"], "gpt-4o-2024-08-06")
        self.assertIsNone(doc["system_fingerprint"])

    def test_tool_calls_non_stream_unchanged(self):
        _, doc = self.same_as_direct("/v1/chat/completions", H.chat("mock-tools"))
        calls = doc["choices"][0]["message"]["tool_calls"]
        self.assertEqual([c["id"] for c in calls], ["call_mock_0", "call_mock_1"])

    def test_completions_unchanged(self):
        _, doc = self.same_as_direct("/v1/completions", {"model": "gpt-3.5-turbo-instruct",
                                                         "prompt": "say this", "max_tokens": 7})
        self.assertEqual(doc["choices"][0]["text"], "mock answer to: say this")

    def test_embeddings_unchanged(self):
        _, doc = self.same_as_direct("/v1/embeddings", {"model": "text-embedding-3-small",
                                                        "input": ["alpha", "beta"]})
        self.assertEqual(len(doc["data"]), 2)
        self.assertEqual(len(doc["data"][1]["embedding"]), 8)
        _, doc = self.same_as_direct("/v1/embeddings", {"model": "text-embedding-3-small",
                                                        "input": "alpha", "encoding_format": "base64"})
        self.assertIsInstance(doc["data"][0]["embedding"], str)

    def test_models(self):
        st, h, body = H.request(self.p.addr, "GET", "/v1/models")
        self.assertEqual(st, 200, body)
        doc = json.loads(body)
        self.assertEqual(doc["object"], "list")
        ids = [m["id"] for m in doc["data"]]
        self.assertIn("mock-model", ids)
        for m in doc["data"]:
            self.assertEqual(m["object"], "model")
        st, h, body = H.request(self.p.addr, "GET", "/v1/models/mock-model")
        self.assertEqual(st, 200, body)
        self.assertEqual(json.loads(body)["id"], "mock-model")

    def test_unknown_endpoint_responses_passes_through(self):
        body = {"model": "gpt-4o", "input": "tell me", "metadata": {"k": "v"}}
        st, _, doc, raw = H.post_json(self.p.addr, "/v1/responses", body)
        self.assertEqual(st, 200, raw)
        self.assertEqual(doc["object"], "response")
        self.assertEqual(doc["echo"], body)
        self.assertEqual(self.m.stats()["last_request_path"], "/v1/responses")

    def test_health(self):
        st, h, body = H.request(self.p.addr, "GET", "/healthz")
        self.assertEqual(st, 200)
        self.assertEqual(json.loads(body), {"status": "ok"})
        self.assertTrue(h.get("x-request-id"))
        st, h, body = H.request(self.p.addr, "GET", "/readyz")
        self.assertEqual(st, 200, body)

    def test_request_ids_differ(self):
        ids = set()
        for _ in range(3):
            st, h, _ = H.request(self.p.addr, "GET", "/healthz")
            ids.add(h.get("x-request-id"))
        self.assertEqual(len(ids), 3)


class ConfigModeTest(H.ProcTestCase):
    """llmpin serve --config: route and target headers, metrics."""

    def setUp(self):
        self.m = self.mock()
        self.p = self.llmpin(config=route_config(self.m, name="main", match=["gpt-*", "mock-*"]))

    def test_route_headers(self):
        st, h, doc, raw = H.post_json(self.p.addr, "/v1/chat/completions", H.chat("gpt-4o-mini"))
        self.assertEqual(st, 200, raw)
        self.assertEqual(h.get("x-llmpin-route"), "main")
        self.assertIn("mock", h.get("x-llmpin-target", ""))

    def test_model_mapping(self):
        cfg = route_config(self.m, name="mapped", match="alias-model")
        cfg["routes"][0]["targets"] = [{"upstream": "mock", "model": "real-model"}]
        p = self.llmpin(config=cfg)
        st, h, doc, raw = H.post_json(p.addr, "/v1/chat/completions", H.chat("alias-model"))
        self.assertEqual(st, 200, raw)
        self.assertEqual(json.loads(self.m.stats()["last_request_body"])["model"], "real-model")
        self.assertEqual(h.get("x-llmpin-route"), "mapped")

    def test_metrics(self):
        for _ in range(3):
            st, _, _, raw = H.post_json(self.p.addr, "/v1/chat/completions", H.chat("gpt-4o-mini"))
            self.assertEqual(st, 200, raw)
        st, _, _, raw = H.post_json(self.p.addr, "/v1/chat/completions", H.chat("mock-500"))
        self.assertEqual(st, 500, raw)
        st, h, body = H.request(self.p.addr, "GET", "/metrics")
        self.assertEqual(st, 200)
        self.assertTrue(h.get("content-type", "").startswith("text/plain"), h)
        text = body.decode()
        reqs = H.metric_samples(text, "llmpin_requests_total")
        self.assertTrue(reqs, "no llmpin_requests_total in:\n" + text[:2000])
        for labels, _ in reqs:
            for k in ("route", "target", "status"):
                self.assertIn(k, labels, "llmpin_requests_total lacks label %r" % k)
        ok = sum(v for lb, v in reqs if lb["route"] == "main" and lb["status"] == "200")
        self.assertEqual(ok, 3, reqs)
        bad = sum(v for lb, v in reqs if lb["route"] == "main" and lb["status"] == "500")
        self.assertEqual(bad, 1, reqs)
        for name in ("llmpin_request_duration_seconds_bucket", "llmpin_ttfb_seconds_bucket",
                     "llmpin_request_duration_seconds_count", "llmpin_inflight_requests"):
            self.assertTrue(H.metric_samples(text, name), "metric %s missing" % name)
        count = sum(v for _, v in H.metric_samples(text, "llmpin_request_duration_seconds_count"))
        self.assertGreaterEqual(count, 4)
        errs = H.metric_samples(text, "llmpin_upstream_errors_total")
        self.assertGreaterEqual(sum(v for _, v in errs), 1, "the upstream 500 was not counted")
        # nothing is in flight but (perhaps) this /metrics request itself
        inflight = H.metric_samples(text, "llmpin_inflight_requests")
        self.assertLessEqual(sum(v for _, v in inflight), 1)


if __name__ == "__main__":
    H.main()
