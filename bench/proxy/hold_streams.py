#!/usr/bin/env python3
"""hold_streams.py - open N concurrent SSE streams through a proxy and hold
them, then report the proxy's memory (VmRSS from /proc/PID/status).

Each stream asks for model "mock-forever" (the mock sends a chunk every
500 ms until the client leaves), so all N streams are live, not idle, while
the memory is read. Standard library only (asyncio).

usage: hold_streams.py --addr HOST:PORT --pid PROXY_PID [--n 1000]
                       [--mock HOST:PORT] [--hold 3]
Prints one "key=value" line per figure; exits 1 if not every stream opened.
"""
import argparse
import asyncio
import json
import sys
import time
import urllib.request


def vm(pid, field):
    """A /proc/PID/status field in KiB (VmRSS, VmHWM), or -1."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return -1


class Stream:
    def __init__(self):
        self.events = 0
        self.first = asyncio.get_running_loop().create_future()
        self.writer = None
        self.error = None


async def run_stream(host, port, body, st):
    try:
        reader, writer = await asyncio.open_connection(host, port)
        st.writer = writer
        writer.write(b"POST /v1/chat/completions HTTP/1.1\r\nHost: %s\r\n"
                     b"Content-Type: application/json\r\nAccept: text/event-stream\r\n"
                     b"Content-Length: %d\r\n\r\n" % (host.encode(), len(body)) + body)
        await writer.drain()
        status = await reader.readline()
        if b" 200 " not in status:
            raise RuntimeError("status line %r" % status)
        while True:
            line = await reader.readline()
            if not line:
                raise RuntimeError("stream ended")
            if line.startswith(b"data:"):
                st.events += 1
                if not st.first.done():
                    st.first.set_result(True)
    except asyncio.CancelledError:
        raise
    except Exception as e:  # noqa: BLE001 - reported in the summary
        st.error = e
        if not st.first.done():
            st.first.set_result(False)


def mock_stats(addr):
    with urllib.request.urlopen("http://%s/_mock/stats" % addr, timeout=10) as r:
        return json.loads(r.read())


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--addr", required=True)
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--mock", default="")
    ap.add_argument("--hold", type=float, default=3.0)
    ap.add_argument("--batch", type=int, default=100)
    a = ap.parse_args()
    host, port = a.addr.rsplit(":", 1)
    body = json.dumps({"model": "mock-forever", "stream": True,
                       "messages": [{"role": "user", "content": "hold"}]}).encode()

    rss0 = vm(a.pid, "VmRSS")
    streams, tasks = [], []
    t0 = time.monotonic()
    # open in batches so the accept queue never overflows
    for i in range(0, a.n, a.batch):
        batch = [Stream() for _ in range(min(a.batch, a.n - i))]
        for st in batch:
            tasks.append(asyncio.create_task(run_stream(host, int(port), body, st)))
        streams += batch
        try:
            await asyncio.wait_for(asyncio.shield(asyncio.gather(*(st.first for st in batch))), 30)
        except asyncio.TimeoutError:
            print("timeout: batch at %d: only %d of %d streams have their first event" % (
                i, sum(1 for st in streams if st.first.done() and st.first.result()), len(streams)))
            break
    opened = sum(1 for st in streams if st.first.done() and st.first.result())
    t_open = time.monotonic() - t0
    before = [st.events for st in streams]
    await asyncio.sleep(a.hold)
    alive = sum(1 for st, b in zip(streams, before) if st.error is None and st.events > b)
    rss1 = vm(a.pid, "VmRSS")
    hwm = vm(a.pid, "VmHWM")
    ms = mock_stats(a.mock) if a.mock else None

    for st in streams:
        if st.writer:
            st.writer.close()
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    cancelled = None
    if a.mock:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            cancelled = mock_stats(a.mock)["streams_cancelled_by_client"]
            if cancelled >= opened:
                break
            await asyncio.sleep(0.2)
    rss2 = vm(a.pid, "VmRSS")

    print("streams_requested=%d" % a.n)
    print("streams_opened=%d" % opened)
    print("streams_alive_after_hold=%d" % alive)
    print("open_seconds=%.2f" % t_open)
    print("proxy_rss_before_kib=%d" % rss0)
    print("proxy_rss_holding_kib=%d" % rss1)
    print("proxy_rss_after_close_kib=%d" % rss2)
    print("proxy_vmhwm_kib=%d" % hwm)
    if opened:
        print("proxy_kib_per_stream=%.1f" % ((rss1 - rss0) / opened))
    if ms is not None:
        print("mock_streams_started=%d" % ms["streams_started"])
        print("mock_streams_cancelled_after_close=%d" % cancelled)
    errors = [repr(st.error) for st in streams if st.error][:3]
    if errors:
        print("first_errors=%s" % "; ".join(errors))
    return 0 if opened == a.n and alive == a.n else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
