"""Nodes, their controls and the audit, against two real prefork servers on one database."""

import contextlib
import os
import signal
import socket
import threading
import time

import psycopg2
import pytest
import requests
from activity_helpers import poll as poll_snapshot
from odoo_harness import ARTIFACTS, OdooServer, unique_name
from test_recycle_e2e import csrf_token, workers_by_role

pytestmark = pytest.mark.odoo

INTERVAL = 2.0  # seconds between heartbeats in these tests (10 by default)
NODES_URL = "/worker_inspector/api/nodes"
WORKERS_URL = "/worker_inspector/api/workers"
CANCEL_URL = "/worker_inspector/api/sql/cancel"
AUDIT_URL = "/worker_inspector/api/audit"
RECYCLE_URL = "/worker_inspector/api/recycle"
SLEEP_URL = "/worker_inspector_test/pg_sleep_once"


@pytest.fixture(scope="module")
def conf():
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{unique_name('nodes')}.conf"
    path.write_text(f"[options]\nworker_inspector_heartbeat_interval = {INTERVAL}\n")
    return path


def _server(db, conf):
    return OdooServer(db, workers=2, max_cron_threads=0, extra_args=["-c", str(conf)])


@pytest.fixture(scope="module")
def node_a(odoo_db, conf):
    with _server(odoo_db, conf) as server:
        yield server


@pytest.fixture(scope="module")
def node_b(odoo_db, conf):
    with _server(odoo_db, conf) as server:
        yield server


@pytest.fixture(scope="module")
def admin(node_a):
    return node_a.login_session()


@pytest.fixture(scope="module")
def token(node_a, admin):
    return csrf_token(node_a, admin)


def name_of(server):
    return f"{socket.gethostname()}:{server.pid}"


def get_nodes(server, session, **params):
    response = session.get(server.url + NODES_URL, params=params, timeout=60)
    assert response.status_code == 200, response.text
    return {row["node"]: row for row in response.json()}


def wait_for(what, check, timeout):
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout}s")
        time.sleep(0.2)


def http_workers(server):
    return sorted(pid for pid, role in workers_by_role(server).items() if role == "http")


def published_http_workers(server, session, node):
    rows = get_nodes(server, session, node=node)
    return sorted(proc["pid"] for proc in rows[node]["processes"] if proc["role"] == "http")


def settled(api, session, server, count, gone=None, timeout=30):
    """The node's HTTP worker pids once it runs ``count`` of them and its last published tree
    shows exactly those: a recycled worker's replacement (or a worker being added or removed) is
    waited for, on both sides, never assumed to be there already; ``gone``: a pid that has to
    have left (a graceful recycle ends the current request first)."""

    seen = {}

    def check():
        seen["live"], seen["published"] = http_workers(server), published_http_workers(api, session, name_of(server))
        live = seen["live"]
        return live if len(live) == count and seen["published"] == live and gone not in live else None

    try:
        return wait_for(f"{count} HTTP workers, published", check, timeout)
    except AssertionError as exc:
        raise AssertionError(f"{exc}; last seen {seen}") from None


def audit(server, session):
    response = session.get(server.url + AUDIT_URL, timeout=60)
    assert response.status_code == 200, response.text
    return response.json()


def post(server, session, url, token, **data):
    return session.post(server.url + url, data=dict(data, csrf_token=token), timeout=60)


def command(server, session, url, token, **data):
    """``post`` a command for a live node. A stale refusal is asked again until its next
    heartbeat: a wall clock stepped forward (as virtual machines do) ages every beat at once."""
    deadline = time.monotonic() + 3 * INTERVAL
    while True:
        response = post(server, session, url, token, **data)
        if response.status_code != 400 or "is stale" not in response.text or time.monotonic() > deadline:
            return response
        time.sleep(0.2)


def wait_command(server, session, audit_id, timeout):
    def done():
        entry = next(e for e in audit(server, session) if e["id"] == audit_id)
        return entry if entry["state"] != "pending" else None

    return wait_for(f"command {audit_id} carried out", done, timeout)


