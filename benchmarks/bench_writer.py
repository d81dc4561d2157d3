"""Where the writer's time goes, in a real prefork worker.

The addon's writer (each process's inspector thread, ``Recorder.flush``) writes
its process's board records and request log; it costs CPU per request on a
thread of its own (``wi:writer``). One prefork server with one HTTP worker
serves bursts of ``--burst`` ``/web/health`` and as many authenticated
``call_kw`` requests, one burst every ``--pause`` seconds, for ``--seconds``;
the serving and writer threads' CPU comes from ``/proc/<pid>/task/*/schedstat``
(ns), and the writer's parts from thread CPU timers the test addon
(``worker_inspector_test``, route ``writer_parts``) wraps around them in that
worker. Each timed call also counts its timer (two clock reads, about 1 µs).

    python benchmarks/bench_writer.py [--db DB] [--seconds 30] [--burst 20] [--pause 0.3]

``--db``: an existing database with worker_inspector and worker_inspector_test
installed (one without the addon is refused); else one is created and dropped.
"""

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "benchmarks")]

from bench_activity import database
from bench_history import Client, http_worker, pin, schedstat_ns, thread_names
from odoo_harness import OdooServer, odoo_available, test_modules

from worker_inspector.engine.threads import OS_WRITER

# The parts ``writer_parts`` times: a turn (``Recorder.flush``) and what it includes, then
# the rest of the writer's loop.
TURN = "turn"
TURN_PARTS = ("request log (pack, count, write)", "board records", "busy request's context", "file check")
LOOP_PARTS = ("slow-request watch", "rest check")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", help="existing database with worker_inspector and worker_inspector_test")
    parser.add_argument("--seconds", type=float, default=30.0, help="how long the bursts go on")
    parser.add_argument("--burst", type=int, default=20, help="requests of each route per burst")
    parser.add_argument("--pause", type=float, default=0.3, help="seconds between two bursts")
    opts = parser.parse_args()
    available, reason = odoo_available()
    if not available:
        print(f"not measured: {reason}")
        return 1
    created = database(opts.db, "wia_bench_writer", test_modules(), installed=True)
    with created as db, OdooServer(db, workers=1, extra_args=["--log-level", "warn"]) as server:
        client = Client(server)
        admin = server.login_session()
        parts_url = server.url + "/worker_inspector_test/writer_parts"
        for route in ("health", "call_kw"):
            client.run(route, opts.burst)  # warm-up
        worker = http_worker(server)
        cpus = sorted(os.sched_getaffinity(0))
        if len(cpus) > 1:  # the worker's threads on one core, the client on another
            os.sched_setaffinity(0, {cpus[0]})
            pin(worker, cpus[-1])
        started = admin.get(parts_url, params={"action": "start"}, timeout=30).json()
        assert started["pid"] == worker, started
        time.sleep(2.5)  # the warm-up's records written
        before, began, served = schedstat_ns(worker), time.monotonic(), 0
        while time.monotonic() - began < opts.seconds:
            for route in ("health", "call_kw"):
                client.run(route, opts.burst)
                served += opts.burst
            time.sleep(opts.pause)
        time.sleep(2.5)  # the last burst's records written
        after, names = schedstat_ns(worker), thread_names(worker)
        parts = admin.get(parts_url, timeout=30).json()["parts"]
    spent = {tid: ns - before.get(tid, 0) for tid, ns in after.items()}
    serving = max(spent, key=spent.get)
    writer = sum(ns for tid, ns in spent.items() if names.get(tid) == OS_WRITER)
    print(
        f"{served} requests in bursts of {opts.burst} /web/health and {opts.burst} call_kw every"
        f" {opts.pause} s: serving thread {spent[serving] / served / 1000:.0f} µs per request,"
        f" writer thread {writer / served / 1000:.2f} µs per request"
    )
    assert set(parts) <= {TURN, *TURN_PARTS, *LOOP_PARTS}, parts
    for part in (TURN, *TURN_PARTS, *LOOP_PARTS):
        ns, calls = parts.get(part, (0, 0))
        label = f"  of which {part}" if part in TURN_PARTS else part
        print(
            f"  {label:>44}: {ns / served / 1000:5.2f} µs per request"
            f" ({calls} calls, {ns / max(calls, 1) / 1000:.1f} µs each)"
        )
    loop = writer - sum(parts.get(part, (0, 0))[0] for part in (TURN, *LOOP_PARTS))
    print(f"  {'the loop, its waits and wake-ups (the rest)':>44}: {loop / served / 1000:5.2f} µs per request")
    return 0


if __name__ == "__main__":
    sys.exit(main())
