"""What every worker is doing, as the API shows it.

``add_activity`` turns the board of a server (see ``board``; ``recorder``
writes it), its PostgreSQL sessions and its overdue scheduled actions into the
snapshot's ``activity``, ``sql``, ``utilization``, ``longest_busy`` and
``cron`` fields.
"""

import logging
import os

from .schema import Activity, CronSection, Snapshot
from .vocabulary import ActivityKind, ActivityState, Mode, Role, ThreadKind, UtilizationBasis

_logger = logging.getLogger(__name__)

UTILIZATION_HTTP_WORKERS = UtilizationBasis.HTTP_WORKERS
UTILIZATION_MAX_HTTP_THREADS = UtilizationBasis.MAX_HTTP_THREADS
UTILIZATION_DB_MAXCONN = UtilizationBasis.DB_MAXCONN


def public_activity(record, requests, now, observer=None) -> Activity:
    """``activity`` of the API from one board record.

    ``observer``: ``(pid, tid)`` of the request taking the snapshot, which is
    marked so that it does not count itself busy.
    """
    return {
        "state": record["state"],
        "kind": record["kind"],
        "since": record["since"],
        "elapsed": round(max(now - record["since"], 0.0), 3),
        "db": record["db"],
        "uid": record["uid"],
        "login": record["login"],
        "url": record["url"],
        "requests": requests,
        "cron_job": record["cron_job"],
        "hidden": False,  # see scope_to_database
        "observer": _is_observer(record, observer),
    }


def _is_observer(record, observer):
    return observer is not None and (record["pid"], record["tid"]) == observer


def process_activity(requests, records, now, observer=None) -> Activity | None:
    """A process's activity: its longest-busy thread, else its latest idle one."""
    if not records:
        return None
    busy = [r for r in records if r["state"] == ActivityState.BUSY]
    if busy:
        record = min(busy, key=lambda r: r["since"])
    else:
        record = max(records, key=lambda r: r["since"])
    return public_activity(record, requests, now, observer)