def test_both_nodes_appear_with_their_summary(node_a, node_b, admin):
    a, b = name_of(node_a), name_of(node_b)

    def both_with_their_workers():
        # A node's first beat can come before its master has forked the workers: the next
        # beat counts them.
        rows = get_nodes(node_a, admin)
        return a in rows and b in rows and all(rows[n]["workers"].get("http") for n in (a, b)) and rows

    rows = wait_for("both nodes, each with its workers", both_with_their_workers, 4 * INTERVAL)
    assert rows[a]["serving"] is True and rows[b]["serving"] is False
    for server, name in ((node_a, a), (node_b, b)):
        row = rows[name]
        assert row["pid"] == server.pid and row["mode"] == "prefork" and not row["stale"]
        assert row["hostname"] == socket.gethostname()
        assert row["workers"]["http"] == 2 and row["workers"]["gevent"] == 1
        assert row["rss"] > 0 and row["last_seen"] > time.time() - 3 * INTERVAL
        assert set(row["summary"]) >= {"workers", "utilization", "rss", "longest_busy", "exits_last_hour", "backlog"}
    # A row opens the node's processes as it last published them: psutil agrees.
    assert published_http_workers(node_a, admin, b) == http_workers(node_b)


def test_the_summary_carries_the_levels_of_the_snapshots_advice(node_a, node_b, admin):
    # Each node computes its advice as its snapshot does, and publishes the levels.
    for server in (node_a, node_b):
        session = admin if server is node_a else server.login_session()
        name = name_of(server)

        def agree(server=server, session=session, name=name):
            advice = server.snapshot(session)["advice"]
            counts = {level: 0 for level in ("ok", "info", "warning", "critical")}
            for item in advice:
                counts[item["level"]] += 1
            levels = get_nodes(node_a, admin)[name]["summary"].get("advice_levels")
            alerts = sorted(item["id"] for item in advice if item["level"] in ("warning", "critical"))
            return levels if levels and levels["counts"] == counts and sorted(levels["alerts"]) == alerts else None

        levels = wait_for(f"advice levels of {name}", agree, 3 * INTERVAL)
        order = ("ok", "info", "warning", "critical")
        assert levels["worst"] == max((lvl for lvl, n in levels["counts"].items() if n), key=order.index)


def test_heartbeats_go_on_while_idle_and_survive_recycling(node_a, node_b, admin, token):
    b = name_of(node_b)
    first = get_nodes(node_a, admin)[b]["last_seen"]
    victim = http_workers(node_b)[0]
    # Recycle on node B through its own API: the beat comes from B's master.
    b_admin = node_b.login_session()
    response = post(node_b, b_admin, RECYCLE_URL, csrf_token(node_b, b_admin), pid=str(victim))
    assert response.status_code == 200, response.text
    later = wait_for(
        "two later beats", lambda: get_nodes(node_a, admin)[b]["last_seen"] > first + INTERVAL, 4 * INTERVAL
    )
    assert later
    # The master replaced the recycled worker, and the node published its replacement.
    settled(node_a, admin, node_b, 2, gone=victim)


def test_add_and_remove_a_worker_on_another_node(node_a, node_b, admin, token):
    b = name_of(node_b)
    before = settled(node_a, admin, node_b, 2)
    response = command(node_a, admin, WORKERS_URL, token, node=b, delta="1")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["state"] == "pending" and body["node"] == b
    # The dashboard shows it pending on the node's row.
    pending = get_nodes(node_a, admin)[b]["pending"]
    assert [e["id"] for e in pending] == [body["audit_id"]] or wait_command(node_a, admin, body["audit_id"], 1)
    asked = time.monotonic()
    entry = wait_command(node_a, admin, body["audit_id"], 2 * INTERVAL + 1)
    assert entry["state"] == "done" and entry["result"]["signal"] == "SIGTTIN", entry
    # The new worker, in the node's published tree within two heartbeats of the request (the
    # beat that carries the command out may publish before the master has forked it).
    grown = settled(node_a, admin, node_b, len(before) + 1)
    assert set(before) < set(grown)
    assert time.monotonic() - asked <= 4 * INTERVAL + 2

    response = command(node_a, admin, WORKERS_URL, token, node=b, delta="-1")
    assert response.status_code == 200, response.text
    entry = wait_command(node_a, admin, response.json()["audit_id"], 2 * INTERVAL + 1)
    assert entry["state"] == "done" and entry["result"]["signal"] == "SIGTTOU", entry
    shrunk = settled(node_a, admin, node_b, len(before), gone=entry["result"].get("recycled"))
    time.sleep(2 * INTERVAL)  # no respawn: the master's population is lower
    assert http_workers(node_b) == shrunk == published_http_workers(node_a, admin, b)


