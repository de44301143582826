"""test_http.py - llmpin's HTTP/1.1 server as real clients use it, at the
byte level: pipelined requests, chunked request bodies, Expect:
100-continue (curl sends it for large bodies), HTTP/1.0, malformed request
lines, and many concurrent streams that must not mix their events."""
import json
import socket
import threading

import harness as H


def raw_request(body, path="/v1/chat/completions", extra=b"", version=b"HTTP/1.1"):
    data = json.dumps(body).encode() if not isinstance(body, bytes) else body
    return (b"POST " + path.encode() + b" " + version + b"\r\nHost: t\r\n"
            b"Content-Type: application/json\r\n" + extra +
            b"Content-Length: " + str(len(data)).encode() + b"\r\n\r\n" + data)


class Reader:
    """Reads HTTP/1.1 responses (Content-Length or chunked) off a socket."""

    def __init__(self, sock):
        self.s = sock
        self.buf = b""

    def _fill(self):
        d = self.s.recv(65536)
        if not d:
            raise EOFError("connection closed")
        self.buf += d

    def line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        ln, self.buf = self.buf.split(b"\r\n", 1)
        return ln

    def exact(self, n):
        while len(self.buf) < n:
            self._fill()
        d, self.buf = self.buf[:n], self.buf[n:]
        return d

    def response(self):
        status = int(self.line().split()[1])
        headers = {}
        while True:
            ln = self.line()
            if not ln:
                break
            k, v = ln.decode().split(":", 1)
            headers[k.strip().lower()] = v.strip()
        if status == 100:
            return status, headers, b""
        if headers.get("transfer-encoding", "").lower() == "chunked":
            body = b""
            while True:
                n = int(self.line().split(b";")[0], 16)
                if n == 0:
                    while self.line():
                        pass
                    break
                body += self.exact(n)
                self.line()
        else:
            body = self.exact(int(headers.get("content-length", "0")))
        return status, headers, body


class HttpTest(H.ProcTestCase):
    def setUp(self):
        self.m = self.mock()
        self.p = self.llmpin(upstream=self.m.base_url, extra=["--no-drift"])

    def sock(self):
        s = socket.create_connection((self.p.host, self.p.port), timeout=15)
        self.addCleanup(s.close)
        return s

    def test_pipelined_requests_answered_in_order(self):
        s = self.sock()
        s.sendall(b"".join(raw_request(H.chat("gpt-4o", "p%d" % i)) for i in range(3)))
        r = Reader(s)
        for i in range(3):
            st, h, body = r.response()
            self.assertEqual(st, 200, body)
            self.assertEqual(json.loads(body)["choices"][0]["message"]["content"], "mock answer to: p%d" % i)

    def test_chunked_request_body(self):
        s = self.sock()
        data = json.dumps(H.chat("gpt-4o", "chunked body")).encode()
        half = len(data) // 2
        s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                  b"Transfer-Encoding: chunked\r\n\r\n" +
                  b"%x\r\n%s\r\n%x\r\n%s\r\n0\r\n\r\n" % (half, data[:half], len(data) - half, data[half:]))
        st, h, body = Reader(s).response()
        self.assertEqual(st, 200, body)
        self.assertEqual(json.loads(body)["choices"][0]["message"]["content"], "mock answer to: chunked body")

    def test_expect_100_continue(self):
        s = self.sock()
        data = json.dumps(H.chat("gpt-4o", "after continue")).encode()
        s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                  b"Expect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(data))
        r = Reader(s)
        st, _, _ = r.response()  # the client waits for this before sending the body
        self.assertEqual(st, 100)
        s.sendall(data)
        st, h, body = r.response()
        self.assertEqual(st, 200, body)
        self.assertEqual(json.loads(body)["choices"][0]["message"]["content"], "mock answer to: after continue")

    def test_http10(self):
        s = self.sock()
        s.sendall(raw_request(H.chat("gpt-4o", "old client"), version=b"HTTP/1.0"))
        st, h, body = Reader(s).response()
        self.assertEqual(st, 200, body)
        self.assertEqual(json.loads(body)["choices"][0]["message"]["content"], "mock answer to: old client")

    def test_garbage_request_line(self):
        s = self.sock()
        s.sendall(b"THIS IS NOT HTTP\r\n\r\n")
        try:
            st, h, body = Reader(s).response()
            self.assertEqual(st, 400, body)
        except EOFError:
            pass  # closing the connection is a fine answer too
        # and the server is still fine
        st, _, _ = H.request(self.p.addr, "GET", "/healthz")
        self.assertEqual(st, 200)

    def test_concurrent_streams_do_not_mix(self):
        results = {}

        def one(i):
            try:
                s = H.SSE(self.p.addr, "/v1/chat/completions",
                          H.chat("mock-slowstream", "stream number %d" % i, stream=True))
                got = s.read_all()
                s.close()
                results[i] = "".join(c["choices"][0]["delta"].get("content") or ""
                                     for c in H.json_events(got) if c["choices"]) + \
                    ("|DONE" if got and got[-1] == "[DONE]" else "|no-done")
            except Exception as e:  # noqa: BLE001 - reported below
                results[i] = repr(e)

        threads = [threading.Thread(target=one, args=(i,)) for i in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        for i in range(20):
            self.assertEqual(results.get(i), "mock answer to: stream number %d|DONE" % i)


if __name__ == "__main__":
    H.main()
