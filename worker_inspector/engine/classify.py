"""How an Odoo process or thread is classified: the one source of truth.

Odoo's prefork master renames its workers with ``setproctitle`` to
``odoo: WorkerHTTP <pid>`` and ``odoo: WorkerCron <pid> <db>``; the websocket
process is started as ``<python> <odoo-bin> gevent ...``. When
``setproctitle`` is missing the titles stay the master's command line, so the
fallback uses what Odoo does regardless: cron workers call ``os.nice(10)``.
"""

import re

from .vocabulary import Role, ThreadKind

ROLE_MASTER = Role.MASTER
ROLE_HTTP = Role.HTTP
ROLE_CRON = Role.CRON
ROLE_GEVENT = Role.GEVENT
ROLE_SERVER = Role.SERVER
ROLES = tuple(Role)

THREAD_KINDS = tuple(ThreadKind)

_TITLE_RE = re.compile(r"^odoo: (WorkerHTTP|WorkerCron) (\d+)(?: +(\S+))?")
_TITLE_ROLES = {"WorkerHTTP": ROLE_HTTP, "WorkerCron": ROLE_CRON}
# os.nice(10) in WorkerCron.start(); the kernel caps niceness at 19.
_CRON_NICE_INCREMENT = 10
_MAX_NICE = 19


def parse_title(cmdline):
    """Return ``(role, pid, db)`` from a worker's process title, or None."""
    if not cmdline:
        return None
    match = _TITLE_RE.match(" ".join(cmdline))
    if not match:
        return None
    return _TITLE_ROLES[match.group(1)], int(match.group(2)), match.group(3)


def is_gevent_cmdline(cmdline):
    # PreforkServer.long_polling_spawn: [sys.executable, sys.argv[0], "gevent", ...]
    return "gevent" in (cmdline or [])[1:4]


def is_odoo_cmdline(cmdline):
    """Whether a command line looks like an Odoo server process.

    Looks at every argument, so that Odoo run through a wrapper
    (``python -m debugpy ... odoo-bin``, ``python -m odoo``) is recognised.
    """
    if not cmdline:
        return False
    if parse_title(cmdline):
        return True
    for index, arg in enumerate(cmdline):
        base = arg.rsplit("/", 1)[-1]
        if base in ("odoo-bin", "odoo", "odoo.py"):
            return True
        if arg == "-m" and index + 1 < len(cmdline) and cmdline[index + 1] in ("odoo", "odoo.cli"):
            return True
        if base == "__main__.py" and "/odoo/" in arg:
            return True
    return False


def classify_child(cmdline, nice, master_nice):
    """Role of a direct child of a prefork master."""
    titled = parse_title(cmdline)
    if titled:
        return titled[0]
    if is_gevent_cmdline(cmdline):
        return ROLE_GEVENT
    # No setproctitle: only the niceness tells a cron worker from an HTTP one.
    expected_cron_nice = min(master_nice + _CRON_NICE_INCREMENT, _MAX_NICE)
    if nice is not None and nice >= expected_cron_nice and nice > master_nice:
        return ROLE_CRON
    return ROLE_HTTP


# Odoo's threaded server names each thread it starts for a connection so (``RequestHandler.setup``).
HTTP_REQUEST_THREAD = "odoo.service.http.request."


def thread_kind(name, thread_type=None, is_main=False):
    """Kind of a thread of an Odoo process, from what Odoo sets on it."""
    if is_main:
        return ThreadKind.MAIN
    name = name or ""
    if thread_type == "websocket":
        return ThreadKind.WEBSOCKET
    if name.startswith(HTTP_REQUEST_THREAD):
        return ThreadKind.HTTP
    if name.startswith("odoo.service.cron.cron") or thread_type == "cron":
        return ThreadKind.CRON
    if name == "odoo.service.httpd":
        return ThreadKind.HTTPD
    if name.startswith("Worker ") and name.endswith("workthread"):
        return ThreadKind.WORKER
    if thread_type == "http":
        return ThreadKind.HTTP
    return ThreadKind.OTHER
