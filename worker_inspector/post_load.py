# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""The addon's Odoo plumbing: which server this process belongs to, the
activity recorder of this process, and its hook around Odoo's WSGI entry point.

The request is recorded around ``odoo.http.Application.__call__``, the one
place every request goes through: static files, routes without a database,
databases where this addon is not installed, errors. A ``try/finally`` there
marks the worker idle again whatever happens. The request's database and user
are read where Odoo keeps them, on its thread (``thread.dbname``, ``thread.uid``):
at its end, and by the process's writer while it is busy, which also finds the
PostgreSQL backend of its cursor (:func:`busy_context`). Nothing else runs on
the request path.

The addon's ``__init__`` calls :func:`post_load` once per process, when Odoo
first imports the addon: at start for server-wide modules or a preloaded
database (``-d``), otherwise when the process first loads a registry where
the addon is installed (so after an install, without a restart).
"""

import functools
import logging
import os
import sys
import time
import types

import psycopg2

import odoo
from odoo import release
from odoo.http import Application
from odoo.service import server as odoo_server
from odoo.sql_db import connection_info_for
from odoo.tools import config

from . import engine
from .engine.classify import HTTP_REQUEST_THREAD
from .engine.recorder import PREFORK_SLOTS, THREADED_SLOTS, Recorder
from .engine.stacks import DEFAULT_SLOW_AFTER, ORIGIN_ADDON, ORIGIN_ODOO, request_flush, slow_cap

_logger = logging.getLogger(__name__)
# System parameter (per database): seconds after which a request or job gets its stack kept.
SLOW_PARAM = "worker_inspector.slow_stack_seconds"
_SLOW_PARAM_TTL = 60.0
_slow_params = {}  # database: (monotonic time it expires, threshold)


def current_server():
    """The server this process belongs to: root pid and mode.

    In prefork mode requests are served by a forked ``WorkerHTTP``, which
    inherited the master's server object (its ``pid`` is the master's), or by
    the ``gevent`` process that the master started as a child.
    """
    srv = odoo_server.server
    if isinstance(srv, odoo_server.PreforkServer):
        return engine.ServerInfo(srv.pid, engine.MODE_PREFORK, release.version)
    if odoo.evented and config["workers"]:
        return engine.ServerInfo(os.getppid(), engine.MODE_PREFORK, release.version)
    return engine.ServerInfo(os.getpid(), engine.MODE_THREADED, release.version)


def _locate_server():
    if odoo.evented:
        # The gevent process holds websockets and long polls open for good:
        # "busy" would mean nothing there.
        return None
    server = current_server()
    return server.pid, THREADED_SLOTS if server.mode == engine.MODE_THREADED else PREFORK_SLOTS


def _on_board_open(board):
    # The history (models/history.py) starts its sampler in each process that records.
    from .models import history

    history.on_board_open(board)


def _on_board_close(board):
    # A prefork worker records its own exit before its board file goes.
    from .models import history

    history.on_board_close(board)


def odoo_root():
    # ``odoo`` has no ``__file__`` on 19.0 (a namespace package); ``odoo.release`` has.
    return os.path.dirname(os.path.dirname(os.path.abspath(release.__file__)))


def _frame_roots():
    """Frames are shown relative to their addons path, else to Odoo's root; Odoo's own
    addons (under its root) are ``odoo`` frames, the others ``addon`` frames."""
    root = os.path.realpath(odoo_root())
    roots = []
    for path in odoo.addons.__path__:
        real = os.path.realpath(path)
        roots.append((real, ORIGIN_ODOO if real.startswith(root + os.sep) else ORIGIN_ADDON))
    roots.append((root, ORIGIN_ODOO))
    return roots


def _slow_limits():
    """Default slow-request threshold and its ceiling (``stacks.slow_cap``): under the
    time limits a prefork worker is killed at, so the stack is taken before the kill."""
    return DEFAULT_SLOW_AFTER, slow_cap([config.get(name) for name in ("limit_time_real", "limit_time_real_cron")])


def slow_after(env):
    """The database's slow-request threshold (``SLOW_PARAM``), read at most once a minute."""
    return slow_after_db(env.cr.dbname, env.cr)


def own_connection(db):
    """A PostgreSQL connection to ``db`` outside Odoo's pool, for the addon's own threads:
    the pool keeps what it lends (one more PostgreSQL backend per worker for good, which each
    request's borrow walks past) and its lock is not to be held by a thread the master may
    fork meanwhile. Close it after use."""
    _dsn, info = connection_info_for(db)
    return psycopg2.connect(**info)


