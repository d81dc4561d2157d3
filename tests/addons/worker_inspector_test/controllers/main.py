# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
import contextlib
import inspect
import json
import os
import time

import psycopg2

from odoo import http
from odoo.http import request

from ..models.worker_inspector_test import TOKEN_PARAM, held


def _sleep_cron():
    cron = request.env.ref("worker_inspector_test.ir_cron_sleep").sudo()
    if "numbercall" in cron._fields:
        # 17.0 runs a job numbercall times (default once), then archives it.
        cron.write({"numbercall": -1, "active": True})
    return cron


def _json(payload):
    return request.make_response(json.dumps(payload), headers=[("Content-Type", "application/json")])


class WorkerInspectorTestController(http.Controller):
    @http.route("/worker_inspector_test/busy", type="http", auth="user", methods=["GET"])
    def busy(self, token):
        """Keep this worker busy (not in SQL) while the test holds ``token``."""
        started = time.monotonic()
        while held(token, started):
            time.sleep(0.05)
        return _json({"held": round(time.monotonic() - started, 3)})

    @http.route("/worker_inspector_test/pg_sleep", type="http", auth="user", methods=["GET"])
    def pg_sleep(self, token):
        """Keep this worker waiting in PostgreSQL while the test holds ``token``."""
        started = time.monotonic()
        while held(token, started):
            request.env.cr.execute("SELECT pg_sleep(0.5)")
        return _json({"held": round(time.monotonic() - started, 3)})

    @http.route("/worker_inspector_test/cron/arm", type="http", auth="user", methods=["POST"], csrf=False)
    def arm_cron(self, token):
        """Make the sleeping scheduled action sleep, when it runs, while the test holds ``token``."""
        request.env["ir.config_parameter"].sudo().set_param(TOKEN_PARAM, token)
        return _json({"cron_id": _sleep_cron().id})

    @http.route("/worker_inspector_test/cron/trigger", type="http", auth="user", methods=["POST"], csrf=False)
    def trigger_cron(self, token):
        """Run the sleeping scheduled action now; it sleeps while the test holds ``token``."""
        request.env["ir.config_parameter"].sudo().set_param(TOKEN_PARAM, token)
        cron = _sleep_cron()
        cron._trigger()
        return _json({"cron_id": cron.id})

    @http.route("/worker_inspector_test/cron/cancel", type="http", auth="user", methods=["POST"], csrf=False)
    def cancel_cron(self):
        """Forget pending triggers of the sleeping scheduled action."""
        cron = request.env.ref("worker_inspector_test.ir_cron_sleep").sudo()
        request.env["ir.cron.trigger"].sudo().search([("cron_id", "=", cron.id)]).unlink()
        return _json({"cron_id": cron.id})

    @http.route("/worker_inspector_test/apikey", type="http", auth="user", methods=["POST"], csrf=False)
    def apikey(self):
        """An API key of the logged-in user (``rpc`` scope), for Bearer callers."""
        apikeys = request.env["res.users.apikeys"]
        args = [None, "worker_inspector_test"]
        if "expiration_date" in inspect.signature(apikeys._generate).parameters:
            args.append(None)
        return _json({"key": apikeys._generate(*args)})


def _simulate_pg_outage():
    """With WI_TEST_PG_OUTAGE set, PostgreSQL "goes away" just as the inspector
    reads pg_stat_activity: the connection it reads on is terminated first."""
    from odoo.addons.worker_inspector.engine import database

    read_pg_sessions = database.read_pg_sessions

    def read_during_outage(cr, *args, **kwargs):
        with contextlib.suppress(psycopg2.Error):
            cr.execute("SELECT pg_terminate_backend(pg_backend_pid())")
        return read_pg_sessions(cr, *args, **kwargs)

    database.read_pg_sessions = read_during_outage


if os.environ.get("WI_TEST_PG_OUTAGE"):
    _simulate_pg_outage()
