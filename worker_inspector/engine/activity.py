"""What every worker is doing right now: recording it, and showing it in the API.

``Recorder`` is what Odoo's hot path calls (a request begins and ends, a user
is authenticated, a scheduled action runs): it writes the calling thread's
record on this process's board (see ``board``) and never raises into Odoo.
``add_activity`` turns the board of a server, its PostgreSQL sessions and its
overdue scheduled actions into the snapshot's ``activity``, ``sql``,
``utilization``, ``longest_busy`` and ``cron`` fields.
"""

import atexit
import logging
import os
import threading
import weakref

from .board import ProcessBoard, remove_dead_servers

_logger = logging.getLogger(__name__)

# Records per process: a prefork worker serves requests or runs jobs in one
# thread; the threaded server has a thread per connection and per cron thread.
# (A prefork worker's main thread holds one from its fork, its work thread another.)
PREFORK_SLOTS = 4
THREADED_SLOTS = 256


class Recorder:
    """Records the calling thread's activity on this process's board.

    ``locate`` returns ``(server_pid, slots)`` for this process, or None when
    it must not record (the gevent process). The board is opened on first use
    in each process, so forked workers get their own file without a restart;
    each thread gets its own record, given back when the thread ends. With
    ``report_at_fork``, a process forked after the recorder was created (a
    prefork worker of a master that preloaded the addon) shows idle from its
    first instant instead of nothing until its first request.
    """

    def __init__(self, locate, base=None, report_at_fork=False):
        self._locate = locate
        self._base = base
        self._report_at_fork = report_at_fork
        self._board = None
        self._disabled = False
        self._lock = threading.Lock()
        self._tls = threading.local()
        # Through a weak reference: a dropped recorder leaves no work to forks and exit.
        alive = weakref.ref(self)
        os.register_at_fork(after_in_child=lambda: (recorder := alive()) and recorder._after_fork())
        atexit.register(lambda: (recorder := alive()) and recorder.close())

    @property
    def board(self):
        return self._board

    def _after_fork(self):
        # The child must never write into its parent's file.
        board, self._board = self._board, None
        self._disabled = False
        self._lock = threading.Lock()
        if board is not None:
            board.detach()
        self._tls = threading.local()
        if self._report_at_fork:
            try:
                self.slot()
            except Exception:  # the inspector must never break Odoo
                _logger.debug("no record at fork", exc_info=True)

    def _open(self):
        with self._lock:
            if self._board is None and not self._disabled:
                try:
                    located = self._locate()
                    if located is None:
                        self._disabled = True
                    else:
                        server_pid, slots = located
                        remove_dead_servers(self._base)
                        self._board = ProcessBoard(server_pid, slots, self._base)
                except Exception:  # the inspector must never break Odoo
                    _logger.warning("Worker activity is not recorded in this process", exc_info=True)
                    self._disabled = True
            return self._board

    def _claim(self):
        if self._disabled:
            return None
        board = self._board or self._open()
        slot = board.claim() if board is not None else None
        self._tls.slot = slot
        return slot

    def slot(self):
        """The calling thread's record (claimed on first use), or None."""
        slot = getattr(self._tls, "slot", None)
        if slot is None or slot.board is not self._board:
            slot = self._claim()
        return slot

    def begin_request(self, path):
        """A request for ``path`` (WSGI ``PATH_INFO``) starts in this thread; returns its record."""
        try:
            slot = self.slot()
            if slot is not None:
                # PATH_INFO holds the raw bytes of the path decoded as latin-1.
                slot.begin_request(path.encode("latin-1", "replace"))
            return slot
        except Exception:  # the inspector must never break Odoo
            _logger.debug("begin_request failed", exc_info=True)
            return None

    @staticmethod
    def end_request(slot):
        try:
            slot.end_request()
        except Exception:
            _logger.debug("end_request failed", exc_info=True)

    def set_user(self, db, uid, login, backend_pid=0):
        """The current request is authenticated; ``backend_pid``: PostgreSQL backend of its cursor."""
        slot = getattr(self._tls, "slot", None)
        if slot is not None and slot.board is self._board:
            try:
                slot.set_user(db, uid, login, backend_pid)
            except Exception:
                _logger.debug("set_user failed", exc_info=True)

    def begin_cron(self, job_id, name, db, uid=None, backend_pid=0):
        """A scheduled action starts in this thread; returns its record."""
        try:
            slot = self.slot()
            if slot is not None:
                slot.begin_cron(job_id, name, db, uid, backend_pid)
            return slot
        except Exception:
            _logger.debug("begin_cron failed", exc_info=True)
            return None

    @staticmethod
    def end_cron(slot):
        try:
            slot.end_cron()
        except Exception:
            _logger.debug("end_cron failed", exc_info=True)

    def close(self):
        """Delete this process's board file (at exit)."""
        board = self._board
        if board is not None and board.pid == os.getpid():
            board.close()


