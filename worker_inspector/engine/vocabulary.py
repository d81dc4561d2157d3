"""The words of the API, defined once: modes, roles, thread kinds, activity.

Each is a ``str`` enum: its members are the very strings the JSON API sends
(``Role.HTTP == "http"``, ``json.dumps`` writes ``"http"``). The dashboard
shows what it receives, with per-item facts the engine decides (a process's
``recyclable``) rather than its own copy of the rules.
"""

import enum


class _Word(str, enum.Enum):
    def __str__(self):
        return self.value


class Mode(_Word):
    """How the server runs: ``workers = 0`` or ``workers > 0``."""

    THREADED = "threaded"
    PREFORK = "prefork"


class Role(_Word):
    """What a process of the server is."""

    MASTER = "master"  # prefork: the root, which forks and watches the workers
    HTTP = "http"  # prefork: WorkerHTTP
    CRON = "cron"  # prefork: WorkerCron
    GEVENT = "gevent"  # prefork: the websocket process
    SERVER = "server"  # threaded: the one process


class ThreadKind(_Word):
    """What a thread of the serving process is."""

    HTTP = "http"  # serves a request
    CRON = "cron"  # a cron thread of the threaded server
    HTTPD = "httpd"  # the threaded server's accept loop
    WEBSOCKET = "websocket"
    WORKER = "worker"  # a prefork worker's work thread
    MAIN = "main"
    OTHER = "other"


class ActivityState(_Word):
    IDLE = "idle"
    BUSY = "busy"


class ActivityKind(_Word):
    """What a process or thread did last."""

    HTTP = "http"  # a request
    CRON = "cron"  # a scheduled action


class UtilizationBasis(_Word):
    """What ``http_capacity`` counts."""

    HTTP_WORKERS = "http_workers"  # prefork: the HTTP worker processes
    MAX_HTTP_THREADS = "ODOO_MAX_HTTP_THREADS"  # threaded, capped by that variable
    DB_MAXCONN = "db_maxconn"  # threaded: (db_maxconn - max_cron_threads) // 2


# Workers: the processes (prefork) and threads (threaded) that serve requests or run jobs.
WORKER_ROLES = (Role.HTTP, Role.CRON)
WORKER_THREAD_KINDS = (ThreadKind.HTTP, ThreadKind.CRON)


def is_recyclable(mode, role):
    """Whether a process can be recycled: an HTTP or cron worker of a prefork server (Odoo respawns those)."""
    return mode == Mode.PREFORK and role in WORKER_ROLES
