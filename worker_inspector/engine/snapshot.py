"""One consistent picture of an Odoo server, as the JSON API returns it."""

import os
import threading
import time
from dataclasses import dataclass, field

from .activity import add_activity
from .board import UntrustedBoard, read_board
from .config import ODOO_OPTIONS, effective_config, redact_cmdline
from .host import read_host
from .schema import Process, Snapshot
from .threads import read_threads
from .tree import read_processes
from .vocabulary import WORKER_ROLES, Mode, is_recyclable

MODE_THREADED = Mode.THREADED
MODE_PREFORK = Mode.PREFORK


@dataclass
class ServerInfo:
    """What only the Odoo side knows: the server's root pid and its mode."""

    pid: int
    mode: str
    odoo_version: str = None
    served_by: int = field(default_factory=os.getpid)


def _public_process(info, options, mode) -> Process:
    info = dict(info)
    del info["key"]
    info["cmdline"] = " ".join(redact_cmdline(info["cmdline"], options))
    info["recyclable"] = is_recyclable(mode, info["role"])
    # Serves requests or runs jobs: a cell of the scoreboard (prefork).
    info["worker"] = mode == Mode.PREFORK and info["role"] in WORKER_ROLES
    return info


def read_activity_board(server_pid, problem=None, base=None):
    """``(board, status)``: the server's activity board and the API's
    ``activity_board`` field, which says why nothing is shown when the board
    cannot be used (``problem``: why this process records nothing)."""
    try:
        board = read_board(server_pid, base=base)
    except UntrustedBoard as exc:
        return {}, {"available": False, "reason": f"Activity is not shown: {exc}"}
    except OSError as exc:
        return {}, {"available": False, "reason": f"The activity board cannot be read: {exc}"}
    return board, {"available": problem is None, "reason": problem}


def take_snapshot(
    server,
    options,
    threads=None,
    sql_sessions=None,
    overdue_crons=None,
    board_problem=None,
    option_table=None,
    sql_problem=None,
) -> Snapshot:
    """Snapshot of ``server`` with Odoo's config mapping ``options``.

    Threads are those of the calling process (the one serving the request).
    ``sql_sessions`` (``database.read_pg_sessions``) and ``overdue_crons``
    (``database.read_overdue_crons``) come from the caller's database cursor.
    ``board_problem``: why this process cannot record its activity, if so.
    ``option_table``: how Odoo's parser reads options (``config.OptionTable``),
    to redact command lines. ``sql_problem``: why PostgreSQL could not be
    read (then there are no sessions).
    """
    config = effective_config(options)
    processes = read_processes(server.pid, server.mode, config)
    snapshot = {
        "server": {
            "mode": server.mode,
            "pid": server.pid,
            "odoo_version": server.odoo_version,
        },
        "served_by": server.served_by,
        "taken_at": time.time(),
        "config": config,
        "host": read_host(),
        "processes": [_public_process(p, option_table or ODOO_OPTIONS, server.mode) for p in processes],
        "threads": read_threads(threads),
    }
    board, snapshot["activity_board"] = read_activity_board(server.pid, board_problem)
    snapshot["sql_unavailable"] = sql_problem
    snapshot["scope"] = {"db": None}  # server-wide; see activity.scope_to_database
    # The calling thread is the request taking the snapshot: the observer.
    return add_activity(snapshot, board, sql_sessions, overdue_crons, observer_tid=threading.get_native_id())


def name_users(items, logins_in):
    """Give each item (a dict with ``db``, ``uid`` and ``login``) its user's login where only
    the uid is known; returns ``items``.

    Requests, scheduled actions and websocket threads record only a uid (the request
    path reads no more). ``logins_in(db, uids)`` returns ``{uid: login}`` read in
    ``db`` (``{}`` where they are not to be named): a uid of another database is a
    different user. It is called once per database.
    """
    wanted = {}
    for item in items:
        if item.get("uid") and not item.get("login") and item.get("db"):
            wanted.setdefault(item["db"], set()).add(item["uid"])
    logins = {db: logins_in(db, sorted(uids)) for db, uids in wanted.items()}
    for item in items:
        found = logins.get(item.get("db"))
        if found and item.get("uid") and not item.get("login"):
            item["login"] = found.get(item["uid"])
    return items


def add_logins(snapshot: Snapshot, logins_in) -> Snapshot:
    """``name_users`` on the activities and the threads of ``snapshot``."""
    activities = [p["activity"] for p in snapshot["processes"] if p.get("activity")]
    activities += [t["activity"] for t in snapshot["threads"] if t.get("activity")]
    for thread in snapshot["threads"]:
        thread.setdefault("login", None)
    name_users(activities + snapshot["threads"], logins_in)
    return snapshot
