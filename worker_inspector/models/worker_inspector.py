# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
import logging
import os

import odoo
from odoo import api, models, release
from odoo.exceptions import AccessError, UserError
from odoo.service import server as odoo_server
from odoo.tools import config

from .. import engine
from ..engine import database

_logger = logging.getLogger(__name__)


def current_server():
    """The server this process belongs to: root pid and mode.

    In prefork mode requests are served by a forked ``WorkerHTTP``, which
    inherited the master's server object (its ``pid`` is the master's), or by
    the ``gevent`` process that the master started as a child.
    """
    srv = odoo_server.server
    pid = os.getpid()
    if isinstance(srv, odoo_server.PreforkServer):
        return engine.ServerInfo(srv.pid, engine.MODE_PREFORK, release.version)
    if odoo.evented and config["workers"]:
        return engine.ServerInfo(os.getppid(), engine.MODE_PREFORK, release.version)
    return engine.ServerInfo(pid, engine.MODE_THREADED, release.version)


class WorkerInspector(models.AbstractModel):
    _name = "worker.inspector"
    _description = "Server workers inspector"

    @api.model
    def _check_access(self):
        if not self.env.user.has_group("base.group_system"):
            raise AccessError(self.env._("Only Settings administrators can inspect the server workers."))

    @api.model
    def get_snapshot(self):
        """The snapshot of the JSON API (see README): processes, threads, config, host."""
        self._check_access()
        return engine.take_snapshot(
            current_server(),
            config.options,
            sql_sessions=self._read_pg_sessions(),
            overdue_crons=self._read_overdue_crons(),
        )

    @api.model
    def recycle_worker(self, pid, force=False):
        """Ask HTTP or cron worker ``pid`` of this server to exit; the master forks a new one.

        Graceful (SIGINT) by default: the worker ends its current request or
        job first. ``force`` sends SIGTERM, which kills it at once (see
        ``engine.recycle``). Raises UserError when the pid is refused.
        """
        self._check_access()
        server = current_server()
        try:
            result = engine.recycle_worker(server.pid, server.mode, pid, force=force)
        except engine.RecycleRefused as exc:
            raise UserError(str(exc)) from None
        _logger.info("Worker %s recycled by %s (%s)", pid, self.env.user.login, result["signal"])
        return result

    @api.model
    def _read_pg_sessions(self):
        # pg_stat_activity of the primary: a readonly route may run on a replica.
        if config.get("db_replica_host") or config.get("db_replica_port"):
            with self.env.registry.cursor() as cr:
                return database.read_pg_sessions(cr)
        return database.read_pg_sessions(self.env.cr)

    @api.model
    def _read_overdue_crons(self):
        """Due scheduled actions of this database, when cron is off (nothing runs them)."""
        if int(config.get("max_cron_threads") or 0):
            return None
        return database.read_overdue_crons(self.env.cr, db=self.env.cr.dbname)
