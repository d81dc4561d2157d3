"""Nodes: every Odoo server sharing a database, kept current by heartbeats.

Each server publishes one row (its *node*) into an UNLOGGED table of the
database: a compact summary and its processes, about every
``HEARTBEAT_INTERVAL`` seconds. Controls aimed at another node are command
rows (``worker_inspector_audit`` rows in state ``pending``) that the node
picks up with its next heartbeat. No ``odoo`` import: any DB-API cursor.
"""

import collections
import os
import signal
import socket

import psutil

from .classify import ROLE_CRON, ROLE_HTTP
from .identity import process_key
from .jsonout import to_json
from .recycle import RecycleRefused, recycle_worker
from .snapshot import MODE_PREFORK
from .tree import read_processes

HEARTBEAT_INTERVAL = 10.0
STALE_AFTER_BEATS = 3
RETENTION = 24 * 3600.0

NODE_TABLE = "worker_inspector_node"
AUDIT_TABLE = "worker_inspector_audit"

ACTION_ADD = "worker_add"
ACTION_REMOVE = "worker_remove"
ACTION_RECYCLE = "recycle"
ACTION_CANCEL = "sql_cancel"
ACTION_TERMINATE = "sql_terminate"
NODE_ACTIONS = (ACTION_ADD, ACTION_REMOVE, ACTION_RECYCLE)

# UNLOGGED: a heartbeat is worth nothing after a crash, so it costs no WAL
# (and is not replicated: a standby has no nodes, which is right).
CREATE_NODE_TABLE = f"""
    CREATE UNLOGGED TABLE IF NOT EXISTS {NODE_TABLE} (
        node varchar PRIMARY KEY,
        hostname varchar NOT NULL,
        pid integer NOT NULL,
        mode varchar NOT NULL,
        odoo_version varchar,
        beat_at timestamp NOT NULL DEFAULT (now() AT TIME ZONE 'UTC'),
        interval double precision NOT NULL,
        summary jsonb NOT NULL,
        processes jsonb NOT NULL
    )
"""

# One writer per node and beat, whichever process of the node comes first:
# the row is updated only when its last beat is older than most of an interval.
_CLAIM_SQL = f"""
    INSERT INTO {NODE_TABLE} (node, hostname, pid, mode, odoo_version, interval, summary, processes)
    VALUES (%s, %s, %s, %s, %s, %s, '{{}}', '[]')
    ON CONFLICT (node) DO UPDATE SET beat_at = now() AT TIME ZONE 'UTC'
     WHERE {NODE_TABLE}.beat_at < (now() AT TIME ZONE 'UTC') - make_interval(secs => %s)
    RETURNING node
"""
_PUBLISH_SQL = f"UPDATE {NODE_TABLE} SET summary = %s, processes = %s, interval = %s WHERE node = %s"
_FORGET_SQL = f"""
    DELETE FROM {NODE_TABLE}
     WHERE beat_at < (now() AT TIME ZONE 'UTC') - make_interval(secs => %s)
"""
_READ_SQL = f"""
    SELECT node, hostname, pid, mode, odoo_version, summary, interval,
           EXTRACT(EPOCH FROM beat_at), EXTRACT(EPOCH FROM (now() AT TIME ZONE 'UTC') - beat_at)
      FROM {NODE_TABLE} {{where}}
     ORDER BY hostname, pid
"""
_PENDING_SQL = f"""
    SELECT id, action, pid FROM {AUDIT_TABLE}
     WHERE node = %s AND state = 'pending'
     ORDER BY id
     FOR UPDATE SKIP LOCKED
"""
# A command its node will never carry out: the node is gone (forgotten after its
# retention), or did not pick it up within STALE_AFTER_BEATS of its intervals
# (stale, stopped, frozen). Expired, it is never run: a node coming back expires
# its own late commands before it looks for pending ones.
STATE_EXPIRED = "expired"
_LATE_SQL = f"""
    SELECT c.id, c.node, n.node IS NOT NULL, n.interval,
           EXTRACT(EPOCH FROM (now() AT TIME ZONE 'UTC') - c.create_date)
      FROM {AUDIT_TABLE} c
      LEFT JOIN {NODE_TABLE} n ON n.node = c.node
     WHERE c.state = 'pending'
       AND (n.node IS NULL OR c.create_date < (now() AT TIME ZONE 'UTC') - make_interval(secs => %s * n.interval))
     ORDER BY c.id
     FOR UPDATE OF c SKIP LOCKED
"""
_DONE_SQL = f"""
    UPDATE {AUDIT_TABLE} SET state = %s, result = %s, done_at = now() AT TIME ZONE 'UTC' WHERE id = %s
"""


