"""The threads of the current process, with what Odoo sets on them."""

import threading
import time
from urllib.parse import urlsplit

from .classify import thread_kind


def url_path(url):
    """The path of a URL: query strings can carry tokens, the host is noise."""
    if not url:
        return None
    return urlsplit(str(url)).path or "/"


def describe_thread(thread, now, main_ident):
    # Odoo sets these ad hoc attributes: http.py (dbname, uid, url,
    # query_count/query_time/perf_t0 during a request), the threaded server
    # (type, start_time), ir_cron (start_time while running jobs).
    attrs = thread.__dict__
    in_request = "query_count" in attrs
    started = attrs.get("perf_t0") if in_request else attrs.get("start_time")
    return {
        "ident": thread.ident,
        "native_id": getattr(thread, "native_id", None),
        "name": thread.name,
        "kind": thread_kind(thread.name, attrs.get("type"), thread.ident == main_ident),
        "daemon": thread.daemon,
        "db": attrs.get("dbname") or None,
        "uid": attrs.get("uid") or None,
        "url": url_path(attrs.get("url")),
        "elapsed": round(now - started, 3) if started else None,
        "query_count": attrs.get("query_count") if in_request else None,
        "query_time": round(attrs["query_time"], 4) if in_request and "query_time" in attrs else None,
    }


def read_threads(threads=None):
    """Describe ``threads`` (default: every live thread of this process)."""
    now = time.time()
    main_ident = threading.main_thread().ident
    if threads is None:
        threads = threading.enumerate()
    return [describe_thread(t, now, main_ident) for t in threads]
