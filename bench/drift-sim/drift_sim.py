#!/usr/bin/env python3
"""drift_sim.py - drift detection measured end to end: mock upstream ->
llmpin (real binary) -> drift db.

Why: bench/drift measures the detectors in-process with a simulated model;
this runs the whole path a user runs (HTTP, the proxy, the probe scheduler,
the recorder) against the mock upstream, whose changes are scheduled:

  1. version: the mock's system_fingerprint changes after N requests
     (--fingerprint-change-at N), so response N+1 is the first changed one.
     Client requests are sent one at a time; after each, /metrics is read.
     Figure: the request at which llmpin_drift_events_total{kind="version"}
     went up, against N+1 (target: equal).
  2. accuracy: the mock answers "Is N a prime number?" correctly until M
     requests were served (--accuracy-change-at M), then always "[Yes]"
     (accuracy 100% -> 50% on builtin:primes, half primes). llmpin runs the
     builtin:primes suite as a scheduled probe (baseline 100 probes). Figure:
     probes after M until the first probe alarm (target: <= 60).
  3. false alarms: a stable mock probed through llmpin for --stable probes
     (the mock is deterministic, so any alarm here is a false one), plus the
     stochastic long run of llmpin-bench-drift (84% accuracy, Bernoulli) when
     that program is given (target: <= 1 per 10,000 probes).

Prints the figures; asserts nothing (figures go in issue notes).
"""
import argparse
import json
import os
import sqlite3
import subprocess
import sys
import atexit
import shutil
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))
import harness as H  # noqa: E402



def _tmpdir():
    """A scratch folder removed when the script exits."""
    d = tempfile.mkdtemp(prefix="drift-sim-")
    atexit.register(shutil.rmtree, d, True)
    return d

def rows(db, sql, args=()):
    con = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=10)
    try:
        return con.execute(sql, args).fetchall()
    except sqlite3.OperationalError:
        return []
    finally:
        con.close()


def is_prime(n):
    if n < 2:
        return False
    d = 2
    while d * d <= n:
        if n % d == 0:
            return False
        d += 1
    return True


def write_primes_suite(path, each=500, seed=1):
    """The shape of builtin:primes (Chen, Zaharia & Zou's prompt; 500 primes
    and 500 composites in 1,000..20,000, shuffled) as a JSONL file. A file,
    because config/ does not accept "builtin:primes" as a probe path (only
    builtin:default), although drift/ provides it."""
    import random
    rnd = random.Random(seed)
    primes = [n for n in range(1000, 20001) if is_prime(n)]
    comps = [n for n in range(1000, 20001) if not is_prime(n) and n % 2]  # odd: not trivially even
    nums = rnd.sample(primes, each) + rnd.sample(comps, each)
    rnd.shuffle(nums)
    with open(path, "w") as f:
        for n in nums:
            f.write(json.dumps({
                "id": "prime-%05d" % n,
                "messages": [{"role": "user", "content": "Is %d a prime number? Think step by step"
                              " and then answer \"[Yes]\" or \"[No]\"." % n}],
                "params": {"temperature": 0},
                "expect": {"yesno": "yes" if is_prime(n) else "no"}}) + "\n")
    return path


def llmpin_cfg(mock, db, probes=None):
    d = {"server": {"listen": "127.0.0.1:0", "access_log": "off", "log_level": "warn"},
         "upstreams": {"mock": {"base_url": mock.base_url}},
         # the route's name equals the model it matches: a probe target is
         # validated as a route name and sent as a model name
         "routes": [{"name": "sim", "match": "sim", "targets": ["mock"]}],
         "drift": {"db_path": db, "commit_interval": "50ms"}}
    if probes:
        d["drift"]["probes"] = probes
        d["drift"]["baseline_probes"] = 100
    return d


def version_events(p):
    return sum(v for l, v in H.metric_samples(p.metrics(), "llmpin_drift_events_total")
               if l.get("kind") == "version")


def phase_version(n, total):
    m = H.Mock("--fingerprint", "fp_sim", "--fingerprint-change-at", str(n))
    tmp = _tmpdir()
    p = H.Llmpin(config=llmpin_cfg(m, os.path.join(tmp, "v.db")))
    try:
        conn = H.connect(p.addr)
        flagged, first_changed = None, None
        for i in range(1, total + 1):
            st, h, d, raw = H.post_json(p.addr, "/v1/chat/completions",
                                        H.chat("sim", "request %d" % i), conn=conn)
            if st != 200:
                raise SystemExit("request %d: HTTP %d %r" % (i, st, raw[:200]))
            if first_changed is None and d.get("system_fingerprint") != "fp_sim":
                first_changed = i
            if flagged is None and version_events(p) > 0:
                flagged = i
        events = version_events(p)
        return first_changed, flagged, events
    finally:
        p.stop()
        m.stop()


def alarms(db):
    return rows(db, "SELECT ts_ms, kind, summary, evidence FROM drift_events"
                    " WHERE kind IN ('accuracy', 'answer_change') ORDER BY id")


def probe_records(db):
    return rows(db, "SELECT ts_ms, probe_correct FROM drift_records WHERE is_probe = 1 ORDER BY id")


