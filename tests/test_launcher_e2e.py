"""odoo-debug against real Odoo 18 servers and a real database.

The launcher runs as a developer runs it, ``python -m launcher`` from the
repository (the ``odoo_debug`` package in ``launcher/``), and becomes Odoo
(exec): the pid the test started is Odoo's.
"""

import contextlib
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time

import psutil
import pytest
import requests
from odoo_harness import REPO, TEST_ADDONS, OdooServer, drop_database, free_port, unique_name, web_client_path
from waiting import wait_until

from worker_inspector.engine import is_odoo_cmdline

ADMIN_PASSWD = "Master-S3cret-pw"
DB_PASSWORD = "Db-S3cret-pw"
LAUNCHER = [sys.executable, "-m", "launcher"]
# The launcher's own checks take about a second; an Odoo start many more.
CHECK_TIMEOUT = 120


def digest(path):
    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


class LaunchedServer(OdooServer):
    """An Odoo server started by ``odoo-debug``; stdout and stderr kept."""

    def __init__(self, db, launcher_args):
        super().__init__(db, workers=0, max_cron_threads=0)
        self.launcher_args = list(launcher_args)
        self.stdout_path = self.log.with_suffix(".stdout")
        self.stderr_path = self.log.with_suffix(".stderr")

    def command(self):
        return LAUNCHER + self.launcher_args + [
            "--http-interface", "127.0.0.1", "--http-port", str(self.port), "--logfile", str(self.log),
        ]  # fmt: skip

    def popen_options(self):
        # The launcher runs from the repository, as ``python -m launcher`` does for a developer.
        self._streams = [open(self.stdout_path, "wb"), open(self.stderr_path, "wb")]  # noqa: SIM115
        return {"cwd": REPO, "stdout": self._streams[0], "stderr": self._streams[1]}

    def start(self, timeout=180):
        try:
            return super().start(timeout)
        finally:
            for stream in self._streams:
                stream.close()

    @property
    def stdout(self):
        return self.stdout_path.read_text()

    @property
    def stderr(self):
        return self.stderr_path.read_text()


def run_launcher(args, timeout=CHECK_TIMEOUT, env=None):
    return subprocess.run(
        LAUNCHER + list(args), check=False, cwd=REPO, capture_output=True, text=True, timeout=timeout,
        env=dict(os.environ, **(env or {})),
    )  # fmt: skip


def assert_one_line_error(result):
    assert result.returncode != 0
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("odoo-debug: error: "), result.stderr
    return lines[0]


def session_processes(session_id):
    """Processes still in the session the test started (``start_new_session``)."""
    left = []
    for process in psutil.process_iter(["pid"]):
        with contextlib.suppress(psutil.Error, ProcessLookupError):
            if os.getsid(process.pid) == session_id:
                left.append(process.pid)
    return left


def running(pid):
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def wait_gone(pids, timeout):
    """The pids still running after up to ``timeout`` seconds."""
    wait_until(lambda: not any(running(pid) for pid in pids), timeout, interval=0.2)
    return [pid for pid in pids if running(pid)]


@pytest.fixture(scope="module")
def user_config(tmp_path_factory):
    """A production-like config: prefork, cron threads, limits, secrets."""
    conf = tmp_path_factory.mktemp("launcher") / "odoo.conf"
    lines = [
        "[options]",
        "workers = 3",
        "max_cron_threads = 2",
        "limit_time_real = 300",
        "limit_memory_hard = 4294967296",
        f"admin_passwd = {ADMIN_PASSWD}",
        # Peer authentication on the unix socket ignores it; it must not be shown.
        f"db_password = {DB_PASSWORD}",
    ]
    if TEST_ADDONS.is_dir():
        lines.append(f"addons_path = {TEST_ADDONS}")
    conf.write_text("\n".join(lines) + "\n")
    return conf


@pytest.fixture(scope="module")
def launched(odoo_db, user_config):
    with LaunchedServer(odoo_db, ["-c", str(user_config), "-d", odoo_db]) as server:
        yield server


