"""Everything odoo-debug does before it becomes Odoo, one phase per function.

1. ``read_arguments``: odoo-debug's own options; the rest is Odoo's.
2. ``locate``: the config file, Odoo, the folder to add for the addon.
3. ``ask_odoo``: Odoo's own parser reads the user's and the debug command
   lines; the databases are looked at (other servers, the addon's state).
4. ``check``: what would make the start fail or surprise, said before it.
5. ``build``: the command, its environment and what to print.
"""

import argparse
import dataclasses
import os
import stat

from worker_inspector.engine import advice, redact_cmdline

from . import addons, banner, checks, plan
from .errors import ExitStatus, LauncherError, say
from .locate import find_odoo
from .probe_client import OdooProbe


@dataclasses.dataclass
class Launch:
    """What odoo-debug runs, and what it prints first and once Odoo answers."""

    command: list
    env: dict
    info: banner.BannerInfo
    # Where to ask whether Odoo answers HTTP; None when it serves none.
    health: tuple | None = None


@dataclasses.dataclass
class Located:
    config_file: str | None
    install: object
    addon_entry: str
    user_args: list


@dataclasses.dataclass
class OdooAnswers:
    """What Odoo's parser and the database check said."""

    about: dict
    user_options: dict
    options: dict
    rcfile: str | None
    odoo_args: list
    addons_path: list
    addon_added: bool
    addon_provider: str
    dropping_reload: bool
    databases: list
    db_report: dict


class OdooExited(Exception):
    """Odoo's parser printed something and exited (``--version``)."""

    def __init__(self, output, code):
        super().__init__(output)
        self.output = output
        self.code = code


# --- 1. odoo-debug's own arguments ----------------------------------------------------


def debugpy_endpoint(opts):
    if opts.debugpy:
        try:
            return plan.parse_endpoint(opts.debugpy)
        except ValueError as exc:
            raise LauncherError(f"--debugpy: {exc}", exit_code=ExitStatus.USAGE) from exc
    if opts.wait_for_client:
        raise LauncherError("--wait-for-client needs --debugpy [HOST:]PORT", exit_code=ExitStatus.USAGE)
    return None


def read_arguments(parser: argparse.ArgumentParser, argv):
    """``(opts, passthrough, debugpy)``: odoo-debug's options, Odoo's arguments, the debugpy endpoint."""
    opts, passthrough = parser.parse_known_args(argv)
    return opts, passthrough, debugpy_endpoint(opts)


# --- 2. what to run ---------------------------------------------------------------------


def config_file(option, environ):
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


def locate(opts, passthrough, environ):
    found_config = config_file(opts.config, environ)
    return Located(
        config_file=found_config,
        install=find_odoo(opts.odoo_bin, environ),
        addon_entry=addons.addons_path_entry(addons.addon_dir(), environ),
        user_args=plan.user_arguments(passthrough, found_config, opts.database),
    )


# --- 3. what Odoo says ------------------------------------------------------------------


def parse_with_odoo(probe, args, final):
    answer = probe.ask(op="parse", args=args, final=final)
    if answer.get("ok"):
        return answer
    if "exit" in answer:
        raise OdooExited(answer.get("output") or "", answer["exit"])
    if answer.get("refused"):
        # odoo-debug's own rule, found by Odoo's parser (which knows its abbreviations).
        raise LauncherError(answer["error"], exit_code=ExitStatus.USAGE)
    if answer.get("rejected"):
        raise LauncherError(f"Odoo rejects the options: {answer['error']}", exit_code=ExitStatus.USAGE)
    raise LauncherError(f"Odoo cannot read its configuration: {answer['error']}", details=answer.get("traceback"))


def about_odoo(probe, install, debugpy):
    about = probe.ask(op="about")
    if not about.get("ok"):
        raise LauncherError(
            f"cannot import Odoo with {install.python}: {about.get('error')}", details=about.get("traceback")
        )
    if debugpy and not about.get("debugpy"):
        python = about["python"]
        raise LauncherError(f"debugpy is not installed for {python}: install it with `{python} -m pip install debugpy`")
    return about