def slow_after_db(db, cr=None):
    """``slow_after`` of database ``db``, read on ``cr`` or, when the cached value expired and
    no cursor is given (the writer's thread), on a connection of its own (``own_connection``)."""
    now = time.monotonic()
    cached = _slow_params.get(db)
    if cached is not None and cached[0] > now:
        return cached[1]
    value = DEFAULT_SLOW_AFTER
    try:
        if cr is not None:
            value = _read_slow_param(cr)
        else:
            conn = own_connection(db)
            try:
                with conn.cursor() as own:
                    value = _read_slow_param(own)
            finally:
                conn.close()
    except (ValueError, TypeError):
        value = DEFAULT_SLOW_AFTER
    except psycopg2.Error:  # the database went away: the default, asked again in a minute
        _logger.debug("slow-request threshold of %s not read", db, exc_info=True)
    if not value > 0:
        value = DEFAULT_SLOW_AFTER
    _slow_params[db] = (now + _SLOW_PARAM_TTL, value)
    return value


def _read_slow_param(cr):
    # SQL, not the ORM: the writer's thread has no registry loaded for it, and no environment.
    cr.execute("SELECT value FROM ir_config_parameter WHERE key = %s", (SLOW_PARAM,))
    row = cr.fetchone()
    return float(row[0]) if row and row[0] else DEFAULT_SLOW_AFTER


def fresh_board(server=None):
    """Every process of this server (``current_server()`` by default) writes its records
    and finished requests before a read (see ``engine.recorder``)."""
    request_flush((server or current_server()).pid, own=functools.partial(RECORDER.flush, checked=True))


def backend_pid(cr):
    """PostgreSQL backend of an Odoo cursor (no round trip): ties a session in
    pg_stat_activity to the thread using it, whatever its application_name."""
    try:
        # Not ``_cnx.info``: Odoo's connection builds a class on each access.
        return cr._cnx.get_backend_pid()
    except (AttributeError, psycopg2.Error):  # a test cursor, a closed connection: no tie then
        return 0


def busy_context(thread, db):
    """``(backend_pid, slow_after)`` of the request ``thread`` is serving on database ``db``:
    the recorder's writer asks it for a busy request, never the request path.

    The request is the ``request`` of Odoo's ``Application.__call__`` frame in that thread
    (its ``_request_stack`` is local to the thread); its cursor's backend ties the thread to
    its session in ``pg_stat_activity``. 0 until the request has a cursor."""
    backend = 0
    frame = sys._current_frames().get(thread.ident)
    while frame is not None:
        if frame.f_code is _APPLICATION_CALL:
            request = frame.f_locals.get("request")
            env = getattr(request, "env", None)
            if env is not None:
                backend = backend_pid(env.cr)
            break
        frame = frame.f_back
    return backend, slow_after_db(db)


def server_status_cell():
    """``(code, index)`` of the ``start_response`` werkzeug's server gives each request (Odoo
    serves with it, threaded and prefork): a closure whose free variable ``status_set``
    holds the status line of the response. The hook keeps that cell in the request's record,
    in place of a ``start_response`` of its own (``Recorder.wsgi``). None where this
    werkzeug's differs: the hook then passes its own."""
    from werkzeug.serving import WSGIRequestHandler

    for const in WSGIRequestHandler.run_wsgi.__code__.co_consts:
        if (
            isinstance(const, types.CodeType)
            and const.co_name == "start_response"
            and "status_set" in const.co_freevars
        ):
            return const, const.co_freevars.index("status_set")
    _logger.info("werkzeug's start_response not recognised: each request's status is noted by a wrapper")
    return None


# Workers forked by a master that preloaded the addon report idle from birth.
RECORDER = Recorder(
    _locate_server,
    report_at_fork=True,
    on_open=_on_board_open,
    on_close=_on_board_close,
    inspect=True,
    frame_roots=_frame_roots,
    slow_limits=_slow_limits,
    deferred=True,
    busy_context=busy_context,
    connection_threads=HTTP_REQUEST_THREAD,
    status_cell=server_status_cell(),
)
# The code of Odoo's own WSGI entry point, whose frame holds the request (``busy_context``).
_APPLICATION_CALL = getattr(Application.__call__, "__wrapped__", Application.__call__).__code__


def post_load():
    """Install the WSGI hook (once per process)."""
    original = Application.__call__
    if getattr(original, "_worker_inspector_hook", False):
        return
    hooked = RECORDER.wsgi(original)
    hooked._worker_inspector_hook = True
    Application.__call__ = hooked
    _install_rpc_hook()


def _install_rpc_hook():
    """``object.execute_kw`` over XML-RPC / JSON-RPC names its model and method in its
    parameters, not in the URL: ``dispatch_rpc`` looks ``model.dispatch`` up on each call."""
    from odoo.service import model as service_model

    dispatch = service_model.dispatch
    if getattr(dispatch, "_worker_inspector_hook", False):
        return

    @functools.wraps(dispatch)
    def wrapped(method, params):
        if method in ("execute", "execute_kw") and len(params) >= 5:
            RECORDER.set_rpc(params[3], params[4])
        return dispatch(method, params)

    wrapped._worker_inspector_hook = True
    service_model.dispatch = wrapped
