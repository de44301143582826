"""test_keys.py - per-key rate limits and the X-Llmpin-Route override.

A key with rpm 3 gets three answers and then 429 rate_limit_exceeded with
retry-after and OpenAI's x-ratelimit-* headers, without the request reaching
the upstream; other keys are not affected. A key with route_override may
pick a route by name with X-Llmpin-Route; one without gets 403."""
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


if __name__ == "__main__":
    main()
