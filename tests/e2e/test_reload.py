"""test_reload.py - hot reload through the real binary.

SIGHUP and POST /admin/reload (admin key only) swap a route's target. A
config with an error is refused (400 invalid_config naming the field) and
the old config stays in force. Reloading five times while another thread
sends 200 requests loses none of them."""
import json
import signal
import threading

from e2e_common import H, E2ETestCase, doc, up, bearer, main

ANSWER = "mock answer to: hello there"
ADMIN = bearer("key-ops")
APP = bearer("key-app")


class ReloadTest(E2ETestCase):
    def setUp(self):
        super().setUp()
        self.a, self.b = self.mock(), self.mock()
        self.p = self.llmpin(config=self.cfg("a"))

    def cfg(self, target, broken=False):
        keys = [{"name": "ops", "key": "key-ops", "admin": True},
                {"name": "app", "key": "key-app"}]
        routes = [{"name": "r", "match": "chat", "targets": [target]}]
        if broken:
            routes[0]["targets"] = ["nope"]
        return doc({"a": up(self.a.base_url), "b": up(self.b.base_url)}, routes,
                   keys=keys, drift={"db_path": self.db})

    def write(self, target, broken=False):
        with open(self.p.config_path, "w") as f:
            json.dump(self.cfg(target, broken), f)

    def target(self):
        st, h, d, raw = self.chat(self.p, "chat", headers=APP)
        self.assertEqual(st, 200, raw)
        return h["x-llmpin-target"]

    def reload(self, key=ADMIN):
        st, h, raw = H.request(self.p.addr, "POST", "/admin/reload", {}, headers=key)
        return st, json.loads(raw)

    def test_sighup(self):
        self.assertEqual(self.target(), "a")
        self.write("b")
        self.p.p.send_signal(signal.SIGHUP)
        self.assertEqual(H.wait_until(lambda: self.target() == "b", 10), True,
                         "SIGHUP did not swap the target")
        self.assertEqual(self.target(), "b")
        self.assertIn("configuration reloaded", self.p.stderr())

    def test_admin_reload(self):
        self.assertEqual(self.target(), "a")
        self.write("b")
        st, d = self.reload(APP)
        self.assertError(st, d, 403, code="admin_required")
        self.assertEqual(self.target(), "a")
        st, d = self.reload()
        self.assertEqual(st, 200, d)
        self.assertEqual(d["status"], "reloaded")
        self.assertEqual(d["routes"], 1)
        self.assertEqual(self.target(), "b")

    def test_bad_config_keeps_the_old_one(self):
        self.write("nope", broken=True)
        st, d = self.reload()
        err = self.assertError(st, d, 400, code="invalid_config")
        self.assertIn("routes[0].targets[0]", err["message"])
        self.assertIn("nope", err["message"])
        self.assertEqual(self.target(), "a")
        # a syntax error is refused with its line and column
        with open(self.p.config_path, "w") as f:
            f.write('{\n  "server": {"listen": "127.0.0.1:0"},\n  "routes": [\n}\n')
        st, d = self.reload()
        err = self.assertError(st, d, 400, code="invalid_config")
        self.assertIn(self.p.config_path + ":4:", err["message"])
        self.assertEqual(self.target(), "a")
        # SIGHUP with a bad file: same
        before = self.p.stderr().count("reload rejected")
        self.p.p.send_signal(signal.SIGHUP)
        self.assertTrue(H.wait_until(lambda: self.p.stderr().count("reload rejected") > before, 10))
        self.assertEqual(self.target(), "a")
        self.write("b")
        st, d = self.reload()
        self.assertEqual(st, 200, d)
        self.assertEqual(self.target(), "b")

    def test_reload_under_load_loses_nothing(self):
        results = []
        reloaded = threading.Event()

        def load():
            conn = H.connect(self.p.addr)
            try:
                for i in range(200):
                    if i == 180:  # the last 20 requests see the final config
                        reloaded.wait(30)
                    try:
                        st, h, d, raw = H.post_json(self.p.addr, "/v1/chat/completions",
                                                    H.chat("chat", "req %d" % i), headers=APP,
                                                    conn=conn)
                        results.append((st, h.get("x-llmpin-target"), d))
                    except Exception as e:  # a dropped connection is a lost request
                        results.append((None, None, repr(e)))
                        conn.close()
                        conn = H.connect(self.p.addr)
            finally:
                conn.close()

        th = threading.Thread(target=load)
        th.start()
        try:
            for i in range(5):
                H.wait_until(lambda: len(results) >= 30 * (i + 1), 20, 0.01)
                self.write("b" if i % 2 == 0 else "a")
                st, d = self.reload()
                self.assertEqual(st, 200, d)
        finally:
            reloaded.set()
            th.join(60)
        self.assertEqual(len(results), 200)
        bad = [r for r in results if r[0] != 200]
        self.assertEqual(bad, [], "requests lost during reloads")
        for i, (st, tgt, d) in enumerate(results):
            self.assertEqual(d["choices"][0]["message"]["content"], "mock answer to: req %d" % i)
        targets = [r[1] for r in results]
        self.assertEqual(set(targets), {"a", "b"})
        self.assertEqual(targets[-1], "b")  # five reloads: a -> b -> a -> b -> a -> b
        self.assertEqual(self.a.stats()["requests"] + self.b.stats()["requests"], 200)


    def test_listen_cannot_move_on_reload(self):
        # the socket stays where it is, so a file that moves it is refused
        d = self.cfg("b")
        d["server"]["listen"] = "0.0.0.0:0"
        with open(self.p.config_path, "w") as f:
            json.dump(d, f)
        st, d = self.reload()
        err = self.assertError(st, d, 400, code="invalid_config")
        self.assertIn("server.listen: changed from 127.0.0.1:0 to 0.0.0.0:0", err["message"])
        self.assertIn("restart", err["message"])
        self.assertEqual(self.target(), "a")

    def test_sighup_during_a_reload_is_not_lost(self):
        # two signals back to back: the second comes while the first reload
        # runs (or after it); either way the last file written is in force
        self.write("b")
        self.p.p.send_signal(signal.SIGHUP)
        self.p.p.send_signal(signal.SIGHUP)
        self.assertTrue(H.wait_until(lambda: self.target() == "b", 10))
        self.assertTrue(H.wait_until(lambda: self.p.stderr().count("configuration reloaded") >= 1, 10))


