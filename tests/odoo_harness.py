"""Start real Odoo servers (17.0, 18.0, 19.0) and databases for the end-to-end tests.

Nothing here fakes Odoo: servers are real ``odoo-bin`` processes bound to
127.0.0.1 on free ports, databases are real PostgreSQL databases.
"""

import contextlib
import functools
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import psutil
from waiting import wait_until

REPO = Path(__file__).resolve().parent.parent
TEST_ADDONS = REPO / "tests" / "addons"
ARTIFACTS = Path(os.environ.get("WI_TEST_ARTIFACTS") or (REPO / ".test-artifacts"))
ADMIN_LOGIN = ADMIN_PASSWORD = "admin"
SUPPORTED_SERIES = ("17.0", "18.0", "19.0")

_ODOO_BIN_SHIM = """\
#!/usr/bin/env python3
# What odoo-bin does: run Odoo's command line in UTC.
__import__("os").environ["TZ"] = "UTC"
import odoo

if __name__ == "__main__":
    odoo.cli.main()
"""


@functools.cache
def odoo_available():
    """``(True, version)`` or ``(False, reason)``: can these tests run Odoo here?"""
    if importlib.util.find_spec("odoo") is None:
        return False, f"Odoo is not importable by {sys.executable} (tools/setup-odoo sets one up)"
    try:
        version = subprocess.run(
            [sys.executable, "-c", "import odoo.release as r; print(r.major_version)"],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
            cwd=tempfile.gettempdir(),
        ).stdout.strip()
    except (subprocess.SubprocessError, OSError) as exc:
        return False, "`import odoo` fails: %s" % (getattr(exc, "stderr", "") or exc)
    if version not in SUPPORTED_SERIES:
        return False, f"these tests target Odoo {', '.join(SUPPORTED_SERIES)}, found {version}"
    try:
        import psycopg2

        psycopg2.connect(dbname="postgres").close()
    except Exception as exc:  # noqa: BLE001 - any failure means "no database server"
        user = os.environ.get("USER", "this user")
        return False, f"PostgreSQL is not reachable as {user}: {str(exc).strip()}"
    return True, version


def web_client_path():
    """Where the web client is: ``/odoo`` since 18.0, ``/web`` on 17.0."""
    return "/web" if odoo_available()[1] == "17.0" else "/odoo"


@functools.cache
def odoo_bin_command():
    """The command that runs ``odoo-bin`` with this Python.

    ``ODOO_BIN`` wins; else the ``odoo-bin`` beside the importable package;
    else a two-line script doing what odoo-bin does (prefork needs a real
    script path: the master re-runs ``sys.argv[0]`` for the gevent process).
    """
    if os.environ.get("ODOO_BIN"):
        return [sys.executable, os.environ["ODOO_BIN"]]
    # Odoo 19's ``odoo`` is a namespace package: no ``__init__.py``, no origin.
    package_dir = Path(next(iter(importlib.util.find_spec("odoo").submodule_search_locations)))
    beside = package_dir.parent / "odoo-bin"
    if beside.is_file():
        return [sys.executable, str(beside)]
    shim_dir = Path(tempfile.mkdtemp(prefix="wi-odoo-bin-"))
    shim = shim_dir / "odoo-bin"
    shim.write_text(_ODOO_BIN_SHIM)
    return [sys.executable, str(shim)]


def addons_path(*extra):
    paths = [str(REPO)]
    if TEST_ADDONS.is_dir():
        paths.append(str(TEST_ADDONS))
    paths.extend(str(p) for p in extra)
    return ",".join(paths)


def test_modules():
    """Modules the test databases get: the addon, and the test addons if any."""
    modules = ["worker_inspector"]
    if TEST_ADDONS.is_dir():
        modules += sorted(p.name for p in TEST_ADDONS.iterdir() if (p / "__manifest__.py").is_file())
    return modules


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def unique_name(prefix):
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


def _proc_text(path):
    try:
        with open(path) as handle:
            return handle.read().strip()
    except OSError:
        return "?"


def _link(path):
    try:
        return os.readlink(path)
    except OSError:
        return "?"


def _log_path(name):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS / (f"{name}.log")


def _tail(path, lines=60):
    try:
        return "".join(Path(path).read_text(errors="replace").splitlines(True)[-lines:])
    except OSError:
        return ""