def phase_accuracy(m_at, timeout):
    m = H.Mock("--accuracy-change-at", str(m_at))
    tmp = _tmpdir()
    db = os.path.join(tmp, "a.db")
    suite = write_primes_suite(os.path.join(tmp, "primes.jsonl"))
    p = H.Llmpin(config=llmpin_cfg(m, db, [{"name": "primes", "path": suite,
                                             "targets": ["sim"], "interval": 3600}]))
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not alarms(db):
            time.sleep(0.2)
        time.sleep(0.3)  # let the writer commit the records around the alarm
        al = alarms(db)
        recs = probe_records(db)
        if not al:
            return None, len(recs), None
        ts, kind, summary, evidence = al[0]
        # the alarm event carries the timestamp of the probe record that raised it
        idx = max(i + 1 for i, r in enumerate(recs) if r[0] <= ts)
        return (idx, kind, summary, json.loads(evidence)), len(recs), m.stats()["requests"]
    finally:
        p.stop()
        m.stop()


def phase_stable(n_probes, timeout):
    m = H.Mock()
    tmp = _tmpdir()
    db = os.path.join(tmp, "s.db")
    suite = write_primes_suite(os.path.join(tmp, "primes.jsonl"))
    p = H.Llmpin(config=llmpin_cfg(m, db, [{"name": "primes", "path": suite,
                                             "targets": ["sim"], "interval": 1}]))
    t0 = time.monotonic()
    try:
        n = 0
        while time.monotonic() - t0 < timeout:
            n = rows(db, "SELECT COUNT(*) FROM drift_records WHERE is_probe = 1")
            n = n[0][0] if n else 0
            if n >= n_probes:
                break
            time.sleep(0.5)
        return n, len(alarms(db)), time.monotonic() - t0
    finally:
        p.stop()
        m.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--llmpin", required=True)
    ap.add_argument("--mock", required=True)
    ap.add_argument("--bench-drift", default="", help="llmpin-bench-drift for the long stochastic run")
    ap.add_argument("--fp-change", type=int, default=300, help="N: mock fingerprint changes after N requests")
    ap.add_argument("--requests", type=int, default=400, help="client requests in the version phase")
    ap.add_argument("--acc-change", type=int, default=400, help="M: mock accuracy changes after M requests")
    ap.add_argument("--stable", type=int, default=10000, help="probes through llmpin in the stable run")
    ap.add_argument("--bench-stable", type=int, default=1000000, help="probes in llmpin-bench-drift's stable run")
    ap.add_argument("--timeout", type=float, default=600)
    a = ap.parse_args()
    sys.argv = [sys.argv[0], "--llmpin", a.llmpin, "--mock", a.mock]
    H.parse_args()

    print("drift-sim: mock upstream -> llmpin -> drift db")
    print()
    first, flagged, events = phase_version(a.fp_change, a.requests)
    print("1. version drift (mock --fingerprint-change-at %d, %d requests)" % (a.fp_change, a.requests))
    print("   first changed response:   request %s (expected %d)" % (first, a.fp_change + 1))
    print("   version event raised on:  request %s" % flagged)
    if first and flagged:
        print("   delay: %d requests (target 0); version events in total: %d (target 1)"
              % (flagged - first, events))
    print()

    res, n_recs, mock_reqs = phase_accuracy(a.acc_change, a.timeout)
    print("2. accuracy drift (mock --accuracy-change-at %d, 1,000 prime questions as in builtin:primes, baseline 100)"
          % a.acc_change)
    if res is None:
        print("   NO ALARM within %.0f s (%d probe records)" % (a.timeout, n_recs))
    else:
        idx, kind, summary, ev = res
        print("   first alarm: probe %d (kind %s, chart %s)" % (idx, kind, ev.get("chart")))
        print("   probes after the change until the alarm: %d (target <= 60; +-1: records"
              " are matched to the alarm by millisecond timestamp)" % (idx - a.acc_change))
        print("   detector's own change-point estimate: %d probes before the alarm"
              % ev.get("probes_since_change", -1))
        print("   summary: %s" % summary)
        if idx <= a.acc_change:
            print("   (the alarm came BEFORE the change: a false alarm)")
    print()

    n, fa, secs = phase_stable(a.stable, a.timeout)
    print("3. false alarms")
    print("   through llmpin, stable mock: %d alarms in %d probes (%.0f s, %.0f probes/s)"
          % (fa, n, secs, n / secs if secs else 0))
    print("   (the mock is deterministic: 100% correct, so this checks the plumbing, not the"
          " statistics)")
    if a.bench_drift:
        out = subprocess.run([a.bench_drift, "--suite", "builtin:primes", "--trials", "200",
                              "--stable", str(a.bench_stable), "--records", "1000"],
                             capture_output=True, text=True)
        print("   llmpin-bench-drift (Bernoulli 84%%, %d stable probes, in-process detectors):"
              % a.bench_stable)
        for line in out.stdout.splitlines():
            print("     " + line)
        if out.returncode:
            print("     (exit %d) %s" % (out.returncode, out.stderr.strip()))


if __name__ == "__main__":
    main()
