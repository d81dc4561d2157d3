"""Ask Odoo itself how it would read a command line, before starting it.

Run by ``odoo-debug`` as a script with the Python that will run Odoo:
``<python> odoo_probe.py [ODOO_BIN]``. It imports ``odoo`` exactly as
``odoo-bin`` does (``ODOO_BIN``'s folder first on ``sys.path``), then answers
requests, one JSON object per line on stdin, with one JSON line on stdout:

- ``{"op": "parse", "args": [...], "final": false}``: parse the arguments with
  Odoo's own option parser (a fresh one; ``"final": true`` uses Odoo's global
  config, as the server will) and report the options odoo-debug needs, or the
  error Odoo's parser gives.
- ``{"op": "db_check", "databases": [...], "module": NAME}``: the
  ``odoo-<pid>`` connections to those databases in ``pg_stat_activity`` and
  the state of module NAME in each, connecting the way the last final parse
  says Odoo will.
- ``{"op": "postgres"}``: PostgreSQL's connection limits and use, and the
  Odoo servers connected, for ``odoo-debug --check``.
- ``{"op": "about"}``: Odoo's version and folder, this Python, debugpy.

Only the standard library and ``odoo`` are imported here, and no password
ever goes into an answer.
"""

import configparser
import contextlib
import io
import json
import os
import re
import stat
import sys
import traceback

# What odoo-bin does before importing odoo.
os.environ["TZ"] = "UTC"
# This folder must not shadow anything: the odoo-bin folder takes its place.
del sys.path[0]
if len(sys.argv) > 1 and sys.argv[1]:
    sys.path.insert(0, os.path.dirname(os.path.realpath(sys.argv[1])))

# Answers go to the real stdout; anything Odoo prints goes to stderr.
_answers = os.fdopen(os.dup(1), "w")
os.dup2(2, 1)

REPORTED_OPTIONS = (
    "addons_path",
    "db_maxconn",
    "db_maxconn_gevent",
    "db_name",
    "dev_mode",
    "http_enable",
    "http_interface",
    "http_port",
    "init",
    "gevent_port",
    "limit_memory_hard",
    "limit_memory_hard_gevent",
    "limit_memory_soft",
    "limit_memory_soft_gevent",
    "limit_request",
    "limit_time_cpu",
    "limit_time_real",
    "limit_time_real_cron",
    "list_db",
    "max_cron_threads",
    "proxy_mode",
    "stop_after_init",
    "test_enable",
    "workers",
)
# Odoo 19 parses these into lists; odoo-debug reads the comma-separated
# strings of 17.0 and 18.0 (the one place that knows).
LIST_OPTIONS_IN_19 = ("addons_path", "db_name")
CHECK_APPLICATION_NAME = "odoo-debug-check"
_ODOO_APP_RE = re.compile(r"^odoo-(\d+)$")


class ParserRejected(Exception):
    """Odoo's option parser refused the command line."""


class Refused(Exception):
    """An option Odoo accepts and odoo-debug does not."""


def _one_line(text):
    """A message on one line (psycopg2's span several)."""
    return " ".join(line.strip() for line in str(text).splitlines() if line.strip())


def _config_error(path, exc):
    """What is wrong in a config file, by line number: a line is never quoted
    (``db_password hunter2``, without its ``=``, is a malformed line)."""
    if isinstance(exc, configparser.MissingSectionHeaderError):
        return f"config file {path}: line {exc.lineno} comes before any section (start the file with [options])"
    if isinstance(exc, configparser.ParsingError):
        lines = ", ".join(str(lineno) for lineno, _line in exc.errors)
        return f"config file {path}: line(s) {lines} are not `key = value`"
    if isinstance(exc, configparser.DuplicateOptionError | configparser.DuplicateSectionError):
        what = f"option {exc.option!r}" if isinstance(exc, configparser.DuplicateOptionError) else "section"
        return f"config file {path}: line {exc.lineno} repeats {what} of section [{exc.section}]"
    return f"config file {path} cannot be read ({type(exc).__name__})"


def _parse(args, final):
    # Odoo 19's ``import odoo`` (a namespace package) imports no submodule.
    import odoo.tools.config  # noqa: F401

    # ``odoo.tools.config`` the attribute is the global configmanager; the module holds the class.
    config_module = sys.modules["odoo.tools.config"]
    manager = config_module.config if final else config_module.configmanager()

    def reject(message):
        raise ParserRejected(message)

    manager.parser.error = reject
    opt, _rest = manager.parser.parse_args(list(args))
    if opt.save:
        raise Refused("-s/--save is refused: it writes the config file, which odoo-debug never does; remove it")
    if opt.config and not os.access(opt.config, os.R_OK):
        raise ParserRejected(f"config file {opt.config} does not exist or is not readable")
    if opt.config and not stat.S_ISREG(os.stat(opt.config).st_mode):
        raise ParserRejected(f"config file {opt.config} is not a regular file")  # a FIFO would block
    try:
        manager._parse_config(list(args))
    except configparser.Error as exc:
        raise ParserRejected(_config_error(manager.rcfile, exc)) from None
    manager._warn_deprecated_options()
    options = {key: manager.options.get(key) for key in REPORTED_OPTIONS}
    for key in LIST_OPTIONS_IN_19:
        if isinstance(options[key], (list, tuple)):
            options[key] = ",".join(options[key])
    return {
        "ok": True,
        "options": options,
        "rcfile": manager.rcfile,
        "rcfile_exists": os.path.isfile(manager.rcfile),
    }