def test_add_and_remove_a_worker_on_the_serving_node(node_a, admin, token):
    a = name_of(node_a)
    before = http_workers(node_a)
    response = post(node_a, admin, WORKERS_URL, token, node=a, delta="1")
    assert response.status_code == 200, response.text
    assert response.json()["state"] == "done" and response.json()["result"]["signal"] == "SIGTTIN"
    wait_for("a third HTTP worker", lambda: len(http_workers(node_a)) == len(before) + 1, 30)
    response = post(node_a, admin, WORKERS_URL, token, node=a, delta="-1")
    assert response.status_code == 200, response.text
    assert response.json()["result"]["signal"] == "SIGTTOU"
    wait_for("back to two", lambda: len(http_workers(node_a)) == len(before), 30)
    # The last HTTP worker is never removed.
    response = post(node_a, admin, WORKERS_URL, token, node=a, delta="-1")
    assert response.status_code == 200
    wait_for("one left", lambda: len(http_workers(node_a)) == 1, 30)
    refused = post(node_a, admin, WORKERS_URL, token, node=a, delta="-1")
    assert refused.status_code == 400 and "one HTTP worker left" in refused.json()["error"]["reason"]
    assert post(node_a, admin, WORKERS_URL, token, node=a, delta="1").status_code == 200
    wait_for("two again", lambda: len(http_workers(node_a)) == 2, 30)


def test_recycle_a_worker_of_another_node(node_a, node_b, admin, token):
    b = name_of(node_b)
    victim = settled(node_a, admin, node_b, 2)[0]
    response = command(node_a, admin, RECYCLE_URL, token, node=b, pid=str(victim))
    assert response.status_code == 200, response.text
    assert response.json()["state"] == "pending"
    entry = wait_command(node_a, admin, response.json()["audit_id"], 2 * INTERVAL + 1)
    assert entry["state"] == "done" and entry["result"]["pid"] == victim and entry["pid"] == victim
    # Replaced by the master, and the replacement published.
    settled(node_a, admin, node_b, 2, gone=victim)


def test_refusals_signal_nothing(node_a, node_b, admin, token):
    a, b = name_of(node_a), name_of(node_b)
    before = (sorted(c.pid for c in node_a.children()), sorted(c.pid for c in node_b.children()))
    refused = [
        (WORKERS_URL, {"node": a, "delta": "2"}, "delta must be 1 or -1"),
        (WORKERS_URL, {"node": a}, "node and delta"),
        (WORKERS_URL, {"node": "elsewhere:1", "delta": "1"}, "No node 'elsewhere:1'"),
        (WORKERS_URL, {"node": a, "delta": "1", "pid": "3"}, "Unknown parameter(s): pid"),
        (RECYCLE_URL, {"node": b, "pid": "abc"}, "pid must be a process id"),
        (CANCEL_URL, {"backend_pid": "x"}, "backend_pid must be"),
        (CANCEL_URL, {"backend_pid": "1", "terminate": "yes"}, "terminate must be 0 or 1"),
        (CANCEL_URL, {"backend_pid": "1"}, "not a session of this Odoo server"),
    ]
    for url, data, reason in refused:
        response = post(node_a, admin, url, token, **data)
        assert response.status_code == 400, (url, data, response.text)
        assert reason in response.json()["error"]["reason"], (url, data, response.text)
    for url, data in ((WORKERS_URL, {"node": a, "delta": "1"}), (CANCEL_URL, {"backend_pid": "1"})):
        no_token = admin.post(node_a.url + url, data=data, timeout=60)
        assert no_token.status_code == 400 and "csrf_token" in no_token.text
    time.sleep(2 * INTERVAL)  # a command wrongly queued would have run by now
    assert before == (sorted(c.pid for c in node_a.children()), sorted(c.pid for c in node_b.children()))