@pytest.mark.odoo
def test_the_server_is_one_process_without_child_or_cron_thread(launched):
    process = psutil.Process(launched.pid)
    # exec: the pid the launcher was started with is now Odoo itself.
    cmdline = process.cmdline()
    assert is_odoo_cmdline(cmdline), cmdline
    assert "--workers=0" in cmdline and "--max-cron-threads=0" in cmdline
    assert process.children(recursive=True) == []

    snapshot = launched.snapshot(launched.login_session())
    kinds = [thread["kind"] for thread in snapshot["threads"]]
    assert "cron" not in kinds
    assert not [t for t in snapshot["threads"] if t["name"].startswith("odoo.service.cron")]
    assert "httpd" in kinds
    assert [p["pid"] for p in snapshot["processes"]] == [launched.pid]


@pytest.mark.odoo
def test_the_snapshot_api_reports_threaded_without_cron_or_limits(launched):
    snapshot = launched.snapshot(launched.login_session())
    assert snapshot["server"]["mode"] == "threaded"
    assert snapshot["server"]["pid"] == launched.pid
    config = snapshot["config"]
    assert config["workers"] == 0
    assert config["max_cron_threads"] == 0
    assert config["limit_time_real"] == 0
    assert config["limit_memory_soft"] == 0
    assert config["limit_memory_hard"] == 0


@pytest.mark.odoo
def test_the_banner_shows_what_was_overridden_and_no_secret(launched, user_config):
    out = launched.stdout
    assert f"config      {user_config} (read, never written)" in out
    assert f"open        {launched.url}{web_client_path()}" in out
    assert f"  pid         {launched.pid} (odoo-debug becomes Odoo" in out
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.startswith("    ")}
    assert rows["workers"][:4] == ["workers", "3", "(prefork)", "0"]
    assert rows["max_cron_threads"][:3] == ["max_cron_threads", "2", "0"]
    assert rows["limit_time_real"][:4] == ["limit_time_real", "300", "s", "0"]
    assert rows["limit_memory_hard"][:2] == ["limit_memory_hard", "4294967296"]
    addons_line = next(line for line in out.splitlines() if line.startswith("  addons path"))
    assert addons_line.rstrip().endswith(str(REPO))
    for text in (out, launched.stderr):
        assert ADMIN_PASSWD not in text and DB_PASSWORD not in text
    assert "odoo-debug: error" not in launched.stderr


@pytest.mark.odoo
def test_a_second_launch_on_the_same_port_fails_fast_naming_the_first(launched, user_config):
    before = digest(user_config)
    result = run_launcher(["-c", str(user_config), "-d", launched.db, "--http-interface", "127.0.0.1",
                           "--http-port", str(launched.port)])  # fmt: skip
    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    expected = (
        f"odoo-debug: error: HTTP 127.0.0.1:{launched.port} is already in use by an Odoo server (pid {launched.pid}:"
    )
    assert lines[-1].startswith(expected), result.stderr
    # The first server holds connections to the database: that is said too.
    warning = f"odoo-debug: warning: another Odoo server (pid {launched.pid}) is connected to database {launched.db}:"
    assert warning in result.stderr
    assert digest(user_config) == before


@pytest.mark.odoo
def test_the_database_manager_cannot_rewrite_the_config(launched, user_config):
    # Odoo saves its config file when the master password is set through the database manager.
    before = digest(user_config)
    data = {"master_pwd": ADMIN_PASSWD, "master_pwd_new": "Changed-by-the-db-manager"}
    response = requests.post(launched.url + "/web/database/change_password", data=data, timeout=60)
    assert "Changed-by-the-db-manager" not in response.text
    rpc = {"jsonrpc": "2.0", "method": "call", "params": {"service": "db", "method": "change_admin_password",
           "args": [ADMIN_PASSWD, "Changed-by-the-db-manager"]}}  # fmt: skip
    assert "error" in requests.post(launched.url + "/jsonrpc", json=rpc, timeout=60).json()
    assert digest(user_config) == before
    assert "list_db" in launched.stdout and "off (no database manager)" in launched.stdout