def _about():
    import odoo
    import odoo.release

    try:
        # Imported, not just looked up: a broken install must not pass.
        import debugpy  # noqa: T100 - whether it imports is the question

        debugpy_version = getattr(debugpy, "__version__", "unknown version")
    except ImportError:
        debugpy_version = None
    return {
        "ok": True,
        "odoo_version": odoo.release.version,
        # Not odoo.__file__: Odoo 19's odoo is a namespace package.
        "odoo_package": os.path.dirname(os.path.abspath(odoo.release.__file__)),
        "python": sys.executable,
        "python_version": ".".join(str(part) for part in sys.version_info[:3]),
        "debugpy": debugpy_version,
    }


def _connect(db_name):
    """``(db_name, connection, on_target)``, connecting the way Odoo will.

    ``on_target`` is False when the database does not exist: the connection is
    then to the cluster's ``postgres`` database.
    """
    import psycopg2

    import odoo.sql_db

    db_name, params = odoo.sql_db.connection_info_for(db_name)
    params = dict(params, application_name=CHECK_APPLICATION_NAME, connect_timeout=5)
    try:
        return db_name, psycopg2.connect(**params), True
    except psycopg2.OperationalError:
        if "dsn" in params:
            raise
        # The database may not exist yet (Odoo creates it): ask the cluster.
        connection = psycopg2.connect(**dict(params, database="postgres"))
        connection.autocommit = True
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [db_name])
                exists = cursor.fetchone() is not None
        except Exception:
            connection.close()
            raise
        if exists:
            # It exists but refused this connection: say why (the error being handled).
            connection.close()
            raise
        return db_name, connection, False


def _initialised(cursor):
    cursor.execute("SELECT to_regclass('ir_module_module') IS NOT NULL")
    return cursor.fetchone()[0]


def _addon_state(cursor, module):
    if not _initialised(cursor):
        return None
    cursor.execute("SELECT state FROM ir_module_module WHERE name = %s", [module])
    row = cursor.fetchone()
    return row[0] if row else None


def _db_check(databases, module):
    """Other Odoo servers on the databases, and the state of ``module`` in each."""
    sessions = []
    errors = []
    module_state = {}
    # Odoo creates the missing ones and initialises the empty ones: admin/admin on both.
    missing = []
    uninitialised = []
    for requested in databases:
        try:
            db_name, connection, on_target = _connect(requested)
            try:
                connection.autocommit = True
                with connection.cursor() as cursor:
                    cursor.execute(
                        "SELECT application_name, host(client_addr), count(*) FROM pg_stat_activity"
                        " WHERE datname = %s AND application_name ~ '^odoo-[0-9]+$'"
                        " GROUP BY application_name, client_addr ORDER BY application_name",
                        [db_name],
                    )
                    for app_name, client_addr, count in cursor.fetchall():
                        pid = int(_ODOO_APP_RE.match(app_name).group(1))
                        sessions.append(
                            {"database": db_name, "pid": pid, "client_addr": client_addr, "connections": count}
                        )
                    if not on_target:
                        missing.append(requested)
                        module_state[requested] = None
                    else:
                        module_state[requested] = state = _addon_state(cursor, module)
                        if state is None and not _initialised(cursor):
                            uninitialised.append(requested)
            finally:
                connection.close()
        except Exception as exc:  # noqa: BLE001 - a failed check is reported, never fatal
            errors.append({"database": requested, "error": _one_line(exc) or type(exc).__name__})
    return {
        "ok": True,
        "sessions": sessions,
        "errors": errors,
        "module_state": module_state,
        "missing": missing,
        "uninitialised": uninitialised,
    }


def _postgres():
    """What the advice needs from PostgreSQL, connecting as the last parse says Odoo will."""
    _db_name, connection, _on_target = _connect("postgres")
    try:
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT current_setting('max_connections')::int,"
                " current_setting('superuser_reserved_connections')::int,"
                " (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'),"
                " (SELECT setting::bigint * pg_size_bytes(unit) FROM pg_settings WHERE name = 'shared_buffers'),"
                " inet_server_addr()"
            )
            max_connections, reserved, in_use, shared_buffers, addr = cursor.fetchone()
    finally:
        connection.close()
    return {
        "ok": True,
        "max_connections": max_connections,
        "reserved": reserved,
        "in_use": in_use,
        "shared_buffers": shared_buffers,
        "local": addr is None or str(addr).split("/")[0] in ("127.0.0.1", "::1"),
    }


def handle(request):
    op = request.get("op")
    try:
        if op == "about":
            return _about()
        if op == "parse":
            printed = io.StringIO()
            try:
                with contextlib.redirect_stdout(printed):
                    return _parse(request.get("args") or [], bool(request.get("final")))
            except SystemExit as exc:
                # optparse's --version and --help print and exit.
                code = exc.code if isinstance(exc.code, int) else 1
                return {"ok": False, "exit": code, "output": printed.getvalue()}
        if op == "postgres":
            return _postgres()
        if op == "db_check":
            return _db_check(request.get("databases") or [], request.get("module") or "")
        return {"ok": False, "error": f"unknown request {op!r}"}
    except ParserRejected as exc:
        return {"ok": False, "rejected": True, "error": str(exc)}
    except Refused as exc:
        return {"ok": False, "refused": True, "error": str(exc)}
    except Exception as exc:  # noqa: BLE001 - reported in one line, traceback on request
        return {
            "ok": False,
            "error": f"{type(exc).__name__}: {_one_line(exc)}",
            "traceback": traceback.format_exc(),
        }


def main():
    for line in sys.stdin:
        if not line.strip():
            continue
        answer = handle(json.loads(line))
        _answers.write(json.dumps(answer, default=str) + "\n")
        _answers.flush()


if __name__ == "__main__":
    main()
