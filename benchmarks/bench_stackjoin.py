"""What joining the slow-request stacks onto the history costs, on read only.

The history API gives each request record its ``stack`` and each exit's
``doing`` its own (README: Stacks) by reading the slow-stack files when it
answers: nothing is added to the request path. Two cases, each joined onto
the 500 requests an answer holds and 2,048 exits: a busy server (16
processes with 3 stacks each, 80 frames deep) and the worst the bounds
allow: 64 files (``SLOW_FILES_KEPT``) of 20 stacks (``SLOW_KEPT``) each,
100 frames deep (13 MB of JSON to parse). Goal: under the history answer's
100 ms.

    python benchmarks/bench_stackjoin.py [--runs 15]
"""

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT)]

from worker_inspector.engine import stacks
from worker_inspector.engine.board import open_server_dir

GOAL_MS = 100.0
CASES = (("busy server", 16, 3, 80), ("worst case", stacks.SLOW_FILES_KEPT, stacks.SLOW_KEPT, 100))


def fill(base, now, processes, kept, depth):
    """Slow-stack files of ``processes`` processes, ``kept`` stacks each; the requests and exits they match."""
    frames = [
        {"file": f"odoo/module_{i}.py", "line": i, "function": f"function_{i}", "code": "x = y(z)", "origin": "odoo"}
        for i in range(depth)
    ]
    dir_fd = open_server_dir(os.getpid(), base, create=True)
    requests, exits = [], []
    try:
        for p in range(processes):
            pid, entries = 100000 + p, []
            for i in range(kept):
                started = now - 3000 + p * 40 + i * 2
                url = f"/web/dataset/call_kw/model_{i}/method"
                entries.append(
                    {"kind": "http", "url": url, "db": "prod", "login": "admin", "started_at": started,
                     "native_id": pid, "pid": pid, "taken_at": started + 10, "elapsed": 10.0, "stack": frames}
                )  # fmt: skip
                requests.append(
                    {"pid": pid, "kind": "http", "started_at": started, "duration": 12.0, "url": url, "cron_job": None}
                )
            stacks._write_private(dir_fd, f"{pid}-1{stacks.SLOW_SUFFIX}", json.dumps(entries).encode())
            doing = {"url": entries[-1]["url"], "cron_job": None, "elapsed": 20.0}
            exits.append({"pid": pid, "ended_at": entries[-1]["started_at"] + 20.0, "doing": doing})
    finally:
        os.close(dir_fd)
    exits += [{"pid": 1, "ended_at": now, "doing": {"url": "/odoo", "cron_job": None, "elapsed": 1.0}}] * (
        2048 - len(exits)
    )
    requests += [
        {"pid": 100000 + i % processes, "kind": "http", "started_at": now - i, "duration": 1.0, "url": "/odoo"}
        for i in range(500 - len(requests))
    ]
    return requests[:500], exits


def join_ms(base, requests, exits):
    started = time.perf_counter()
    pids = {r["pid"] for r in requests} | {e["pid"] for e in exits}
    entries = stacks.read_slow(os.getpid(), base=base, pids=pids)
    stacks.join_request_stacks(requests, entries)
    stacks.join_exit_stacks(exits, entries)
    return (time.perf_counter() - started) * 1000, entries


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=15)
    opts = parser.parse_args()
    for label, processes, kept, depth in CASES:
        with tempfile.TemporaryDirectory() as base:
            requests, exits = fill(base, time.time(), processes, kept, depth)
            costs = []
            for _ in range(opts.runs):
                fresh = [dict(r) for r in requests], [{**e, "doing": dict(e["doing"])} for e in exits]
                cost, entries = join_ms(base, *fresh)
                costs.append(cost)
            joined = sum(1 for r in fresh[0] if r["stack"])
            median = statistics.median(costs)
            print(
                f"stack join on read, {label}: {len(entries)} kept stacks ({depth} frames) onto {len(requests)} "
                f"requests ({joined} joined) and {len(exits)} exits: median {median:.1f} ms over {opts.runs} runs "
                f"(goal < {GOAL_MS:.0f} ms: {'met' if median < GOAL_MS else 'MISSED'})"
            )


if __name__ == "__main__":
    main()
