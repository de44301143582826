"""test_connections.py - connection handling and process life: client
keep-alive, upstream connection reuse, large bodies, the upstream API key
(sent by llmpin, never the client's), the JSON access log (and that no key
ever reaches it), and SIGTERM draining in-flight requests."""
import asyncio
import json
import signal
import threading
import time

import harness as H

UPSTREAM_KEY = "sk-upstream-test-5f3a9c"


class KeepAliveTest(H.ProcTestCase):
    def setUp(self):
        self.m = self.mock()
        self.p = self.llmpin(upstream=self.m.base_url, extra=["--no-drift"])

    def test_fifty_sequential_requests_on_one_connection(self):
        self.m.reset()  # this control call's connection is counted before the reset
        conn = H.connect(self.p.addr)
        self.addCleanup(conn.close)
        for i in range(50):
            st, h, doc, raw = H.post_json(self.p.addr, "/v1/chat/completions",
                                          H.chat("gpt-4o-mini", "q%d" % i), conn=conn)
            self.assertEqual(st, 200, "request %d: %r" % (i, raw[:200]))
            self.assertEqual(doc["choices"][0]["message"]["content"], "mock answer to: q%d" % i)
            self.assertNotEqual(h.get("connection", "").lower(), "close",
                                "llmpin closed the keep-alive connection at request %d" % i)
        st = self.m.stats()  # its own connection adds one
        self.assertEqual(st["requests"], 50)
        upstream_conns = st["connections_accepted"] - 1
        self.assertLess(upstream_conns, 5, "llmpin opened %d upstream connections for 50 "
                        "sequential requests (no reuse)" % upstream_conns)

    def test_one_mib_body_forwarded_intact(self):
        big = "".join("word%d " % (i % 1000) for i in range(150000))[: 1 << 20]
        self.assertEqual(len(big), 1 << 20)
        st, h, doc, raw = H.post_json(self.p.addr, "/v1/chat/completions", H.chat("gpt-4o-mini", big))
        self.assertEqual(st, 200, raw[:300])
        self.assertEqual(doc["choices"][0]["message"]["content"], "mock answer to: " + big)
        sent = json.loads(self.m.stats()["last_request_body"])
        self.assertEqual(sent["messages"][0]["content"], big)

    def test_http10_and_connection_close(self):
        st, h, body = H.request(self.p.addr, "POST", "/v1/chat/completions", H.chat("gpt-4o"),
                                headers={"Connection": "close"})
        self.assertEqual(st, 200, body)
        self.assertEqual(json.loads(body)["choices"][0]["message"]["content"],
                         "mock answer to: hello there")


class UpstreamKeyTest(H.ProcTestCase):
    def test_api_key_env(self):
        m = self.mock("--require-key", UPSTREAM_KEY)
        p = self.llmpin(upstream=m.base_url, extra=["--api-key-env", "LLMPIN_TEST_UPSTREAM_KEY", "--no-drift"],
                        env={"LLMPIN_TEST_UPSTREAM_KEY": UPSTREAM_KEY})
        st, h, doc, raw = H.post_json(p.addr, "/v1/chat/completions", H.chat("gpt-4o-mini"),
                                      headers={"Authorization": "Bearer sk-client-own-key-777"})
        self.assertEqual(st, 200, raw)
        hdrs = m.stats()["last_request_headers"]
        self.assertEqual(hdrs.get("authorization"), "Bearer " + UPSTREAM_KEY)
        self.assertNotIn("sk-client-own-key-777", json.dumps(hdrs))
        # without a key of its own, the mock refuses and llmpin passes the 401 on
        m2 = self.mock("--require-key", UPSTREAM_KEY)
        p2 = self.llmpin(upstream=m2.base_url, extra=["--no-drift"])
        st, h, doc, raw = H.post_json(p2.addr, "/v1/chat/completions", H.chat("gpt-4o-mini"))
        self.assertError(st, doc, 401, code="invalid_api_key")
        for proc in (p, p2):
            self.assertNotIn(UPSTREAM_KEY, proc.stderr())

    def test_api_key_env_in_config(self):
        m = self.mock("--require-key", UPSTREAM_KEY)
        cfg = H.config({"mock": H.upstream(m.base_url, api_key_env="LLMPIN_TEST_UPSTREAM_KEY")},
                       [{"name": "main", "match": "*", "targets": [{"upstream": "mock"}]}])
        p = self.llmpin(config=cfg, env={"LLMPIN_TEST_UPSTREAM_KEY": UPSTREAM_KEY})
        st, h, doc, raw = H.post_json(p.addr, "/v1/chat/completions", H.chat("gpt-4o-mini"))
        self.assertEqual(st, 200, raw)
        self.assertNotIn(UPSTREAM_KEY, p.stderr())


