"""odoo-debug without Odoo: how arguments and config combine, the banner, errors.

Everything here is real: real files, sockets and processes; only Odoo is not
needed (what Odoo's own parser says is covered by test_launcher_e2e.py).
"""

import contextlib
import importlib.util
import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest
from waiting import wait_until

from odoo_debug import addons, banner, checks, cli, locate, plan, prepare
from odoo_debug.errors import ExitStatus, LauncherError

REPO = Path(__file__).resolve().parent.parent

SECRETS = ("Db-S3cret-pw", "Master-S3cret-pw", "Smtp-S3cret-pw", "Uri-S3cret-pw")


# --- the command -----------------------------------------------------------


def test_user_arguments_put_config_and_database_first_and_keep_the_rest_in_order():
    args = plan.user_arguments(["-u", "sale", "--dev=xml", "--", "-p", "8070"], "/etc/odoo.conf", "db1")
    assert args == ["-c", "/etc/odoo.conf", "-d", "db1", "-u", "sale", "--dev=xml", "-p", "8070"]


def test_user_arguments_without_config_or_database_pass_everything_unchanged():
    assert plan.user_arguments(["--workers=4", "-i", "base"]) == ["--workers=4", "-i", "base"]


def test_forced_options_come_after_the_users_so_odoo_keeps_them():
    user = ["-c", "odoo.conf", "--workers=4", "--max-cron-threads", "2", "--limit-time-real=60"]
    args = plan.debug_arguments(user, ["/a", "/b"])
    assert args[: len(user)] == user
    tail = args[len(user) :]
    assert tail == [
        "--addons-path=/a,/b",
        "--workers=0",
        "--max-cron-threads=0",
        "--limit-time-real=0",
        "--limit-memory-soft=0",
        "--limit-memory-hard=0",
        "--no-database-list",
    ]
    assert "-s" not in args and "--save" not in args


def test_dev_mode_without_reload_keeps_the_other_modes():
    # Odoo's parsed list for --dev=all,werkzeug
    assert plan.dev_without_reload(["all", "werkzeug", "reload", "qweb", "xml"]) == ["werkzeug", "qweb", "xml"]
    assert plan.dev_without_reload(["reload"]) == []
    assert plan.dev_without_reload([]) == []


def test_an_empty_dev_option_clears_a_reload_given_earlier():
    args = plan.debug_arguments(["--dev=reload"], None, dev_mode=[])
    assert args[0] == "--dev=reload" and args[-1] == "--dev="


def test_server_command_with_and_without_debugpy():
    plain = plan.server_command("/py", ["/odoo/odoo-bin"], ["-d", "db"])
    assert plain == ["/py", "/odoo/odoo-bin", "-d", "db"]
    debug = plan.server_command("/py", ["-m", "odoo"], ["-d", "db"], ("127.0.0.1", 5678), wait_for_client=True)
    assert debug == [
        "/py", "-X", "frozen_modules=off", "-m", "debugpy", "--listen", "127.0.0.1:5678", "--wait-for-client",
        "-m", "odoo", "-d", "db",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("5678", ("127.0.0.1", 5678)),
        ("0.0.0.0:5678", ("0.0.0.0", 5678)),
        ("localhost:1", ("localhost", 1)),
        ("[::1]:5678", ("::1", 5678)),
        (":5678", ("127.0.0.1", 5678)),
    ],
)
def test_debugpy_endpoint(text, expected):
    assert plan.parse_endpoint(text) == expected


@pytest.mark.parametrize("text", ["", "abc", "host:", "0", "65536", "[::1]5678", "1.2.3.4:x"])
def test_debugpy_endpoint_rejects(text):
    with pytest.raises(ValueError, match="PORT"):
        plan.parse_endpoint(text)


# --- the overrides table and the banner --------------------------------------


def _user_options(**overrides):
    options = {
        "workers": 4,
        "max_cron_threads": 2,
        "limit_time_real": 120,
        "limit_memory_soft": 2048 * plan.MIB,
        "limit_memory_hard": 2560 * plan.MIB,
        "dev_mode": [],
    }
    options.update(overrides)
    return options


