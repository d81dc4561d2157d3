# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
import json
import logging
import os
import time

import psycopg2

from odoo import api, fields, http, models, sql_db
from odoo.exceptions import AccessError, UserError
from odoo.service import db as odoo_db
from odoo.tools import config

from .. import compat, engine, heartbeat
from ..engine import advice, crons, database, identity, metrics, nodes, requestlog, stacks
from ..engine import history as history_mod
from ..engine.activity import scope_to_database
from ..engine.board import read_board
from ..engine.config import ODOO_OPTIONS, OptionTable
from ..engine.jsonout import to_json
from ..post_load import RECORDER, current_server, fresh_board
from ..post_load import backend_pid as cursor_backend
from . import history

# Config file option (server-level, so no database's admin can set it): every
# admin sees the activity and SQL of every database (README, "Security").
SERVER_WIDE_OPTION = "worker_inspector_server_wide"
# Seconds of history the advice reads (saturation, exits, peak RSS).
ADVICE_WINDOW = 3600

_logger = logging.getLogger(__name__)


def own_pids(snapshot):
    return {p["pid"] for p in snapshot["processes"]} | {snapshot["served_by"], snapshot["server"]["pid"]}


def advice_history():
    """What the history measured over the last hour, for the advice (None: no history yet).
    Also the heartbeat's, in a preloading master: not ``recording_store``."""
    store = history.history_store()
    if store is None:
        return None
    interval, points = store.points(since=time.time() - ADVICE_WINDOW)
    return advice.history_facts(points, interval, store.totals())


def _list_databases(cr):
    """``odoo.service.db.list_dbs(True)`` on the caller's cursor ``cr`` rather than a connection
    of Odoo's pool (the heartbeat thread never touches the pool: the master forks meanwhile)."""
    if not config["dbfilter"] and config["db_name"]:
        names = config["db_name"]  # a comma-separated string before 19.0, a list since
        return sorted(name.strip() for name in (names.split(",") if isinstance(names, str) else names))
    cr.execute(
        "SELECT datname FROM pg_database"
        " WHERE datdba = (SELECT usesysid FROM pg_user WHERE usename = current_user)"
        "   AND NOT datistemplate AND datallowconn AND datname NOT IN %s",
        (tuple({"postgres", config["db_template"]}),),
    )
    return [name for (name,) in cr.fetchall()]


def advice_facts(snapshot, postgres, overdue, forwarded_headers=False, cr=None):
    """The advice's facts of this server: the snapshot (before it is scoped to a database), what
    PostgreSQL said (``postgres``: ``read_postgres_limits`` and ``sessions``; ``overdue``: this
    database's overdue crons), the history. The snapshot's advice and the heartbeat's share it;
    ``cr``: a cursor of the caller's own connection to list the databases on (else Odoo's
    ``list_dbs``)."""
    if postgres is not None:
        postgres = dict(postgres)
        postgres["own"] = crons.count_sessions_of(postgres.pop("sessions", []), own_pids(snapshot))
    try:
        databases = len(_list_databases(cr) if cr is not None else odoo_db.list_dbs(True))
    except psycopg2.Error:
        databases = None
    return advice.facts_from_snapshot(
        snapshot,
        postgres=postgres,
        history=advice_history(),
        debug_session=bool(os.environ.get(advice.DEBUG_SESSION_ENV)),
        databases=databases,
        overdue_crons=overdue,
        forwarded_headers=forwarded_headers,
    )


