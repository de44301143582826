"""e2e_common.py - what the end-to-end policy and drift tests share.

Why: the e2e tests drive the real llmpin binary against one or two mock
upstreams and sometimes the pinned local model (stories260K). They build
configs in the documented format, read the drift database that llmpin
writes, and poll for state that settles asynchronously (the drift writer
commits in batches). The process plumbing itself is the integration
harness (tests/integration/harness.py), imported unchanged.
"""
import json
import os
import shutil
import sqlite3
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))

import harness as H  # noqa: E402

MODELS = os.path.normpath(os.path.join(REPO, "..", "shared", "models"))
STORIES = os.path.join(MODELS, "stories260K.gguf")
STORIES_SHA = "78c4953cf6ef0e0dd7fc67daa5f89f5ece8f5de721d77e5ead669645a508f9ab"


def stories():
    """local_models entry for the pinned test model."""
    return {"path": STORIES, "sha256": STORIES_SHA, "threads": 1,
            "chat_template": "plain", "max_batch": 4}


def doc(upstreams, routes, keys=None, server=None, local=None, breaker=None,
        drift=None):
    d = H.config(upstreams, routes, keys=keys, server=server)
    if local:
        d["local_models"] = local
    if breaker:
        d["breaker"] = breaker
    if drift is not None:
        d["drift"] = drift
    return d


def up(base_url, **timeouts):
    """An upstream; timeouts as keyword durations (first_byte="300ms")."""
    return H.upstream(base_url, timeouts=timeouts or None)


def bearer(key):
    return {"Authorization": "Bearer " + key}


def db_rows(path, sql, args=()):
    """Rows of a query on the drift db (read-only; WAL lets us read while
    llmpin writes)."""
    if not os.path.exists(path):
        return []
    con = sqlite3.connect("file:%s?mode=ro" % path, uri=True, timeout=5)
    try:
        con.row_factory = sqlite3.Row
        return [dict(r) for r in con.execute(sql, args)]
    except sqlite3.OperationalError:
        return []  # schema not created yet
    finally:
        con.close()


def wait_rows(path, sql, args=(), n=1, timeout=10.0):
    """Poll until the query returns at least n rows; returns the rows."""
    rows = H.wait_until(lambda: (lambda r: r if len(r) >= n else None)(db_rows(path, sql, args)),
                        timeout=timeout, step=0.1)
    return rows or db_rows(path, sql, args)


def metric(text, name, **labels):
    """Sum of the samples of a metric whose labels include `labels`."""
    total = 0.0
    for lab, v in H.metric_samples(text, name):
        if all(lab.get(k) == str(val) for k, val in labels.items()):
            total += v
    return total


class E2ETestCase(H.ProcTestCase):
    """ProcTestCase with a private temp folder for dbs and probe files."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="llmpin-e2e-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.db = os.path.join(self.dir, "drift.db")

    def path(self, name):
        return os.path.join(self.dir, name)

    def chat(self, p, model, text="hello there", headers=None, **extra):
        st, h, d, raw = H.post_json(p.addr, "/v1/chat/completions",
                                    H.chat(model, text, **extra), headers=headers)
        return st, h, d, raw

    def assertServed(self, resp, target, content=None, fallback=None):
        st, h, d, raw = resp
        self.assertEqual(st, 200, raw)
        self.assertEqual(h.get("x-llmpin-target"), target, h)
        self.assertEqual(h.get("x-llmpin-fallback"), fallback, h)
        if content is not None:
            self.assertEqual(d["choices"][0]["message"]["content"], content)
        return d

    def admin(self, p, path, key=None, method="GET", body=None):
        st, h, raw = H.request(p.addr, method, path, body,
                               headers=bearer(key) if key else None)
        try:
            return st, json.loads(raw)
        except ValueError:
            return st, raw

    def target_state(self, p, name, key=None):
        st, targets = self.admin(p, "/admin/targets", key)
        self.assertEqual(st, 200, targets)
        for t in targets:
            if t["name"] == name:
                return t
        self.fail("no target %r in /admin/targets: %r" % (name, targets))


def main():
    H.main()