class ControlRefused(Exception):
    """A control that must not be carried out; the message says why."""


def node_name(hostname, pid):
    return f"{hostname}:{pid}"


def this_node(server):
    return node_name(socket.gethostname(), server.pid)


def summarize(snapshot):
    """The compact summary a heartbeat publishes (and the API's ``summary``)."""
    processes = snapshot["processes"]
    roles = collections.Counter(proc["role"] for proc in processes)
    summary = {
        "workers": dict(sorted(roles.items())),
        "utilization": snapshot.get("utilization"),
        "rss": sum(proc.get("rss") or 0 for proc in processes),
        "longest_busy": snapshot.get("longest_busy"),
        "http_workers": roles.get(ROLE_HTTP, 0),
        "cron_workers": roles.get(ROLE_CRON, 0),
    }
    # Filled by the snapshot where it knows them (history, advice).
    for key in ("backlog", "exits_last_hour", "advice_levels"):
        if key in snapshot:
            summary[key] = snapshot[key]
    return summary


def public_processes(snapshot):
    """What a node publishes of its processes: enough for its row to open them."""
    keep = ("pid", "ppid", "role", "title", "rss", "vms", "cpu_percent", "num_threads", "started_at")
    rows = []
    for proc in snapshot["processes"]:
        row = {key: proc.get(key) for key in keep if key in proc}
        activity = proc.get("activity") or {}
        row["state"] = activity.get("state")
        row["url"] = activity.get("url") if activity.get("state") == "busy" else None
        row["elapsed"] = activity.get("elapsed") if activity.get("state") == "busy" else None
        rows.append(row)
    return rows


def claim_beat(cr, node, hostname, server, interval=HEARTBEAT_INTERVAL):
    """True when this process is to publish the node's beat now (its row is now fresh)."""
    cr.execute(_CLAIM_SQL, (node, hostname, server.pid, server.mode, server.odoo_version, interval, interval * 0.8))
    return cr.fetchone() is not None


def publish(cr, node, summary, processes, interval=HEARTBEAT_INTERVAL, retention=RETENTION):
    """Write the node's beat (after ``claim_beat``) and forget nodes silent for ``retention`` s."""
    cr.execute(_PUBLISH_SQL, (_dumps(summary), _dumps(processes), interval, node))
    cr.execute(_FORGET_SQL, (retention,))


def read_nodes(cr, serving_node, node=None):
    """The API's nodes; ``node`` restricts to one (then with its processes)."""
    if node is None:
        cr.execute(_READ_SQL.format(where=""))
    else:
        cr.execute(_READ_SQL.format(where="WHERE node = %s"), (node,))
    rows = []
    for name, hostname, pid, mode, version, summary, interval, beat_epoch, age in cr.fetchall():
        # Stale by the age the row shows: 6.0004 s, shown as 6.0, is not past 3 beats of 2 s.
        age = round(float(age), 3)
        rows.append(
            {
                "node": name,
                "hostname": hostname,
                "pid": pid,
                "mode": mode,
                "odoo_version": version,
                "workers": summary.get("workers", {}),
                "utilization": summary.get("utilization"),
                "rss": summary.get("rss"),
                "last_seen": float(beat_epoch),
                "age": age,
                "interval": interval,
                "stale": age > STALE_AFTER_BEATS * interval,
                "serving": name == serving_node,
                "summary": summary,
            }
        )
    return rows


def read_node_processes(cr, node):
    cr.execute(f"SELECT processes FROM {NODE_TABLE} WHERE node = %s", (node,))
    row = cr.fetchone()
    return row and row[0]


def _http_workers(server):
    return [proc for proc in read_processes(server.pid, server.mode) if proc["role"] == ROLE_HTTP]