def test_overrides_table_has_each_forced_setting_with_its_before_and_debug_value():
    rows = {row.setting: row for row in plan.overrides(_user_options())}
    assert list(rows) == [
        "workers",
        "max_cron_threads",
        "limit_time_real",
        "limit_memory_soft",
        "limit_memory_hard",
        "list_db",
    ]
    assert (rows["list_db"].before, rows["list_db"].after) == ("on", "off (no database manager)")
    assert (rows["workers"].before, rows["workers"].after) == ("4 (prefork)", "0 (threaded)")
    assert (rows["max_cron_threads"].before, rows["max_cron_threads"].after) == ("2", "0")
    assert (rows["limit_time_real"].before, rows["limit_time_real"].after) == ("120 s", "0 (off)")
    assert rows["limit_memory_soft"].before == "2147483648 (2048 MiB)"
    assert rows["limit_memory_hard"].after == "0 (off)"
    assert all(row.why for row in rows.values())


def test_overrides_table_shows_dev_mode_only_when_reload_is_dropped():
    options = _user_options(dev_mode=["all", "reload", "qweb", "xml"])
    assert "dev_mode" not in {row.setting for row in plan.overrides(options)}
    dev = [row for row in plan.overrides(options, dropping_reload=True) if row.setting == "dev_mode"]
    assert len(dev) == 1
    assert (dev[0].before, dev[0].after) == ("all,reload,qweb,xml", "qweb,xml")


def _banner(command, database="db1", debugpy=None):
    return banner.render(_banner_info(command, database, debugpy))


def _banner_info(command, database="db1", debugpy=None, new_database=False):
    return banner.BannerInfo(
        odoo_version="18.0",
        odoo_source="/srv/odoo/odoo-bin (--odoo-bin)",
        python_version="3.11.7",
        config_file="/etc/odoo.conf",
        database=prepare.redacted_database(database),
        addons_path=["/srv/odoo/addons", "/srv/wi"],
        addon_note="+ /srv/wi (for worker_inspector)",
        url=plan.server_url({"http_enable": True, "http_interface": "", "http_port": 8070}),
        rows=plan.overrides(_user_options()),
        command=prepare.redact_cmdline(command),
        debugpy=debugpy,
        new_database=new_database,
    )


def test_banner_tells_what_runs_and_what_changed():
    text = _banner(["/py", "/srv/odoo/odoo-bin", "-d", "db1", "--workers=0"])
    assert "Odoo 18.0, /srv/odoo/odoo-bin (--odoo-bin), Python 3.11.7" in text
    assert "/etc/odoo.conf (read, never written)" in text
    assert "http://localhost:8070/odoo" in text
    assert "/srv/odoo/addons,/srv/wi" in text
    lines = text.splitlines()
    header = next(i for i, line in enumerate(lines) if line.split()[:3] == ["setting", "config/args", "debug"])
    workers = lines[header + 1].split()
    assert workers[:5] == ["workers", "4", "(prefork)", "0", "(threaded)"]


def test_banner_never_shows_secrets():
    command = [
        "/py", "/srv/odoo/odoo-bin",
        "-w", SECRETS[0],
        "--db_password=" + SECRETS[0],
        "--smtp-password", SECRETS[2],
        "-d", f"postgres://odoo:{SECRETS[3]}@db.example/odoo",
    ]  # fmt: skip
    text = _banner(command, database=f"postgres://odoo:{SECRETS[3]}@db.example/odoo")
    for secret in SECRETS:
        assert secret not in text
    assert "--db_password=********" in text


def test_banner_says_the_login_of_a_new_database_only():
    assert "login" not in _banner(["/py"])
    info = _banner_info(["/py"], new_database=True)
    assert "  login       admin / admin (a new database)" in banner.render(info)


def test_the_ready_text_repeats_the_url_the_dashboard_and_the_login():
    info = _banner_info(["/py"], new_database=True)
    info.dashboard = "http://localhost:8070/odoo/action-worker_inspector.action_worker_inspector_dashboard"
    text = banner.render_ready(info)
    assert text.splitlines() == [
        "odoo-debug: Odoo is ready: open http://localhost:8070/odoo",
        "  dashboard   " + info.dashboard,
        "  login       admin / admin (a new database)",
    ]
    # A hint rather than a URL is not repeated, nor a login odoo-debug does not know.
    info.dashboard, info.new_database = "not installed in db1: add -i worker_inspector once", False
    assert banner.render_ready(info) == "odoo-debug: Odoo is ready: open http://localhost:8070/odoo\n"