def test_a_command_its_node_never_carries_out_expires_and_is_never_run(node_a, node_b, admin, token):
    b = name_of(node_b)
    before = settled(node_a, admin, node_b, 2)
    # Node B's master (where its heartbeat runs) frozen: it takes the command but cannot run it.
    os.kill(node_b.pid, signal.SIGSTOP)
    try:
        response = post(node_a, admin, WORKERS_URL, token, node=b, delta="1")
        assert response.status_code == 200 and response.json()["state"] == "pending", response.text
        audit_id = response.json()["audit_id"]
        # Three of B's intervals later it is expired, with the reason, on the audit and on B's row.
        entry = wait_command(node_a, admin, audit_id, 3 * INTERVAL + 2 * INTERVAL)
        assert entry["state"] == "expired", entry
        assert f"Node {b} did not carry the command out within 6 s" in entry["result"]["reason"]
        assert entry["result"]["waited"] >= 3 * INTERVAL
        row = get_nodes(node_a, admin)[b]
        assert row["pending"] == [] and row["last_command"]["id"] == audit_id
        assert row["last_command"]["state"] == "expired"
        # Node A's heartbeat records the expiry in the audit (not only the reads).
        wait_for("recorded expired", lambda: _stored_state(node_a.db, audit_id) == "expired", 2 * INTERVAL + 1)
    finally:
        os.kill(node_b.pid, signal.SIGCONT)
    # B beats again and signals nothing: the command is not carried out late.
    wait_for("B fresh again", lambda: not get_nodes(node_a, admin)[b]["stale"], 3 * INTERVAL)
    time.sleep(2 * INTERVAL)
    assert http_workers(node_b) == before
    assert next(e for e in audit(node_a, admin) if e["id"] == audit_id)["state"] == "expired"


def test_a_command_for_a_forgotten_node_expires(node_a, admin, token):
    # A pending command whose node's row is gone (forgotten after its retention): expired.
    ghost = f"{socket.gethostname()}:{2**22 + 1}"
    with psycopg2.connect(dbname=node_a.db) as conn, conn.cursor() as cr:
        cr.execute(
            "INSERT INTO worker_inspector_audit (user_id, action, node, pid, state, create_date, write_date)"
            " SELECT id, 'worker_add', %s, 0, 'pending', now() AT TIME ZONE 'UTC', now() AT TIME ZONE 'UTC'"
            "   FROM res_users WHERE login = 'admin' RETURNING id",
            (ghost,),
        )
        audit_id = cr.fetchone()[0]
    conn.close()
    entry = next(e for e in audit(node_a, admin) if e["id"] == audit_id)
    assert entry["state"] == "expired" and "no longer publishes heartbeats" in entry["result"]["reason"]
    wait_for("recorded expired", lambda: _stored_state(node_a.db, audit_id) == "expired", 2 * INTERVAL + 1)


def _stored_state(db, audit_id):
    with psycopg2.connect(dbname=db) as conn, conn.cursor() as cr:
        cr.execute("SELECT state FROM worker_inspector_audit WHERE id = %s", (audit_id,))
        state = cr.fetchone()[0]
    conn.close()
    return state


class OtherApplication(threading.Thread):
    """Another application's session on the same database, in a long query."""

    def __init__(self, db, application_name):
        super().__init__(daemon=True)
        self.conn = psycopg2.connect(dbname=db, application_name=application_name)
        self.backend_pid = self.conn.get_backend_pid()
        self.error = None
        self.start()

    def run(self):
        try:
            with self.conn.cursor() as cr:
                cr.execute("SELECT pg_sleep(30)")
        except psycopg2.Error as exc:
            self.error = exc

    def close(self):
        with contextlib.suppress(psycopg2.Error):
            self.conn.cancel()
        self.join(10)
        self.conn.close()


@pytest.mark.parametrize(
    "app_name, reason",
    [
        ("psql", "is not a session of this Odoo server"),
        # Named as Odoo names its sessions, after a process that is not this server's.
        ("odoo-1", "does not belong to a process of this Odoo server"),
    ],
)
def test_another_applications_session_is_never_cancelled(node_a, admin, token, app_name, reason):
    other = OtherApplication(node_a.db, app_name)
    try:
        time.sleep(0.3)
        for terminate in ("0", "1"):
            response = post(node_a, admin, CANCEL_URL, token, backend_pid=str(other.backend_pid), terminate=terminate)
            assert response.status_code == 400, response.text
            assert reason in response.json()["error"]["reason"]
        assert other.is_alive() and other.error is None
    finally:
        other.close()