def change_workers(server, delta, spare=None):
    """Add (``delta`` 1) or remove (-1) one HTTP worker of the prefork server.

    Odoo's master grows its population on SIGTTIN and forks a worker; on
    SIGTTOU it only lowers its population, so one HTTP worker (not ``spare``,
    the one asking, which must answer) is then recycled gracefully: it ends its
    request and is not replaced. Returns a result dict; raises ControlRefused.
    """
    if server.mode != MODE_PREFORK:
        raise ControlRefused("This server is threaded (workers = 0): it has no HTTP workers to add or remove.")
    if delta not in (1, -1):
        raise ControlRefused(f"delta must be 1 or -1, got {delta!r}.")
    workers = _http_workers(server)
    if delta == 1:
        os.kill(server.pid, signal.SIGTTIN)
        return {"signal": "SIGTTIN", "http_workers_before": len(workers)}
    if len(workers) <= 1:
        raise ControlRefused("The node has one HTTP worker left: it cannot be removed.")
    victims = sorted((proc for proc in workers if proc["pid"] != spare), key=lambda proc: -proc["started_at"])
    victim = victims[0]
    os.kill(server.pid, signal.SIGTTOU)
    try:
        result = recycle_worker(server.pid, server.mode, victim["pid"])
    except RecycleRefused as exc:
        # The master's population is already lower: the next exit is not replaced.
        return {"signal": "SIGTTOU", "http_workers_before": len(workers), "note": str(exc)}
    return {"signal": "SIGTTOU", "http_workers_before": len(workers), "recycled": result["pid"]}


def _dumps(value):
    return to_json(value).decode()


def command_expiry(node, row, waited, beats=STALE_AFTER_BEATS):
    """Why a command pending for ``waited`` seconds will never be carried out by ``node``
    (``row``: its row of ``read_nodes``, None when the node is gone), as the audit's result;
    None while the node may still carry it out."""
    if row is None:
        reason = (
            f"Node {node} no longer publishes heartbeats into this database (forgotten): "
            "the command was never carried out, and never will be."
        )
    elif waited > beats * row["interval"]:
        reason = (
            f"Node {node} did not carry the command out within {beats * row['interval']:.0f} s ({beats} of "
            "its heartbeats): it is stale or stopped; the command expired and will never be carried out."
        )
    else:
        return None
    return {"reason": reason, "waited": round(waited, 1)}


def expire_commands(cr, beats=STALE_AFTER_BEATS):
    """Expire the pending commands, of any node, that their node will never carry out
    (``command_expiry``); returns ``[(id, state, result)]`` of those expired now."""
    cr.execute(_LATE_SQL, (beats,))
    expired = []
    for command_id, node, known, interval, waited in cr.fetchall():
        result = command_expiry(node, {"interval": interval} if known else None, float(waited), beats)
        if result is not None:
            cr.execute(_DONE_SQL, (STATE_EXPIRED, _dumps(result), command_id))
            expired.append((command_id, STATE_EXPIRED, result))
    return expired


def run_pending(cr, server):
    """Carry out the node's pending commands (called with its heartbeat), after expiring
    those of any node that will never carry them out, this one's late ones included."""
    done = expire_commands(cr)
    cr.execute(_PENDING_SQL, (this_node(server),))
    for command_id, action, pid in cr.fetchall():
        try:
            if action == ACTION_ADD:
                result, state = change_workers(server, 1), "done"
            elif action == ACTION_REMOVE:
                result, state = change_workers(server, -1, spare=os.getpid()), "done"
            elif action == ACTION_RECYCLE:
                result, state = recycle_worker(server.pid, server.mode, pid), "done"
            else:
                result, state = {"reason": f"Unknown action {action!r}."}, "refused"
        except (ControlRefused, RecycleRefused) as exc:
            result, state = {"reason": str(exc)}, "refused"
        except OSError as exc:
            result, state = {"reason": f"Could not signal: {exc}"}, "failed"
        cr.execute(_DONE_SQL, (state, _dumps(result), command_id))
        done.append((command_id, state, result))
    return done


def check_own_backend(sessions, backend_pid, server_pids, db):
    """The session of ``backend_pid`` when it belongs to this Odoo server.

    ``sessions``: ``database.read_pg_sessions``. A session is this server's
    when it is on ``db``, and Odoo named it after one of ``server_pids``
    (``odoo-<pid>``) whose process is alive in this server's tree.
    """
    for session in sessions:
        if session["backend_pid"] != backend_pid:
            continue
        app = session.get("application_name") or ""
        owner = app.removeprefix("odoo-")
        if session.get("db") != db:
            raise ControlRefused(f"Backend {backend_pid} is on another database ({session.get('db')!r}).")
        if not owner.isdigit() or int(owner) not in server_pids:
            raise ControlRefused(f"Backend {backend_pid} does not belong to a process of this Odoo server.")
        return session
    raise ControlRefused(f"Backend {backend_pid} is not a session of this Odoo server (or has ended).")


def server_pids(server):
    """Pids of this server's processes, checked alive (keys read now)."""
    pids = {server.pid}
    for proc in read_processes(server.pid, server.mode):
        if process_key(proc["pid"]) == proc["key"]:
            pids.add(proc["pid"])
    return {pid for pid in pids if psutil.pid_exists(pid)}