@pytest.mark.odoo
@pytest.mark.parametrize(
    "spelling",
    [["--db_pa=" + DB_PASSWORD], ["--db_passw", DB_PASSWORD], ["-w" + DB_PASSWORD], ["--smtp-pass", DB_PASSWORD]],
)
def test_the_banner_redacts_every_spelling_of_a_secret(spelling):
    result = run_launcher(["--dry-run", "-d", "x", *spelling])
    assert result.returncode == 0, result.stderr
    assert "command" in result.stdout
    assert DB_PASSWORD not in result.stdout + result.stderr


@pytest.mark.odoo
def test_a_malformed_config_line_is_reported_without_its_content(tmp_path):
    conf = tmp_path / "odoo.conf"
    conf.write_text(f"[options]\nworkers = 2\ndb_password {DB_PASSWORD}\n")
    line = assert_one_line_error(run_launcher(["-c", str(conf), "-d", "x", "--dry-run"]))
    assert "line(s) 3" in line
    assert DB_PASSWORD not in line
    result = run_launcher(["-c", str(conf), "-d", "x", "--dry-run", "--traceback"])
    assert DB_PASSWORD not in result.stdout + result.stderr
    conf.write_text(f"db_password = {DB_PASSWORD}\n")
    line = assert_one_line_error(run_launcher(["-c", str(conf), "-d", "x", "--dry-run"]))
    assert "before any section" in line and DB_PASSWORD not in line


@pytest.mark.odoo
def test_a_fifo_as_config_file_is_an_error_not_a_hang(tmp_path):
    fifo = tmp_path / "odoo.conf"
    os.mkfifo(fifo)
    line = assert_one_line_error(run_launcher(["-c", str(fifo), "-d", "x", "--dry-run"], timeout=60))
    assert "not a regular file" in line
    # The same file as ODOO_RC, or given to Odoo after ``--``.
    line = assert_one_line_error(run_launcher(["-d", "x", "--dry-run"], env={"ODOO_RC": str(fifo)}, timeout=60))
    assert "not a regular file" in line
    line = assert_one_line_error(run_launcher(["-d", "x", "--dry-run", "--", "-c", str(fifo)], timeout=60))
    assert "not a regular file" in line


@pytest.mark.odoo
def test_options_odoo_rejects_are_one_line():
    result = run_launcher(["--no-such-option", "-d", "x"])
    line = assert_one_line_error(result)
    assert line == "odoo-debug: error: Odoo rejects the options: no such option: --no-such-option"
    assert result.returncode == 2


@pytest.mark.odoo
def test_save_is_refused_and_the_config_stays_as_it_was(user_config):
    before = digest(user_config)
    refused = (
        "odoo-debug: error: -s/--save is refused: it writes the config file, which odoo-debug never does; remove it"
    )
    result = run_launcher(["-c", str(user_config), "-s"])
    assert assert_one_line_error(result) == refused
    assert result.returncode == 2
    assert assert_one_line_error(run_launcher(["-c", str(user_config), "--sav"])) == refused  # optparse's abbreviation
    assert digest(user_config) == before


@pytest.mark.odoo
def test_odoo_rc_is_the_config_when_there_is_no_c(user_config):
    result = run_launcher(["--dry-run", "-d", "x"], env={"ODOO_RC": str(user_config)})
    assert result.returncode == 0, result.stderr
    assert f"config      {user_config} (read, never written)" in result.stdout
    assert f" -c {user_config} " in result.stdout
    assert "workers            3 (prefork)" in result.stdout


@pytest.mark.odoo
def test_a_database_check_that_cannot_be_made_is_said_and_does_not_block(user_config):
    # Nothing listens on this port: the check fails, the launch goes on.
    result = run_launcher(["--dry-run", "-c", str(user_config), "-d", "x", "--db_host=127.0.0.1",
                           f"--db_port={free_port()}", "--http-port", str(free_port())])  # fmt: skip
    assert result.returncode == 0, result.stderr
    (warning,) = result.stderr.splitlines()
    assert warning.startswith("odoo-debug: warning: could not check whether another Odoo server uses database x: ")
    assert "refused" in warning
    assert "command     " in result.stdout
    assert DB_PASSWORD not in result.stderr + result.stdout