@pytest.mark.parametrize("terminate", ["0", "1"])
def test_cancel_a_pg_sleep_query(node_a, admin, token, terminate):
    call = {}

    def sleep():
        started = time.monotonic()
        call["response"] = admin.get(node_a.url + SLEEP_URL, params={"seconds": "60"}, timeout=90)
        call["took"] = time.monotonic() - started

    thread = threading.Thread(target=sleep, daemon=True)
    thread.start()

    def sleeping(snap):
        for proc in snap["processes"]:
            for session in proc.get("sql") or []:
                if "pg_sleep" in (session.get("query") or "") and session.get("state") == "active":
                    return proc["pid"], session["backend_pid"]
        return None

    _snap, (worker, backend) = poll_snapshot(node_a, admin, sleeping, "pg_sleep query")
    response = post(node_a, admin, CANCEL_URL, token, backend_pid=str(backend), terminate=terminate)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["signalled"] is True and "pg_sleep" in body["query"]
    # A worker may use a connection its master opened before forking (named after the master).
    assert body["application_name"] in (f"odoo-{worker}", f"odoo-{node_a.pid}")
    thread.join(30)
    assert not thread.is_alive(), "the request did not end"
    assert call["took"] < 30 and call["response"].status_code >= 500
    with psycopg2.connect(dbname=node_a.db) as conn, conn.cursor() as cr:
        cr.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE pid = %s AND query LIKE '%%pg_sleep%%' AND state = 'active'",
            (backend,),
        )
        assert cr.fetchone()[0] == 0
    conn.close()


def test_every_action_is_audited_newest_first(node_a, admin):
    entries = audit(node_a, admin)
    ids = [e["id"] for e in entries]
    assert ids == sorted(ids, reverse=True)
    actions = {(e["action"], e["state"]) for e in entries}
    for expected in [
        ("worker_add", "done"),
        ("worker_remove", "done"),
        ("worker_remove", "refused"),
        ("recycle", "done"),
        ("sql_cancel", "done"),
        ("sql_terminate", "done"),
        ("sql_cancel", "refused"),
        ("sql_terminate", "refused"),
    ]:
        assert expected in actions, (expected, actions)
    for entry in entries:
        assert entry["who"] == "admin" and entry["when"] and entry["node"]
    # Today's recycle (on the node serving it, no node named) too, with its pid.
    assert any(
        e["action"] == "recycle"
        and e["state"] == "done"
        and e["pid"]
        and e["result"]["signal"] == "SIGINT"
        and e["node"] != e.get("requested_for")
        for e in entries
    )


def test_a_non_admin_gets_403_on_each_route(node_a, admin):
    login, password = node_a.create_internal_user(admin)
    user = node_a.login_session(login, password)
    user_token = csrf_token(node_a, user)
    a = name_of(node_a)
    before = sorted(c.pid for c in node_a.children())
    calls = [
        user.get(node_a.url + NODES_URL, timeout=60),
        user.get(node_a.url + AUDIT_URL, timeout=60),
        post(node_a, user, WORKERS_URL, user_token, node=a, delta="1"),
        post(node_a, user, CANCEL_URL, user_token, backend_pid="1"),
    ]
    for response in calls:
        assert response.status_code == 403, (response.url, response.text)
        assert response.json()["error"]["reason"]
    for url in (NODES_URL, AUDIT_URL):
        assert requests.get(node_a.url + url, timeout=60).status_code == 401
    assert before == sorted(c.pid for c in node_a.children())


def test_a_stopped_node_turns_stale(node_a, node_b, admin):
    b = name_of(node_b)
    assert not get_nodes(node_a, admin)[b]["stale"]
    node_b.stop()
    stopped = time.monotonic()
    row = wait_for("stale", lambda: (r := get_nodes(node_a, admin)[b])["stale"] and r, 3 * INTERVAL + 2 * INTERVAL)
    assert row["age"] > 3 * INTERVAL
    # Its last beat was before the stop.
    assert row["age"] >= time.monotonic() - stopped - 1
    assert get_nodes(node_a, admin)[name_of(node_a)]["stale"] is False
    # A stale node takes no commands.
    token = csrf_token(node_a, admin)
    refused = post(node_a, admin, WORKERS_URL, token, node=b, delta="1")
    assert refused.status_code == 400 and "stale" in refused.json()["error"]["reason"]
