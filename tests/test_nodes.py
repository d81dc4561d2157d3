"""The engine's nodes: heartbeat claims, publishing, staleness and ownership checks,
on a real PostgreSQL database (no Odoo)."""

import os
import signal
import subprocess
import sys
import time

import psutil
import pytest

from worker_inspector.engine import nodes
from worker_inspector.engine.snapshot import MODE_PREFORK, MODE_THREADED, ServerInfo

psycopg2 = pytest.importorskip("psycopg2")


@pytest.fixture(scope="module")
def dbname():
    try:
        conn = psycopg2.connect(dbname="postgres")
    except psycopg2.Error as exc:
        pytest.skip(f"PostgreSQL is not reachable: {exc}")
    conn.autocommit = True
    name = f"wi_nodes_{os.getpid()}"
    with conn.cursor() as cr:
        cr.execute(f"CREATE DATABASE {name}")
    yield name
    with conn.cursor() as cr:
        cr.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    conn.close()


@pytest.fixture
def cr(dbname):
    conn = psycopg2.connect(dbname=dbname)
    conn.autocommit = True
    with conn.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {nodes.NODE_TABLE}")
        cursor.execute(nodes.CREATE_NODE_TABLE)
        yield cursor
    conn.close()


SERVER = ServerInfo(4120, MODE_PREFORK, "18.0")


def test_the_node_table_is_unlogged(cr):
    cr.execute("SELECT relpersistence FROM pg_class WHERE relname = %s", (nodes.NODE_TABLE,))
    assert cr.fetchone() == ("u",)


def test_a_node_is_stale_by_the_age_its_row_shows(cr):
    nodes.claim_beat(cr, "old:1", "old", SERVER, interval=2)
    for age, shown, stale in (("6.0004", 6.0, False), ("6.0006", 6.001, True)):
        # In one transaction, now() is the same for the write and the read: the age is exact.
        cr.execute("BEGIN")
        beat = f"(now() AT TIME ZONE 'UTC') - interval '{age} seconds'"
        cr.execute(f"UPDATE {nodes.NODE_TABLE} SET beat_at = {beat} WHERE node = 'old:1'")
        (row,) = nodes.read_nodes(cr, serving_node="web1:4120")
        cr.execute("COMMIT")
        assert (row["age"], row["stale"]) == (shown, stale)


def test_one_writer_per_interval(cr):
    assert nodes.claim_beat(cr, "web1:4120", "web1", SERVER, interval=10)
    # Another process of the node, within the interval: not its turn.
    assert not nodes.claim_beat(cr, "web1:4120", "web1", SERVER, interval=10)
    # Another node has its own row.
    assert nodes.claim_beat(cr, "web2:77", "web2", ServerInfo(77, MODE_THREADED, "18.0"), interval=10)
    cr.execute(f"UPDATE {nodes.NODE_TABLE} SET beat_at = beat_at - interval '9 seconds' WHERE node = 'web1:4120'")
    assert nodes.claim_beat(cr, "web1:4120", "web1", SERVER, interval=10)
    cr.execute(f"SELECT count(*) FROM {nodes.NODE_TABLE}")
    assert cr.fetchone() == (2,)


def test_published_rows_stale_and_forgotten(cr):
    nodes.claim_beat(cr, "web1:4120", "web1", SERVER, interval=2)
    summary = {"workers": {"http": 2, "master": 1}, "utilization": 0.5, "rss": 1234}
    nodes.publish(cr, "web1:4120", summary, [{"pid": 4121, "role": "http"}], interval=2, retention=3600)
    nodes.claim_beat(cr, "old:1", "old", SERVER, interval=2)
    cr.execute(f"UPDATE {nodes.NODE_TABLE} SET beat_at = beat_at - interval '7 seconds' WHERE node = 'old:1'")
    rows = {row["node"]: row for row in nodes.read_nodes(cr, serving_node="web1:4120")}
    assert rows["web1:4120"]["serving"] and not rows["old:1"]["serving"]
    assert rows["web1:4120"]["workers"] == {"http": 2, "master": 1} and rows["web1:4120"]["rss"] == 1234
    assert not rows["web1:4120"]["stale"]
    assert rows["old:1"]["stale"] and rows["old:1"]["age"] > 6  # 3 intervals of 2 s
    assert abs(rows["web1:4120"]["last_seen"] - time.time()) < 60
    assert nodes.read_node_processes(cr, "web1:4120") == [{"pid": 4121, "role": "http"}]
    # Retention: a beat forgets nodes silent for longer.
    nodes.publish(cr, "web1:4120", summary, [], interval=2, retention=5)
    assert [row["node"] for row in nodes.read_nodes(cr, "web1:4120")] == ["web1:4120"]