def test_quiet_dry_run_prints_the_redacted_command_alone():
    info = _banner_info(["/py", "/srv/odoo/odoo-bin", "-w", SECRETS[1], "-d", "my db"])
    assert banner.render_command(info) == "/py /srv/odoo/odoo-bin -w '********' -d 'my db'\n"


def test_a_database_that_does_not_exist_is_warned_about_with_its_login():
    report = {"missing": ["typo_db"], "sessions": [], "errors": []}
    (warning,) = prepare.database_warnings(report)
    assert warning.startswith("database typo_db does not exist: Odoo will create it (log in as admin / admin)")
    assert prepare.database_warnings({}) == []


def test_banner_under_debugpy_prints_a_vs_code_attach_configuration():
    text = _banner(["/py", "-m", "debugpy"], debugpy=("127.0.0.1", 5679))
    start = text.index("{")
    config, _end = json.JSONDecoder().raw_decode(textwrap.dedent(text[start:]))
    assert config == {
        "name": "Attach to odoo-debug",
        "type": "debugpy",
        "request": "attach",
        "connect": {"host": "127.0.0.1", "port": 5679},
        "justMyCode": False,
    }
    assert "listening on 127.0.0.1:5679" in text


def test_url_uses_the_interface_odoo_listens_on():
    assert plan.server_url({"http_interface": "127.0.0.1", "http_port": 8069}) == "http://127.0.0.1:8069/odoo"
    assert plan.server_url({"http_interface": "::1", "http_port": 8069}) == "http://[::1]:8069/odoo"
    assert plan.server_url({"http_enable": False, "http_port": 8069}) is None
    # 17.0's web client is /web, its actions /web#action=...
    assert plan.server_url({"http_interface": "127.0.0.1", "http_port": 8069}, "17.0-20240709") == (
        "http://127.0.0.1:8069/web"
    )
    options = {"http_interface": "127.0.0.1", "http_port": 8069}
    assert plan.action_url(options, "17.0") == "http://127.0.0.1:8069/web#action=" + plan.ADDON_ACTION
    assert plan.action_url(options, "19.0") == "http://127.0.0.1:8069/odoo/action-" + plan.ADDON_ACTION


# --- which config file --------------------------------------------------------


def test_config_file_order_is_odoos(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / ".odoorc").write_text("[options]\n")
    environ = {"ODOO_RC": str(tmp_path / "rc.conf"), "OPENERP_SERVER": str(tmp_path / "old.conf")}
    assert plan.resolve_config("given.conf", environ, str(home)) == (os.path.abspath("given.conf"), "-c/--config")
    assert plan.resolve_config(None, environ, str(home)) == (str(tmp_path / "rc.conf"), "ODOO_RC")
    del environ["ODOO_RC"]
    assert plan.resolve_config(None, environ, str(home)) == (str(tmp_path / "old.conf"), "OPENERP_SERVER")
    assert plan.resolve_config(None, {}, str(home)) == (str(home / ".odoorc"), "~/.odoorc")
    (home / ".odoorc").unlink()
    assert plan.resolve_config(None, {}, str(home)) == (None, "none")
    (home / ".openerp_serverrc").write_text("[options]\n")
    assert plan.resolve_config(None, {}, str(home)) == (str(home / ".openerp_serverrc"), "~/.openerp_serverrc")


def test_a_given_config_file_that_does_not_exist_is_an_error(tmp_path):
    missing = tmp_path / "missing.conf"
    with pytest.raises(LauncherError, match="config file .*missing.conf \\(from -c/--config\\) does not exist"):
        prepare.config_file(str(missing), {})
    with pytest.raises(LauncherError, match="\\(from ODOO_RC\\) does not exist"):
        prepare.config_file(None, {"ODOO_RC": str(missing)})


def test_an_unreadable_config_file_is_an_error(tmp_path):
    shared = tempfile.mkdtemp(prefix="wi-locked-")
    os.chmod(shared, 0o755)
    conf = os.path.join(shared, "locked.conf")
    try:
        with open(conf, "w") as handle:
            handle.write("[options]\n")
        os.chmod(conf, 0)
        code = (
            "import sys; sys.path.insert(0, 'launcher'); from odoo_debug import prepare\n"
            "try:\n    prepare.config_file(sys.argv[1], {})\n"
            "except prepare.LauncherError as exc:\n    print(exc)\n"
        )
        command = [sys.executable, "-c", code, conf]
        if os.geteuid() == 0:
            # Root reads any file: run the check without the capabilities that let it.
            setpriv = shutil.which("setpriv")
            if not setpriv:
                pytest.skip("running as root without util-linux's setpriv: cannot make a file unreadable")
            command = [setpriv, "--bounding-set=-dac_override,-dac_read_search"] + command
        out = subprocess.run(command, capture_output=True, text=True, cwd=str(REPO), check=True).stdout
        assert out.strip() == f"config file {conf} (from -c/--config) is not readable: Permission denied"
    finally:
        os.chmod(conf, 0o600)
        shutil.rmtree(shared)


