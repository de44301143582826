#!/usr/bin/env python3
"""soak.py - llmpin under a long mixed load, and killed under load.

Not part of CI (it runs for minutes). Three runs, each against a fresh
llmpin and mock upstream on loopback:

  soak   N mixed requests (default 1,000,000) from C keep-alive clients:
         non-stream and stream chat, fallbacks (mock-500 -> second upstream),
         upstream errors passed through (no fallback), duplicate-key bodies
         refused, clients that leave mid-stream. Every 5 s llmpin's RSS and
         open descriptors are sampled; at the end the samples, the outcome
         counts and the RSS/fd growth over the second half are printed.
  sigterm  load, then SIGTERM: every request a client saw answered 200 must
         be in the drift record (drift_records.request_id) - 0 lost.
  sigkill  load, then SIGKILL: how many answered requests are missing from
         the record (at most the commit interval's worth).

  bench/soak/soak.py --llmpin build/llmpin --mock build/tests/mock/llmpin-mock-upstream \
      [--requests 1000000] [--clients 8] [--only soak|sigterm|sigkill]
"""
import argparse
import http.client
import json
import os
import random
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "integration"))
import harness as H  # noqa: E402


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def n_fds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def start(tmp, mock_a, mock_b):
    cfg = {
        "server": {"listen": "127.0.0.1:0", "access_log": "off"},
        "upstreams": {"a": {"base_url": mock_a.base_url}, "b": {"base_url": mock_b.base_url}},
        "routes": [
            {"name": "fb", "match": "fb", "mode": "fallback", "retry": {"max_attempts": 1},
             "targets": [{"upstream": "a", "model": "mock-500"}, "b"]},
            {"name": "err", "match": "err", "targets": [{"upstream": "a", "model": "mock-500"}]},
            {"name": "long", "match": "long", "targets": [{"upstream": "a", "model": "mock-long"}]},
            {"name": "main", "match": "*", "targets": ["a"]},
        ],
        "breaker": {"consecutive_failures": 0, "min_requests": 1000000},
        "drift": {"db_path": os.path.join(tmp, "drift.db")},
    }
    path = os.path.join(tmp, "config.json")
    with open(path, "w") as f:
        json.dump(cfg, f)
    return H.Proc([H.ARGS.llmpin, "serve", "--config", path], name="llmpin", tmp=tmp)


class Load:
    """C client threads sending a mix until `total` requests were sent or
    stop is set. ok_ids holds the x-request-id of every 200 seen whole."""

    MIX = [("plain", 50), ("stream", 25), ("fallback", 10), ("error", 5), ("dupkey", 5), ("leave", 5)]

    def __init__(self, addr, total, clients):
        self.addr, self.total, self.clients = addr, total, clients
        self.sent = 0
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.counts = {}
        self.ok_ids = []
        self.failures = []
        kinds = []
        for k, w in self.MIX:
            kinds += [k] * w
        self.kinds = kinds

    def take(self):
        with self.lock:
            if self.stop.is_set() or self.sent >= self.total:
                return False
            self.sent += 1
            return True

    def count(self, key, rid=None):
        with self.lock:
            self.counts[key] = self.counts.get(key, 0) + 1
            if rid:
                self.ok_ids.append(rid)

    def one(self, conn, kind, rnd):
        text = "soak %d" % rnd.randrange(1000000)
        if kind == "dupkey":
            body = ('{"model":"a","messages":[{"role":"user","content":"%s"}],"model":"b"}' % text).encode()
        else:
            model = {"fallback": "fb", "error": "err", "leave": "long"}.get(kind, "mock-model")
            doc = {"model": model, "messages": [{"role": "user", "content": text}]}
            if kind in ("stream", "leave"):
                doc["stream"] = True
            body = json.dumps(doc).encode()
        conn.request("POST", "/v1/chat/completions", body=body, headers={"Content-Type": "application/json"})
        r = conn.getresponse()
        rid = r.getheader("x-request-id")
        if kind == "leave":
            r.read(200)  # a few events, then hang up
            return "left", None, True
        data = r.read()
        want = {"plain": 200, "stream": 200, "fallback": 200, "error": 500, "dupkey": 400}[kind]
        if r.status != want:
            return "bad_status_%d" % r.status, None, False
        if kind == "stream" and not data.rstrip().endswith(b"data: [DONE]"):
            return "stream_without_done", None, False
        return kind, rid if r.status == 200 else None, False

    def worker(self, seed):
        rnd = random.Random(seed)
        conn = H.connect(self.addr, timeout=30)
        while self.take():
            kind = rnd.choice(self.kinds)
            try:
                key, rid, drop = self.one(conn, kind, rnd)
            except (OSError, http.client.HTTPException) as e:
                if self.stop.is_set():
                    return
                key, rid, drop = "error_%s" % type(e).__name__, None, True
            self.count(key, rid)
            if drop:
                conn.close()
                conn = H.connect(self.addr, timeout=30)
        conn.close()

    def run(self):
        self.threads = [threading.Thread(target=self.worker, args=(i,), daemon=True) for i in range(self.clients)]
        for t in self.threads:
            t.start()

    def join(self):
        for t in self.threads:
            t.join()


