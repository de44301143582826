"""test_pins.py - version pins and version drift through the real binary.

The mock upstream reports system_fingerprint "fp_a1"; the route pins
"fp_a*". When the mock starts reporting "fp_b1" (POST /_mock/config), the
route's on_drift decides: record (served, drift event counted), fallback
(this request and the next ones go to the pinned local model with
x-llmpin-fallback: drift) or reject (409 model_version_changed).
Independently of pins, with drift recording on, the first response that
carries a never-seen fingerprint raises a "version" drift event on that
very response (metric, /admin/drift, the db)."""
from e2e_common import H, E2ETestCase, doc, up, stories, wait_rows, metric, main

ANSWER = "mock answer to: hello there"


class PinTest(E2ETestCase):
    def start(self, on_drift, pin=None):
        self.m = self.mock("--fingerprint", "fp_a1")
        cfg = doc({"a": up(self.m.base_url)},
                  [{"name": "r", "match": "chat", "mode": "fallback",
                    "targets": [{"upstream": "a", "pin": pin or {"system_fingerprint": "fp_a*"}},
                                "local:stories"],
                    "on_drift": on_drift, "retry": {"max_attempts": 1}}],
                  local={"stories": stories()}, drift={"db_path": self.db})
        self.p = self.llmpin(config=cfg)
        d = self.assertServed(self.chat(self.p, "chat"), "a", ANSWER)
        self.assertEqual(d["system_fingerprint"], "fp_a1")
        t = self.target_state(self.p, "a")
        self.assertFalse(t["drifted"], t)
        self.assertEqual(t["pin_fingerprint"], "fp_a*")
        self.m.config(fingerprint="fp_b1")
        return self.p

    def pin_events(self):
        return metric(self.p.metrics(), "llmpin_drift_events_total", target="a", kind="pin")

    def test_on_drift_record(self):
        p = self.start("record")
        self.assertEqual(self.pin_events(), 0)
        d = self.assertServed(self.chat(p, "chat"), "a", ANSWER)
        self.assertEqual(d["system_fingerprint"], "fp_b1")
        self.assertEqual(self.pin_events(), 1)
        t = self.target_state(p, "a")
        self.assertTrue(t["drifted"], t)
        self.assertIn("fp_b1", t["drift_reason"])
        self.assertIn("fp_a*", t["drift_reason"])
        # record keeps serving from A
        self.assertServed(self.chat(p, "chat"), "a", ANSWER)
        self.assertEqual(self.m.stats()["requests"], 3)

    def test_on_drift_fallback(self):
        p = self.start("fallback")
        st, h, d, raw = self.chat(p, "chat", max_tokens=5)
        self.assertServed((st, h, d, raw), "local:stories", fallback="drift")
        self.assertTrue(d["system_fingerprint"].startswith("llmpin-"), d)
        self.assertEqual(self.pin_events(), 1)
        self.assertEqual(self.m.stats()["requests"], 2)
        # later requests skip the drifted target without asking it
        for i in range(2):
            self.assertServed(self.chat(p, "chat", max_tokens=5), "local:stories", fallback="drift")
        self.assertEqual(self.m.stats()["requests"], 2)
        t = self.target_state(p, "a")
        self.assertTrue(t["drifted"], t)
        self.assertIn("fp_b1", t["drift_reason"])

    def test_on_drift_reject(self):
        p = self.start("reject")
        st, h, d, raw = self.chat(p, "chat")
        err = self.assertError(st, d, 409, code="model_version_changed")
        self.assertIn("fp_b1", err["message"])
        self.assertEqual(h.get("x-llmpin-target"), "a")
        self.assertEqual(self.pin_events(), 1)

    def test_served_model_pin(self):
        self.m = self.mock("--fingerprint", "fp_a1", "--served-model", "gpt-4o-2024-08-06")
        cfg = doc({"a": up(self.m.base_url)},
                  [{"name": "r", "match": "gpt-4o", "on_drift": "reject",
                    "targets": [{"upstream": "a", "model": "gpt-4o-2024-08-06",
                                 "pin": {"model": "gpt-4o-2024-08-06"}}]}],
                  drift={"db_path": self.db})
        self.p = p = self.llmpin(config=cfg)
        d = self.assertServed(self.chat(p, "gpt-4o"), "a:gpt-4o-2024-08-06", ANSWER)
        self.assertEqual(d["model"], "gpt-4o-2024-08-06")
        self.m.config(served_model="gpt-4o-2024-11-20")
        st, h, d, raw = self.chat(p, "gpt-4o")
        err = self.assertError(st, d, 409, code="model_version_changed")
        self.assertIn("gpt-4o-2024-11-20", err["message"])


class VersionDriftTest(E2ETestCase):
    def test_first_changed_response_raises_the_event(self):
        m = self.mock()  # fingerprint fp_mock_1
        cfg = doc({"a": up(m.base_url)}, [{"name": "r", "match": "*", "targets": ["a"]}])
        p = self.llmpin(config=cfg, extra=["--drift-db", self.db])

        def version_events():
            return metric(p.metrics(), "llmpin_drift_events_total", target="a", kind="version")

        for i in range(3):
            d = self.assertServed(self.chat(p, "gpt-x"), "a", ANSWER)
            self.assertEqual(d["system_fingerprint"], "fp_mock_1")
        self.assertEqual(version_events(), 0)
        st, drift = self.admin(p, "/admin/drift")
        self.assertEqual(st, 200, drift)
        self.assertEqual(drift["recent_events"], [])
        self.assertEqual(drift["db_path"], self.db)
        # the recorder's hand-over counter is exported (0 on an idle machine)
        self.assertEqual(drift["stats"]["writer_handovers"], 0)
        self.assertEqual([v for _, v in H.metric_samples(p.metrics(), "llmpin_drift_writer_handovers_total")],
                         [0.0])

        m.config(fingerprint="fp_mock_2")
        d = self.assertServed(self.chat(p, "gpt-x"), "a", ANSWER)
        self.assertEqual(d["system_fingerprint"], "fp_mock_2")
        self.assertEqual(version_events(), 1, "no version event on the first changed response")
        st, drift = self.admin(p, "/admin/drift")
        evs = drift["recent_events"]
        self.assertEqual(len(evs), 1, evs)
        ev = evs[0]
        self.assertEqual((ev["kind"], ev["target"], ev["subject"]), ("version", "a", "gpt-x"))
        self.assertIn("fp_mock_2", ev["new"])
        self.assertIn("fp_mock_1", ev["old"])

        # the new value is known now; the old one coming back is not news
        self.chat(p, "gpt-x")
        m.config(fingerprint="fp_mock_1")
        self.chat(p, "gpt-x")
        self.assertEqual(version_events(), 1)

        rows = wait_rows(self.db, "SELECT kind, target, subject, new_value FROM drift_events")
        self.assertEqual([(r["kind"], r["target"], r["subject"]) for r in rows], [("version", "a", "gpt-x")])
        self.assertIn("fp_mock_2", rows[0]["new_value"])
        recs = wait_rows(self.db, "SELECT system_fingerprint FROM drift_records ORDER BY id", n=6)
        self.assertEqual([r["system_fingerprint"] for r in recs],
                         ["fp_mock_1"] * 3 + ["fp_mock_2"] * 2 + ["fp_mock_1"])


if __name__ == "__main__":
    main()
