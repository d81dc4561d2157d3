"""What one heartbeat costs the node: snapshot, summary and the two statements.

Goal (issue 14): a heartbeat every 10 s is negligible for the node and the
database. One beat of a server shaped like an Odoo prefork server (master,
16 HTTP workers, 2 cron workers, a gevent process, busy activity on the
board) is timed end to end against a real PostgreSQL database (a temporary
one), wall and CPU time of this process, and the row it writes is measured.
A/A control: the same beat timed in two interleaved series, whose ratio
should be 1. A third interleaved series adds what the heartbeat computes of the
node's advice (``advice_levels`` in the summary): PostgreSQL's limits and
sessions and the overdue scheduled actions read on the beat's connection (a
database with 30 scheduled actions), the last hour of a full 24 h history file,
and the nine checks; its difference to the plain beat is the advice's cost.

    python benchmarks/bench_heartbeat.py [--rounds 200]
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import psycopg2

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

from bench_history import fill
from bench_snapshot import CONFIG, start_tree

from worker_inspector import engine
from worker_inspector.engine import advice, crons, database, nodes
from worker_inspector.engine.history import HistoryStore

CRONS_SQL = """
    CREATE TABLE ir_cron (id serial PRIMARY KEY, cron_name varchar, active boolean, nextcall timestamp);
    CREATE TABLE ir_cron_trigger (id serial PRIMARY KEY, cron_id integer, call_at timestamp);
    INSERT INTO ir_cron (cron_name, active, nextcall)
         SELECT 'job ' || i, true, (now() AT TIME ZONE 'UTC') + make_interval(mins => i - 3)
           FROM generate_series(1, 30) i;
"""


def advice_levels(cr, snapshot, store):
    """What ``heartbeat._advice_levels`` does, with the history of ``store`` (no Odoo here)."""
    postgres = database.read_postgres_limits(cr)
    sessions = database.read_pg_sessions(cr)
    overdue = database.read_overdue_crons(cr, db="bench")
    own = {p["pid"] for p in snapshot["processes"]}
    postgres["own"] = crons.count_sessions_of(sessions, own)
    interval, points = store.points(since=time.time() - 3600)
    facts = advice.facts_from_snapshot(
        snapshot,
        postgres=postgres,
        history=advice.history_facts(points, interval, store.totals()),
        databases=1,
        overdue_crons=overdue,
    )
    return advice.advice_levels(advice.advise(facts))


def beat(cr, server, store=None):
    # Claim with a zero interval: every round writes, as the elected process does once per interval.
    nodes.claim_beat(cr, "bench:1", "bench", server, interval=0)
    snapshot = engine.take_snapshot(server, CONFIG, threads=[])
    if store is not None:
        snapshot["advice_levels"] = advice_levels(cr, snapshot, store)
    nodes.publish(cr, "bench:1", nodes.summarize(snapshot), nodes.public_processes(snapshot), interval=10)


def timed(cr, server, store=None):
    wall, cpu = time.perf_counter(), time.process_time()
    beat(cr, server, store)
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
    history_dir = tempfile.TemporaryDirectory()
    os.chmod(history_dir.name, 0o700)
    store = HistoryStore(history_dir.name, interval=10.0, rows_per_point=21)
    fill(store)
    try:
        conn = psycopg2.connect(dbname=name)
        conn.autocommit = True
        cr = conn.cursor()
        cr.execute(nodes.CREATE_NODE_TABLE)
        cr.execute(CRONS_SQL)
        server = engine.ServerInfo(tree.pid, engine.MODE_PREFORK, "bench")
        for _ in range(10):
            beat(cr, server)
            beat(cr, server, store)
        a, b, c = [], [], []
        for _ in range(args.rounds):
            a.append(timed(cr, server))
            c.append(timed(cr, server, store))
            b.append(timed(cr, server))
        cr.execute(f"SELECT pg_column_size(t.*) FROM {nodes.NODE_TABLE} t")
        row_bytes = cr.fetchone()[0]
        conn.close()
    finally:
        store.close()
        history_dir.cleanup()
        tree.kill()
        tree.wait()
        with admin.cursor() as cr:
            cr.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    wall_a = statistics.median(w for w, _ in a)
    wall_b = statistics.median(w for w, _ in b)
    cpu = statistics.median(t for _, t in a + b)
    wall_c = statistics.median(w for w, _ in c)
    cpu_c = statistics.median(t for _, t in c)
    print(f"one heartbeat (20 processes): median wall {wall_a * 1000:.2f} ms, CPU {cpu * 1000:.2f} ms")
    print(f"A/A control (same beat, two series): ratio {wall_b / wall_a:.2f}")
    print(
        f"with the advice levels: median wall {wall_c * 1000:.2f} ms, CPU {cpu_c * 1000:.2f} ms"
        f" (+{(wall_c - wall_a) * 1000:.2f} ms wall, +{(cpu_c - cpu) * 1000:.2f} ms CPU)"
    )
    print(f"node row (with advice levels): {row_bytes} bytes")
    print(f"at one beat per 10 s: {cpu_c / 10 * 100:.3f}% of one core")


if __name__ == "__main__":
    main()