def run_odoo(args, log_name, timeout=900):
    """Run odoo-bin to completion (install, update); raise with the log tail on failure."""
    log = _log_path(log_name)
    cmd = odoo_bin_command() + list(args) + ["--logfile", str(log)]
    proc = subprocess.run(cmd, cwd=tempfile.gettempdir(), timeout=timeout, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError("{} failed ({}):\n{}{}".format(" ".join(cmd), proc.returncode, proc.stderr, _tail(log)))
    return proc


def _install_or_update(name, flag, modules, log_name, extra=()):
    """``-i`` or ``-u`` ``modules`` in database ``name``, then stop."""
    args = ["-d", name, flag, ",".join(modules), "--addons-path", addons_path(), "--stop-after-init"]
    args += ["--no-http", "--max-cron-threads", "0", "--log-level", "warn", *extra]
    run_odoo(args, log_name)


def create_database(name, modules=None, demo=False):
    """Create database ``name`` with ``modules`` installed (admin/admin)."""
    _install_or_update(
        name, "-i", modules or test_modules(), f"install-{name}", () if demo else ("--without-demo=all",)
    )
    return name


def update_modules(name, modules):
    """Upgrade ``modules`` in database ``name`` (``-u``)."""
    _install_or_update(name, "-u", modules, f"update-{name}")


def drop_database(name):
    subprocess.run(["dropdb", "--if-exists", "--force", name], capture_output=True, check=False)
    # Odoo's filestore for the database (data_dir default for this user)
    filestore = Path.home() / ".local/share/Odoo/filestore" / name
    if filestore.is_dir():
        subprocess.run(["rm", "-rf", str(filestore)], check=False)


class OdooServer:
    """A real Odoo server on 127.0.0.1, started and stopped by a test.

    ``workers=0`` is the threaded server (one process), ``workers>0`` prefork
    (master, WorkerHTTP, WorkerCron and the gevent process).
    """

    def __init__(
        self, db, workers=0, max_cron_threads=0, extra_args=(), name=None, env=None, setproctitle=True, preload=True
    ):
        self.db = db
        # ``-d``: the master loads the database (and the addon) before it forks its workers.
        # Without it, as on a server of several databases, ``--db-filter`` still selects ``db``
        # and each worker loads it at its first request.
        self.preload = preload
        self.workers = workers
        self.max_cron_threads = max_cron_threads
        self.port = free_port()
        self.gevent_port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.name = name or unique_name(f"server-{db}-w{workers}")
        self.log = _log_path(self.name)
        self.extra_args = list(extra_args)
        # As in an activated virtual environment: a SIGHUP reload re-executes
        # ``python`` found on PATH (``service/server.py``: ``_reexec``).
        self.env = {"PATH": os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")])}
        self.env.update(env or {})
        self.setproctitle = setproctitle
        if not setproctitle:
            # Odoo then leaves the workers' titles as the master's command line.
            hide = str(REPO / "tests" / "without_setproctitle")
            self.env["PYTHONPATH"] = os.pathsep.join(filter(None, [hide, os.environ.get("PYTHONPATH")]))
        self.proc = None

    @property
    def pid(self):
        return self.proc.pid

    def command(self):
        return (
            odoo_bin_command()
            + (["-d", self.db] if self.preload else [])
            + [
                "--db-filter",
                f"^{self.db}$",
                "--addons-path",
                addons_path(),
                "--http-interface",
                "127.0.0.1",
                "--http-port",
                str(self.port),
                "--gevent-port",
                str(self.gevent_port),
                "--workers",
                str(self.workers),
                "--max-cron-threads",
                str(self.max_cron_threads),
                "--logfile",
                str(self.log),
                "--log-level",
                "info",
            ]
            + self.extra_args
        )

    def popen_options(self):
        """Where the server runs and where its output goes (a subclass may keep it)."""
        return {"cwd": tempfile.gettempdir(), "stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}

    def start(self, timeout=120):
        env = dict(os.environ, **self.env)
        self.proc = subprocess.Popen(self.command(), env=env, start_new_session=True, **self.popen_options())
        try:
            self.wait_ready(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def expected_children(self):
        """Direct children of a ready prefork master."""
        return self.workers + self.max_cron_threads + 1 if self.workers else 0

    def children(self):
        with contextlib.suppress(psutil.Error):
            return psutil.Process(self.pid).children()
        return []

    def http_workers(self):
        """The prefork master's ``WorkerHTTP`` children (``psutil.Process``), by their titles."""
        return [p for p in self.children() if " ".join(p.cmdline()).startswith("odoo: WorkerHTTP")]

    def wait_ready(self, timeout=120):
        import requests

        def ready():
            if self.proc.poll() is not None:
                raise RuntimeError(f"Odoo exited with {self.proc.returncode}:\n{_tail(self.log)}")
            try:
                ok = requests.get(self.url + "/web/health", timeout=5).status_code == 200
            except requests.RequestException:
                ok = False
            return ok and self._children_ready()

        if not wait_until(ready, timeout, interval=0.3):
            raise TimeoutError(f"Odoo on {self.url} not ready in {timeout}s:\n{_tail(self.log)}")

    def _children_ready(self):
        children = self.children()
        if len(children) != self.expected_children():
            return False
        if not self.workers:
            return True
        # Workers set their title right after fork; the gevent process must answer too.
        titled = 0
        for child in children:
            with contextlib.suppress(psutil.Error):
                titled += " ".join(child.cmdline()).startswith("odoo: Worker")
        if self.setproctitle and titled != self.workers + self.max_cron_threads:
            return False
        # The gevent process is up once it listens on its port.
        try:
            socket.create_connection(("127.0.0.1", self.gevent_port), timeout=1).close()
        except OSError:
            return False
        return True

    def stop(self, timeout=20):
        if not self.proc or self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
        # Whatever is left of the session (workers, gevent) goes too.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(5)

    def diagnose(self, *pids, lines=40):
        """What a failed wait needs to be explained: the server's processes with each
        thread's state and kernel wait channel, the master's open files, and the log lines
        about ``pids`` or the master's decisions."""
        out = [f"-- processes of the server {self.pid}:"]
        for proc in [psutil.Process(self.pid), *self.children()] if self.proc else ():
            with contextlib.suppress(psutil.Error, OSError):
                threads = [
                    f"{tid}:{_proc_text(f'/proc/{proc.pid}/task/{tid}/stat').split(') ')[-1][:1]}"
                    f"/{_proc_text(f'/proc/{proc.pid}/task/{tid}/wchan')}"
                    for tid in sorted(int(t) for t in os.listdir(f"/proc/{proc.pid}/task"))
                ]
                out.append(f"{proc.pid} {proc.status()} {' '.join(proc.cmdline())[:60]!r} threads {threads}")
        with contextlib.suppress(OSError):
            fds = sorted(os.listdir(f"/proc/{self.pid}/fd"), key=int)
            out.append("-- master's files: " + ", ".join(f"{fd}={_link(f'/proc/{self.pid}/fd/{fd}')}" for fd in fds))
        words = [str(pid) for pid in pids] + ["timeout", "ERROR", "CRITICAL", "Exception"]
        try:
            logged = [
                line for line in self.log.read_text(errors="replace").splitlines() if any(w in line for w in words)
            ]
        except OSError:
            logged = []
        out.append(f"-- log lines about {pids} and the master's decisions:")
        out.extend(logged[-lines:])
        return "\n".join(out)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def login_session(self, login=ADMIN_LOGIN, password=ADMIN_PASSWORD):
        """A requests.Session logged in as ``login`` (raises if the login fails)."""
        import requests

        session = requests.Session()
        response = session.post(
            self.url + "/web/session/authenticate",
            json={"jsonrpc": "2.0", "method": "call", "params": {"db": self.db, "login": login, "password": password}},
            timeout=60,
        )
        response.raise_for_status()
        body = response.json()
        if body.get("error") or not (body.get("result") or {}).get("uid"):
            raise RuntimeError("login as {} failed: {}".format(login, body.get("error")))
        return session

    def create_internal_user(self, admin, login="wi_plain_user", password="plain-user-pw"):
        """An internal user without Settings rights (created once per database), via ``admin``'s session."""
        body = admin.post(
            self.url + "/web/dataset/call_kw/res.users/create",
            json={
                "jsonrpc": "2.0",
                "method": "call",
                "params": {
                    "model": "res.users",
                    "method": "create",
                    "args": [{"name": "Plain internal user", "login": login, "password": password}],
                    "kwargs": {"context": {"no_reset_password": True}},
                },
            },
            timeout=60,
        ).json()
        error = str(body.get("error") or "")
        if error and "already exists" not in error and "same login" not in error:
            raise AssertionError(body["error"])
        return login, password

    def snapshot(self, session, **params):
        response = session.get(self.url + "/worker_inspector/api/snapshot", params=params, timeout=60)
        response.raise_for_status()
        return response.json()
