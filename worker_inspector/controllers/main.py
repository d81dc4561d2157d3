# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""The JSON API and the Prometheus endpoint.

Every route goes through ``api_route``: it answers every error with the JSON
envelope ``{"error": {"status", "reason"}}`` (never Odoo's HTML pages), in
this order: method (405), caller (401, 403), parameters (400). A route body
only does its job.
"""

import base64
import functools
import re

from odoo import http
from odoo.exceptions import AccessError, UserError
from odoo.http import request

from .. import compat
from ..dbselect import DB_PARAM, named_database
from ..engine import history, metrics, requestlog, stacks
from ..engine.jsonout import to_json

# speedscope 1.13.0 from npm (the release Odoo's view names, with its integrity hashes).
SPEEDSCOPE_LOCAL = "/worker_inspector/static/lib/speedscope/"
_BEARER_RE = re.compile(r"^bearer\s+(.+)$", re.IGNORECASE)
_PID_RE = re.compile(r"[0-9]{1,10}")
_FLAGS = {"": False, "0": False, "false": False, "1": True, "true": True}


def json_response(payload, status=200, headers=()):
    return request.make_response(
        to_json(payload),
        headers=[
            ("Content-Type", "application/json"),
            ("Cache-Control", "no-store"),
            *headers,
        ],
        status=status,
    )


class ApiError(Exception):
    """Ends a route with the JSON error envelope."""

    def __init__(self, status, reason, headers=()):
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.headers = headers

    def response(self):
        return json_response({"error": {"status": self.status, "reason": self.reason}}, self.status, self.headers)


def _pid(value):
    if not _PID_RE.fullmatch(value):
        raise ApiError(400, f"pid must be a process id, got {value!r}.")
    return int(value)


def _flag(value):
    if value.lower() not in _FLAGS:
        raise ApiError(400, f"force must be 0 or 1, got {value!r}.")
    return _FLAGS[value.lower()]


def _history_param(parse):
    """A parser of the history's parameters, whose BadQuery is a 400."""

    def parser(value):
        try:
            return parse(value)
        except history.BadQuery as exc:
            raise ApiError(400, str(exc)) from None

    return parser


def _request_param(parse):
    """A parser of the request log's filters, whose ValueError is a 400."""

    def parser(value):
        try:
            return parse(value)
        except ValueError as exc:
            raise ApiError(400, str(exc)) from None

    return parser


def _text(value):
    return value


def _seconds(value):
    try:
        seconds = float(value)
    except ValueError:
        seconds = None
    if seconds is None or not 0 < seconds <= stacks.MAX_PROFILE_SECONDS:
        raise ApiError(400, f"seconds must be a number of seconds up to {stacks.MAX_PROFILE_SECONDS}, got {value!r}.")
    return seconds


def _record_id(value):
    if not _PID_RE.fullmatch(value):
        raise ApiError(400, f"Not a record id: {value!r}.")
    return int(value)


def _delta(value):
    if value not in ("1", "-1", "+1"):
        raise ApiError(400, f"delta must be 1 or -1, got {value!r}.")
    return int(value)


def _backend(value):
    if not _PID_RE.fullmatch(value) or int(value) <= 0:
        raise ApiError(400, f"backend_pid must be a PostgreSQL backend pid, got {value!r}.")
    return int(value)


def _terminate(value):
    if value not in ("0", "1"):
        raise ApiError(400, f"terminate must be 0 or 1, got {value!r}.")
    return value == "1"


def _node(value):
    if not value or len(value) > 255:
        raise ApiError(400, f"node must name a node (see /worker_inspector/api/nodes), got {value!r}.")
    return value


def _check_csrf(caller, token):
    if not caller.api_key and not request.validate_csrf(token):
        raise ApiError(400, "Missing or invalid csrf_token (send the page's odoo.csrf_token).")


class Caller:
    """Who is calling: their ``worker.inspector`` and whether they sent an API key."""

    def __init__(self, inspector, api_key):
        self.inspector = inspector
        self.api_key = api_key


def _bearer_key():
    match = _BEARER_RE.match(request.httprequest.headers.get("Authorization") or "")
    return match and match.group(1)


def _authenticated_env(key):
    """The env of the caller: a session, or an API key for monitoring tools."""
    if key:
        uid = request.env["res.users.apikeys"]._check_credentials(scope="rpc", key=key)
        return request.env(user=uid) if uid else None
    if not request.env.uid or request.env.user._is_public():
        return None
    return request.env


def _check_method(allowed):
    if request.httprequest.method not in allowed:
        allow = ", ".join(allowed)
        raise ApiError(405, f"Use {allow} on this route.", headers=[("Allow", allow)])


def _check_caller():
    key = _bearer_key()
    env = _authenticated_env(key)
    if env is None:
        raise ApiError(401, "Authentication required: log in or send an API key as a Bearer token.")
    inspector = env["worker.inspector"]
    try:
        inspector._check_access()
    except AccessError as exc:
        raise ApiError(403, str(exc)) from None
    return Caller(inspector, bool(key))


def _check_params(params, parsers):
    """Every parameter known and text (a file part is not), parsed by its parser."""
    unknown = sorted(set(params) - set(parsers) - {DB_PARAM})
    if unknown:
        raise ApiError(400, "Unknown parameter(s): {}.".format(", ".join(unknown)))
    for name, value in params.items():
        if not isinstance(value, str):
            raise ApiError(400, f"{name} must be a form field, not a file.")
    named = named_database(request.httprequest) or params.get(DB_PARAM)
    if named and named != request.db:
        raise ApiError(400, f"This request was served on database {request.db!r}, not {named!r}.")
    return {name: parsers[name](value) for name, value in params.items() if name in parsers}


def api_route(route, methods, parsers=None, **routing):
    """An API route: checks method, caller and parameters (raising ``ApiError``)
    before calling ``func(self, caller, **parsed_params)``.

    The route is declared for every method, so that a wrong one (Odoo adds
    OPTIONS to every route it declares) gets the JSON envelope rather than an
    HTML page, and never reaches the route's action.
    """
    parsers = parsers or {}

    def decorator(func):
        def endpoint(self, **params):
            try:
                _check_method(methods)
                caller = _check_caller()
                return func(self, caller, **_check_params(params, parsers))
            except ApiError as exc:
                return exc.response()

        functools.update_wrapper(endpoint, func)
        # Odoo passes an endpoint only the parameters its signature names:
        # this one must get them all, to refuse the unknown ones.
        del endpoint.__wrapped__
        return http.route(route, type="http", auth="public", methods=None, csrf=False, **routing)(endpoint)

    return decorator


class WorkerInspectorController(http.Controller):
    @api_route("/worker_inspector/api/snapshot", ("GET", "HEAD"), readonly=True)
    def snapshot(self, caller):
        return json_response(caller.inspector.get_snapshot())

    @api_route(
        "/worker_inspector/api/history",
        ("GET", "HEAD"),
        {
            "since": _history_param(history.parse_since),
            "kinds": _history_param(history.parse_kinds),
            "route": _request_param(requestlog.parse_name("route", 300)),
            "db": _request_param(requestlog.parse_name("db", 63)),
            "min_duration": _request_param(requestlog.parse_min_duration),
        },
        readonly=True,
    )
    def history(self, caller, since=0.0, kinds=history.DEFAULT_KINDS, **filters):
        """Worker exits, time series, request log and load profile (README: History, Request log)."""
        try:
            return json_response(caller.inspector.get_history(since, kinds, **filters))
        except UserError as exc:
            raise ApiError(503, str(exc)) from None

    @api_route("/worker_inspector/api/crons", ("GET", "HEAD"), readonly=True)
    def crons(self, caller):
        """Every scheduled action of the database and its health (README: Scheduled actions)."""
        return json_response(caller.inspector.get_crons())

    @api_route("/worker_inspector/metrics", ("GET", "HEAD"), readonly=True)
    def metrics(self, caller):
        """The snapshot and the history's counters in Prometheus' text format, for scrapers (use an API key)."""
        if not metrics.available():
            raise ApiError(501, metrics.MISSING_LIBRARY)
        return request.make_response(
            caller.inspector.get_metrics(),
            headers=[("Content-Type", metrics.CONTENT_TYPE), ("Cache-Control", "no-store")],
        )

    # CSRF is checked here rather than by Odoo: an API-key caller has no
    # session, hence no token, and a browser never adds its Authorization header.
    @api_route(
        "/worker_inspector/api/recycle", ("POST",), {"pid": _pid, "force": _flag, "node": _node, "csrf_token": _text}
    )
    def recycle(self, caller, pid=None, force=False, node=None, csrf_token=None):
        """Recycle one HTTP or cron worker (README: Recycling a worker), of
        another node with its next heartbeat (README: Nodes)."""
        _check_csrf(caller, csrf_token)
        if pid is None:
            raise ApiError(400, "pid must be a process id, got None.")
        try:
            if node is not None:
                return json_response(caller.inspector.recycle_node_worker(node, pid, force=force))
            return json_response(caller.inspector.recycle_worker(pid, force=force))
        except UserError as exc:
            raise ApiError(400, str(exc)) from None

    @api_route("/worker_inspector/api/stack", ("GET",), {"pid": _pid})
    def stack(self, caller, pid=None):
        """Every thread's Python stack of one process of this server (README: Stacks)."""
        if pid is None:
            raise ApiError(400, "pid must be a process id, got None.")
        try:
            return json_response(caller.inspector.get_stack(pid))
        except stacks.StackUnavailable as exc:
            raise ApiError(exc.status, exc.reason) from None

    @api_route("/worker_inspector/api/slow_requests", ("GET",), {"pid": _pid})
    def slow_requests(self, caller, pid=None):
        """Stacks kept of requests and jobs that ran past the slow threshold."""
        return json_response({"requests": caller.inspector.get_slow_requests(pid)})

    @api_route("/worker_inspector/api/profile", ("POST",), {"pid": _pid, "seconds": _seconds, "csrf_token": _text})
    def profile(self, caller, pid=None, seconds=10.0, csrf_token=None):
        """Sample a process for ``seconds`` into an ``ir.profile`` (README: Profiles)."""
        if not caller.api_key and not request.validate_csrf(csrf_token):
            raise ApiError(400, "Missing or invalid csrf_token (send the page's odoo.csrf_token).")
        if pid is None:
            raise ApiError(400, "pid must be a process id, got None.")
        try:
            record = caller.inspector.take_profile(pid, seconds)
        except UserError as exc:
            raise ApiError(400, str(exc)) from None
        except stacks.StackUnavailable as exc:
            raise ApiError(exc.status, exc.reason) from None
        return json_response({"profile_id": record.id, "speedscope_url": f"/worker_inspector/speedscope/{record.id}"})

    def _profile_record(self, caller, profile_id):
        record = caller.inspector.env["ir.profile"].browse(profile_id).exists()
        if not record:
            raise ApiError(404, f"No profile {profile_id}.")
        return record

    @api_route("/worker_inspector/api/profile/<string:profile_id>", ("GET",), {"profile_id": _record_id})
    def profile_json(self, caller, profile_id=None):
        """The speedscope JSON of a profile (any ``ir.profile``)."""
        record = self._profile_record(caller, profile_id)
        return request.make_response(
            compat.speedscope_json(record),
            headers=[("Content-Type", "application/json"), ("Cache-Control", "no-store")],
        )

    @api_route("/worker_inspector/speedscope/<string:profile_id>", ("GET",), {"profile_id": _record_id})
    def speedscope(self, caller, profile_id=None):
        """Odoo's speedscope view of a profile, with speedscope from ``speedscope_cdn``
        when set, else from the copy shipped in this addon (works offline)."""
        record = self._profile_record(caller, profile_id)
        cdn = request.env["ir.config_parameter"].sudo().get_param("speedscope_cdn") or SPEEDSCOPE_LOCAL
        # The template's context differs across series: 17.0/18.0 load the
        # profile by URL, 19.0 embeds it.
        return request.render(
            "web.view_speedscope_index",
            {
                "profile": record,
                "profiles": record,
                "speedscope_base64": base64.b64encode(compat.speedscope_json(record)).decode(),
                "url_root": request.httprequest.url_root,
                "cdn": cdn,
            },
        )

    @api_route("/worker_inspector/api/nodes", ("GET", "HEAD"), {"node": _node})
    def nodes(self, caller, node=None):
        """Every node publishing into this database (README: Nodes); ``node``: one, with its processes."""
        return json_response(caller.inspector.get_nodes(node))

    @api_route("/worker_inspector/api/workers", ("POST",), {"node": _node, "delta": _delta, "csrf_token": _text})
    def workers(self, caller, node=None, delta=None, csrf_token=None):
        """Add (delta=1) or remove (delta=-1) an HTTP worker of a prefork node."""
        _check_csrf(caller, csrf_token)
        if node is None or delta is None:
            raise ApiError(400, "node and delta (1 or -1) are required.")
        try:
            return json_response(caller.inspector.change_workers(node, delta))
        except UserError as exc:
            raise ApiError(400, str(exc)) from None

    @api_route(
        "/worker_inspector/api/sql/cancel",
        ("POST",),
        {"backend_pid": _backend, "terminate": _terminate, "csrf_token": _text},
    )
    def sql_cancel(self, caller, backend_pid=None, terminate=False, csrf_token=None):
        """Cancel the query of a PostgreSQL backend of this Odoo (terminate=1: end its session)."""
        _check_csrf(caller, csrf_token)
        if backend_pid is None:
            raise ApiError(400, "backend_pid is required.")
        try:
            return json_response(caller.inspector.cancel_sql(backend_pid, terminate=terminate))
        except UserError as exc:
            raise ApiError(400, str(exc)) from None

    @api_route("/worker_inspector/api/audit", ("GET", "HEAD"), readonly=True)
    def audit(self, caller):
        """Control actions, newest first."""
        return json_response(caller.inspector.get_audit())
