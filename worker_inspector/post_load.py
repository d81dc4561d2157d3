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

import psycopg2

import odoo
from odoo import release
from odoo.http import Application
from odoo.service import server as odoo_server
from odoo.tools import config

from . import engine
from .engine.recorder import PREFORK_SLOTS, THREADED_SLOTS, Recorder


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


# Workers forked by a master that preloaded the addon report idle from birth.
RECORDER = Recorder(_locate_server, report_at_fork=True, on_open=_on_board_open, on_close=_on_board_close)


def backend_pid(cr):
    """PostgreSQL backend of an Odoo cursor (no round trip): ties a session in
    pg_stat_activity to the thread using it, whatever its application_name."""
    try:
        # Not ``_cnx.info``: Odoo's connection builds a class on each access.
        return cr._cnx.get_backend_pid()
    except (AttributeError, psycopg2.Error):  # a test cursor, a closed connection: no tie then
        return 0


def post_load():
    """Install the WSGI hook (once per process)."""
    original = Application.__call__
    if getattr(original, "_worker_inspector_hook", False):
        return

    @functools.wraps(original)
    def __call__(self, environ, start_response):
        slot = RECORDER.begin_request(environ.get("PATH_INFO") or "/")
        try:
            return original(self, environ, start_response)
        finally:
            if slot is not None:
                RECORDER.end_request(slot)

    __call__._worker_inspector_hook = True
    Application.__call__ = __call__