class ManyStreamsTest(H.ProcTestCase):
    """More concurrent streams than libcurl's default per-host cap (256),
    with the upstream's max_connections set above them: all must flow."""

    N = 300

    def test_streams_above_256_with_max_connections(self):
        m = self.mock()
        cfg = H.config({"mock": dict(H.upstream(m.base_url), max_connections=self.N + 100)},
                       [{"name": "main", "match": "*", "targets": [{"upstream": "mock"}]}])
        p = self.llmpin(config=cfg)
        body = json.dumps(H.chat("mock-forever", stream=True)).encode()

        async def one(writers):
            r, w = await asyncio.open_connection(p.host, p.port)
            writers.append(w)
            w.write(b"POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                    b"Content-Length: %d\r\n\r\n" % len(body) + body)
            await w.drain()
            while True:
                line = await r.readline()
                if not line:
                    return False
                if line.startswith(b"data:"):
                    return True

        async def run():
            writers = []
            tasks = [asyncio.ensure_future(one(writers)) for _ in range(self.N)]
            done, pending = await asyncio.wait(tasks, timeout=30)
            ok = sum(1 for t in done if not t.exception() and t.result())
            for t in pending:
                t.cancel()
            for w in writers:
                w.close()
            await asyncio.gather(*tasks, return_exceptions=True)
            return ok

        ok = asyncio.run(run())
        self.assertEqual(ok, self.N, "only %d of %d concurrent streams got their first event "
                         "(upstreams.mock.max_connections = %d)" % (ok, self.N, self.N + 100))
        self.assertTrue(H.wait_until(lambda: m.stats()["streams_cancelled_by_client"] == self.N, 10.0),
                        "upstream streams left open after the clients left: %r" % m.stats())


class AzureTest(H.ProcTestCase):
    def test_azure_deployment_url_api_version_and_api_key(self):
        # base_url as docs/configuration.md and config/examples/multi-provider.json
        # write it: https://RESOURCE.openai.azure.com/openai
        m = self.mock("--require-key", UPSTREAM_KEY)
        cfg = H.config({"az": {"kind": "azure", "base_url": "http://%s/openai" % m.addr,
                               "api_key_env": "LLMPIN_TEST_UPSTREAM_KEY", "api_version": "2024-10-21"}},
                       [{"name": "az", "match": "gpt-*",
                         "targets": [{"upstream": "az", "model": "my-gpt4o-deployment"}]}])
        p = self.llmpin(config=cfg, env={"LLMPIN_TEST_UPSTREAM_KEY": UPSTREAM_KEY})
        st, h, doc, raw = H.post_json(p.addr, "/v1/chat/completions", H.chat("gpt-4o", "azure hi"),
                                      headers={"Authorization": "Bearer sk-client-own-key-777"})
        self.assertEqual(st, 200, raw)
        self.assertEqual(doc["choices"][0]["message"]["content"], "mock answer to: azure hi")
        st = m.stats()
        self.assertEqual(st["last_request_path"], "/openai/deployments/my-gpt4o-deployment/chat/completions")
        self.assertEqual(st["last_request_query"], "api-version=2024-10-21")
        self.assertEqual(st["last_request_headers"].get("api-key"), UPSTREAM_KEY)
        self.assertNotIn("sk-client-own-key-777", json.dumps(st["last_request_headers"]))


class AccessLogTest(H.ProcTestCase):
    def test_one_json_line_per_request(self):
        m = self.mock("--require-key", UPSTREAM_KEY)
        keys = [{"name": "team-log", "key": "sk-client-log-4242"}]
        cfg = H.config({"mock": H.upstream(m.base_url, api_key_env="LLMPIN_TEST_UPSTREAM_KEY")},
                       [{"name": "logged", "match": ["gpt-*", "mock-*"], "targets": [{"upstream": "mock"}]}],
                       keys=keys)
        p = self.llmpin(config=cfg, env={"LLMPIN_TEST_UPSTREAM_KEY": UPSTREAM_KEY})
        auth = {"Authorization": "Bearer sk-client-log-4242"}
        st, _, _, raw = H.post_json(p.addr, "/v1/chat/completions", H.chat("gpt-4o-mini"), headers=auth)
        self.assertEqual(st, 200, raw)
        st, _, _, raw = H.post_json(p.addr, "/v1/chat/completions", H.chat("unrouted-model"), headers=auth)
        self.assertEqual(st, 404, raw)
        st, _, _, raw = H.post_json(p.addr, "/v1/chat/completions", H.chat("gpt-4o-mini"),
                                    headers={"Authorization": "Bearer sk-bad-key-31337"})
        self.assertEqual(st, 401, raw)
        s = H.SSE(p.addr, "/v1/chat/completions", H.chat("gpt-4o-mini", stream=True), headers=auth)
        s.read_all()
        s.close()

        def chat_lines():
            got = [l for l in p.log_lines() if l["path"] == "/v1/chat/completions"]
            return got if len(got) >= 4 else None

        H.wait_until(chat_lines, 3.0)
        lines = [l for l in p.log_lines() if l["path"] == "/v1/chat/completions"]
        self.assertEqual([l["status"] for l in lines], [200, 404, 401, 200],
                         "one access-log line per request, in order (the 401 too); stderr was:\n" +
                         p.stderr()[-3000:])
        for l in lines:
            for k in ("method", "path", "status", "latency_ms"):
                self.assertIn(k, l, "access-log line lacks %r: %r" % (k, l))
            self.assertEqual(l["method"], "POST")
            self.assertIsInstance(l["latency_ms"], (int, float))
            self.assertGreaterEqual(l["latency_ms"], 0)
        for l in (lines[0], lines[3]):
            for k in ("model", "route", "target"):
                self.assertIn(k, l, "access-log line lacks %r: %r" % (k, l))
            self.assertEqual(l["model"], "gpt-4o-mini")
            self.assertEqual(l["route"], "logged")
            self.assertIn("mock", l["target"])
        self.assertEqual(lines[1].get("model"), "unrouted-model")
        log = p.stderr()
        for secret in (UPSTREAM_KEY, "sk-client-log-4242", "sk-bad-key-31337"):
            self.assertNotIn(secret, log, "a key reached the log")


class ShutdownTest(H.ProcTestCase):
    def test_sigterm_drains_in_flight(self):
        m = self.mock()
        p = self.llmpin(upstream=m.base_url, extra=["--no-drift"])
        result = {}

        def slow():
            try:
                result["r"] = H.post_json(p.addr, "/v1/chat/completions",
                                          H.chat("mock-slow-first-byte", "drain me"))
            except Exception as e:  # noqa: BLE001 - reported below
                result["e"] = e

        t = threading.Thread(target=slow)
        t.start()
        # wait until the request reached the mock, then ask llmpin to stop
        self.assertTrue(H.wait_until(lambda: m.stats()["requests"] >= 1, 10.0))
        p.p.send_signal(signal.SIGTERM)
        t.join(20)
        self.assertNotIn("e", result, "in-flight request failed during drain: %r" % result.get("e"))
        st, h, doc, raw = result["r"]
        self.assertEqual(st, 200, raw)
        self.assertEqual(doc["choices"][0]["message"]["content"], "mock answer to: drain me")
        try:
            rc = p.p.wait(10)
        except Exception:  # noqa: BLE001
            rc = None
        self.assertEqual(rc, 0, "llmpin did not exit 0 after SIGTERM:\n" + p.stderr()[-2000:])

    def test_sigterm_lets_a_stream_finish(self):
        m = self.mock()
        p = self.llmpin(upstream=m.base_url, extra=["--no-drift"])
        s = H.SSE(p.addr, "/v1/chat/completions", H.chat("mock-slowstream", "a b c d e", stream=True))
        self.addCleanup(s.close)
        self.assertIsNotNone(s.next_event())
        p.p.send_signal(signal.SIGTERM)
        got = s.read_all()  # every event, the first one included
        self.assertIsNone(s.error, "stream broken by the drain: %r" % s.error)
        self.assertEqual(got[-1], "[DONE]")
        content = "".join(c["choices"][0]["delta"].get("content") or ""
                          for c in H.json_events(got) if c["choices"])
        self.assertEqual(content, "mock answer to: a b c d e")
        try:
            rc = p.p.wait(10)
        except Exception:  # noqa: BLE001
            rc = None
        self.assertEqual(rc, 0, p.stderr()[-2000:])

    def test_sigterm_idle_exits_zero(self):
        m = self.mock()
        p = self.llmpin(upstream=m.base_url, extra=["--no-drift"])
        st, _, _, _ = H.post_json(p.addr, "/v1/chat/completions", H.chat("gpt-4o"))
        self.assertEqual(st, 200)
        t0 = time.monotonic()
        self.assertEqual(p.terminate(10.0), 0, p.stderr()[-2000:])
        self.assertLess(time.monotonic() - t0, 10.0)


if __name__ == "__main__":
    H.main()