def ask_odoo(located, debugpy, environ):
    with OdooProbe(located.install, environ) as probe:
        about = about_odoo(probe, located.install, debugpy)
        user_options = parse_with_odoo(probe, located.user_args, final=False)["options"]
        dev_mode = user_options.get("dev_mode") or []
        # Odoo's parser already expanded "all" into reload,qweb,xml.
        dropping_reload = bool(debugpy) and "reload" in dev_mode
        paths, added, provider = addons.merge_addons_path(
            (user_options.get("addons_path") or "").split(","), located.addon_entry
        )
        odoo_args = plan.debug_arguments(
            located.user_args, paths, plan.dev_without_reload(dev_mode) if dropping_reload else None
        )
        final = parse_with_odoo(probe, odoo_args, final=True)
        options = final["options"]
        databases = [name for name in (options.get("db_name") or "").split(",") if name]
        db_report = probe.ask(op="db_check", databases=databases, module=addons.ADDON_NAME) if databases else {}
    return OdooAnswers(
        about=about,
        user_options=user_options,
        options=options,
        rcfile=final["rcfile"] if final.get("rcfile_exists") else None,
        odoo_args=odoo_args,
        addons_path=paths,
        addon_added=added,
        addon_provider=provider,
        dropping_reload=dropping_reload,
        databases=databases,
        db_report=db_report,
    )


# --- 4. checks --------------------------------------------------------------------------


def redacted_database(name):
    return redact_cmdline([name])[0] if name else name


def check_forced(final_options):
    """Odoo keeps the last value of an option: make sure it kept odoo-debug's."""
    for forced in plan.FORCED:
        got = final_options.get(forced.key)
        if got != forced.value:
            raise LauncherError(f"Odoo did not take {forced.argument} (it reads {got!r}): report this")


def database_warnings(db_report):
    warnings = checks.other_servers(db_report.get("sessions", []))
    for name in db_report.get("missing", []):
        warnings.append(
            f"database {redacted_database(name)} does not exist: Odoo will create it"
            f" (log in as {banner.NEW_DATABASE_LOGIN}); check its name if you meant an existing one"
        )
    for failure in db_report.get("errors", []):
        database = redacted_database(failure["database"])
        warnings.append(f"could not check whether another Odoo server uses database {database}: {failure['error']}")
    return warnings


def check_ports(options, debugpy):
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


def check(answers, debugpy):
    check_forced(answers.options)
    for warning in database_warnings(answers.db_report):
        say("warning", warning)
    check_ports(answers.options, debugpy)


# --- 5. the command and the banner ------------------------------------------------------


def addon_note(added, provider):
    if added:
        return f"+ {provider} (for {addons.ADDON_NAME})"
    return f"{addons.ADDON_NAME} comes from {provider}"


def dashboard(url, databases, module_state, installing=False):
    """``url``: the dashboard action's URL (None without HTTP)."""
    if not url or len(databases) != 1:
        return None
    state = module_state.get(databases[0])
    if state == "installed" or installing:
        return url
    if state in (None, "uninstalled", "uninstallable"):
        return f"not installed in {databases[0]}: add -i {addons.ADDON_NAME} once"
    return None


def build(opts, debugpy, located, answers, environ):
    options = answers.options
    command = plan.server_command(
        answers.about["python"], located.install.entry(), answers.odoo_args, debugpy, opts.wait_for_client
    )
    env = dict(environ)
    env[advice.DEBUG_SESSION_ENV] = "1"  # the advice does not count this server as production
    if not located.install.odoo_bin:
        env["TZ"] = "UTC"  # what odoo-bin does first; ``python -m odoo`` does not
    url = plan.server_url(options, answers.about["odoo_version"])
    report = answers.db_report
    info = banner.BannerInfo(
        odoo_version=answers.about["odoo_version"],
        odoo_source=located.install.describe(),
        python_version=answers.about["python_version"],
        config_file=answers.rcfile,
        database=", ".join(redacted_database(name) for name in answers.databases),
        addons_path=answers.addons_path,
        addon_note=addon_note(answers.addon_added, answers.addon_provider),
        url=url,
        dashboard=dashboard(
            plan.action_url(options, answers.about["odoo_version"]),
            answers.databases,
            report.get("module_state", {}),
            addons.ADDON_NAME in (options.get("init") or {}),
        ),
        rows=plan.overrides(answers.user_options, answers.dropping_reload),
        command=redact_cmdline(command),
        # exec keeps the pid; with --dry-run nothing will run.
        pid=None if opts.dry_run else os.getpid(),
        debugpy=debugpy,
        wait_for_client=opts.wait_for_client,
        new_database=bool(report.get("missing") or report.get("uninitialised")),
        notes=["--dev reload is off under debugpy: a reload re-executes Odoo without the debugger"]
        if answers.dropping_reload
        else [],
    )
    return Launch(command, env, info, plan.health_address(options))


def prepare(parser, argv, environ=None):
    """Check everything and work out the command: ``(opts, Launch)``; raises LauncherError."""
    environ = dict(os.environ if environ is None else environ)
    opts, passthrough, debugpy = read_arguments(parser, argv)
    located = locate(opts, passthrough, environ)
    answers = ask_odoo(located, debugpy, environ)
    check(answers, debugpy)
    return opts, build(opts, debugpy, located, answers, environ)