def test_a_directory_as_config_file_is_an_error(tmp_path):
    with pytest.raises(LauncherError, match="is a directory"):
        prepare.config_file(str(tmp_path), {})


# --- finding Odoo ---------------------------------------------------------------


def _script(path, first_line):
    path.write_text(first_line + "\nprint('odoo')\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_odoo_bin_option_that_does_not_exist_is_an_error():
    with pytest.raises(LauncherError, match="^Odoo not found: /nonexistent \\(from --odoo-bin\\)"):
        locate.find_odoo("/nonexistent", {})


def test_odoo_is_found_in_order_option_env_path(tmp_path):
    fake_python = _script(tmp_path / "python3", "#!/bin/sh")
    option_bin = _script(tmp_path / "option-odoo-bin", "#!/usr/bin/python3.11 -u")
    env_bin = _script(tmp_path / "env-odoo-bin", "#!/usr/bin/env python3")
    path_dir = tmp_path / "bin"
    path_dir.mkdir()
    path_bin = _script(path_dir / "odoo-bin", "no shebang")
    environ = {"ODOO_BIN": str(env_bin), "PATH": f"{path_dir}:{tmp_path}"}

    found = locate.find_odoo(str(option_bin), environ)
    assert (found.odoo_bin, found.python, found.found_by) == (str(option_bin), "/usr/bin/python3.11", "--odoo-bin")
    found = locate.find_odoo(None, environ)
    assert (found.odoo_bin, found.python, found.found_by) == (str(env_bin), str(fake_python), "ODOO_BIN")
    del environ["ODOO_BIN"]
    found = locate.find_odoo(None, environ)
    # No #! line: the script runs with odoo-debug's own Python.
    assert (found.odoo_bin, found.python, found.found_by) == (str(path_bin), sys.executable, "odoo-bin on PATH")
    assert found.entry() == [str(path_bin)]


def test_without_script_odoo_is_the_importable_package(tmp_path):
    spec = importlib.util.find_spec("odoo")
    if spec is None:
        with pytest.raises(LauncherError, match="^Odoo not found: give --odoo-bin"):
            locate.find_odoo(None, {"PATH": str(tmp_path)})
        return
    found = locate.find_odoo(None, {"PATH": str(tmp_path)})
    assert found.python == sys.executable
    assert found.found_by in ("beside the importable odoo package", "importable odoo package")
    assert found.entry() == ([found.odoo_bin] if found.odoo_bin else ["-m", "odoo"])


def test_env_shebang_naming_a_missing_interpreter_is_an_error(tmp_path):
    script = _script(tmp_path / "odoo-bin", "#!/usr/bin/env python-that-is-not-there")
    with pytest.raises(LauncherError, match="not on PATH"):
        locate.find_odoo(str(script), {"PATH": str(tmp_path)})


def test_a_script_that_is_not_python_is_an_error(tmp_path):
    script = _script(tmp_path / "odoo", "#!/bin/sh")
    with pytest.raises(LauncherError, match="odoo is not a Python script \\(#!/bin/sh\\): give --odoo-bin"):
        locate.find_odoo(str(script), {})


# --- the addons path ----------------------------------------------------------------


def _module(parent, name):
    folder = parent / name
    folder.mkdir(parents=True)
    (folder / "__init__.py").write_text("")
    (folder / "__manifest__.py").write_text(repr({"name": name}))
    return folder


def test_a_checkout_holding_only_the_addon_goes_on_the_path_as_it_is(tmp_path):
    addon = _module(tmp_path / "checkout", "worker_inspector")
    (tmp_path / "checkout" / "launcher").mkdir()  # not a module: does no harm
    assert addons.addons_path_entry(str(addon), {"XDG_CACHE_HOME": str(tmp_path / "cache")}) == str(
        tmp_path / "checkout"
    )
    assert not (tmp_path / "cache").exists()


@pytest.mark.parametrize("parent", ["site-packages", "dist-packages", "with-other-modules"])
def test_a_crowded_parent_is_replaced_by_a_private_folder_with_one_symlink(tmp_path, parent):
    addon = _module(tmp_path / parent, "worker_inspector")
    if parent == "with-other-modules":
        _module(tmp_path / parent, "sale_custom")
    environ = {"XDG_CACHE_HOME": str(tmp_path / "cache")}
    entry = addons.addons_path_entry(str(addon), environ)
    assert entry.startswith(str(tmp_path / "cache" / "odoo-debug" / "addons-"))
    assert os.listdir(entry) == ["worker_inspector"]
    assert os.readlink(os.path.join(entry, "worker_inspector")) == str(addon)
    # Idempotent, and the same folder every time.
    assert addons.addons_path_entry(str(addon), environ) == entry
    assert os.listdir(entry) == ["worker_inspector"]


def test_merge_appends_the_addon_after_the_users_paths(tmp_path):
    user_a, user_b = tmp_path / "a", tmp_path / "b"
    _module(user_a, "sale_custom")
    user_b.mkdir()
    paths, added, provider = addons.merge_addons_path([str(user_a), str(user_b), ""], "/wi")
    assert paths == [str(user_a), str(user_b), "/wi"]
    assert (added, provider) == (True, "/wi")


def test_merge_keeps_the_users_own_worker_inspector(tmp_path):
    _module(tmp_path / "mine", "worker_inspector")
    paths, added, provider = addons.merge_addons_path([str(tmp_path / "mine")], "/wi")
    assert paths == [str(tmp_path / "mine")]
    assert (added, provider) == (False, str(tmp_path / "mine"))


def test_the_shipped_addon_is_found():
    found = addons.addon_dir()
    assert os.path.isfile(os.path.join(found, "__manifest__.py"))
    assert os.path.basename(found) == "worker_inspector"


# --- checks -----------------------------------------------------------------------


def test_free_port_has_no_problem():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    assert checks.port_problem("127.0.0.1", port) is None


def test_port_in_use_names_the_port_and_the_listening_pid():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        problem = checks.port_problem("127.0.0.1", port)
        # Odoo binds 0.0.0.0 when --http-interface is empty: that clashes too.
        wildcard = checks.port_problem("", port)
    assert problem.startswith(f"HTTP 127.0.0.1:{port} is already in use by pid {os.getpid()} (")
    assert "--http-port" in problem
    assert wildcard.startswith(f"HTTP port {port} is already in use by pid {os.getpid()}")
    assert "\n" not in problem


def test_an_interface_that_is_not_ours_is_named():
    # 192.0.2.0/24 is reserved for documentation: never an address of this machine.
    problem = checks.port_problem("192.0.2.1", 8069)
    assert problem == "HTTP interface 192.0.2.1 is not an address of this machine (--http-interface)"


def test_other_servers_are_named_once_each_with_their_databases():
    me = os.getpid()
    sessions = [
        {"database": "db1", "pid": me, "client_addr": None, "connections": 3},
        {"database": "db2", "pid": me, "client_addr": "127.0.0.1", "connections": 1},
        {"database": "db1", "pid": 4242, "client_addr": "10.1.2.3", "connections": 1},
    ]
    warnings = checks.other_servers(sessions)
    assert len(warnings) == 2
    assert warnings[0].startswith(f"another Odoo server (pid {me}) is connected to database db1, db2:")
    assert "scheduled actions" in warnings[0]
    assert warnings[1].startswith("an Odoo server on 10.1.2.3 (pid 4242 there) is connected to database db1")


def test_a_pid_this_machine_does_not_show_is_said_so():
    with open("/proc/sys/kernel/pid_max") as handle:
        beyond = int(handle.read()) + 1
    (warning,) = checks.other_servers([{"database": "db1", "pid": beyond, "client_addr": None}])
    assert f"pid {beyond}, not a process this user can see" in warning


def test_own_pids_are_not_reported():
    assert checks.other_servers([{"database": "db1", "pid": os.getpid(), "client_addr": None}], {os.getpid()}) == []


# --- the command line: one line per error ------------------------------------------


def _one_line_error(capsys, argv):
    code = cli.main(argv)
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("odoo-debug: error: "), err
    return code, err.strip()


def test_missing_odoo_bin_is_one_line(capsys):
    code, err = _one_line_error(capsys, ["--odoo-bin", "/nonexistent"])
    assert code == 1
    assert err == "odoo-debug: error: Odoo not found: /nonexistent (from --odoo-bin) does not exist or is not a file"


def test_missing_config_is_one_line(capsys, tmp_path):
    code, err = _one_line_error(capsys, ["-c", str(tmp_path / "nope.conf"), "-d", "db"])
    assert code == 1
    assert "nope.conf (from -c/--config) does not exist" in err


def test_usage_errors_are_one_line_with_exit_code_2(capsys):
    assert _one_line_error(capsys, ["--wait-for-client"])[0] == ExitStatus.USAGE == 2
    code, err = _one_line_error(capsys, ["--debugpy", "host:port"])
    assert code == ExitStatus.USAGE and "--debugpy" in err
    code, err = _one_line_error(capsys, ["--debugpy"])
    assert code == ExitStatus.USAGE and "expected one argument" in err


def test_traceback_only_on_request(capsys):
    cli.main(["--odoo-bin", "/nonexistent", "--traceback"])
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err
    assert err.strip().splitlines()[-1].startswith("odoo-debug: error: Odoo not found")


def test_help_comes_from_the_docstring(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "Start Odoo in debug-safe mode." in out
    for option in ("--config", "--database", "--odoo-bin", "--debugpy", "--wait-for-client", "--quiet", "--traceback"):
        assert option in out


def test_dashboard_url_when_installed_or_being_installed():
    action = "http://localhost:8069/odoo/action-worker_inspector.action_worker_inspector_dashboard"
    url = action
    assert prepare.dashboard(url, ["db"], {"db": "installed"}) == action
    assert prepare.dashboard(url, ["db"], {}, installing=True) == action
    hint = prepare.dashboard(url, ["db"], {"db": "uninstalled"})
    assert hint.startswith("not installed in db: add -i worker_inspector")
    assert prepare.dashboard(url, ["a", "b"], {"a": "installed"}) is None


# --- the line printed once Odoo answers -------------------------------------------------

# Stands in for odoo-debug: forks the watcher, then execs a Python that plays Odoo
# (it serves HTTP on the port after a delay, or exits first). Real processes, real sockets.
_WATCHED = """\
import os, sys
sys.path.insert(0, {launcher!r})
from odoo_debug import ready
ready.start_watcher(("127.0.0.1", {port}), "READY\\n")
os.execv(sys.executable, [sys.executable, "-c", {odoo!r}])
"""
_SERVE_LATE = """\
import socket, time
time.sleep(1)
server = socket.create_server(("127.0.0.1", {port}))
conn, _ = server.accept()
conn.recv(1024)
conn.sendall(b"HTTP/1.0 200 OK\\r\\nContent-Length: 0\\r\\n\\r\\n")
conn.close()
time.sleep(30)
"""


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _watched(odoo_code, port):
    script = _WATCHED.format(launcher=str(REPO / "launcher"), port=port, odoo=odoo_code)
    return subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, start_new_session=True)


def _in_session(sid):
    left = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            with contextlib.suppress(OSError):
                if os.getsid(int(pid)) == sid and int(pid) != sid:
                    left.append(int(pid))
    return left


def _session_left(sid, timeout=10):
    """Processes of session ``sid`` but its leader, once none is left or at the timeout."""
    wait_until(lambda: not _in_session(sid), timeout)
    return _in_session(sid)


def test_the_watcher_prints_once_the_server_answers_and_leaves_odoo_childless():
    port = _free_port()
    odoo = _watched(_SERVE_LATE.format(port=port), port)
    try:
        assert odoo.stdout.readline() == "READY\n"
        # The same pid became "Odoo" (exec); it has no child, the watcher is gone.
        with open(f"/proc/{odoo.pid}/task/{odoo.pid}/children") as handle:
            assert handle.read().split() == []
        assert _session_left(odoo.pid) == []
    finally:
        odoo.kill()
        odoo.wait()


def test_the_watcher_ends_with_odoo_when_it_never_answered():
    port = _free_port()
    odoo = _watched("import time; time.sleep(1)", port)
    try:
        assert odoo.wait(timeout=30) == 0
        assert odoo.stdout.read() == ""  # the watcher printed nothing
        assert _session_left(odoo.pid) == []
    finally:
        odoo.kill()
