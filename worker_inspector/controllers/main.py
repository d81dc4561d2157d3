# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
import json
import re

from odoo import http
from odoo.exceptions import AccessError
from odoo.http import request

from ..engine import metrics

_BEARER_RE = re.compile(r"^bearer\s+(.+)$", re.IGNORECASE)


def json_response(payload, status=200):
    return request.make_response(
        json.dumps(payload, default=str),
        headers=[
            ("Content-Type", "application/json"),
            ("Cache-Control", "no-store"),
        ],
        status=status,
    )


def json_error(status, reason):
    return json_response({"error": {"status": status, "reason": reason}}, status)


class WorkerInspectorController(http.Controller):
    def _authenticated_env(self):
        """The env of the caller: a session, or an API key for monitoring tools."""
        header = request.httprequest.headers.get("Authorization") or ""
        match = _BEARER_RE.match(header)
        if match:
            uid = request.env["res.users.apikeys"]._check_credentials(scope="rpc", key=match.group(1))
            if not uid:
                return None
            return request.env(user=uid)
        if not request.env.uid or request.env.user._is_public():
            return None
        return request.env

    def _inspector(self, params):
        """``(worker.inspector of the caller, None)`` or ``(None, error response)``."""
        if params:
            return None, json_error(400, "Unknown parameter(s): {}.".format(", ".join(sorted(params))))
        env = self._authenticated_env()
        if env is None:
            return None, json_error(401, "Authentication required: log in or send an API key as a Bearer token.")
        inspector = env["worker.inspector"]
        try:
            inspector._check_access()
        except AccessError as exc:
            return None, json_error(403, str(exc))
        return inspector, None

    @http.route("/worker_inspector/api/snapshot", type="http", auth="public", methods=["GET"], readonly=True)
    def snapshot(self, **params):
        inspector, error = self._inspector(params)
        if error:
            return error
        return json_response(inspector.get_snapshot())

    @http.route("/worker_inspector/metrics", type="http", auth="public", methods=["GET"], readonly=True)
    def metrics(self, **params):
        """The snapshot in Prometheus' text format, for scrapers (use an API key)."""
        inspector, error = self._inspector(params)
        if error:
            return error
        if not metrics.available():
            return json_error(501, metrics.MISSING_LIBRARY)
        return request.make_response(
            metrics.render(inspector.get_snapshot()),
            headers=[("Content-Type", metrics.CONTENT_TYPE), ("Cache-Control", "no-store")],
        )
