"""test_split_shadow.py - split and shadow routes through the real binary.

split: weights 1:1 over two upstreams spread 200 requests over both; with
sticky, a client key always lands on the same upstream.
shadow: upstream A answers the client while a copy goes to B (a slow mock,
or the local model). The client gets A's answer without waiting for B, B
receives the mirror, the drift db holds both records (is_shadow = 1 for the
mirror), and `llmpin drift compare` pairs them."""
import subprocess
import time
import unittest

from e2e_common import (H, E2ETestCase, doc, up, stories, bearer, db_rows,
                        wait_rows, main)

ANSWER = "mock answer to: hello there"


class SplitTest(E2ETestCase):
    def test_weights_1_1(self):
        a, b = self.mock(), self.mock()
        cfg = doc({"a": up(a.base_url), "b": up(b.base_url)},
                  [{"name": "ab", "match": "chat", "mode": "split",
                    "targets": [{"upstream": "a", "weight": 1}, {"upstream": "b", "weight": 1}]}],
                  drift={"db_path": self.db})
        p = self.llmpin(config=cfg)
        conn = H.connect(p.addr)
        self.addCleanup(conn.close)
        seen = {"a": 0, "b": 0}
        for i in range(200):
            st, h, d, raw = H.post_json(p.addr, "/v1/chat/completions", H.chat("chat"), conn=conn)
            self.assertEqual(st, 200, raw)
            self.assertIsNone(h.get("x-llmpin-fallback"))
            seen[h["x-llmpin-target"]] += 1
        self.assertEqual(a.stats()["requests"], seen["a"])
        self.assertEqual(b.stats()["requests"], seen["b"])
        self.assertEqual(seen["a"] + seen["b"], 200)
        # Binomial(200, 1/2): below 50 has probability ~1e-12
        self.assertGreaterEqual(seen["a"], 50, seen)
        self.assertGreaterEqual(seen["b"], 50, seen)

    def test_sticky_per_key(self):
        a, b = self.mock(), self.mock()
        keys = [{"name": "k%d" % i, "key": "secret-%d" % i} for i in range(16)]
        cfg = doc({"a": up(a.base_url), "b": up(b.base_url)},
                  [{"name": "ab", "match": "chat", "mode": "split", "sticky": True,
                    "targets": ["a", "b"]}],
                  keys=keys, drift={"db_path": self.db})
        p = self.llmpin(config=cfg)
        chosen = {}
        for k in keys:
            got = set()
            for i in range(8):
                st, h, d, raw = self.chat(p, "chat", headers=bearer(k["key"]))
                self.assertEqual(st, 200, raw)
                got.add(h["x-llmpin-target"])
            self.assertEqual(len(got), 1, "key %s moved between targets: %s" % (k["name"], got))
            chosen[k["name"]] = got.pop()
        # 16 keys hashed over two equal weights use both targets
        self.assertEqual(set(chosen.values()), {"a", "b"}, chosen)


class ShadowTest(E2ETestCase):
    def start(self, second, local=False):
        self.a = self.mock()
        self.b = self.mock()
        cfg = doc({"a": up(self.a.base_url), "b": up(self.b.base_url)},
                  [{"name": "sh", "match": "chat", "mode": "shadow", "targets": ["a", second]}],
                  local={"stories": stories()} if local else None,
                  drift={"db_path": self.db, "store_outputs": "full", "commit_interval": "50ms"})
        self.p = self.llmpin(config=cfg)
        return self.p

    def test_slow_mirror_does_not_delay_the_client(self):
        p = self.start({"upstream": "b", "model": "mock-slow-first-byte"})
        t0 = time.monotonic()
        st, h, d, raw = self.chat(p, "chat")
        elapsed = time.monotonic() - t0
        self.assertServed((st, h, d, raw), "a", ANSWER)
        self.assertEqual(d["model"], "chat")
        # B answers after 1.5 s; the client must not have waited for it
        self.assertLess(elapsed, 1.2, "the client waited for the shadow target")
        self.assertEqual(self.a.stats()["requests"], 1)
        self.assertTrue(H.wait_until(lambda: self.b.stats()["requests"] == 1, 5),
                        "B never received the mirrored request")
        body = self.b.stats()["last_request_body"]
        self.assertIn('"mock-slow-first-byte"', body)
        self.assertIn("hello there", body)

        rows = wait_rows(self.db, "SELECT target, is_shadow, status, request_id, output_text"
                                  " FROM drift_records ORDER BY is_shadow", n=2)
        self.assertEqual([(r["target"], r["is_shadow"], r["status"]) for r in rows],
                         [("a", 0, 200), ("b:mock-slow-first-byte", 1, 200)], rows)
        self.assertEqual(rows[0]["output_text"], ANSWER)
        self.assertEqual(rows[1]["output_text"], ANSWER)

    def test_drift_compare_pairs_the_mirror(self):
        p = self.start({"upstream": "b", "model": "mock-slow-first-byte"})
        self.assertServed(self.chat(p, "chat"), "a", ANSWER)
        rows = wait_rows(self.db, "SELECT request_id FROM drift_records", n=2)
        out = subprocess.run([H.ARGS.llmpin, "drift", "compare", "a", "b:mock-slow-first-byte",
                              "--drift-db", self.db], capture_output=True, text=True, timeout=30)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("1 pairs of records with the same request id", out.stdout,
                      "shadow record not paired with the served one (request ids %r)"
                      % [r["request_id"] for r in rows])
        self.assertIn("identical output (SHA-256 of the text): 1 of 1 (100.0%)", out.stdout)

    def test_mirror_to_local_model(self):
        p = self.start("local:stories", local=True)
        for i in range(3):
            self.assertServed(self.chat(p, "chat", max_tokens=5), "a", ANSWER)
        rows = wait_rows(self.db, "SELECT target, is_shadow, status FROM drift_records"
                                  " WHERE is_shadow = 1", n=3)
        self.assertEqual([(r["target"], r["status"]) for r in rows], [("local:stories", 200)] * 3)
        prim = db_rows(self.db, "SELECT target FROM drift_records WHERE is_shadow = 0")
        self.assertEqual([r["target"] for r in prim], ["a"] * 3)
        self.assertEqual(self.b.stats()["requests"], 0)


if __name__ == "__main__":
    main()