class ReloadListenFlagTest(E2ETestCase):
    """--listen 0.0.0.0 on the command line: a reloaded file is checked
    against that address, not its own loopback one, so it cannot switch
    authentication off on a public socket."""

    def setUp(self):
        super().setUp()
        self.a = self.mock()
        keys = [{"name": "ops", "key": "key-ops", "admin": True}, {"name": "app", "key": "key-app"}]
        self.p = self.llmpin(config=self.cfg(keys), extra=["--listen", "0.0.0.0:0"])

    def cfg(self, keys):
        return doc({"a": up(self.a.base_url)}, [{"name": "r", "match": "chat", "targets": ["a"]}],
                   keys=keys, drift={"db_path": self.db})

    def test_reload_without_keys_refused_on_public_socket(self):
        with open(self.p.config_path, "w") as f:
            json.dump(self.cfg(None), f)   # listen 127.0.0.1:0 in the file, no keys
        self.p.p.send_signal(signal.SIGHUP)
        self.assertTrue(H.wait_until(lambda: "reload rejected" in self.p.stderr(), 10))
        self.assertIn("refusing to listen on 0.0.0.0 without client keys", self.p.stderr())
        st, h, d, raw = self.chat(self.p, "chat")
        self.assertError(st, d, 401)
        st, h, d, raw = self.chat(self.p, "chat", headers=APP)
        self.assertEqual(st, 200, raw)


if __name__ == "__main__":
    main()
