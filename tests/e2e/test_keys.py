"""test_keys.py - per-key rate limits and the X-Llmpin-Route override.

A key with rpm 3 gets three answers and then 429 rate_limit_exceeded with
retry-after and OpenAI's x-ratelimit-* headers, without the request reaching
the upstream; other keys are not affected. A key with route_override may
pick a route by name with X-Llmpin-Route; one without gets 403."""
import json
import subprocess
import unittest

from e2e_common import H, E2ETestCase, doc, up, bearer, main

ANSWER = "mock answer to: hello there"


class KeysTest(E2ETestCase):
    def setUp(self):
        super().setUp()
        self.a, self.b = self.mock(), self.mock()
        keys = [{"name": "slow", "key": "key-slow", "rpm": 3},
                {"name": "free", "key": "key-free"},
                {"name": "ops", "key": "key-ops", "route_override": True, "admin": True}]
        cfg = doc({"a": up(self.a.base_url), "b": up(self.b.base_url)},
                  [{"name": "main", "match": "chat", "targets": ["a"]},
                   {"name": "other", "match": "other-model", "targets": ["b"]}],
                  keys=keys, drift={"db_path": self.db})
        self.p = self.llmpin(config=cfg)

    def test_rpm_3(self):
        p = self.p
        for i in range(3):
            st, h, d, raw = self.chat(p, "chat", headers=bearer("key-slow"))
            self.assertEqual(st, 200, raw)
        st, h, d, raw = self.chat(p, "chat", headers=bearer("key-slow"))
        err = self.assertError(st, d, 429, code="rate_limit_exceeded")
        self.assertIn("slow", err["message"])
        self.assertNotIn("key-slow", raw.decode())
        ra = int(h["retry-after"])
        self.assertGreaterEqual(ra, 1)
        self.assertLessEqual(ra, 20)  # one request refills in 20 s
        self.assertEqual(h.get("x-ratelimit-limit-requests"), "3")
        self.assertEqual(h.get("x-ratelimit-remaining-requests"), "0")
        self.assertTrue(h.get("x-ratelimit-reset-requests"), h)
        self.assertEqual(self.a.stats()["requests"], 3, "a limited request reached the upstream")
        # another key is not limited
        for i in range(5):
            st, h, d, raw = self.chat(p, "chat", headers=bearer("key-free"))
            self.assertEqual(st, 200, raw)
            self.assertIsNone(h.get("x-ratelimit-limit-requests"))

    def test_successful_answers_carry_ratelimit_headers(self):
        for i in range(3):
            st, h, d, raw = self.chat(self.p, "chat", headers=bearer("key-slow"))
            self.assertEqual(st, 200, raw)
            self.assertEqual(h.get("x-ratelimit-limit-requests"), "3", h)
            self.assertEqual(h.get("x-ratelimit-remaining-requests"), str(2 - i), h)

    def test_route_override(self):
        p = self.p
        hdr = dict(bearer("key-ops"), **{"X-Llmpin-Route": "other"})
        st, h, d, raw = self.chat(p, "chat", headers=hdr)
        self.assertEqual(st, 200, raw)
        self.assertEqual(h.get("x-llmpin-route"), "other")
        self.assertEqual(h.get("x-llmpin-target"), "b")
        self.assertEqual(self.b.stats()["requests"], 1)

        hdr = dict(bearer("key-free"), **{"X-Llmpin-Route": "other"})
        st, h, d, raw = self.chat(p, "chat", headers=hdr)
        self.assertError(st, d, 403, code="route_override_forbidden")
        self.assertEqual(self.b.stats()["requests"], 1)

        hdr = dict(bearer("key-ops"), **{"X-Llmpin-Route": "nope"})
        st, h, d, raw = self.chat(p, "chat", headers=hdr)
        self.assertError(st, d, 404, code="route_not_found")

        # no header: the model decides
        st, h, d, raw = self.chat(p, "chat", headers=bearer("key-ops"))
        self.assertEqual(h.get("x-llmpin-route"), "main")


class AnonymousClientsTest(E2ETestCase):
    """server.allow_unauthenticated beside keys: clients without a key are
    served, but the admin endpoints and X-Llmpin-Route stay behind keys."""

    def setUp(self):
        super().setUp()
        self.a, self.b = self.mock(), self.mock()
        self.cfg = doc({"a": up(self.a.base_url), "b": up(self.b.base_url)},
                       [{"name": "main", "match": "chat", "targets": ["a"]},
                        {"name": "other", "match": "other-model", "targets": ["b"]}],
                       keys=[{"name": "ops", "key": "key-ops", "route_override": True, "admin": True}],
                       server={"allow_unauthenticated": True}, drift={"db_path": self.db})

    def test_anonymous_is_served_but_not_trusted(self):
        p = self.llmpin(config=self.cfg)
        st, h, d, raw = self.chat(p, "chat")
        self.assertEqual(st, 200, raw)
        self.assertEqual(d["choices"][0]["message"]["content"], ANSWER)
        # a key that is wrong is still refused, whatever the anonymous rule
        st, h, d, raw = self.chat(p, "chat", headers=bearer("key-wrong"))
        self.assertError(st, d, 401, code="invalid_api_key")
        st, h, d, raw = self.chat(p, "chat", headers={"Authorization": "Basic b3BzOmtleQ=="})
        self.assertError(st, d, 401, code="invalid_api_key")
        # no route override, no admin endpoints without a key
        st, h, d, raw = self.chat(p, "chat", headers={"X-Llmpin-Route": "other"})
        self.assertError(st, d, 403, code="route_override_forbidden")
        self.assertEqual(self.b.stats()["requests"], 0)
        for method, path in (("GET", "/admin/targets"), ("POST", "/admin/reload")):
            st, body = self.admin(p, path, method=method)
            self.assertEqual(st, 403, body)
            self.assertEqual(body["error"]["code"], "admin_required", body)
        st, body = self.admin(p, "/admin/targets", key="key-ops")
        self.assertEqual(st, 200, body)
        st, h, d, raw = self.chat(p, "chat", headers=dict(bearer("key-ops"), **{"X-Llmpin-Route": "other"}))
        self.assertEqual(st, 200, raw)
        self.assertEqual(h["x-llmpin-route"], "other")

    def test_a_reachable_address_needs_an_admin_key(self):
        cfg = dict(self.cfg, keys=[{"name": "app", "key": "key-app"}],
                   server=dict(self.cfg["server"], listen="0.0.0.0:0"))
        path = self.path("open.json")
        with open(path, "w") as f:
            json.dump(cfg, f)
        r = subprocess.run([H.ARGS.llmpin, "check", "--config", path], capture_output=True, text=True, timeout=60)
        self.assertNotEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("server.allow_unauthenticated: on 0.0.0.0 it needs a key with \"admin\": true", r.stderr)

    def test_no_keys_on_loopback_is_open_and_says_so(self):
        cfg = dict(self.cfg)
        del cfg["keys"]
        p = self.llmpin(config=cfg)
        st, body = self.admin(p, "/admin/targets")
        self.assertEqual(st, 200, body)
        self.assertIn("no client keys: any process that can connect to 127.0.0.1:%d may call /admin/reload" % p.port,
                      p.stderr())


if __name__ == "__main__":
    main()