# --- The API fields --------------------------------------------------------

UTILIZATION_HTTP_WORKERS = "http_workers"
UTILIZATION_MAX_HTTP_THREADS = "ODOO_MAX_HTTP_THREADS"
UTILIZATION_DB_MAXCONN = "db_maxconn"


def public_activity(record, requests, now):
    """``activity`` of the API from one board record."""
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
    }


def process_activity(requests, records, now):
    """A process's activity: its longest-busy thread, else its latest idle one."""
    if not records:
        return None
    busy = [r for r in records if r["state"] == "busy"]
    if busy:
        record = min(busy, key=lambda r: r["since"])
    else:
        record = max(records, key=lambda r: r["since"])
    return public_activity(record, requests, now)


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


def _utilization(snapshot, board, environ):
    if snapshot["server"]["mode"] == "prefork":
        http = [p for p in snapshot["processes"] if p["role"] == "http"]
        busy = sum(1 for p in http if (p.get("activity") or {}).get("state") == "busy")
        total, basis = len(http), UTILIZATION_HTTP_WORKERS
    else:
        records = board.get(snapshot["server"]["pid"], (0, []))[1]
        busy = sum(1 for r in records if r["kind"] == "http" and r["state"] == "busy")
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
    elapsed = [p["activity"]["elapsed"] for p in snapshot["processes"] if (p["activity"] or {}).get("state") == "busy"]
    return max(elapsed) if elapsed else None


def _cron_section(snapshot, overdue_crons):
    max_cron_threads = (snapshot.get("config") or {}).get("max_cron_threads") or 0
    if snapshot["server"]["mode"] == "prefork":
        runners = [
            {"pid": p["pid"], "tid": None, "name": None, "activity": p.get("activity")}
            for p in snapshot["processes"]
            if p["role"] == "cron"
        ]
    else:
        runners = [
            {"pid": snapshot["served_by"], "tid": t["native_id"], "name": t["name"], "activity": t.get("activity")}
            for t in snapshot["threads"]
            if t["kind"] == "cron"
        ]
    return {
        "max_cron_threads": max_cron_threads,
        "runners": runners,
        # Cron off (the debug mode): what is not being run.
        "overdue": list(overdue_crons or []) if not max_cron_threads else None,
    }


def add_activity(snapshot, board, sql_sessions=None, overdue_crons=None, environ=None):
    """Add the activity fields to ``snapshot`` (see README, "Activity")."""
    environ = os.environ if environ is None else environ
    now = snapshot["taken_at"]
    per_pid, per_thread, unattributed = attribute_sessions(snapshot, board, sql_sessions or [])
    for proc in snapshot["processes"]:
        requests, records = board.get(proc["pid"], (0, []))
        proc["activity"] = process_activity(requests, records, now)
        proc["sql"] = per_pid.get(proc["pid"], [])
    served_by = snapshot["served_by"]
    own = {r["tid"]: r for r in board.get(served_by, (0, []))[1]}
    for thread in snapshot["threads"]:
        tid = thread["native_id"]
        record = own.get(tid)
        thread["activity"] = public_activity(record, record["requests"], now) if record else None
        thread["sql"] = per_thread.get((served_by, tid), [])
    snapshot["sql_unattributed"] = unattributed
    snapshot.update(_utilization(snapshot, board, environ))
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
    master = snapshot["server"]["pid"] if snapshot["server"]["mode"] == "prefork" else None
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
