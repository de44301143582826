"""test_probes.py - scheduled drift probes through the real binary.

drift.probes names a small JSONL suite written by the test and the model
"mock-model" with a one-second interval. Within a few seconds the drift db
holds graded probe records: the mock answers prime questions correctly and
echoes other prompts, so each probe's expected grade is known. A broken
suite file is reported on stderr and does not stop the server."""
import json
import unittest

from e2e_common import H, E2ETestCase, doc, up, db_rows, wait_rows, main

SUITE = [
    {"id": "prime-7", "messages": [{"role": "user", "content":
        "Is 7 a prime number? Think step by step and then answer \"[Yes]\" or \"[No]\"."}],
     "expect": {"yesno": "yes"}, "want": 1},
    {"id": "prime-9", "messages": [{"role": "user", "content":
        "Is 9 a prime number? Think step by step and then answer \"[Yes]\" or \"[No]\"."}],
     "expect": {"yesno": "no"}, "want": 1},
    {"id": "echo", "messages": [{"role": "user", "content": "ping"}],
     "params": {"temperature": 0}, "expect": {"exact": "mock answer to: ping"}, "want": 1},
    {"id": "wrong", "messages": [{"role": "user", "content": "what is 2+2?"}],
     "expect": {"int": "4"}, "want": 0},
]


class ProbeTest(E2ETestCase):
    def test_scheduled_probes_are_graded(self):
        path = self.path("suite.jsonl")
        with open(path, "w") as f:
            f.write("# e2e probe suite\n\n")
            for p in SUITE:
                f.write(json.dumps({k: v for k, v in p.items() if k != "want"}) + "\n")
        m = self.mock()
        # the route's name is also the model it matches: a probe target names
        # a route (config validation) and is sent as the model (proxy)
        cfg = doc({"mock": up(m.base_url)},
                  [{"name": "mock-model", "match": "mock-model", "targets": ["mock"]}],
                  drift={"db_path": self.db, "commit_interval": "50ms",
                         "probes": [{"name": "mini", "path": path, "targets": ["mock-model"],
                                     "interval": 1}]})
        p = self.llmpin(config=cfg)
        # the first run starts at once, the next ones every second
        rows = wait_rows(self.db, "SELECT probe_id, probe_correct, probe_suite, target, route,"
                                  " requested_model, status, probe_answer FROM drift_records"
                                  " WHERE is_probe = 1 ORDER BY id", n=2 * len(SUITE), timeout=15)
        self.assertGreaterEqual(len(rows), 2 * len(SUITE), rows)
        want = {s["id"]: s["want"] for s in SUITE}
        for r in rows:
            self.assertEqual((r["probe_suite"], r["target"], r["route"], r["requested_model"], r["status"]),
                             ("mini", "mock", "mock-model", "mock-model", 200), r)
            self.assertEqual(r["probe_correct"], want[r["probe_id"]], r)
        answers = {r["probe_id"]: r["probe_answer"] for r in rows}
        self.assertEqual(answers["prime-7"], "yes")
        self.assertEqual(answers["prime-9"], "no")
        self.assertEqual(answers["wrong"], "2")  # last integer of "mock answer to: what is 2+2?"
        self.assertEqual(set(r["probe_id"] for r in rows), set(want))
        # probes are not client traffic
        self.assertEqual(db_rows(self.db, "SELECT COUNT(*) AS n FROM drift_records WHERE is_probe = 0"),
                         [{"n": 0}])
        st, drift = self.admin(p, "/admin/drift")
        dets = [d for d in drift["detectors"] if d["suite"] == "mini"]
        self.assertEqual([d["target"] for d in dets], ["mock"], drift["detectors"])

    def test_probe_target_by_route_name(self):
        path = self.path("suite.jsonl")
        with open(path, "w") as f:
            f.write(json.dumps({k: v for k, v in SUITE[0].items() if k != "want"}) + "\n")
        m = self.mock()
        cfg = doc({"mock": up(m.base_url)},
                  [{"name": "chat-route", "match": "gpt-x", "targets": ["mock"]}],
                  drift={"db_path": self.db, "commit_interval": "50ms",
                         "probes": [{"name": "mini", "path": path, "targets": ["chat-route"],
                                     "interval": 1}]})
        self.llmpin(config=cfg)
        rows = wait_rows(self.db, "SELECT route, probe_correct FROM drift_records WHERE is_probe = 1",
                         timeout=5)
        self.assertTrue(rows, "no probe went through route chat-route")
        self.assertEqual((rows[0]["route"], rows[0]["probe_correct"]), ("chat-route", 1))

    def test_builtin_primes_suite(self):
        m = self.mock()
        cfg = doc({"mock": up(m.base_url)},
                  [{"name": "mock-model", "match": "mock-model", "targets": ["mock"]}],
                  drift={"db_path": self.db, "commit_interval": "50ms",
                         "probes": [{"name": "primes", "path": "builtin:primes",
                                     "targets": ["mock-model"], "interval": 3600}]})
        try:
            self.llmpin(config=cfg)
        except AssertionError as e:
            self.fail("llmpin refused builtin:primes: %s" % str(e).splitlines()[-1])
        rows = wait_rows(self.db, "SELECT probe_correct FROM drift_records WHERE is_probe = 1",
                         n=20, timeout=10)
        self.assertGreaterEqual(len(rows), 20)
        self.assertEqual(set(r["probe_correct"] for r in rows), {1})

    def test_broken_suite_does_not_stop_the_server(self):
        path = self.path("bad.jsonl")
        with open(path, "w") as f:
            f.write('{"id": "x", "messages": [], "expect": {"foo": 1}}\n')
        m = self.mock()
        cfg = doc({"mock": up(m.base_url)},
                  [{"name": "mock-model", "match": "mock-model", "targets": ["mock"]}],
                  drift={"db_path": self.db,
                         "probes": [{"name": "bad", "path": path, "targets": ["mock-model"],
                                     "interval": 1}]})
        p = self.llmpin(config=cfg)
        st, h, d, raw = self.chat(p, "mock-model")
        self.assertEqual(st, 200, raw)
        err = p.stderr()
        self.assertIn("bad.jsonl:1:", err)


if __name__ == "__main__":
    main()
