"""What a snapshot costs next to reading the same processes with psutil.

Goal (issue: walking skeleton): one snapshot of a server with 16 HTTP
workers costs at most about twice what reading those processes' /proc
entries with psutil costs. Both are measured side by side, interleaved, in
one run on a real process tree shaped like an Odoo prefork server (master,
16 titled HTTP workers, 2 niced cron workers, a gevent process), each worker
publishing a busy request or scheduled action on the activity board, which
the snapshot reads too.

    python benchmarks/bench_snapshot.py [--rounds 200]
"""

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT)]

from worker_inspector import engine
from worker_inspector.engine.board import read_board

FAKE_TREE = ROOT / "tests" / "fake_prefork_tree.py"
CONFIG = {"workers": 16, "max_cron_threads": 2, "limit_memory_soft": 2 << 30, "limit_memory_hard": 5 << 29}


def start_tree(http, cron):
    proc = subprocess.Popen(
        [sys.executable, str(FAKE_TREE), "master", "--titles", "--board", "--http", str(http), "--cron", str(cron)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    pids = [int(proc.stdout.readline().split()[1]) for _ in range(http + cron + 1)]
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        titled = sum(" ".join(psutil.Process(p).cmdline()).startswith("odoo:") for p in pids)
        if titled == http + cron and len(read_board(proc.pid)) == http + cron:
            break
        time.sleep(0.05)
    return proc, [proc.pid] + pids


def raw_psutil(pids):
    """The floor: read each known pid's /proc entries with psutil."""
    out = []
    for pid in pids:
        p = psutil.Process(pid)
        with p.oneshot():
            out.append(
                (
                    p.ppid(),
                    p.create_time(),
                    p.cmdline(),
                    p.cpu_times(),
                    p.memory_info(),
                    p.num_threads(),
                    p.nice(),
                    p.status(),
                )
            )
    return out


def product_snapshot(master):
    server = engine.ServerInfo(master, engine.MODE_PREFORK, "18.0")
    return engine.take_snapshot(server, CONFIG)


def timed(func, *args):
    start = time.perf_counter()
    func(*args)
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--http", type=int, default=16)
    parser.add_argument("--cron", type=int, default=2)
    opts = parser.parse_args()
    proc, pids = start_tree(opts.http, opts.cron)
    try:
        first = product_snapshot(proc.pid)
        assert len(first["processes"]) == len(pids), "snapshot does not see the whole tree"
        busy = sum(1 for p in first["processes"] if (p.get("activity") or {}).get("state") == "busy")
        assert busy == opts.http + opts.cron, "the workers' activity is not on the board"
        raw, snap = [], []
        for _ in range(10):  # warm-up
            raw_psutil(pids)
            product_snapshot(proc.pid)
        for _ in range(opts.rounds):
            raw.append(timed(raw_psutil, pids))
            snap.append(timed(product_snapshot, proc.pid))
    finally:
        proc.stdin.close()
        proc.wait(10)
    raw_ms, snap_ms = statistics.median(raw) * 1e3, statistics.median(snap) * 1e3
    print(
        f"processes: {len(pids)} (1 master, {opts.http} http, {opts.cron} cron, 1 gevent); "
        f"rounds: {opts.rounds}; cpus: {os.cpu_count()}"
    )
    print(f"{'':40} {'median ms':>10}")
    print(f"{'psutil read of the same pids (floor)':40} {raw_ms:10.3f}")
    print(f"{'worker_inspector snapshot':40} {snap_ms:10.3f}")
    ratio = snap_ms / raw_ms
    print(f"ratio snapshot / psutil floor: {ratio:.2f}  (goal <= 2.0: {'met' if ratio <= 2.0 else 'NOT met'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