@pytest.mark.odoo
def test_quiet_dry_run_prints_the_command_alone(user_config):
    result = run_launcher(["--quiet", "--dry-run", "-c", str(user_config), "-d", "x", "--http-port", "8070"])
    assert result.returncode == 0, result.stderr
    (line,) = result.stdout.splitlines()
    assert line.startswith(sys.executable + " ")
    assert line.endswith(" --limit-memory-soft=0 --limit-memory-hard=0 --no-database-list")
    assert " -d x --http-port 8070 " in line
    assert ADMIN_PASSWD not in result.stdout + result.stderr and DB_PASSWORD not in result.stdout + result.stderr


@pytest.mark.odoo
def test_demo_reads_a_leading_option_as_an_option_not_the_database():
    port = free_port()
    env = dict(os.environ, PYTHON=sys.executable)
    for args, database in (([], "worker_inspector_demo"), (["wi_demo_other"], "wi_demo_other")):
        result = subprocess.run(
            [str(REPO / "demo"), *args, f"--http-port={port}", "--dry-run"],
            check=False, capture_output=True, text=True, timeout=CHECK_TIMEOUT, env=env,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert f"  database    {database}\n" in result.stdout
        assert f"  open        http://127.0.0.1:{port}{web_client_path()}\n" in result.stdout


def wait_for_text(path, text, timeout):
    """The file's content, once it holds ``text`` (or at the timeout)."""
    wait_until(lambda: text in path.read_text(), timeout, interval=0.2)
    return path.read_text()


@pytest.mark.odoo
def test_a_new_database_is_warned_about_and_its_login_repeated_once_odoo_answers(tmp_path):
    empty_config = tmp_path / "empty.conf"
    empty_config.write_text("[options]\n")
    db = unique_name("wi_new")
    server = LaunchedServer(db, ["-c", str(empty_config), "-d", db, "-i", "worker_inspector", "--without-demo=all"])
    try:
        server.start(timeout=600)
        out = wait_for_text(server.stdout_path, "Odoo is ready", timeout=30)
        assert f"odoo-debug: warning: database {db} does not exist: Odoo will create it (log in as admin / admin)" in (
            server.stderr
        )
        banner, ready = out.split("odoo-debug: Odoo is ready: ")
        assert "  login       admin / admin (a new database)\n" in banner
        action = "worker_inspector.action_worker_inspector_dashboard"
        web = web_client_path()
        dashboard = f"{server.url}{web}#action={action}" if web == "/web" else f"{server.url}{web}/action-{action}"
        assert ready.splitlines() == [
            f"open {server.url}{web}",
            f"  dashboard   {dashboard}",
            "  login       admin / admin (a new database)",
        ]
        # The login said is the real one, and the dashboard is there.
        assert server.snapshot(server.login_session("admin", "admin"))["server"]["pid"] == server.pid
    finally:
        server.stop()
        drop_database(db)


def test_a_missing_odoo_bin_is_one_line_and_a_failure():
    line = assert_one_line_error(run_launcher(["--odoo-bin", "/nonexistent", "-d", "x"]))
    assert line == "odoo-debug: error: Odoo not found: /nonexistent (from --odoo-bin) does not exist or is not a file"


@pytest.mark.odoo
def test_ctrl_c_stops_odoo_cleanly_and_leaves_nothing(odoo_db, user_config):
    before = digest(user_config)
    server = LaunchedServer(odoo_db, ["-c", str(user_config), "-d", odoo_db, "--quiet"])
    with server:
        assert server.stdout == ""  # --quiet: no banner
        pid = server.pid
        os.kill(pid, signal.SIGINT)
        server.proc.wait(timeout=30)
        assert server.proc.returncode == 0
        assert session_processes(pid) == []
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", server.port))
    assert digest(user_config) == before


@pytest.mark.odoo
def test_without_debugpy_one_line_says_how_to_install_it(tmp_path, user_config):
    # A debugpy that fails to import, first on the path: as if it were not installed.
    (tmp_path / "debugpy.py").write_text("raise ImportError('debugpy is hidden from this test')\n")
    env = {"PYTHONPATH": os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")]))}
    result = run_launcher(["-c", str(user_config), "-d", "x", "--debugpy", "5678"], env=env)
    line = assert_one_line_error(result)
    assert result.returncode == 1
    assert line.startswith("odoo-debug: error: debugpy is not installed for ")
    assert line.endswith(" -m pip install debugpy`")


class DapClient:
    """The few Debug Adapter Protocol requests VS Code sends to attach to debugpy."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.reader = self.sock.makefile("rb")
        self.seq = 0

    def send(self, command, **arguments):
        self.seq += 1
        body = json.dumps({"seq": self.seq, "type": "request", "command": command, "arguments": arguments})
        self.sock.sendall(b"Content-Length: %d\r\n\r\n" % len(body) + body.encode())

    def until(self, kind, name):
        """Read messages up to the response or event ``name``; return it."""
        while True:
            length = 0
            for header in iter(self.reader.readline, b"\r\n"):
                if not header:
                    raise ConnectionError("debugpy closed the connection")
                if header.lower().startswith(b"content-length:"):
                    length = int(header.split(b":")[1])
            message = json.loads(self.reader.read(length))
            if message.get("type") == kind and (message.get("command") or message.get("event")) == name:
                return message

    def attach(self):
        self.send("initialize", adapterID="debugpy", clientID="test")
        assert self.until("response", "initialize")["success"] is True
        self.send("attach", justMyCode=False)
        self.until("event", "initialized")
        self.send("configurationDone")
        assert self.until("response", "configurationDone")["success"] is True
        assert self.until("response", "attach")["success"] is True

    def close(self):
        self.reader.close()
        self.sock.close()


def listener(port, timeout=0):
    """Pid listening on TCP ``port`` (None if none within ``timeout``), seen without connecting.

    Connecting would not do: debugpy takes the first connection for the IDE's.
    """

    def listening():
        for conn in psutil.net_connections("inet"):
            if conn.status == psutil.CONN_LISTEN and conn.laddr.port == port:
                return conn.pid
        return None

    return wait_until(listening, timeout, interval=0.2)


def _debugpy_installed():
    probe = subprocess.run([sys.executable, "-c", "import debugpy"], check=False, capture_output=True, cwd="/")
    return probe.returncode == 0


@pytest.mark.odoo
def test_debugpy_waits_for_the_ide_then_runs_odoo_under_it(odoo_db, user_config):
    debug_port = free_port()
    args = [
        "-c",
        str(user_config),
        "-d",
        odoo_db,
        "--debugpy",
        str(debug_port),
        "--wait-for-client",
        "--dev=reload,xml",
    ]
    if not _debugpy_installed():
        line = assert_one_line_error(run_launcher(args + ["--http-port", str(free_port())]))
        assert line.endswith("-m pip install debugpy`")
        return
    server = LaunchedServer(odoo_db, args)
    adapter = client = None
    try:
        server.proc = subprocess.Popen(server.command(), start_new_session=True, **server.popen_options())
        adapter = listener(debug_port, timeout=60)
        assert adapter, server.stderr
        out = server.stdout
        attach = json.loads(out[out.index("    {") : out.index("\n    }\n") + 6])
        assert attach["connect"] == {"host": "127.0.0.1", "port": debug_port}
        assert attach["request"] == "attach"
        assert "note: --dev reload is off under debugpy" in out
        cmdline = psutil.Process(server.pid).cmdline()
        assert cmdline[1:8] == [
            "-X", "frozen_modules=off", "-m", "debugpy", "--listen", f"127.0.0.1:{debug_port}", "--wait-for-client",
        ]  # fmt: skip
        assert cmdline[-1] == "--dev=xml"
        # Odoo waits for the IDE: no HTTP yet.
        time.sleep(2)
        assert listener(server.port) is None
        client = DapClient(debug_port)
        client.attach()
        server.wait_ready(timeout=180)
        assert server.snapshot(server.login_session())["server"]["pid"] == server.pid
        os.kill(server.pid, signal.SIGINT)
        server.proc.wait(timeout=30)
        # The IDE is told, and disconnects; debugpy's adapter (a session of its own) then ends.
        client.until("event", "terminated")
        client.close()
        client = None
        assert wait_gone([adapter], timeout=30) == []
        assert session_processes(server.pid) == []
    finally:
        for stream in getattr(server, "_streams", []):
            stream.close()
        if client:
            client.close()
        server.stop()
        if adapter and running(adapter):
            os.kill(adapter, signal.SIGTERM)
