"""test_hostile.py - hostile and malformed HTTP input at the byte level.

Every case must get a clear OpenAI-shaped error (or a closed connection
when the framing cannot be trusted), never a crash or a hang, and the
server must keep answering other clients afterwards. The last case throws
seeded random mutations of a valid request at the server."""
import json
import random
import socket
import time

import harness as H
from test_http import Reader, raw_request

BODY = {"model": "gpt-x", "messages": [{"role": "user", "content": "hi"}]}


class HostileTest(H.ProcTestCase):
    def setUp(self):
        self.m = self.mock()
        cfg = H.config({"mock": {"base_url": self.m.base_url}},
                       routes=[{"match": "*", "targets": [{"upstream": "mock"}]}],
                       server={"max_body_bytes": 4096})
        self.p = self.llmpin(config=cfg, extra=["--no-drift"])

    def sock(self):
        s = socket.create_connection((self.p.host, self.p.port), timeout=10)
        self.addCleanup(s.close)
        return s

    def send(self, data):
        s = self.sock()
        s.sendall(data)
        return Reader(s).response()

    def error_of(self, body):
        return json.loads(body)["error"]

    def assert_alive(self):
        st, h, doc, raw = H.post_json(self.p.addr, "/v1/chat/completions", BODY)
        self.assertEqual(st, 200, raw)

    def test_header_block_too_large(self):
        st, h, body = self.send(b"GET /healthz HTTP/1.1\r\nX-Big: " + b"a" * 40000 + b"\r\n\r\n")
        self.assertEqual(st, 431)
        self.assertEqual(self.error_of(body)["code"], "request_header_fields_too_large")
        self.assert_alive()

    def test_too_many_headers(self):
        hdrs = b"".join(b"X-H%d: v\r\n" % i for i in range(150))
        st, h, body = self.send(b"GET /healthz HTTP/1.1\r\n" + hdrs + b"\r\n")
        self.assertEqual(st, 431)
        self.assert_alive()

    def test_content_length_over_limit_refused_before_body(self):
        s = self.sock()
        s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\nContent-Length: 999999999\r\n\r\n")
        st, h, body = Reader(s).response()
        self.assertEqual(st, 413)
        err = self.error_of(body)
        self.assertEqual(err["code"], "request_too_large")
        self.assertIn("999999999", err["message"])
        self.assertIn("4096", err["message"])
        self.assertEqual(h.get("connection"), "close")

    def test_chunked_body_over_limit(self):
        chunk = b"1000\r\n" + b"x" * 4096 + b"\r\n"
        st, h, body = self.send(b"POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\n"
                                b"Transfer-Encoding: chunked\r\n\r\n" + chunk + chunk)
        self.assertEqual(st, 413)

    def test_bad_content_length(self):
        for cl in (b"-1", b"abc", b"12x", b"99999999999999999999999"):
            st, h, body = self.send(b"POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\nContent-Length: " +
                                    cl + b"\r\n\r\n{}")
            self.assertIn(st, (400, 413), cl)
            self.assertIn("error", json.loads(body))
        self.assert_alive()

    def test_transfer_encoding_with_content_length(self):
        st, h, body = self.send(b"POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n"
                                b"Transfer-Encoding: chunked\r\n\r\n{}")
        self.assertEqual(st, 400)

    def test_bad_chunk_framing(self):
        st, h, body = self.send(b"POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\n"
                                b"Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n")
        self.assertEqual(st, 400)

    def test_header_folding_and_bad_names(self):
        for req in (b"GET /healthz HTTP/1.1\r\nX-A: 1\r\n folded\r\n\r\n",
                    b"GET /healthz HTTP/1.1\r\nBad Name: 1\r\n\r\n",
                    b"GET /healthz HTTP/1.1\r\n: novalue\r\n\r\n",
                    b"GET /healthz HTTP/2.0\r\n\r\n",
                    b"GET healthz HTTP/1.1\r\n\r\n"):
            st, h, body = self.send(req)
            self.assertEqual(st, 505 if b"HTTP/2.0" in req else 400, req)
        self.assert_alive()

    def test_non_utf8_and_nul_bytes_in_body(self):
        st, h, body = self.send(raw_request(b'{"model":"gpt-x","messages":[{"role":"user","content":"\xff\x00"}]}'))
        self.assertEqual(st, 400)
        self.assertEqual(self.error_of(body)["code"], "invalid_json")

    def test_deeply_nested_json(self):
        deep = b"[" * 1500 + b"]" * 1500  # deeper than cJSON nests, within max_body_bytes
        st, h, body = self.send(raw_request(b'{"model":"gpt-x","messages":' + deep + b"}"))
        self.assertEqual(st, 400)

    def test_client_closes_half_way(self):
        for cut in (5, 30, 80):
            s = self.sock()
            s.sendall(raw_request(BODY)[:cut])
            s.close()
        self.assert_alive()

    def test_random_mutations(self):
        rnd = random.Random(1234)
        base = raw_request(BODY)
        for i in range(300):
            data = bytearray(base)
            for _ in range(rnd.randint(1, 8)):
                op = rnd.random()
                pos = rnd.randrange(len(data))
                if op < 0.5:
                    data[pos] = rnd.randrange(256)
                elif op < 0.75:
                    del data[pos]
                else:
                    data[pos:pos] = bytes([rnd.randrange(256)])
            s = socket.create_connection((self.p.host, self.p.port), timeout=5)
            try:
                s.sendall(bytes(data))
                s.shutdown(socket.SHUT_WR)
                s.settimeout(5)
                try:
                    while s.recv(65536):
                        pass
                except socket.timeout:
                    self.fail("mutation %d: the server neither answered nor closed" % i)
                except ConnectionResetError:
                    pass
            finally:
                s.close()
        self.assert_alive()


