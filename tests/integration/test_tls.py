"""test_tls.py - https upstreams: certificates are verified, ca_file and
tls_verify do what the docs say, and answers (plain and streamed) come
through.

Why: https upstreams (OpenAI, Azure, OpenRouter...) are served by libcurl,
while plain http goes to llmpin's own client; this is the suite that keeps
the https side honest. A throw-away CA and a server certificate for
127.0.0.1 and localhost are made with the openssl command line tool; the
upstream is test_upstream_http's scripted raw server behind Python's ssl.
"""
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
import unittest

import harness as H
from test_upstream_http import RawUpstream, route_to


def make_certs(d):
    """CA + server certificate (SAN 127.0.0.1, localhost) + a second,
    unrelated CA. Returns paths."""
    def run(*args):
        subprocess.run(["openssl"] + list(args), cwd=d, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
        "-days", "2", "-subj", "/CN=llmpin test CA")
    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "other.key", "-out", "other.pem",
        "-days", "2", "-subj", "/CN=some other CA")
    with open(os.path.join(d, "san.ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n")
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
        "-subj", "/CN=127.0.0.1")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", "server.pem", "-days", "2", "-extfile", "san.ext")
    # signed by the right CA, but for another name
    with open(os.path.join(d, "wrong.ext"), "w") as f:
        f.write("subjectAltName=DNS:not-this-host.example\nbasicConstraints=CA:FALSE\n")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", "wrong.pem", "-days", "2", "-extfile", "wrong.ext")
    return ({k: os.path.join(d, k + ".pem") for k in ("ca", "other", "server", "wrong")},
            os.path.join(d, "server.key"))


class TlsUpstream(RawUpstream):
    """RawUpstream whose connections are TLS."""

    def __init__(self, certfile, keyfile):
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(certfile, keyfile)
        super().__init__()

    def _serve(self, c):
        try:
            c = self.ctx.wrap_socket(c, server_side=True)
        except (ssl.SSLError, OSError):
            c.close()  # the client refused our certificate
            return
        super()._serve(c)


@unittest.skipUnless(shutil.which("openssl"), "needs the openssl command line tool")
class TlsTest(H.ProcTestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="llmpin-tls-")
        cls.pems, cls.key = make_certs(cls.dir)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    def upstream(self, cert="server"):
        up = TlsUpstream(self.pems[cert], self.key)
        self.addCleanup(up.close)
        return up

    def start(self, up, host="127.0.0.1", **extra):
        cfg = route_to("https://%s:%d/v1" % (host, up.port))
        cfg["upstreams"]["raw"].update(extra)
        return self.llmpin(config=cfg, extra=["--no-drift"])

    def chat(self, p, model="cl"):
        return H.post_json(p.addr, "/v1/chat/completions", H.chat(model))

    def test_unknown_ca_refused(self):
        p = self.start(self.upstream())
        st, h, doc, raw = self.chat(p)
        err = self.assertError(st, doc, 502, code="upstream_unreachable")
        self.assertRegex(err["message"].lower(), "certificate|ssl|tls")

    def test_other_ca_refused(self):
        p = self.start(self.upstream(), ca_file=self.pems["other"])
        st, h, doc, raw = self.chat(p)
        self.assertError(st, doc, 502, code="upstream_unreachable")

    def test_ca_file_trusted_and_connection_kept(self):
        up = self.upstream()
        p = self.start(up, ca_file=self.pems["ca"])
        for model, text in (("cl", "content length"), ("chunked", "chunked body"), ("cl", "content length")):
            st, h, doc, raw = self.chat(p, model)
            self.assertEqual(st, 200, raw)
            self.assertEqual(doc["choices"][0]["message"]["content"], text)
        self.assertEqual(up.connections, 1, "the TLS connection is reused")
        # https is libcurl's: the built-in client holds nothing
        self.assertEqual(H.metric_samples(p.metrics(), "llmpin_upstream_connections"), [({}, 0.0)])

    def test_stream_over_tls(self):
        p = self.start(self.upstream(), ca_file=self.pems["ca"])
        s = H.SSE(p.addr, "/v1/chat/completions", H.chat("sse-chunked", stream=True))
        evs = s.read_all()
        s.close()
        self.assertEqual(s.status, 200)
        self.assertEqual(evs[-1], "[DONE]")
        self.assertEqual(len(evs), 4)

    def test_name_checked(self):
        # the certificate names 127.0.0.1 and localhost: reach it as "localhost" works
        up = self.upstream()
        p = self.start(up, host="localhost", ca_file=self.pems["ca"])
        st, h, doc, raw = self.chat(p)
        self.assertEqual(st, 200, raw)

    def test_name_mismatch_refused(self):
        p = self.start(self.upstream(cert="wrong"), ca_file=self.pems["ca"])
        st, h, doc, raw = self.chat(p)
        self.assertError(st, doc, 502, code="upstream_unreachable")

    def test_tls_verify_false_accepts_anything(self):
        p = self.start(self.upstream(), tls_verify=False)
        st, h, doc, raw = self.chat(p)
        self.assertEqual(st, 200, raw)


if __name__ == "__main__":
    H.main()
