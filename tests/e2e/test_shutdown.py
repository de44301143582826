"""test_shutdown.py - graceful shutdown through the real binary.

SIGTERM while a slow stream is running: the stream still completes (every
chunk and [DONE]), then llmpin exits 0. Drift records pushed before the
signal are in the database after exit even though the writer's commit
interval is far longer than the test: closing drains the queue."""
import signal

from e2e_common import H, E2ETestCase, doc, up, db_rows, main

ANSWER = "mock answer to: hello there"


class ShutdownTest(E2ETestCase):
    def test_sigterm_during_stream(self):
        m = self.mock()
        cfg = doc({"a": up(m.base_url)}, [{"name": "r", "match": "*", "targets": ["a"]}],
                  server={"drain_timeout": "30s"},
                  drift={"db_path": self.db, "commit_interval": "60s"})
        p = self.llmpin(config=cfg)
        for i in range(3):
            self.assertServed(self.chat(p, "chat"), "a", ANSWER)

        # mock-long: 200 chunks, 20 ms apart (about 4 s)
        s = H.SSE(p.addr, "/v1/chat/completions", H.chat("mock-long", stream=True))
        self.addCleanup(s.close)
        self.assertEqual(s.status, 200)
        first = s.next_event()
        self.assertIsNotNone(first)
        p.p.send_signal(signal.SIGTERM)
        # new work is refused while draining
        self.assertTrue(H.wait_until(lambda: _readyz(p) != 200, 5), "still ready while draining")

        ev = s.read_all()
        self.assertIsNone(s.error, s.error)
        self.assertEqual(ev[-1], "[DONE]")
        text = "".join(c["choices"][0]["delta"].get("content") or ""
                       for c in H.json_events(ev) if c.get("choices"))
        self.assertEqual(text, "".join("tok%d " % i for i in range(200)))

        try:
            rc = p.p.wait(20)
        except Exception:
            self.fail("llmpin did not exit after the stream ended:\n" + p.stderr())
        self.assertEqual(rc, 0, p.stderr())

        rows = db_rows(self.db, "SELECT requested_model, status, ttft_ms FROM drift_records ORDER BY id")
        self.assertEqual([(r["requested_model"], r["status"]) for r in rows],
                         [("chat", 200)] * 3 + [("mock-long", 200)], rows)
        self.assertGreaterEqual(rows[3]["ttft_ms"], 0)
        self.assertEqual([r["ttft_ms"] for r in rows[:3]], [None] * 3)  # not streamed


def _readyz(p):
    try:
        st, h, raw = H.request(p.addr, "GET", "/readyz", timeout=2)
        return st
    except OSError:
        return None  # the listener is closed: not ready either


if __name__ == "__main__":
    main()