class TimeoutTest(H.ProcTestCase):
    """Per-state client timers (server.*_timeout): the idle timer never
    runs while a request is being answered, slow heads and bodies get a
    408, and a pipelined or small-piece body costs nothing extra."""

    def setUp(self):
        self.m = self.mock()
        cfg = H.config({"mock": {"base_url": self.m.base_url}},
                       routes=[{"match": "*", "targets": [{"upstream": "mock"}]}],
                       server={"idle_timeout": "1s", "header_timeout": "1500ms", "body_timeout": "1500ms",
                               "max_body_bytes": 16 << 20})
        self.p = self.llmpin(config=cfg, extra=["--no-drift"])

    def sock(self):
        s = socket.create_connection((self.p.host, self.p.port), timeout=20)
        self.addCleanup(s.close)
        return s

    def test_slow_answer_outlives_idle_timeout(self):
        self.m.config(delay_ms=3000)
        t0 = time.monotonic()
        st, h, doc, raw = H.post_json(self.p.addr, "/v1/chat/completions", BODY)
        self.assertEqual(st, 200, raw)
        self.assertGreaterEqual(time.monotonic() - t0, 2.9)
        self.assertEqual(doc["choices"][0]["message"]["content"], "mock answer to: hi")

    def test_stream_outlives_idle_timeout(self):
        # mock-long: 200 chunks 20 ms apart, 4 s in all, 4x the idle timeout
        s = H.SSE(self.p.addr, "/v1/chat/completions", H.chat("mock-long", "x", stream=True))
        self.assertEqual(s.status, 200)
        evs = []
        while True:
            e = s.next_event()
            if e is None:
                break
            evs.append(e)
        self.assertIsNone(s.error)
        self.assertEqual(evs[-1], "[DONE]")
        self.assertGreater(len(evs), 200)

    def test_idle_connection_is_closed(self):
        s = self.sock()
        t0 = time.monotonic()
        self.assertEqual(s.recv(100), b"")  # closed without a response
        self.assertLess(time.monotonic() - t0, 10)

    def test_kept_alive_connection_gets_its_idle_timer_back(self):
        s = self.sock()
        body = json.dumps(BODY).encode()
        s.sendall(raw_request(body))
        r = Reader(s)
        st, h, b = r.response()
        self.assertEqual(st, 200)
        time.sleep(2.5)
        self.assertEqual(s.recv(100), b"")

    def test_slow_header_gets_408(self):
        s = self.sock()
        t0 = time.monotonic()
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n")
        try:
            for _ in range(20):  # a slowloris: one header byte every 200 ms
                time.sleep(0.2)
                s.sendall(b"X")
        except OSError:
            pass
        st, h, body = Reader(s).response()
        self.assertEqual(st, 408)
        self.assertEqual(json.loads(body)["error"]["code"], "request_timeout")
        self.assertLess(time.monotonic() - t0, 4.5)

    def test_slow_body_gets_408(self):
        s = self.sock()
        s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n{")
        st, h, body = Reader(s).response()
        self.assertEqual(st, 408)
        self.assertEqual(json.loads(body)["error"]["code"], "request_timeout")

    def test_big_chunked_body_in_small_chunks(self):
        # 8 MiB in 4 KiB chunks: 2048 chunks, decoded once each
        text = "w" * (8 << 20)
        body = json.dumps({"model": "gpt-x", "messages": [{"role": "user", "content": text}]}).encode()
        out = [b"POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
               b"Transfer-Encoding: chunked\r\n\r\n"]
        for i in range(0, len(body), 4096):
            piece = body[i:i + 4096]
            out.append(b"%x\r\n" % len(piece) + piece + b"\r\n")
        out.append(b"0\r\n\r\n")
        s = self.sock()
        s.sendall(b"".join(out))
        st, h, b = Reader(s).response()
        self.assertEqual(st, 200, b[:300])
        self.assertTrue(json.loads(b)["choices"][0]["message"]["content"].startswith("mock answer to: www"))


if __name__ == "__main__":
    H.main()
