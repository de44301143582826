"""test_breaker.py - a circuit breaker through the real binary.

Upstream A answers too late (the mock's delay_ms beyond A's first-byte
timeout), so three failures in a row open A's circuit: /admin/targets and
/metrics show it open, and requests skip A with x-llmpin-fallback:
circuit_open without reaching it. After the cooldown one trial request goes
to A: if A still fails the circuit opens again; once A answers in time the
trial closes it and traffic returns to A."""
import time

from e2e_common import H, E2ETestCase, doc, up, main

ANSWER = "mock answer to: hello there"
COOLDOWN = 1.0


class BreakerTest(E2ETestCase):
    def test_open_skip_half_open_close(self):
        a, b = self.mock(), self.mock()
        cfg = doc({"a": up(a.base_url, first_byte="300ms"), "b": up(b.base_url)},
                  [{"name": "r", "match": "chat", "mode": "fallback", "targets": ["a", "b"],
                    "retry": {"max_attempts": 1}}],
                  breaker={"consecutive_failures": 3, "cooldown": "%dms" % (COOLDOWN * 1000),
                           "half_open_requests": 1},
                  drift={"db_path": self.db})
        p = self.llmpin(config=cfg)

        def state():
            return self.target_state(p, "a")["state"]

        def gauge():
            return H.metric_samples(p.metrics(), "llmpin_circuit_state")

        self.assertServed(self.chat(p, "chat"), "a", ANSWER)
        self.assertEqual(state(), "closed")
        self.assertIn(({"target": "a"}, 0.0), gauge())

        a.config(delay_ms=3000)
        for i in range(3):
            self.assertServed(self.chat(p, "chat"), "b", ANSWER, fallback="timeout")
        t = self.target_state(p, "a")
        self.assertEqual(t["state"], "open", t)
        self.assertEqual(t["times_opened"], 1, t)
        self.assertEqual(t["consecutive_failures"], 3, t)
        self.assertIn(({"target": "a"}, 1.0), gauge())
        self.assertIn(({"target": "b"}, 0.0), gauge())

        seen = a.stats()["requests"]
        self.assertEqual(seen, 4)
        for i in range(3):
            self.assertServed(self.chat(p, "chat"), "b", ANSWER, fallback="circuit_open")
        self.assertEqual(a.stats()["requests"], seen, "an open circuit still sent requests to A")

        # cooldown over, A still failing: the trial fails and reopens it
        time.sleep(COOLDOWN + 0.2)
        self.assertEqual(state(), "half_open")
        self.assertIn(({"target": "a"}, 2.0), gauge())
        self.assertServed(self.chat(p, "chat"), "b", ANSWER, fallback="timeout")
        t = self.target_state(p, "a")
        self.assertEqual(t["state"], "open", t)
        self.assertEqual(t["times_opened"], 2, t)
        self.assertServed(self.chat(p, "chat"), "b", ANSWER, fallback="circuit_open")

        # A recovers: after the cooldown the trial succeeds and closes it
        a.config(delay_ms=0)
        time.sleep(COOLDOWN + 0.2)
        self.assertServed(self.chat(p, "chat"), "a", ANSWER)
        t = self.target_state(p, "a")
        self.assertEqual(t["state"], "closed", t)
        self.assertEqual(t["consecutive_failures"], 0, t)
        self.assertServed(self.chat(p, "chat"), "a", ANSWER)
        self.assertIn(({"target": "a"}, 0.0), gauge())

    def test_without_circuit_open_in_fallback_on_fails_fast(self):
        # docs/policy.md: without circuit_open in fallback_on an open circuit
        # stops the chain; as the first target the request fails with 503
        a, b = self.mock(), self.mock()
        cfg = doc({"a": up(a.base_url), "b": up(b.base_url)},
                  [{"name": "r", "match": "chat", "mode": "fallback",
                    "targets": [{"upstream": "a", "model": "mock-500"}, "b"],
                    "fallback_on": ["5xx"], "retry": {"max_attempts": 1}}],
                  breaker={"consecutive_failures": 2, "cooldown": "30s"},
                  drift={"db_path": self.db})
        p = self.llmpin(config=cfg)
        for i in range(2):
            self.assertServed(self.chat(p, "chat"), "b", ANSWER, fallback="5xx")
        self.assertEqual(self.target_state(p, "a:mock-500")["state"], "open")
        st, h, d, raw = self.chat(p, "chat")
        err = self.assertError(st, d, 503, code="no_target_available")
        self.assertIn("circuit open", err["message"])
        self.assertEqual(a.stats()["requests"], 2)
        self.assertEqual(b.stats()["requests"], 2)


if __name__ == "__main__":
    main()
