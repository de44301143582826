"""harness.py - process and HTTP helpers shared by llmpin's Python tests.

Why: every integration test starts its own mock upstream and its own llmpin
on ephemeral ports, talks HTTP/1.1 and SSE to them, and must always stop
them, even when an assertion fails. This module keeps that plumbing in one
place so that each test file reads as the behaviour it checks.

Standard library only (unittest, http.client, socket, subprocess, json).
Command line of every test file: --llmpin PATH --mock PATH, then unittest's
own arguments.
"""
import argparse
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

ARGS = None
READY_TIMEOUT = 30.0  # ASan builds on 2 busy cores start slowly


def parse_args():
    """Reads --llmpin/--mock and leaves the rest to unittest."""
    global ARGS
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--llmpin", default=os.environ.get("LLMPIN_BIN", ""))
    p.add_argument("--mock", default=os.environ.get("LLMPIN_MOCK_BIN", ""))
    ARGS, rest = p.parse_known_args()
    # children run in their own temp folders: make the paths absolute
    ARGS.llmpin = os.path.abspath(ARGS.llmpin) if ARGS.llmpin else ""
    ARGS.mock = os.path.abspath(ARGS.mock) if ARGS.mock else ""
    sys.argv = [sys.argv[0]] + rest
    return ARGS


def main():
    parse_args()
    unittest.main(verbosity=2)