def request_thread_capacity(config, environ):
    """How many requests the threaded server can serve at once, and why.

    ``ODOO_MAX_HTTP_THREADS`` caps the request threads when set; otherwise
    each request needs a database connection (often two), so the value Odoo
    computes for that cap, ``(db_maxconn - max_cron_threads) // 2``, is the
    capacity.
    """
    value = environ.get("ODOO_MAX_HTTP_THREADS")
    if value:
        try:
            return max(int(value), 1), UTILIZATION_MAX_HTTP_THREADS
        except ValueError:
            _logger.debug("ODOO_MAX_HTTP_THREADS=%r is not a number: Odoo ignores it", value)
    maxconn = config.get("db_maxconn") or 64
    crons = config.get("max_cron_threads") or 0
    return max((int(maxconn) - int(crons)) // 2, 1), UTILIZATION_DB_MAXCONN


def _working(records, observer):
    """Records busy on a request, the observer's excepted."""
    return [
        r
        for r in records
        if r["kind"] == ActivityKind.HTTP and r["state"] == ActivityState.BUSY and not _is_observer(r, observer)
    ]


def _utilization(snapshot, board, environ, observer):
    # The request taking the snapshot (a dashboard refresh, a Prometheus
    # scrape) is not counted: watching an idle server must not show it busy.
    if snapshot["server"]["mode"] == Mode.PREFORK:
        http = [p["pid"] for p in snapshot["processes"] if p["role"] == Role.HTTP]
        busy = sum(1 for pid in http if _working(board.get(pid, (0, []))[1], observer))
        total, basis = len(http), UTILIZATION_HTTP_WORKERS
    else:
        busy = len(_working(board.get(snapshot["server"]["pid"], (0, []))[1], observer))
        total, basis = request_thread_capacity(snapshot.get("config") or {}, environ)
    return {
        "utilization": round(busy / total, 3) if total else None,
        "http_busy": busy,
        "http_capacity": total,
        "utilization_basis": basis,
    }


def _longest_busy(snapshot):
    """Seconds the longest running request or scheduled action has been busy.

    Each process's ``activity`` is already its longest-busy record.
    """
    elapsed = [
        p["activity"]["elapsed"]
        for p in snapshot["processes"]
        if (p["activity"] or {}).get("state") == ActivityState.BUSY
    ]
    return max(elapsed) if elapsed else None


def _cron_section(snapshot, overdue_crons) -> CronSection:
    max_cron_threads = (snapshot.get("config") or {}).get("max_cron_threads") or 0
    if snapshot["server"]["mode"] == Mode.PREFORK:
        runners = [
            {"pid": p["pid"], "tid": None, "name": None, "activity": p.get("activity")}
            for p in snapshot["processes"]
            if p["role"] == Role.CRON
        ]
    else:
        runners = [
            {"pid": snapshot["served_by"], "tid": t["native_id"], "name": t["name"], "activity": t.get("activity")}
            for t in snapshot["threads"]
            if t["kind"] == ThreadKind.CRON
        ]
    return {
        "max_cron_threads": max_cron_threads,
        "runners": runners,
        # Cron off (the debug mode): what is not being run.
        "overdue": list(overdue_crons or []) if not max_cron_threads else None,
    }


def add_activity(
    snapshot: Snapshot, board, sql_sessions=None, overdue_crons=None, environ=None, observer_tid=None
) -> Snapshot:
    """Add the activity fields to ``snapshot`` (see README, "Activity").

    ``observer_tid``: the thread taking the snapshot, in the serving process.
    """
    environ = os.environ if environ is None else environ
    now = snapshot["taken_at"]
    observer = (snapshot["served_by"], observer_tid) if observer_tid else None
    per_pid, per_thread, unattributed = attribute_sessions(snapshot, board, sql_sessions or [])
    for proc in snapshot["processes"]:
        requests, records = board.get(proc["pid"], (0, []))
        proc["activity"] = process_activity(requests, records, now, observer)
        proc["sql"] = per_pid.get(proc["pid"], [])
    served_by = snapshot["served_by"]
    own = {r["tid"]: r for r in board.get(served_by, (0, []))[1]}
    for thread in snapshot["threads"]:
        tid = thread["native_id"]
        record = own.get(tid)
        thread["activity"] = public_activity(record, record["requests"], now, observer) if record else None
        thread["sql"] = per_thread.get((served_by, tid), [])
    snapshot["sql_unattributed"] = unattributed
    snapshot.update(_utilization(snapshot, board, environ, observer))
    snapshot["longest_busy"] = _longest_busy(snapshot)
    snapshot["cron"] = _cron_section(snapshot, overdue_crons)
    return snapshot


def _session_pid(application_name):
    # Odoo names its connections "odoo-<pid>" (sql_db.connection_info_for).
    prefix, _, pid = (application_name or "").partition("-")
    return int(pid) if prefix == "odoo" and pid.isdigit() else None


def _by_urgency(sessions):
    return sorted(sessions, key=lambda s: (s.get("state") != "active", -(s.get("duration") or 0.0)))


def attribute_sessions(snapshot, board, sessions):
    """Give each PostgreSQL session of the server to its process and thread.

    A busy record names the backend of its current cursor: that wins.
    Otherwise the session's ``application_name`` (``odoo-<pid>``) names the
    process that opened it; but prefork workers inherit the settings of a
    registry the master preloaded (``-d``), so PostgreSQL names their
    sessions after the master: unless a worker's cursor claims them, those go
    to ``sql_unattributed``. Returns ``(per_pid, per_thread, unattributed)``,
    ``per_thread`` keyed on ``(pid, tid)``, each list active sessions first,
    then the longest.
    """
    pids = {p["pid"] for p in snapshot["processes"]}
    master = snapshot["server"]["pid"] if snapshot["server"]["mode"] == Mode.PREFORK else None
    cursors = {
        record["backend_pid"]: (pid, record["tid"])
        for pid, (_requests, records) in board.items()
        for record in records
        if record.get("backend_pid") and pid in pids
    }
    per_pid, per_thread, unattributed = {}, {}, []
    for session in sessions:
        public = {key: value for key, value in session.items() if key != "application_name"}
        owner = cursors.get(session.get("backend_pid"))
        if owner:
            public["matched_by"] = "cursor"
            per_pid.setdefault(owner[0], []).append(public)
            per_thread.setdefault(owner, []).append(public)
            continue
        pid = _session_pid(session.get("application_name"))
        if pid not in pids:
            continue  # another server's session
        public["matched_by"] = "application_name"
        if pid == master:
            unattributed.append(public)
        else:
            per_pid.setdefault(pid, []).append(public)
    per_pid = {key: _by_urgency(value) for key, value in per_pid.items()}
    per_thread = {key: _by_urgency(value) for key, value in per_thread.items()}
    return per_pid, per_thread, _by_urgency(unattributed)


# What an activity, or a thread (what Odoo sets on it), shows of the request
# or job it runs: hidden from the admins of another database (see
# ``scope_to_database``).
PRIVATE_ACTIVITY_FIELDS = ("db", "uid", "login", "url", "cron_job")
PRIVATE_THREAD_FIELDS = ("db", "uid", "url")


def _activity_db(activity):
    return activity["db"] or (activity["cron_job"] or {}).get("db")


def scope_to_database(snapshot, db, several_databases=True):
    """Keep in ``snapshot`` only what the admins of database ``db`` may see.

    Processes, memory and each worker's state stay server-wide (the server is
    shared); what a worker does for another database (its database, user,
    URL, scheduled action) is hidden, and so are the SQL sessions of other
    databases. Activity not yet tied to a database (a request before its
    authentication, a static file) is hidden only when the server serves
    ``several_databases``. Hidden activities say ``"hidden": True``.
    """

    def foreign(owner):
        return owner != db and (owner is not None or several_databases)

    activities = [p.get("activity") for p in snapshot["processes"]] + [t.get("activity") for t in snapshot["threads"]]
    activities += [r.get("activity") for r in (snapshot.get("cron") or {}).get("runners", [])]
    for activity in activities:
        if activity and not activity["hidden"] and foreign(_activity_db(activity)):
            activity.update(dict.fromkeys(PRIVATE_ACTIVITY_FIELDS), hidden=True)
    for thread in snapshot["threads"]:
        if foreign(thread.get("db")) and (thread.get("db") or thread.get("url")):
            thread.update(dict.fromkeys(PRIVATE_THREAD_FIELDS))
    for entry in snapshot["processes"] + snapshot["threads"]:
        if "sql" in entry:
            entry["sql"] = [s for s in entry["sql"] if s.get("db") == db]
    if "sql_unattributed" in snapshot:
        snapshot["sql_unattributed"] = [s for s in snapshot["sql_unattributed"] if s.get("db") == db]
    snapshot["scope"] = {"db": db}
    return snapshot
