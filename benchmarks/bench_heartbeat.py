"""What one heartbeat costs the node: snapshot, summary and the two statements.

Goal (issue 14): a heartbeat every 10 s is negligible for the node and the
database. One beat of a server shaped like an Odoo prefork server (master,
16 HTTP workers, 2 cron workers, a gevent process, busy activity on the
board) is timed end to end against a real PostgreSQL database (a temporary
one), wall and CPU time of this process, and the row it writes is measured.
A/A control: the same beat timed in two interleaved series, whose ratio
should be 1.

    python benchmarks/bench_heartbeat.py [--rounds 200]
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import psycopg2

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

from bench_snapshot import CONFIG, start_tree

from worker_inspector import engine
from worker_inspector.engine import nodes


def beat(cr, server):
    # Claim with a zero interval: every round writes, as the elected process does once per interval.
    nodes.claim_beat(cr, "bench:1", "bench", server, interval=0)
    snapshot = engine.take_snapshot(server, CONFIG, threads=[])
    nodes.publish(cr, "bench:1", nodes.summarize(snapshot), nodes.public_processes(snapshot), interval=10)


def timed(cr, server):
    wall, cpu = time.perf_counter(), time.process_time()
    beat(cr, server)
    return time.perf_counter() - wall, time.process_time() - cpu


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()
    admin = psycopg2.connect(dbname="postgres")
    admin.autocommit = True
    name = f"wi_bench_hb_{os.getpid()}"
    with admin.cursor() as cr:
        cr.execute(f"CREATE DATABASE {name}")
    tree, _pids = start_tree(16, 2)
    try:
        conn = psycopg2.connect(dbname=name)
        conn.autocommit = True
        cr = conn.cursor()
        cr.execute(nodes.CREATE_NODE_TABLE)
        server = engine.ServerInfo(tree.pid, engine.MODE_PREFORK, "bench")
        for _ in range(10):
            beat(cr, server)
        a, b = [], []
        for _ in range(args.rounds):
            a.append(timed(cr, server))
            b.append(timed(cr, server))
        cr.execute(f"SELECT pg_column_size(t.*) FROM {nodes.NODE_TABLE} t")
        row_bytes = cr.fetchone()[0]
        conn.close()
    finally:
        tree.kill()
        tree.wait()
        with admin.cursor() as cr:
            cr.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    wall_a = statistics.median(w for w, _ in a)
    wall_b = statistics.median(w for w, _ in b)
    cpu = statistics.median(c for _, c in a + b)
    print(f"one heartbeat (20 processes): median wall {wall_a * 1000:.2f} ms, CPU {cpu * 1000:.2f} ms")
    print(f"A/A control (same beat, two series): ratio {wall_b / wall_a:.2f}")
    print(f"node row: {row_bytes} bytes; at one beat per 10 s: {cpu / 10 * 100:.3f}% of one core")


if __name__ == "__main__":
    main()