def _session(backend, app, db="prod"):
    return {"backend_pid": backend, "application_name": app, "db": db, "query": "SELECT 1"}


def test_only_this_servers_sessions_may_be_cancelled():
    sessions = [_session(10, "odoo-100"), _session(11, "odoo-999"), _session(12, "odoo-100", db="other")]
    assert nodes.check_own_backend(sessions, 10, {100, 101}, "prod")["backend_pid"] == 10
    for backend, reason in (
        (11, "does not belong to a process of this Odoo server"),
        (12, "on another database"),
        (13, "not a session of this Odoo server"),
    ):
        with pytest.raises(nodes.ControlRefused, match=reason):
            nodes.check_own_backend(sessions, backend, {100, 101}, "prod")
    with pytest.raises(nodes.ControlRefused, match="does not belong"):
        nodes.check_own_backend([_session(14, "odoo-")], 14, {100}, "prod")


def test_summary_counts_roles_and_memory():
    snapshot = {
        "processes": [
            {"pid": 1, "role": "master", "rss": 100},
            {"pid": 2, "role": "http", "rss": 200, "activity": {"state": "busy", "url": "/x", "elapsed": 2.5}},
            {"pid": 3, "role": "http", "rss": 300, "activity": {"state": "idle"}},
        ],
        "utilization": 0.5,
        "longest_busy": 2.5,
    }
    summary = nodes.summarize(snapshot)
    assert summary["workers"] == {"http": 2, "master": 1} and summary["rss"] == 600
    assert summary["utilization"] == 0.5 and summary["longest_busy"] == 2.5
    published = nodes.public_processes(snapshot)
    assert published[1]["url"] == "/x" and published[2]["url"] is None and published[2]["state"] == "idle"


def test_threaded_servers_have_no_workers_to_change():
    with pytest.raises(nodes.ControlRefused, match="threaded"):
        nodes.change_workers(ServerInfo(os.getpid(), MODE_THREADED), 1)
    with pytest.raises(nodes.ControlRefused, match="delta must be 1 or -1"):
        nodes.change_workers(ServerInfo(os.getpid(), MODE_PREFORK), 2)


def test_sigttin_goes_to_the_master_only():
    # A stand-in master that records the signals it gets (a real process, real signals).
    code = (
        "import signal, sys, time\n"
        "signal.signal(signal.SIGTTIN, lambda *a: (print('TTIN', flush=True), sys.exit(0)))\n"
        "print('ready', flush=True)\n"
        "time.sleep(30)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        result = nodes.change_workers(ServerInfo(proc.pid, MODE_PREFORK), 1)
        assert result == {"signal": "SIGTTIN", "http_workers_before": 0}
        assert proc.stdout.readline().strip() == "TTIN"
        assert proc.wait(10) == 0
    finally:
        if psutil.pid_exists(proc.pid):
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait()


AUDIT_SQL = f"""
    CREATE TABLE {nodes.AUDIT_TABLE} (
        id serial PRIMARY KEY, action varchar, node varchar, pid integer, state varchar,
        result text, done_at timestamp, create_date timestamp
    )
"""


def test_commands_their_node_will_never_carry_out_expire(cr):
    cr.execute(f"DROP TABLE IF EXISTS {nodes.AUDIT_TABLE}")
    cr.execute(AUDIT_SQL)
    assert nodes.claim_beat(cr, "web1:4120", "web1", SERVER, interval=10)
    commands = [
        ("web1:4120", 5),  # fresh: the node carries it out with its next beat
        ("web1:4120", 31),  # older than 3 of the node's 10 s intervals
        ("gone:1", 1),  # no such node (forgotten)
    ]
    for node, age in commands:
        cr.execute(
            f"INSERT INTO {nodes.AUDIT_TABLE} (action, node, pid, state, create_date)"
            " VALUES ('worker_add', %s, 0, 'pending', (now() AT TIME ZONE 'UTC') - make_interval(secs => %s))",
            (node, age),
        )
    expired = nodes.expire_commands(cr)
    assert [(command_id, state) for command_id, state, _ in expired] == [(2, "expired"), (3, "expired")]
    assert "within 30 s (3 of its heartbeats)" in expired[0][2]["reason"]
    assert "no longer publishes heartbeats" in expired[1][2]["reason"]
    cr.execute(f"SELECT id, state, done_at IS NOT NULL FROM {nodes.AUDIT_TABLE} ORDER BY id")
    assert cr.fetchall() == [(1, "pending", False), (2, "expired", True), (3, "expired", True)]
    # Expired once; the fresh one stays pending for its node.
    assert nodes.expire_commands(cr) == []
    assert nodes.command_expiry("web1:4120", {"interval": 10}, 29.0) is None
