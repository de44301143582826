"""test_upstream_http.py - llmpin's built-in HTTP/1.1 client against an
upstream that answers with every framing HTTP/1.1 allows, and some it does
not.

Why: plain-http upstreams (vLLM, llama.cpp server, Ollama, gateways) are
served by llmpin's own client (adapters/h1client.c), not libcurl. The mock
upstream speaks one dialect; real servers differ: chunked bodies split at
odd places with extensions and trailers, bodies delimited by the connection
closing, HTTP/1.0, interim 1xx responses, kept-alive connections that the
server drops while idle or just as the next request arrives. Each case
below is scripted byte by byte by a small raw-socket server, keyed by the
request's "model", and checked through llmpin from the client side.
"""
import json
import random
import socket
import threading
import time
import unittest

import harness as H


def answer(text):
    return json.dumps({"id": "chatcmpl-raw", "object": "chat.completion", "created": 1,
                       "model": "raw-model", "system_fingerprint": "fp_raw",
                       "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                                    "finish_reason": "stop"}],
                       "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}}).encode()


class RawUpstream:
    """A threaded TCP server; each request is answered by script(model)."""

    def __init__(self, family=socket.AF_INET):
        self.sock = socket.socket(family)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("::1" if family == socket.AF_INET6 else "127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.requests = []
        self.lock = threading.Lock()
        self.drop_next_request_once = False
        self.stop = False
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self):
        self.stop = True
        self.sock.close()

    def _accept(self):
        while not self.stop:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _read_request(self, c, buf):
        while b"\r\n\r\n" not in buf:
            d = c.recv(65536)
            if not d:
                return None, buf
            buf += d
        head, rest = buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        hdrs = {}
        for ln in lines[1:]:
            k, v = ln.split(":", 1)
            hdrs[k.strip().lower()] = v.strip()
        n = int(hdrs.get("content-length", "0"))
        while len(rest) < n:
            d = c.recv(65536)
            if not d:
                return None, b""
            rest += d
        body, buf = rest[:n], rest[n:]
        return (lines[0], hdrs, body), buf

    def _serve(self, c):
        buf = b""
        try:
            while True:
                req, buf = self._read_request(c, buf)
                if req is None:
                    return
                line, hdrs, body = req
                with self.lock:
                    self.requests.append((line, hdrs, body))
                    drop = self.drop_next_request_once
                    self.drop_next_request_once = False
                if drop:  # the idle-close race: the request arrives as the server gives up
                    c.close()
                    return
                model = json.loads(body)["model"] if body else ""
                if not self.script(c, model):
                    c.close()
                    return
        except OSError:
            pass

    def script(self, c, model):
        """Writes the response for model; returns False to close afterwards."""
        send = c.sendall
        if model == "cl":
            b = answer("content length")
            send(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nOpenAI-Processing-Ms: 17\r\n"
                 b"Content-Length: %d\r\n\r\n" % len(b) + b)
            return True
        if model == "chunked":
            b = answer("chunked body")
            send(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
            parts = [b[:1], b[1:7], b[7:40], b[40:]]
            for i, p in enumerate(parts):
                ext = b";name=value" if i == 1 else b""
                chunk = b"%x%s\r\n%s\r\n" % (len(p), ext, p)
                for k in range(0, len(chunk), 5):  # dribble it out
                    send(chunk[k:k + 5])
                    time.sleep(0.002)
            send(b"0\r\nX-Trailer: yes\r\n\r\n")
            return True
        if model == "until-close":
            b = answer("until close")
            send(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n" + b)
            return False
        if model == "http10":
            b = answer("http 1.0")
            send(b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n" + b)
            return False
        if model == "interim":
            b = answer("after interim")
            send(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n"
                 b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(b) + b)
            return True
        if model == "no-content":
            send(b"HTTP/1.1 204 No Content\r\n\r\n")
            return True
        if model == "error-429":
            b = b'{"error":{"message":"slow down","type":"rate_limit","param":null,"code":"rl"}}'
            send(b"HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\nRetry-After: 7\r\n"
                 b"Content-Length: %d\r\n\r\n" % len(b) + b)
            return True
        if model == "sse-chunked":
            send(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n")
            for i in range(3):
                ev = b'data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"raw-model",' \
                     b'"choices":[{"index":0,"delta":{"content":"p%d"},"finish_reason":null}]}\n\n' % i
                send(b"%x\r\n%s\r\n" % (len(ev), ev))
                time.sleep(0.01)
            done = b"data: [DONE]\n\n"
            send(b"%x\r\n%s\r\n0\r\n\r\n" % (len(done), done))
            return True
        if model == "bad-status":
            send(b"HTTP/1.1 2OO OK\r\nContent-Length: 0\r\n\r\n")
            return False
        if model == "bad-length":
            send(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!")
            return False
        if model == "bad-chunk":
            send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n")
            return False
        if model == "huge-head":
            send(b"HTTP/1.1 200 OK\r\n" + b"X-Pad: " + b"a" * 70000 + b"\r\n\r\n")
            return False
        if model == "truncated":
            send(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n{\"partial\":")
            return False
        if model == "slow-close":  # answers, keeps the connection, then drops it while idle
            b = answer("then idle close")
            send(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(b) + b)
            time.sleep(0.1)
            return False
        if model == "both-framings":  # chunked wins; the connection is not reused
            b = answer("both framings")
            send(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 3\r\n"
                 b"Transfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n" % (len(b), b))
            return True
        if model == "dribble":  # a head, then a body byte every 100 ms, for 3 s
            send(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 30\r\n\r\n")
            for _ in range(30):
                time.sleep(0.1)
                send(b" ")
            return False
        if model == "slow":
            time.sleep(0.3)
            b = answer("slow")
            send(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(b) + b)
            return True
        if model.startswith("fuzz-"):
            return self.fuzz(c, int(model[5:]))
        b = answer("default")
        send(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(b) + b)
        return True


    @staticmethod
    def fuzz_bytes(seed):
        """A valid response (Content-Length or chunked, maybe after a 1xx),
        then 1-4 random byte edits (replace, insert, delete, truncate)."""
        rnd = random.Random(seed)
        b = answer("fuzz %d" % seed)
        if rnd.random() < 0.5:
            data = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(b) + b
        else:
            cut = rnd.randrange(1, len(b))
            data = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" +
                    b"%x\r\n%s\r\n%x;e=1\r\n%s\r\n0\r\n\r\n" % (cut, b[:cut], len(b) - cut, b[cut:]))
        if rnd.random() < 0.2:
            data = b"HTTP/1.1 100 Continue\r\n\r\n" + data
        data = bytearray(data)
        for _ in range(rnd.randint(1, 4)):
            op = rnd.random()
            i = rnd.randrange(len(data))
            if op < 0.4:
                data[i] = rnd.choice(b"\r\n :;0123456789abcdefxX\x00\xff-")
            elif op < 0.7:
                data[i:i] = bytes([rnd.randrange(256)])
            elif op < 0.9:
                del data[i]
            else:
                del data[i:]
        return bytes(data)

    def fuzz(self, c, seed):
        data = self.fuzz_bytes(seed)
        rnd = random.Random(seed ^ 0x5eed)
        i = 0
        while i < len(data):  # in random pieces, so every parser state sees a boundary
            n = rnd.randint(1, 64)
            c.sendall(data[i:i + n])
            i += n
        try:  # then the server hangs up: a body short of its length never waits forever
            c.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        return False


def route_to(base_url, timeouts=None, http_client=None, max_connections=None):
    up = H.upstream(base_url, timeouts=timeouts)
    if max_connections:
        up["max_connections"] = max_connections
    if http_client:
        up["http_client"] = http_client
    return H.config({"raw": up}, [{"name": "all", "match": "*", "mode": "remote",
                                   "targets": [{"upstream": "raw"}], "retry": {"max_attempts": 1}}])


class FramingTest(H.ProcTestCase):
    def setUp(self):
        self.up = RawUpstream()
        self.addCleanup(self.up.close)
        self.p = self.llmpin(config=route_to("http://127.0.0.1:%d/v1" % self.up.port),
                             extra=["--no-drift"])

    def chat(self, model, **kw):
        return H.post_json(self.p.addr, "/v1/chat/completions", H.chat(model, **kw))

    def content(self, doc):
        return doc["choices"][0]["message"]["content"]

    def test_content_length_and_request_bytes(self):
        st, h, doc, raw = self.chat("cl")
        self.assertEqual(st, 200, raw)
        self.assertEqual(self.content(doc), "content length")
        self.assertEqual(h.get("openai-processing-ms"), "17")
        line, hdrs, body = self.up.requests[-1]
        self.assertEqual(line, "POST /v1/chat/completions HTTP/1.1")
        self.assertEqual(hdrs["host"], "127.0.0.1:%d" % self.up.port)
        self.assertEqual(hdrs["content-type"], "application/json")
        self.assertEqual(int(hdrs["content-length"]), len(body))
        self.assertEqual(json.loads(body)["model"], "cl")

    def test_chunked_with_extensions_and_trailers(self):
        for _ in range(3):
            st, h, doc, raw = self.chat("chunked")
            self.assertEqual(st, 200, raw)
            self.assertEqual(self.content(doc), "chunked body")

    def test_body_until_close_and_http10(self):
        for model, text in (("until-close", "until close"), ("http10", "http 1.0"), ("cl", "content length")):
            st, h, doc, raw = self.chat(model)
            self.assertEqual(st, 200, (model, raw))
            self.assertEqual(self.content(doc), text)

    def test_interim_responses_skipped(self):
        st, h, doc, raw = self.chat("interim")
        self.assertEqual(st, 200, raw)
        self.assertEqual(self.content(doc), "after interim")

    def test_upstream_error_passes_through(self):
        st, h, doc, raw = self.chat("error-429")
        self.assertEqual(st, 429, raw)
        self.assertEqual(doc["error"]["code"], "rl")
        self.assertEqual(h.get("retry-after"), "7")

    def test_stream_over_chunked(self):
        s = H.SSE(self.p.addr, "/v1/chat/completions", H.chat("sse-chunked", stream=True))
        evs = s.read_all()
        s.close()
        self.assertEqual(s.status, 200)
        self.assertEqual(evs[-1], "[DONE]")
        parts = [json.loads(e)["choices"][0]["delta"]["content"] for e in evs[:-1]]
        self.assertEqual(parts, ["p0", "p1", "p2"])

    def test_malformed_answers_are_502_and_connection_dropped(self):
        for model, needle in (("bad-status", "status line"), ("bad-length", "Content-Length"),
                              ("bad-chunk", "chunk size"), ("huge-head", "larger than"),
                              ("truncated", "before the response was complete")):
            st, h, doc, raw = self.chat(model)
            err = self.assertError(st, doc, 502)
            self.assertIn(needle, err["message"], model)
            # and the next request works on a fresh connection
            st, h, doc, raw = self.chat("cl")
            self.assertEqual(st, 200, (model, raw))

    def test_keep_alive_reuses_one_connection(self):
        for _ in range(20):
            st, h, doc, raw = self.chat("cl")
            self.assertEqual(st, 200, raw)
        self.assertEqual(self.up.connections, 1)
        self.assertEqual(H.metric_samples(self.p.metrics(), "llmpin_upstream_connections"), [({}, 1.0)])

    def test_idle_close_noticed_and_race_retried(self):
        st, h, doc, raw = self.chat("slow-close")
        self.assertEqual(st, 200, raw)
        time.sleep(0.4)  # the server has dropped the idle connection
        st, h, doc, raw = self.chat("cl")
        self.assertEqual(st, 200, raw)
        # the server takes the next request and drops the connection unanswered
        before = len(self.up.requests)
        self.up.drop_next_request_once = True
        st, h, doc, raw = self.chat("cl")
        self.assertEqual(st, 200, raw)
        self.assertEqual(self.content(doc), "content length")
        self.assertEqual(len(self.up.requests) - before, 2, "the request was sent again once")

    def test_both_framings_chunked_wins_and_connection_dropped(self):
        st, h, doc, raw = self.chat("both-framings")
        self.assertEqual(st, 200, raw)
        self.assertEqual(self.content(doc), "both framings")
        st, h, doc, raw = self.chat("cl")
        self.assertEqual(st, 200, raw)
        self.assertEqual(self.up.connections, 2, "a new connection after the ambiguous answer")

    def test_no_content(self):
        # a 204 has no body even without Content-Length: the connection stays
        # in step (one connection), and an empty answer to a chat request is
        # reported as a bad upstream response
        for _ in range(2):
            st, h, doc, raw = self.chat("no-content")
            self.assertError(st, doc, 502, code="upstream_bad_response")
            st, h, doc, raw = self.chat("cl")
            self.assertEqual(st, 200, raw)
        self.assertEqual(self.up.connections, 1)


class ConnectionLimitTest(H.ProcTestCase):
    def test_max_connections_queues_in_order(self):
        up = RawUpstream()
        self.addCleanup(up.close)
        p = self.llmpin(config=route_to("http://127.0.0.1:%d/v1" % up.port, max_connections=2),
                        extra=["--no-drift"])
        results = []

        def one():
            st, h, doc, raw = H.post_json(p.addr, "/v1/chat/completions", H.chat("slow"))
            results.append((st, doc["choices"][0]["message"]["content"] if st == 200 else raw))

        ts = [threading.Thread(target=one) for _ in range(6)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(30)
        self.assertEqual(sorted(results), [(200, "slow")] * 6)
        self.assertEqual(up.connections, 2, "upstreams.raw.max_connections is 2")


class TimeoutTest(H.ProcTestCase):
    def test_total_timeout_while_data_keeps_coming(self):
        up = RawUpstream()
        self.addCleanup(up.close)
        p = self.llmpin(config=route_to("http://127.0.0.1:%d/v1" % up.port,
                                        timeouts={"idle": "2s", "total": "500ms"}), extra=["--no-drift"])
        st, h, doc, raw = H.post_json(p.addr, "/v1/chat/completions", H.chat("dribble"))
        err = self.assertError(st, doc, 504, code="upstream_timeout")
        self.assertIn("total timeout of 500 ms", err["message"])

    def test_connect_timeout(self):
        # a listener whose accept queue is full drops new SYNs: connect() hangs
        ls = socket.socket()
        ls.bind(("127.0.0.1", 0))
        ls.listen(0)
        self.addCleanup(ls.close)
        fillers = []
        for _ in range(4):
            f = socket.socket()
            f.setblocking(False)
            try:
                f.connect(ls.getsockname())
            except BlockingIOError:
                pass
            fillers.append(f)
        self.addCleanup(lambda: [f.close() for f in fillers])
        time.sleep(0.2)
        probe = socket.socket()
        probe.settimeout(0.5)
        try:
            probe.connect(ls.getsockname())
            self.skipTest("this kernel accepts beyond a full backlog")
        except (socket.timeout, OSError):
            pass
        finally:
            probe.close()
        p = self.llmpin(config=route_to("http://127.0.0.1:%d/v1" % ls.getsockname()[1],
                                        timeouts={"connect": "300ms", "first_byte": "10s"}), extra=["--no-drift"])
        st, h, doc, raw = H.post_json(p.addr, "/v1/chat/completions", H.chat("cl"))
        err = self.assertError(st, doc, 504, code="upstream_timeout")
        self.assertIn("connecting to 127.0.0.1:%d timed out after 300 ms" % ls.getsockname()[1], err["message"])


class HostileUpstreamTest(H.ProcTestCase):
    def test_mutated_answers_never_hurt(self):
        up = RawUpstream()
        self.addCleanup(up.close)
        p = self.llmpin(config=route_to("http://127.0.0.1:%d/v1" % up.port, timeouts={"first_byte": "3s", "idle": "3s"}),
                        extra=["--no-drift"])
        seen = set()
        for seed in range(250):
            st, h, doc, raw = H.post_json(p.addr, "/v1/chat/completions", H.chat("fuzz-%d" % seed))
            # a mutated status line may claim any status, which is passed
            # through; what matters is a well-formed answer every time, an
            # OpenAI error when llmpin itself refuses the bytes, and no crash
            self.assertTrue(200 <= st < 600, (seed, st, raw))
            if h.get("content-type", "").startswith("application/json") and st in (502, 504):
                self.assertIn("error", doc or {}, (seed, raw))
            seen.add(st)
        self.assertIn(200, seen)
        self.assertIn(502, seen)
        st, h, doc, raw = H.post_json(p.addr, "/v1/chat/completions", H.chat("cl"))
        self.assertEqual(st, 200, raw)


class NamesTest(H.ProcTestCase):
    def test_localhost_name_resolved(self):
        up = RawUpstream()
        self.addCleanup(up.close)
        p = self.llmpin(config=route_to("http://localhost:%d/v1" % up.port), extra=["--no-drift"])
        for _ in range(3):
            st, h, doc, raw = H.post_json(p.addr, "/v1/chat/completions", H.chat("cl"))
            self.assertEqual(st, 200, raw)
        self.assertEqual(up.requests[-1][1]["host"], "localhost:%d" % up.port)

    def test_ipv6_literal(self):
        try:
            up = RawUpstream(socket.AF_INET6)
        except OSError:
            self.skipTest("no IPv6 loopback here")
        self.addCleanup(up.close)
        p = self.llmpin(config=route_to("http://[::1]:%d/v1" % up.port), extra=["--no-drift"])
        for _ in range(2):
            st, h, doc, raw = H.post_json(p.addr, "/v1/chat/completions", H.chat("cl"))
            self.assertEqual(st, 200, raw)
        self.assertEqual(up.requests[-1][1]["host"], "[::1]:%d" % up.port)
        self.assertEqual(up.connections, 1)

    def test_unresolvable_name_fails_fast(self):
        p = self.llmpin(config=route_to("http://no-such-host.invalid:9/v1", timeouts={"connect": "500ms"}),
                        extra=["--no-drift"])
        t0 = time.monotonic()
        st, h, doc, raw = H.post_json(p.addr, "/v1/chat/completions", H.chat("cl"))
        self.assertIn(st, (502, 504), raw)
        self.assertIn("no-such-host.invalid", doc["error"]["message"])
        self.assertLess(time.monotonic() - t0, 10.0)


class LibcurlChoiceTest(H.ProcTestCase):
    def test_http_client_libcurl_same_answers(self):
        up = RawUpstream()
        self.addCleanup(up.close)
        p = self.llmpin(config=route_to("http://127.0.0.1:%d/v1" % up.port, http_client="libcurl"),
                        extra=["--no-drift"])
        for model, text in (("cl", "content length"), ("chunked", "chunked body"), ("until-close", "until close")):
            st, h, doc, raw = H.post_json(p.addr, "/v1/chat/completions", H.chat(model))
            self.assertEqual(st, 200, raw)
            self.assertEqual(doc["choices"][0]["message"]["content"], text)
        # and it really was libcurl: the built-in client holds no connection
        self.assertEqual(H.metric_samples(p.metrics(), "llmpin_upstream_connections"), [({}, 0.0)])

    def test_bad_http_client_value_named(self):
        up = RawUpstream()
        self.addCleanup(up.close)
        cfg = route_to("http://127.0.0.1:%d/v1" % up.port, http_client="curl")
        with self.assertRaises(AssertionError) as cm:
            self.llmpin(config=cfg)
        self.assertIn("upstreams.raw.http_client", str(cm.exception))
        self.assertIn("auto, libcurl", str(cm.exception))


if __name__ == "__main__":
    H.main()
