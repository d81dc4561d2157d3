"""Start Odoo in debug-safe mode.

odoo-debug runs your Odoo with everything you pass it (-c, -d, -u, -i, --dev,
--http-port, ...) and forces, whatever the config file or the arguments say:
one process (--workers=0) so a breakpoint is hit once, no cron thread
(--max-cron-threads=0) so no scheduled action fires while you step, and no
time or memory limit (--limit-time-real, --limit-memory-soft/-hard = 0) so a
paused request is neither killed nor reloaded. It adds the worker_inspector
dashboard to the addons path, prints what it changed, then becomes Odoo
(same pid, signals and exit code). It never writes your config file.

Odoo is found with --odoo-bin, then $ODOO_BIN, then odoo or odoo-bin on PATH,
then the importable odoo package. The config file is -c, else $ODOO_RC, else
~/.odoorc, as Odoo reads it. Every option not listed here goes to Odoo
unchanged (see odoo-bin --help); put Odoo's options after -- if one of them
clashes with an odoo-debug option.
"""

import argparse
import dataclasses
import os
import stat
import sys
import traceback

from worker_inspector.engine import redact_cmdline

from . import addons, checks, plan
from .errors import LauncherError
from .locate import find_odoo
from .probe_client import OdooProbe

PROG = "odoo-debug"
EXAMPLES = """\
examples:
  odoo-debug -c ~/odoo.conf -d mydb -u my_module
  odoo-debug -d mydb --dev=xml --debugpy 5678 --wait-for-client
  odoo-debug -d mydb --dry-run          # show the command, start nothing
"""
EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise LauncherError(f"{message} (see {PROG} --help)", exit_code=EXIT_USAGE)


def build_parser():
    summary, _, details = __doc__.partition("\n\n")
    parser = _Parser(
        prog=PROG,
        usage="%(prog)s [-c CONFIG] [-d DATABASE] [options] [ODOO OPTIONS...]",
        description=summary + "\n\n" + details,
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        # Odoo's options pass through: never read "--de" as "--debugpy".
        allow_abbrev=False,
    )
    parser.add_argument("-c", "--config", metavar="CONFIG", help="Odoo config file, read and never written")
    parser.add_argument("-d", "--database", metavar="DATABASE", help="database(s) to load, as Odoo's -d")
    parser.add_argument("--odoo-bin", metavar="PATH", help="the odoo-bin (or odoo) script to run")
    parser.add_argument(
        "--debugpy",
        metavar="[HOST:]PORT",
        help="run Odoo under debugpy listening on HOST:PORT (HOST defaults to 127.0.0.1)",
    )
    parser.add_argument(
        "--wait-for-client", action="store_true", help="with --debugpy: start Odoo only once the IDE has attached"
    )
    parser.add_argument("--quiet", action="store_true", help="print no banner (warnings and errors still show)")
    parser.add_argument("--dry-run", action="store_true", help="run the checks, print the banner and command, exit")
    parser.add_argument("--traceback", action="store_true", help="show the full traceback of an error")
    return parser


def _say(kind, message):
    print(f"{PROG}: {kind}: {message}", file=sys.stderr)


def _config_file(option, environ):
    path, source = plan.resolve_config(option, environ)
    if path is None:
        return None
    if not os.path.exists(path):
        raise LauncherError(f"config file {path} (from {source}) does not exist")
    if os.path.isdir(path):
        raise LauncherError(f"config file {path} (from {source}) is a directory")
    if not stat.S_ISREG(os.stat(path).st_mode):
        # A FIFO or a device: opening it could block, reading it makes no sense.
        raise LauncherError(f"config file {path} (from {source}) is not a regular file")
    try:
        with open(path, "rb"):
            pass
    except OSError as exc:
        raise LauncherError(f"config file {path} (from {source}) is not readable: {exc.strerror}") from None
    return path


def _parse_with_odoo(probe, args, final):
    answer = probe.ask(op="parse", args=args, final=final)
    if answer.get("ok"):
        return answer
    if "exit" in answer:
        raise OdooExited(answer.get("output") or "", answer["exit"])
    if answer.get("rejected"):
        raise LauncherError(f"Odoo rejects the options: {answer['error']}", exit_code=EXIT_USAGE)
    raise LauncherError(f"Odoo cannot read its configuration: {answer['error']}", details=answer.get("traceback"))


class OdooExited(Exception):
    """Odoo's parser printed something and exited (``--version``)."""

    def __init__(self, output, code):
        super().__init__(output)
        self.output = output
        self.code = code


def _about_odoo(probe, install, debugpy):
    about = probe.ask(op="about")
    if not about.get("ok"):
        raise LauncherError(
            f"cannot import Odoo with {install.python}: {about.get('error')}", details=about.get("traceback")
        )
    if debugpy and not about.get("debugpy"):
        python = about["python"]
        raise LauncherError(f"debugpy is not installed for {python}: install it with `{python} -m pip install debugpy`")
    return about


def _debugpy_endpoint(opts):
    if opts.debugpy:
        try:
            return plan.parse_endpoint(opts.debugpy)
        except ValueError as exc:
            raise LauncherError(f"--debugpy: {exc}", exit_code=EXIT_USAGE) from exc
    if opts.wait_for_client:
        raise LauncherError("--wait-for-client needs --debugpy [HOST:]PORT", exit_code=EXIT_USAGE)
    return None


def _redacted_database(name):
    return redact_cmdline([name])[0] if name else name


def _addon_note(added, provider):
    if added:
        return f"+ {provider} (for {addons.ADDON_NAME})"
    return f"{addons.ADDON_NAME} comes from {provider}"


