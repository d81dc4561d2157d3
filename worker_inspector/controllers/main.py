# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
import json
import re

from odoo import http
from odoo.exceptions import AccessError, UserError
from odoo.http import request

from ..engine import metrics

_BEARER_RE = re.compile(r"^bearer\s+(.+)$", re.IGNORECASE)
_PID_RE = re.compile(r"[0-9]{1,10}")
_FLAGS = {"": False, "0": False, "false": False, "1": True, "true": True}


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
    def _bearer_key(self):
        match = _BEARER_RE.match(request.httprequest.headers.get("Authorization") or "")
        return match and match.group(1)

    def _authenticated_env(self):
        """The env of the caller: a session, or an API key for monitoring tools."""
        key = self._bearer_key()
        if key:
            uid = request.env["res.users.apikeys"]._check_credentials(scope="rpc", key=key)
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

    # CSRF is checked below rather than by Odoo: an API-key caller has no
    # session, hence no token, and a browser never adds its Authorization header.
    @http.route("/worker_inspector/api/recycle", type="http", auth="public", methods=["POST"], csrf=False)
    def recycle(self, pid=None, force="", csrf_token=None, **params):
        """Recycle one HTTP or cron worker (README: Recycling a worker)."""
        inspector, error = self._inspector(params)
        if error:
            return error
        if not self._bearer_key() and not request.validate_csrf(csrf_token):
            return json_error(400, "Missing or invalid csrf_token (send the page's odoo.csrf_token).")
        if not isinstance(pid, str) or not _PID_RE.fullmatch(pid):
            return json_error(400, f"pid must be a process id, got {pid!r}.")
        if force.lower() not in _FLAGS:
            return json_error(400, f"force must be 0 or 1, got {force!r}.")
        try:
            result = inspector.recycle_worker(int(pid), force=_FLAGS[force.lower()])
        except UserError as exc:
            return json_error(400, str(exc))
        return json_response(result)