class Proc:
    """A child process that writes HOST:PORT to a ready file once listening.
    Its stderr goes to a file so tests can read the access log."""

    def __init__(self, argv, env=None, name="proc", tmp=None):
        self.tmp = tmp or tempfile.mkdtemp(prefix="llmpin-test-")
        self.ready_file = os.path.join(self.tmp, "ready")
        self.stderr_path = os.path.join(self.tmp, "stderr")
        self.name = name
        self.argv = list(argv) + ["--ready-file", self.ready_file]
        self.errf = open(self.stderr_path, "wb")
        full_env = dict(os.environ)
        # A leak report at exit would only hide the test's own result.
        full_env.setdefault("ASAN_OPTIONS", "detect_leaks=0")
        if env:
            full_env.update(env)
        # cwd is the private temp folder: files a process makes with a
        # relative path (a drift database...) never land in the build tree.
        self.p = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL,
                                  stdout=subprocess.DEVNULL, stderr=self.errf,
                                  env=full_env, cwd=self.tmp)
        try:
            self.addr = self._wait_ready()
        except AssertionError:
            self.kill()
            shutil.rmtree(self.tmp, ignore_errors=True)
            raise
        host, port = self.addr.rsplit(":", 1)
        self.host, self.port = host, int(port)

    def _wait_ready(self):
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if self.p.poll() is not None:
                raise AssertionError("%s exited with %d before it was ready: %s\n%s" % (
                    self.name, self.p.returncode, " ".join(self.argv), self.stderr()))
            try:
                with open(self.ready_file) as f:
                    text = f.read()
                if text.endswith("\n") and ":" in text:
                    return text.strip()
            except FileNotFoundError:
                pass
            time.sleep(0.02)
        self.kill()
        raise AssertionError("%s not ready within %.0f s: %s\n%s" % (
            self.name, READY_TIMEOUT, " ".join(self.argv), self.stderr()))

    def stderr(self):
        self.errf.flush()
        try:
            with open(self.stderr_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def terminate(self, timeout=10.0):
        """SIGTERM and wait; returns the exit status (None if it had to be
        killed)."""
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                return self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                return None
        return self.p.returncode

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
            try:
                self.p.wait(5)
            except subprocess.TimeoutExpired:
                pass
        try:
            self.errf.close()
        except OSError:
            pass

    def stop(self):
        self.terminate(5.0)
        self.kill()
        shutil.rmtree(self.tmp, ignore_errors=True)


class Mock(Proc):
    def __init__(self, *extra, env=None):
        if not ARGS or not ARGS.mock:
            raise unittest.SkipTest("no --mock given")
        super().__init__([ARGS.mock, "--listen", "127.0.0.1:0"] + list(extra),
                         env=env, name="mock")

    @property
    def base_url(self):
        return "http://%s/v1" % self.addr

    def stats(self):
        st, _, body = request(self.addr, "GET", "/_mock/stats")
        assert st == 200, body
        return json.loads(body)

    def config(self, **kw):
        st, _, body = request(self.addr, "POST", "/_mock/config", kw)
        assert st == 200, body
        return json.loads(body)

    def reset(self):
        st, _, body = request(self.addr, "POST", "/_mock/reset", {})
        assert st == 200, body
        return json.loads(body)


class Llmpin(Proc):
    """llmpin serve, either with --upstream flags or with a config dict that
    is written to a temporary file."""

    def __init__(self, upstream=None, config=None, extra=(), env=None):
        if not ARGS or not ARGS.llmpin:
            raise unittest.SkipTest("no --llmpin given")
        argv = [ARGS.llmpin, "serve"]
        tmp = tempfile.mkdtemp(prefix="llmpin-test-")
        if upstream is not None and config is None and os.environ.get("LLMPIN_TEST_HTTP_CLIENT"):
            # the quick start's forwarding, as a config, so the client choice applies
            config = _config_doc({"upstream": _upstream_doc(upstream)},
                                 [{"name": "default", "match": "*", "targets": [{"upstream": "upstream"}]}])
        self.config_path = None
        if config is not None:
            config = dict(config)
            config.setdefault("drift", {"db_path": os.path.join(tmp, "drift.db")})
            self.config_path = os.path.join(tmp, "config.json")
            with open(self.config_path, "w") as f:
                json.dump(config, f, indent=2)
            argv += ["--config", self.config_path]
        else:
            argv += ["--listen", "127.0.0.1:0", "--upstream", upstream]
        argv += list(extra)
        super().__init__(argv, env=env, name="llmpin", tmp=tmp)

    def log_lines(self):
        """The JSON access-log lines written so far (other lines skipped)."""
        out = []
        for line in self.stderr().splitlines():
            line = line.strip()
            if not line.startswith("{"):
                continue
            try:
                doc = json.loads(line)
            except ValueError:
                continue
            if isinstance(doc, dict) and "path" in doc and "status" in doc:
                out.append(doc)
        return out

    def metrics(self):
        st, h, body = request(self.addr, "GET", "/metrics")
        assert st == 200, (st, body)
        return body.decode()


def config(upstreams, routes, keys=None, server=None):
    """A config document in the format of docs/configuration.md."""
    srv = {"listen": "127.0.0.1:0"}
    if server:
        srv.update(server)
    doc = {"server": srv, "upstreams": upstreams, "routes": routes}
    if keys is not None:
        doc["keys"] = keys
    return doc


def upstream(base_url, api_key_env=None, timeouts=None):
    """timeouts: {"connect", "first_byte", "idle", "total"} as durations
    such as "500ms" or "10s"."""
    u = {"base_url": base_url}
    # LLMPIN_TEST_HTTP_CLIENT=libcurl runs a suite on the libcurl client
    # instead of the built-in one (CMakeLists registers such runs)
    if os.environ.get("LLMPIN_TEST_HTTP_CLIENT"):
        u["http_client"] = os.environ["LLMPIN_TEST_HTTP_CLIENT"]
    if api_key_env:
        u["api_key_env"] = api_key_env
    if timeouts:
        u["timeouts"] = timeouts
    return u


# Llmpin's parameters shadow these two names
_config_doc, _upstream_doc = config, upstream


# ---- HTTP ---------------------------------------------------------------------

def _split(addr):
    host, port = addr.rsplit(":", 1)
    return host, int(port)


def connect(addr, timeout=30.0):
    host, port = _split(addr)
    return http.client.HTTPConnection(host, port, timeout=timeout)


def _encode(body):
    if body is None:
        return None
    if isinstance(body, (bytes, bytearray)):
        return bytes(body)
    if isinstance(body, str):
        return body.encode()
    return json.dumps(body).encode()


def request(addr, method, path, body=None, headers=None, conn=None, timeout=30.0):
    """One request; returns (status, headers with lowercase names, body bytes).
    Uses conn when given (keep-alive), else a fresh connection."""
    own = conn is None
    c = conn or connect(addr, timeout)
    h = {"Content-Type": "application/json"} if body is not None else {}
    if headers:
        h.update(headers)
    try:
        c.request(method, path, body=_encode(body), headers=h)
        r = c.getresponse()
        data = r.read()
        hdrs = {k.lower(): v for k, v in r.getheaders()}
        return r.status, hdrs, data
    finally:
        if own:
            c.close()


def post_json(addr, path, body, headers=None, conn=None, timeout=30.0):
    st, h, data = request(addr, "POST", path, body, headers, conn, timeout)
    try:
        doc = json.loads(data) if data else None
    except ValueError:
        doc = None
    return st, h, doc, data


class SSE:
    """A streaming request read event by event. events holds
    (monotonic time, data string) pairs; ended tells whether the body ended
    cleanly (terminal chunk seen) rather than by an error."""

    def __init__(self, addr, path, body, headers=None, timeout=30.0):
        self.conn = connect(addr, timeout)
        h = {"Content-Type": "application/json", "Accept": "text/event-stream"}
        if headers:
            h.update(headers)
        self.t0 = time.monotonic()
        self.conn.request("POST", path, body=_encode(body), headers=h)
        self.resp = self.conn.getresponse()
        self.status = self.resp.status
        self.headers = {k.lower(): v for k, v in self.resp.getheaders()}
        self.events = []
        self.error = None

    def next_event(self):
        """Returns the next data payload (str), or None at the end of the
        body. Network errors are stored in self.error and end the stream."""
        data = []
        while True:
            try:
                line = self.resp.readline()
            except (OSError, http.client.HTTPException) as e:
                self.error = e
                return None
            if not line:
                if data:
                    break
                return None
            line = line.decode("utf-8").rstrip("\r\n")
            if line == "":
                if data:
                    break
                continue
            if line.startswith(":"):
                continue
            if line.startswith("data:"):
                v = line[5:]
                data.append(v[1:] if v.startswith(" ") else v)
        payload = "\n".join(data)
        self.events.append((time.monotonic(), payload))
        return payload

    def read_all(self):
        while self.next_event() is not None:
            pass
        return [e[1] for e in self.events]

    def close(self):
        try:
            self.conn.sock and self.conn.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.conn.close()


def json_events(payloads):
    """The JSON chunks of a stream (everything but [DONE])."""
    return [json.loads(p) for p in payloads if p != "[DONE]"]


def chat(model, text="hello there", **extra):
    body = {"model": model, "messages": [{"role": "user", "content": text}]}
    body.update(extra)
    return body


def metric_samples(text, name):
    """[(labels dict, value)] of one metric in Prometheus text format."""
    out = []
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        rest = line[len(name):]
        labels = {}
        if rest.startswith("{"):
            end = rest.index("}")
            for part in _split_labels(rest[1:end]):
                k, v = part.split("=", 1)
                labels[k.strip()] = v.strip().strip('"')
            rest = rest[end + 1:]
        elif not rest.startswith(" "):
            continue  # a longer metric name with this prefix
        out.append((labels, float(rest.split()[0])))
    return out


def _split_labels(s):
    parts, cur, q = [], "", False
    for ch in s:
        if ch == '"':
            q = not q
        if ch == "," and not q:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    if cur.strip():
        parts.append(cur)
    return parts


def wait_until(pred, timeout=5.0, step=0.05):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() >= deadline:
            return v
        time.sleep(step)


def free_port():
    """A port with nothing listening (bound then released)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class ProcTestCase(unittest.TestCase):
    """A TestCase whose started processes are always stopped."""

    def mock(self, *extra, env=None):
        m = Mock(*extra, env=env)
        self.addCleanup(m.stop)
        return m

    def llmpin(self, upstream=None, config=None, extra=(), env=None):
        p = Llmpin(upstream=upstream, config=config, extra=extra, env=env)
        self.addCleanup(p.stop)
        return p

    def assertError(self, status, doc, want_status, code=None, param=None):
        """OpenAI error shape with the given status, code and param."""
        self.assertEqual(status, want_status, doc)
        self.assertIsInstance(doc, dict, "error body is not JSON")
        self.assertIn("error", doc)
        err = doc["error"]
        for k in ("message", "type", "param", "code"):
            self.assertIn(k, err, "error object lacks %r: %r" % (k, err))
        self.assertIsInstance(err["message"], str)
        self.assertTrue(err["message"])
        if code is not None:
            self.assertEqual(err["code"], code, err)
        if param is not None:
            self.assertEqual(err["param"], param, err)
        return err
