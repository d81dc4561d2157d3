# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""Publish each request on the activity board (see ``engine.board``).

The request is recorded around Odoo's WSGI entry point, the one place every
request goes through: static files, routes without a database, databases
where this addon is not installed, errors. A ``try/finally`` there marks the
worker idle again whatever happens. ``ir.http._authenticate`` adds the
database and the user once they are known.

The hook is installed when Odoo imports this addon in a process: at start
for server-wide modules or a preloaded database (``-d``), otherwise when the
process first loads a registry where the addon is installed (so after an
install, without a restart).
"""

import functools

import psycopg2

import odoo
from odoo import models
from odoo.http import Application, request

from .. import engine
from ..engine.recorder import PREFORK_SLOTS, THREADED_SLOTS, Recorder
from .worker_inspector import current_server


def _locate_server():
    if odoo.evented:
        # The gevent process holds websockets and long polls open for good:
        # "busy" would mean nothing there.
        return None
    server = current_server()
    return server.pid, THREADED_SLOTS if server.mode == engine.MODE_THREADED else PREFORK_SLOTS


# Workers forked by a master that preloaded the addon report idle from birth.
RECORDER = Recorder(_locate_server, report_at_fork=True)


def _install_wsgi_hook():
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


_install_wsgi_hook()


def backend_pid(cr):
    """PostgreSQL backend of an Odoo cursor (no round trip): ties a session in
    pg_stat_activity to the thread using it, whatever its application_name."""
    try:
        # Not ``_cnx.info``: Odoo's connection builds a class on each access.
        return cr._cnx.get_backend_pid()
    except (AttributeError, psycopg2.Error):  # a test cursor, a closed connection: no tie then
        return 0


class IrHttp(models.AbstractModel):
    _inherit = "ir.http"

    @classmethod
    def _authenticate(cls, endpoint):
        result = super()._authenticate(endpoint)
        env = request.env
        uid = env.uid
        session = request.session
        login = session.login if uid and session.uid == uid else None
        RECORDER.set_user(request.db, uid, login, backend_pid(env.cr))
        return result