def _dashboard(url, databases, module_state, installing=False):
    """``url``: the dashboard action's URL (None without HTTP)."""
    if not url or len(databases) != 1:
        return None
    state = module_state.get(databases[0])
    if state == "installed" or installing:
        return url
    if state in (None, "uninstalled", "uninstallable"):
        return f"not installed in {databases[0]}: add -i {addons.ADDON_NAME} once"
    return None


def _check_forced(final_options):
    """Odoo keeps the last value of an option: make sure it kept odoo-debug's."""
    for forced in plan.FORCED:
        got = final_options.get(forced.key)
        if got != forced.value:
            raise LauncherError(f"Odoo did not take {forced.option}={forced.value} (it reads {got!r}): report this")


def _warn_about_database(db_report):
    for warning in checks.other_servers(db_report.get("sessions", [])):
        _say("warning", warning)
    for failure in db_report.get("errors", []):
        database = _redacted_database(failure["database"])
        _say("warning", f"could not check whether another Odoo server uses database {database}: {failure['error']}")


def _check_ports(options, debugpy):
    # With --stop-after-init Odoo serves HTTP only to run tests.
    serves_http = options.get("http_enable") and (not options.get("stop_after_init") or options.get("test_enable"))
    if serves_http:
        problem = checks.port_problem(options.get("http_interface") or "", options["http_port"])
        if problem:
            raise LauncherError(problem)
    if debugpy:
        error = checks.bind_error(*debugpy)
        if error:
            endpoint = plan.format_endpoint(*debugpy)
            raise LauncherError(f"--debugpy {endpoint}: cannot listen there: {error.strerror or error}")


@dataclasses.dataclass
class Launch:
    """What odoo-debug runs, and the banner it prints first."""

    command: list
    env: dict
    banner: str


def prepare(argv, environ=None):
    """Check everything and work out the command: ``(options, Launch)``; raises LauncherError."""
    environ = dict(os.environ if environ is None else environ)
    opts, passthrough = build_parser().parse_known_args(argv)
    debugpy = _debugpy_endpoint(opts)
    config_file = _config_file(opts.config, environ)
    install = find_odoo(opts.odoo_bin, environ)
    addon_entry = addons.addons_path_entry(addons.addon_dir(), environ)
    user_args = plan.user_arguments(passthrough, config_file, opts.database)

    with OdooProbe(install, environ) as probe:
        about = _about_odoo(probe, install, debugpy)
        user_options = _parse_with_odoo(probe, user_args, final=False)["options"]
        dev_mode = user_options.get("dev_mode") or []
        # Odoo's parser already expanded "all" into reload,qweb,xml.
        dropping_reload = bool(debugpy) and "reload" in dev_mode
        paths, added, provider = addons.merge_addons_path(
            (user_options.get("addons_path") or "").split(","), addon_entry
        )
        odoo_args = plan.debug_arguments(
            user_args, paths, plan.dev_without_reload(dev_mode) if dropping_reload else None
        )
        final = _parse_with_odoo(probe, odoo_args, final=True)
        options = final["options"]
        _check_forced(options)
        databases = [name for name in (options.get("db_name") or "").split(",") if name]
        db_report = probe.ask(op="db_check", databases=databases, module=addons.ADDON_NAME) if databases else {}

    _warn_about_database(db_report)
    _check_ports(options, debugpy)

    command = plan.server_command(about["python"], install.entry(), odoo_args, debugpy, opts.wait_for_client)
    env = dict(environ)
    if not install.odoo_bin:
        env["TZ"] = "UTC"  # what odoo-bin does first; ``python -m odoo`` does not
    url = plan.server_url(options, about["odoo_version"])
    info = plan.BannerInfo(
        odoo_version=about["odoo_version"],
        odoo_source=install.describe(),
        python_version=about["python_version"],
        config_file=final["rcfile"] if final.get("rcfile_exists") else None,
        database=", ".join(_redacted_database(name) for name in databases),
        addons_path=paths,
        addon_note=_addon_note(added, provider),
        url=url,
        dashboard=_dashboard(
            plan.action_url(options, about["odoo_version"]),
            databases,
            db_report.get("module_state", {}),
            addons.ADDON_NAME in (options.get("init") or {}),
        ),
        rows=plan.overrides(user_options, dropping_reload),
        command=redact_cmdline(command),
        # exec keeps the pid; with --dry-run nothing will run.
        pid=None if opts.dry_run else os.getpid(),
        debugpy=debugpy,
        wait_for_client=opts.wait_for_client,
        notes=["--dev reload is off under debugpy: a reload re-executes Odoo without the debugger"]
        if dropping_reload
        else [],
    )
    return opts, Launch(command, env, plan.banner(info))


def run(argv):
    opts, launch = prepare(argv)
    if not opts.quiet or opts.dry_run:
        sys.stdout.write(launch.banner)
    if opts.dry_run:
        return 0
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        # Become Odoo: the IDE sees Odoo's pid, Ctrl-C reaches Odoo, its exit code is ours.
        os.execve(launch.command[0], launch.command, launch.env)
    except OSError as exc:
        raise LauncherError(f"cannot start {launch.command[0]}: {exc.strerror or exc}") from exc
    return 1  # not reached


def main(argv=None):
    """Console script ``odoo-debug``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    show_traceback = "--traceback" in argv[: argv.index("--")] if "--" in argv else "--traceback" in argv
    try:
        return run(argv)
    except OdooExited as exc:
        sys.stdout.write(exc.output)
        return exc.code
    except LauncherError as exc:
        if show_traceback:
            traceback.print_exc()
            if exc.details:
                print(exc.details, file=sys.stderr)
        _say("error", str(exc))
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # noqa: BLE001 - one readable line unless --traceback
        if show_traceback:
            traceback.print_exc()
        hint = "" if show_traceback else " (run with --traceback for details)"
        _say("error", f"{type(exc).__name__}: {exc}{hint}")
        return 1
