"""The threads of the current process, with what Odoo sets on them."""

import contextlib
import os
import threading
import time
from urllib.parse import urlsplit

from .classify import thread_kind
from .schema import Thread
from .vocabulary import WORKER_THREAD_KINDS

try:  # Odoo titles its processes with it; optional here as there
    from setproctitle import setthreadtitle
except ImportError:  # pragma: no cover - then top -H shows them under the process's name
    setthreadtitle = None

# The kernel's names (``comm``, at most 15 bytes) of the addon's own threads: what
# ``top -H``, ``ps -L`` and ``/proc/<pid>/task/<tid>/comm`` show for them, so their
# CPU can be told from the serving thread's from outside.
OS_WRITER = "wi:writer"
OS_SAMPLER = "wi:sampler"
OS_HEARTBEAT = "wi:heartbeat"
OS_PROFILER = "wi:profiler"


def name_os_thread(name):
    """Give the calling thread ``name`` in the kernel (it keeps its Python name)."""
    if setthreadtitle is not None:
        with contextlib.suppress(Exception):  # a name is never worth a failure
            setthreadtitle(name)


def url_path(url):
    """The path of a URL: query strings can carry tokens, the host is noise."""
    if not url:
        return None
    return urlsplit(str(url)).path or "/"


def describe_thread(thread, now, main_ident, pid=None) -> Thread:
    # Odoo sets these ad hoc attributes: http.py (dbname, uid, url,
    # query_count/query_time/perf_t0 during a request), the threaded server
    # (type, start_time), ir_cron (start_time while running jobs).
    attrs = thread.__dict__
    in_request = "query_count" in attrs
    started = attrs.get("perf_t0") if in_request else attrs.get("start_time")
    kind = thread_kind(thread.name, attrs.get("type"), thread.ident == main_ident)
    return {
        "ident": thread.ident,
        # After a fork Python keeps the parent's native_id on the main thread;
        # on Linux the main thread's id is the process's pid.
        "native_id": (pid or os.getpid()) if thread.ident == main_ident else getattr(thread, "native_id", None),
        "name": thread.name,
        "kind": kind,
        # Serves requests or runs jobs: a cell of the scoreboard (threaded).
        "worker": kind in WORKER_THREAD_KINDS,
        "daemon": thread.daemon,
        "db": attrs.get("dbname") or None,
        "uid": attrs.get("uid") or None,
        "url": url_path(attrs.get("url")),
        "elapsed": round(now - started, 3) if started else None,
        "query_count": attrs.get("query_count") if in_request else None,
        "query_time": round(attrs["query_time"], 4) if in_request and "query_time" in attrs else None,
        # Filled in by activity.add_activity and snapshot.add_logins.
        "login": None,
        "activity": None,
        "sql": [],
    }


def read_threads(threads=None) -> list[Thread]:
    """Describe ``threads`` (default: every live thread of this process)."""
    now = time.time()
    main_ident = threading.main_thread().ident
    if threads is None:
        threads = threading.enumerate()
    pid = os.getpid()
    return [describe_thread(t, now, main_ident, pid) for t in threads]
