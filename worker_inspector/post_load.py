# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""The addon's Odoo plumbing: which server this process belongs to, the
activity recorder of this process, and its hook around Odoo's WSGI entry point.

The request is recorded around ``odoo.http.Application.__call__``, the one
place every request goes through: static files, routes without a database,
databases where this addon is not installed, errors. A ``try/finally`` there
marks the worker idle again whatever happens. ``ir.http._authenticate`` adds
the database and the user once they are known (``models/ir_http.py``).

The addon's ``__init__`` calls :func:`post_load` once per process, when Odoo
first imports the addon: at start for server-wide modules or a preloaded
database (``-d``), otherwise when the process first loads a registry where
the addon is installed (so after an install, without a restart).
"""

import functools
import os
import time

import psycopg2

import odoo
from odoo import release
from odoo.http import Application
from odoo.service import server as odoo_server
from odoo.tools import config

from . import engine
from .engine.recorder import PREFORK_SLOTS, THREADED_SLOTS, Recorder
from .engine.stacks import DEFAULT_SLOW_AFTER, ORIGIN_ADDON, ORIGIN_ODOO, request_flush, slow_cap

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
    db = env.cr.dbname
    now = time.monotonic()
    cached = _slow_params.get(db)
    if cached is not None and cached[0] > now:
        return cached[1]
    try:
        value = float(env["ir.config_parameter"].sudo().get_param(SLOW_PARAM) or DEFAULT_SLOW_AFTER)
    except (ValueError, TypeError):
        value = DEFAULT_SLOW_AFTER
    if not value > 0:
        value = DEFAULT_SLOW_AFTER
    _slow_params[db] = (now + _SLOW_PARAM_TTL, value)
    return value


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
)


def fresh_board(server=None):
    """Every process of this server (``current_server()`` by default) writes its records
    and finished requests before a read (see ``engine.recorder``)."""
    request_flush((server or current_server()).pid, own=RECORDER.flush)


def backend_pid(cr):
    """PostgreSQL backend of an Odoo cursor (no round trip): ties a session in
    pg_stat_activity to the thread using it, whatever its application_name."""
    try:
        # Not ``_cnx.info``: Odoo's connection builds a class on each access.
        return cr._cnx.get_backend_pid()
    except (AttributeError, psycopg2.Error):  # a test cursor, a closed connection: no tie then
        return 0


def note_authenticated(req):
    """``ir.http._authenticate``'s hook, on every request with a database: its database,
    user and login, and the PostgreSQL backend of its cursor, kept in memory for the
    recorder's writer; the database's slow-request threshold is read again once a minute.

    Read now, not kept as the request to read later: a request kept alive until the
    writer's turn keeps its whole graph of objects from being freed and reused, which costs
    the next requests more than reading three values now (``bench_history.py``)."""
    env = req.env
    uid = env.uid
    session = req.session
    # Items, not attributes: a session attribute is three Python calls (``__getattr__``, ``get``).
    try:
        login = session["login"] if uid and session["uid"] == uid else None
    except KeyError:  # a session without them: no login
        login = None
    RECORDER.set_user(req.db, uid, login, backend_pid(env.cr), slow_after(env))


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