class WorkerInspector(models.AbstractModel):
    _name = "worker.inspector"
    _description = "Server workers inspector"

    @api.model
    def _check_access(self):
        if not self.env.user.has_group("base.group_system"):
            _ = compat.gettext(self.env)
            # compat.gettext is env._ where it exists (18.0+); 17.0 has only _.
            raise AccessError(_("Only Settings administrators can inspect the server workers."))  # pylint: disable=prefer-env-translation

    @api.model
    def get_snapshot(self):
        """The snapshot of the JSON API (see README): processes, threads, config, host.

        Activity and SQL of other databases are hidden unless the server's
        config sets ``worker_inspector_server_wide``.
        """
        self._check_access()
        fresh_board()
        sessions, overdue, sql_problem, postgres = self._read_database()
        # Exits of workers killed since the sampler's last look (a second ago at most) too.
        history.harvest()
        snapshot = engine.take_snapshot(
            current_server(),
            config.options,
            sql_sessions=sessions,
            overdue_crons=None if int(config.get("max_cron_threads") or 0) else overdue,
            board_problem=RECORDER.problem,
            option_table=self._option_table(),
            sql_problem=sql_problem,
        )
        engine.add_logins(snapshot, self._caller_logins)
        # Advice reads the whole server (sizing is server-wide), before scoping.
        snapshot["advice"] = advice.advise(self._advice_facts(snapshot, postgres, overdue))
        if not self._server_wide_view():
            scope_to_database(snapshot, self.env.cr.dbname, self._serves_several_databases())
        recent = self._exits(snapshot["taken_at"] - 3600)
        snapshot["exits_last_hour"] = history_mod.summarize_exits(recent or [])
        return snapshot

    @api.model
    def _logins(self, uids):
        """``{uid: login}`` of this database's users (what is recorded knows only its uid)."""
        users = self.env["res.users"].sudo().with_context(active_test=False).browse(uids).exists()
        return {user.id: user.login for user in users}

    @api.model
    def _logins_in(self, db, uids):
        """``{uid: login}`` of the users of database ``db`` (another one: read in SQL)."""
        if db == self.env.cr.dbname:
            return self._logins(uids)
        try:
            with sql_db.db_connect(db).cursor() as cr:
                cr.execute("SELECT id, login FROM res_users WHERE id = ANY(%s)", (list(uids),))
                return dict(cr.fetchall())
        except psycopg2.Error:  # gone, or not an Odoo database: unnamed
            return {}

    @api.model
    def _caller_logins(self, db, uids):
        """``_logins_in`` for what this caller sees: its own database, and the others only
        in the server-wide view (else their records are hidden anyway)."""
        if db != self.env.cr.dbname and not self._server_wide_view():
            return {}
        return self._logins_in(db, uids)

    @api.model
    def _name_users(self, records):
        """Each record's login from its uid (``engine.name_users``): the request path
        records the uid alone, the login is read here."""
        return engine.name_users(records, self._caller_logins)

    @api.model
    def get_metrics(self):
        """The snapshot and the history's counters in Prometheus' text format (bytes)."""
        snapshot = self.get_snapshot()
        store, sampler = history.recording_store(), history.STATE.sampler
        totals = store.totals(*metrics.live_totals(snapshot)) if store is not None else None
        requests = requestlog.read_totals(current_server().pid)
        return metrics.render(
            snapshot,
            totals,
            sampler.backlog() if sampler is not None else None,
            self.get_metrics_database(),
            requests,
        )

    @api.model
    def get_history(self, since=0.0, kinds=history_mod.DEFAULT_KINDS, route=None, db=None, min_duration=None):
        """Exits and time series of this server since ``since`` (epoch), see README "History".

        What an exited worker was doing is hidden when it was on another
        database, as the snapshot's activity is (README, "Security").
        """
        self._check_access()
        store = history.recording_store()
        history.harvest()
        if store is None:
            _ = compat.gettext(self.env)
            raise UserError(_("The history is not recorded by this process."))  # pylint: disable=prefer-env-translation
        result = store.query(since, kinds)
        if "exits" in result:
            result["exits"] = self._exits(since, result["exits"])
        if {"requests", "routes", "profile"} & set(kinds):
            fresh_board()
            result.update(self._request_views(since, kinds, result["taken_at"], route, db, min_duration))
        self._join_stacks(result.get("requests"), result.get("exits"))
        return result

    @api.model
    def _join_stacks(self, requests, exits):
        """Slow-request stacks onto the requests and exits shown (README: Stacks): read here,
        never on the request path. Only visible records get one (others' are filtered)."""
        doing = [record for record in exits or () if record["doing"]]
        pids = {record["pid"] for record in (requests or ())} | {record["pid"] for record in doing}
        entries = stacks.read_slow(current_server().pid, pids=pids) if pids else []
        if requests is not None:
            stacks.join_request_stacks(requests, entries)
        stacks.join_exit_stacks(doing, entries)

    @api.model
    def _request_views(self, since, kinds, now, route, db, min_duration):
        """The request log's views; requests of other databases hidden unless server-wide."""
        server = current_server()
        records = requestlog.read_requests(server.pid, since=since)
        if not self._server_wide_view() and self._serves_several_databases():
            own = self.env.cr.dbname
            records = [r for r in records if r["db"] in (None, own)]
        self._name_users(records)
        return requestlog.query(
            records,
            kinds,
            since,
            now,
            os.cpu_count() or 1,
            server.mode,
            route=route,
            db=db,
            min_duration=min_duration,
            load=os.getloadavg()[0],
        )

    @api.model
    def _exits(self, since, exits=None):
        """Exits since ``since``, each ``doing`` of another database hidden unless server-wide."""
        store = history.history_store()
        if exits is None:
            exits = store.exits(since) if store is not None else []
        hide = not self._server_wide_view() and self._serves_several_databases()
        for record in exits:
            db = record.pop("db", None)
            if hide and record["doing"] and db and db != self.env.cr.dbname:
                record["doing"] = None
        return exits

    @api.model
    def _advice_facts(self, snapshot, postgres, overdue):
        forwarded = False
        if http.request:
            headers = http.request.httprequest.headers
            forwarded = any(name in headers for name in ("X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto"))
        return advice_facts(snapshot, postgres, overdue, forwarded_headers=forwarded)

    @api.model
    def get_crons(self):
        """Every scheduled action of this database and its health (see README)."""
        self._check_access()
        fresh_board()
        snapshot = engine.take_snapshot(current_server(), config.options, board_problem=RECORDER.problem)
        with sql_db.db_connect(self.env.cr.dbname).cursor() as cr:
            rows = database.read_crons(cr, db=cr.dbname)
            pollers = database.read_cron_pollers(cr)
        runs = crons.last_runs(requestlog.read_requests(current_server().pid), self.env.cr.dbname)
        return crons.cron_health(
            rows, snapshot, bool(int(config.get("max_cron_threads") or 0)), pollers, own_pids(snapshot), runs=runs
        )

    @api.model
    def _option_table(self):
        """How this Odoo's own parser reads options, to redact command lines."""
        parser = getattr(config, "parser", None)
        return OptionTable.from_parser(parser) if parser is not None else ODOO_OPTIONS

    @api.model
    def _server_wide_view(self):
        return str(config.get(SERVER_WIDE_OPTION) or "").lower() in ("1", "true", "yes")

    @api.model
    def _serves_several_databases(self):
        """Whether requests of other databases than this one may reach this server."""
        try:
            names = odoo_db.list_dbs(True)
        except psycopg2.Error:
            return True
        dbfilter = config.get("dbfilter") or ""
        if "%h" not in dbfilter and "%d" not in dbfilter and http.request:
            names = http.db_filter(names)
        return len(names) > 1

    @api.model
    def _read_database(self):
        """``(sessions, overdue crons, problem)``: PostgreSQL is read on a cursor of
        its own, so that an outage there leaves a snapshot without SQL and the
        reason rather than an error."""
        try:
            # A connection to the primary (pg_stat_activity is the primary's,
            # and a readonly route may run on a replica), apart from the
            # request's transaction, which a failure here must not break.
            with sql_db.db_connect(self.env.cr.dbname).cursor() as cr:
                sessions = self._read_pg_sessions(cr)
                postgres = dict(database.read_postgres_limits(cr), sessions=sessions)
                return sessions, self._read_overdue_crons(cr), None, postgres
        except psycopg2.Error as exc:
            _logger.warning("Worker inspector: PostgreSQL could not be read: %s", exc)
            return [], None, f"PostgreSQL could not be read: {str(exc).strip()}", None

    @api.model
    def recycle_worker(self, pid, force=False):
        """Ask HTTP or cron worker ``pid`` of this server to exit; the master forks a new one.

        Graceful (SIGINT) by default: the worker ends its current request or
        job first. ``force`` sends SIGTERM, which kills it at once (see
        ``engine.recycle``). Raises UserError when the pid is refused.
        """
        self._check_access()
        server = current_server()
        store = history.recording_store()
        if store is not None and server.mode == engine.MODE_PREFORK:
            # Before the signal: the worker's exit record must find it. (A worker
            # asked to force-recycle itself is recycled gracefully: see engine.recycle.)
            forced = force and pid != os.getpid()
            key = identity.process_key(pid)
            store.add_intent(pid, key and key.start, self.env.user.login, "SIGTERM" if forced else "SIGINT")
        try:
            result = engine.recycle_worker(server.pid, server.mode, pid, force=force)
        except engine.RecycleRefused as exc:
            raise UserError(str(exc)) from None
        _logger.info("Worker %s recycled by %s (%s)", pid, self.env.user.login, result["signal"])
        self._audit(nodes.ACTION_RECYCLE, self._this_node(), pid, "done", result)
        return result

    # --- nodes (README: Nodes) ------------------------------------------------

    @api.model
    def _this_node(self):
        return nodes.this_node(current_server())

    @api.model
    def _audit(self, action, node, pid, state, result=None):
        """Record a control action (the caller passed ``_check_access``)."""
        return (
            self.env["worker.inspector.audit"]
            .sudo()
            .create(
                {
                    "user_id": self.env.uid,
                    "action": action,
                    "node": node,
                    "pid": pid or 0,
                    "state": state,
                    "result": to_json(result).decode() if result is not None else None,
                    "done_at": False if state == "pending" else fields.Datetime.now(),
                }
            )
        )

    @api.model
    def _refuse(self, action, node, pid, reason):
        self._audit(action, node, pid, "refused", {"reason": reason})
        raise UserError(reason)

    @api.model
    def get_nodes(self, node=None):
        """The nodes publishing into this database (``node``: that one, with its processes)."""
        self._check_access()
        with sql_db.db_connect(self.env.cr.dbname).cursor() as cr:
            rows = nodes.read_nodes(cr, self._this_node(), node)
            if node is not None:
                for row in rows:
                    row["processes"] = nodes.read_node_processes(cr, node) or []
        audit = self.env["worker.inspector.audit"].sudo()
        by_node = {row["node"]: row for row in rows}
        for row in rows:
            commands = self._with_expiry(self._pending_commands(row["node"]), by_node)
            row["pending"] = [entry for entry in commands if entry["state"] == "pending"]
            last = audit.search(
                [("node", "=", row["node"]), ("action", "in", nodes.NODE_ACTIONS), ("state", "!=", "pending")], limit=1
            )
            ended = [entry for entry in commands if entry["state"] != "pending"] + (last.public() if last else [])
            row["last_command"] = max(ended, key=lambda entry: entry["id"]) if ended else None
        return rows

    @api.model
    def _with_expiry(self, entries, rows_by_node):
        """Pending commands their node will never carry out, shown as expired with the reason
        (``nodes.command_expiry``). The nodes' heartbeats record the expiry in the audit (and a
        node never runs an expired command); a read writes nothing."""
        now = fields.Datetime.now()
        for entry in entries:
            if entry["state"] != "pending":
                continue
            waited = (now - fields.Datetime.to_datetime(entry["when"])).total_seconds()
            result = nodes.command_expiry(entry["node"], rows_by_node.get(entry["node"]), waited)
            if result is not None:
                entry.update(state=nodes.STATE_EXPIRED, result=result)
        return entries

    @api.model
    def _pending_commands(self, node):
        return (
            self.env["worker.inspector.audit"].sudo().search([("node", "=", node), ("state", "=", "pending")]).public()
        )

    @api.model
    def _node_row(self, node):
        with sql_db.db_connect(self.env.cr.dbname).cursor() as cr:
            rows = nodes.read_nodes(cr, self._this_node(), node)
        return rows[0] if rows else None

    @api.model
    def _command_other_node(self, action, node, pid=0):
        """Queue ``action`` for ``node``: it runs with the node's next heartbeat."""
        row = self._node_row(node)
        if row is None:
            self._refuse(action, node, pid, f"No node {node!r} publishes into this database.")
        if row["stale"]:
            self._refuse(action, node, pid, f"Node {node!r} is stale (no heartbeat for {row['age']:.0f} s).")
        if row["mode"] != engine.MODE_PREFORK:
            self._refuse(action, node, pid, f"Node {node!r} is threaded (workers = 0): it has no workers to change.")
        entry = self._audit(action, node, pid, "pending")
        return {"node": node, "state": "pending", "audit_id": entry.id}

    @api.model
    def change_workers(self, node, delta):
        """Add (1) or remove (-1) an HTTP worker of ``node`` (README: Nodes)."""
        self._check_access()
        action = nodes.ACTION_ADD if delta == 1 else nodes.ACTION_REMOVE
        if node != self._this_node():
            return self._command_other_node(action, node)
        try:
            result = nodes.change_workers(current_server(), delta, spare=os.getpid())
        except nodes.ControlRefused as exc:
            self._refuse(action, node, 0, str(exc))
        _logger.info("HTTP workers of %s: %+d by %s (%s)", node, delta, self.env.user.login, result)
        entry = self._audit(action, node, 0, "done", result)
        return {"node": node, "state": "done", "audit_id": entry.id, "result": result}

    @api.model
    def recycle_node_worker(self, node, pid, force=False):
        """Recycle worker ``pid`` of ``node``: here at once, elsewhere with its next heartbeat."""
        self._check_access()
        if node == self._this_node():
            return self.recycle_worker(pid, force=force)
        return self._command_other_node(nodes.ACTION_RECYCLE, node, pid)

    @api.model
    def cancel_sql(self, backend_pid, terminate=False):
        """Cancel the query of (or terminate) a PostgreSQL backend of this Odoo server."""
        self._check_access()
        action = nodes.ACTION_TERMINATE if terminate else nodes.ACTION_CANCEL
        node = self._this_node()
        server = current_server()
        dbname = self.env.cr.dbname
        try:
            with sql_db.db_connect(dbname).cursor() as cr:
                sessions = database.read_pg_sessions(cr)
                own = {backend for backend in [cursor_backend(self.env.cr)] if backend}
                if backend_pid in own:
                    raise nodes.ControlRefused(f"Backend {backend_pid} is this very request's session.")
                session = nodes.check_own_backend(sessions, backend_pid, nodes.server_pids(server), dbname)
                function = "pg_terminate_backend" if terminate else "pg_cancel_backend"
                cr.execute(f"SELECT {function}(%s)", (backend_pid,))
                signalled = bool(cr.fetchone()[0])
        except nodes.ControlRefused as exc:
            self._refuse(action, node, backend_pid, str(exc))
        result = {
            "backend_pid": backend_pid,
            "function": function,
            "signalled": signalled,
            "query": session.get("query"),
            "application_name": session.get("application_name"),
        }
        _logger.info("PostgreSQL backend %s: %s by %s (%s)", backend_pid, function, self.env.user.login, signalled)
        entry = self._audit(action, node, backend_pid, "done" if signalled else "failed", result)
        return dict(result, audit_id=entry.id, state=entry.state)

    @api.model
    def get_metrics_database(self):
        """The scraped database's nodes and overdue scheduled actions (whether cron runs here or not)."""
        self._check_access()
        try:
            with sql_db.db_connect(self.env.cr.dbname).cursor() as cr:
                return {
                    "nodes": nodes.read_nodes(cr, self._this_node()),
                    "overdue_crons": database.read_overdue_crons(cr, db=cr.dbname),
                }
        except psycopg2.Error as exc:
            _logger.warning("Worker inspector: PostgreSQL could not be read for metrics: %s", exc)
            return None

    @api.model
    def get_audit(self, limit=200):
        self._check_access()
        entries = self.env["worker.inspector.audit"].sudo().search([], limit=limit, order="id desc").public()
        if any(entry["state"] == "pending" for entry in entries):
            with sql_db.db_connect(self.env.cr.dbname).cursor() as cr:
                rows = nodes.read_nodes(cr, self._this_node())
            self._with_expiry(entries, {row["node"]: row for row in rows})
        return entries

    @api.model
    def heartbeat_databases(self):
        return heartbeat.published_databases()

    @api.model
    def _reporting_process(self, pid):
        """``(server, key)`` of process ``pid`` of this server (``stacks.reporting_process``)."""
        server = current_server()
        return server, stacks.reporting_process(server.pid, server.mode, pid)

    @api.model
    def _hide_foreign_stacks(self, threads):
        """Frames of a thread working for another database are hidden, as its activity is."""
        if self._server_wide_view():
            return threads
        several = self._serves_several_databases()
        scope_to_database({"processes": [], "threads": threads}, self.env.cr.dbname, several)
        for thread in threads:
            if (thread.get("activity") or {}).get("hidden"):
                thread["frames"] = []
        return threads

    @api.model
    def get_stack(self, pid):
        """Every thread's Python stack of process ``pid`` of this server (README: Stacks).

        Raises ``stacks.StackUnavailable``: 400 not ours or not reporting, 504 no answer.
        """
        self._check_access()
        server, key = self._reporting_process(pid)
        _logger.info("Worker inspector: stack of process %s asked by %s", pid, self.env.user.login)
        answer = stacks.request_stack(server.pid, key)
        sessions, _overdue, _problem, _postgres = self._read_database()
        records = read_board(server.pid).get(pid, (0, []))[1]
        stacks.tag_threads(answer, records, sessions, answer["taken_at"])
        self._hide_foreign_stacks(answer["threads"])
        self._name_users([thread["activity"] for thread in answer["threads"] if thread.get("activity")])
        return answer

    @api.model
    def take_profile(self, pid, seconds):
        """Sample process ``pid`` for ``seconds`` (<= 60) and store the result as an
        ``ir.profile``, Odoo's own profiles; returns that record."""
        self._check_access()
        if not self._server_wide_view() and self._serves_several_databases():
            _ = compat.gettext(self.env)
            # compat.gettext is env._ where it exists (18.0+); 17.0 has only _.
            message = _(  # pylint: disable=prefer-env-translation
                "This server serves several databases: a profile would show what they run. "
                "Set %s = True in the server's config to allow it.",
                SERVER_WIDE_OPTION,
            )
            raise UserError(message)
        server, key = self._reporting_process(pid)
        _logger.info("Worker inspector: %ss profile of process %s asked by %s", seconds, pid, self.env.user.login)
        profile = stacks.request_profile(server.pid, key, seconds)
        traces = stacks.to_odoo_traces(profile)
        return (
            self.env["ir.profile"]
            .sudo()
            .create(
                {
                    "name": f"Worker Inspector: process {pid}, {seconds:g} s at {profile['hz']} Hz",
                    "session": "worker_inspector",
                    "create_date": fields.Datetime.now(),
                    "duration": profile["duration"],
                    "init_stack_trace": "[]",
                    "traces_async": json.dumps(traces),
                    "entry_count": len(traces),
                }
            )
        )

    @api.model
    def get_slow_requests(self, pid=None):
        """Stacks kept of slow requests and jobs (gone processes included), scoped as the activity."""
        self._check_access()
        entries = stacks.read_slow(current_server().pid, pid=pid)
        if not self._server_wide_view():
            db = self.env.cr.dbname
            several = self._serves_several_databases()
            entries = [
                entry
                for entry in entries
                if (entry.get("db") or (entry.get("cron_job") or {}).get("db")) == db
                or (entry.get("db") is None and not several)
            ]
        return self._name_users(entries)

    @api.model
    def _read_pg_sessions(self, cr):
        return database.read_pg_sessions(cr)

    @api.model
    def _read_overdue_crons(self, cr):
        """Due scheduled actions of this database (the snapshot shows them when
        cron is off, the advice when cron is on and does not keep up)."""
        return database.read_overdue_crons(cr, db=cr.dbname)