def records(db):
    con = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=30)
    try:
        return {r[0] for r in con.execute("SELECT request_id FROM drift_records WHERE status = 200")}
    finally:
        con.close()


def soak(args):
    tmp = tempfile.mkdtemp(prefix="llmpin-soak-")
    a, b = H.Mock(), H.Mock()
    p = start(tmp, a, b)
    try:
        load = Load(p.addr, args.requests, args.clients)
        t0 = time.monotonic()
        load.run()
        samples = []
        while any(t.is_alive() for t in load.threads):
            samples.append((time.monotonic() - t0, load.sent, rss_kib(p.p.pid), n_fds(p.p.pid)))
            print("  t=%6.0fs  sent=%8d  rss=%7d KiB  fds=%5d" % samples[-1], flush=True)
            for _ in range(50):
                if not any(t.is_alive() for t in load.threads):
                    break
                time.sleep(0.1)
        load.join()
        dt = time.monotonic() - t0
        samples.append((dt, load.sent, rss_kib(p.p.pid), n_fds(p.p.pid)))
        half = [s for s in samples if s[1] >= load.sent / 2] or samples
        print("soak: %d requests in %.0f s (%.0f req/s) with %d clients" % (load.sent, dt, load.sent / dt, args.clients))
        print("  outcomes: %s" % json.dumps(dict(sorted(load.counts.items()))))
        print("  second half: RSS %d -> %d KiB (x%.3f), fds %d -> %d" % (
            half[0][2], half[-1][2], half[-1][2] / max(1, half[0][2]), half[0][3], half[-1][3]))
        bad = {k: v for k, v in load.counts.items() if k.startswith(("bad_", "error_", "stream_without"))}
        print("  wrong answers: %d %s" % (sum(bad.values()), json.dumps(bad) if bad else ""))
        return 0 if not bad else 1
    finally:
        p.stop()
        a.stop()
        b.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def crash(args, sig):
    tmp = tempfile.mkdtemp(prefix="llmpin-crash-")
    a, b = H.Mock(), H.Mock()
    p = start(tmp, a, b)
    try:
        load = Load(p.addr, 10 ** 9, args.clients)
        load.run()
        time.sleep(args.crash_after)
        with load.lock:
            answered = list(load.ok_ids)  # seen whole before the signal
        p.p.send_signal(sig)
        load.stop.set()
        rc = p.p.wait(60)
        load.join()
        rec = records(os.path.join(tmp, "drift.db"))
        lost = [i for i in answered if i not in rec]
        name = "SIGTERM" if sig == signal.SIGTERM else "SIGKILL"
        print("%s after %.0f s of load: exit %d, %d answers seen by clients before the signal, %d recorded "
              "(status 200), %d lost" % (name, args.crash_after, rc, len(answered), len(rec), len(lost)))
        return 0 if sig == signal.SIGKILL or not lost else 1
    finally:
        p.kill()
        a.stop()
        b.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--llmpin", required=True)
    ap.add_argument("--mock", required=True)
    ap.add_argument("--requests", type=int, default=1000000)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--crash-after", type=float, default=20.0)
    ap.add_argument("--only", choices=["soak", "sigterm", "sigkill"])
    args = ap.parse_args()
    H.ARGS = argparse.Namespace(llmpin=os.path.abspath(args.llmpin), mock=os.path.abspath(args.mock))
    rc = 0
    if args.only in (None, "soak"):
        rc |= soak(args)
    if args.only in (None, "sigterm"):
        rc |= crash(args, signal.SIGTERM)
    if args.only in (None, "sigkill"):
        rc |= crash(args, signal.SIGKILL)
    sys.exit(rc)


if __name__ == "__main__":
    main()
