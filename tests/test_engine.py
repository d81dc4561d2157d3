"""The engine alone: real processes and threads of this machine, no Odoo."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest
from waiting import wait_until

from worker_inspector import engine
from worker_inspector.engine.identity import ProcessKey
from worker_inspector.engine.tree import CpuMeter

FAKE_TREE = Path(__file__).with_name("fake_prefork_tree.py")


def server_pids(master):
    """The pids the engine lists for the prefork server rooted at ``master``."""
    return {proc["pid"] for proc in engine.read_processes(master, "prefork")}


@pytest.mark.parametrize(
    ("cmdline", "expected"),
    [
        (["odoo: WorkerHTTP 4242 "], ("http", 4242, None)),
        (["odoo: WorkerCron 4243 prod"], ("cron", 4243, "prod")),
        (["odoo:", "WorkerCron", "4243", "prod"], ("cron", 4243, "prod")),
        (["python3", "odoo-bin", "--workers=2"], None),
        ([], None),
    ],
)
def test_parse_title(cmdline, expected):
    assert engine.parse_title(cmdline) == expected


@pytest.mark.parametrize(
    ("cmdline", "nice", "master_nice", "role"),
    [
        (["odoo: WorkerHTTP 10 "], 0, 0, "http"),
        (["odoo: WorkerCron 11 db"], 10, 0, "cron"),
        (["/usr/bin/python3", "/opt/odoo/odoo-bin", "gevent", "-c", "x.conf"], 0, 0, "gevent"),
        # Without setproctitle workers keep the master's command line.
        (["/usr/bin/python3", "/opt/odoo/odoo-bin", "--workers=2"], 0, 0, "http"),
        (["/usr/bin/python3", "/opt/odoo/odoo-bin", "--workers=2"], 10, 0, "cron"),
        (["/usr/bin/python3", "/opt/odoo/odoo-bin", "--workers=2"], 15, 5, "cron"),
        # A master already at nice 12: cron workers are capped at 19.
        (["/usr/bin/python3", "/opt/odoo/odoo-bin", "--workers=2"], 19, 12, "cron"),
        (["/usr/bin/python3", "/opt/odoo/odoo-bin", "--workers=2"], 12, 12, "http"),
    ],
)
def test_classify_child(cmdline, nice, master_nice, role):
    assert engine.classify_child(cmdline, nice, master_nice) == role


@pytest.mark.parametrize(
    ("name", "thread_type", "is_main", "kind"),
    [
        ("odoo.service.http.request.1399", None, False, "http"),
        ("Thread-7 (process_request_thread)", "http", False, "http"),
        ("odoo.service.cron.cron0", "cron", False, "cron"),
        ("odoo.service.httpd", None, False, "httpd"),
        ("odoo.service.http.request.1399", "websocket", False, "websocket"),
        ("Worker WorkerHTTP (77) workthread", None, False, "worker"),
        ("MainThread", None, True, "main"),
        ("odoo.service.autoreload.watcher", None, False, "other"),
    ],
)
def test_thread_kind(name, thread_type, is_main, kind):
    assert engine.thread_kind(name, thread_type, is_main) == kind


def test_is_odoo_cmdline():
    assert engine.is_odoo_cmdline(["/usr/bin/python3", "/srv/odoo/odoo-bin", "-c", "o.conf"])
    assert engine.is_odoo_cmdline(["odoo: WorkerHTTP 12 "])
    assert engine.is_odoo_cmdline(["/usr/bin/odoo", "--dev=all"])
    assert engine.is_odoo_cmdline(
        ["python3", "-X", "frozen_modules=off", "-m", "debugpy", "--listen", "5678", "/srv/odoo/odoo-bin", "-d", "x"]
    )
    assert engine.is_odoo_cmdline(["python3", "-m", "odoo", "server"])
    assert not engine.is_odoo_cmdline(["/usr/bin/python3", "-m", "http.server"])
    assert not engine.is_odoo_cmdline(["/usr/bin/python3", "-m", "pytest", "tests/test_odoo.py"])
    assert not engine.is_odoo_cmdline(["postgres: odoo db [local] idle"])


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["odoo-bin", "--db_password", "hunter2", "-d", "x"], ["odoo-bin", "--db_password", "********", "-d", "x"]),
        (["odoo-bin", "--db_password=hunter2"], ["odoo-bin", "--db_password=********"]),
        (["odoo-bin", "-w", "hunter2"], ["odoo-bin", "-w", "********"]),
        (["odoo-bin", "-whunter2"], ["odoo-bin", "-w********"]),
        (["odoo-bin", "--admin-passwd=hunter2"], ["odoo-bin", "--admin-passwd=********"]),
        (["odoo-bin", "--smtp-password", "hunter2"], ["odoo-bin", "--smtp-password", "********"]),
        (["x", "--db_uri=postgres://odoo:hunter2@db/x"], ["x", "--db_uri=postgres://odoo:********@db/x"]),
        (["odoo-bin", "--workers=2", "-d", "prod"], ["odoo-bin", "--workers=2", "-d", "prod"]),
    ],
)
def test_redact_cmdline(args, expected):
    assert engine.redact_cmdline(args) == expected
    assert "hunter2" not in " ".join(engine.redact_cmdline(args))


def test_effective_config_keeps_only_known_non_secret_options():
    options = {
        "workers": "4",
        "limit_memory_soft": 2147483648,
        "http_port": 8069,
        "db_password": "hunter2",
        "admin_passwd": "hunter2",
        "smtp_password": "hunter2",
        "server_wide_modules": ("base", "web"),
    }
    config = engine.effective_config(options)
    assert config == {
        "workers": 4,
        "limit_memory_soft": 2147483648,
        "http_port": 8069,
        "server_wide_modules": ["base", "web"],
    }
    assert "hunter2" not in repr(config)


def test_effective_memory_limits_per_role():
    config = {
        "limit_memory_soft": 100,
        "limit_memory_hard": 200,
        "limit_memory_soft_gevent": 300,
        "limit_memory_hard_gevent": False,
    }
    assert engine.effective_memory_limits(config, "http") == (100, 200)
    assert engine.effective_memory_limits(config, "gevent") == (300, 200)
    assert engine.effective_memory_limits({}, "cron") == (0, 0)


@pytest.fixture(params=[True, False], ids=["setproctitle", "no-setproctitle"])
def fake_prefork(request):
    titles = request.param
    if titles:
        pytest.importorskip("setproctitle")
    args = [sys.executable, str(FAKE_TREE), "master"] + (["--titles"] if titles else [])
    proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    children = {}
    for _ in range(3):
        role, pid = proc.stdout.readline().split()
        children[int(pid)] = role
    # Wait until the children have renamed themselves / lowered their priority.
    cron = next(pid for pid, role in children.items() if role == "cron")
    gevent = next(pid for pid, role in children.items() if role == "gevent")

    def ready():
        renamed = psutil.Process(cron).nice() == 10 and "gevent" in psutil.Process(gevent).cmdline()
        if renamed and titles:
            workers = [pid for pid, role in children.items() if role != "gevent"]
            renamed = all(psutil.Process(pid).cmdline()[0].startswith("odoo:") for pid in workers)
        return renamed

    assert wait_until(ready)
    yield proc.pid, children
    proc.stdin.close()
    proc.wait(10)


def test_process_start_follows_the_kernels_boot_time_not_a_stale_copy(fake_prefork, monkeypatch):
    # A clock step since psutil last read the boot time (psutil keeps it) must not move start times.
    from psutil import _pslinux

    master, _children = fake_prefork
    monkeypatch.setattr(_pslinux, "BOOT_TIME", psutil.boot_time() - 2.0)
    found = {p["pid"]: p for p in engine.read_processes(master, "prefork")}
    with open(f"/proc/{master}/stat") as handle:
        ticks = int(handle.read().rsplit(")", 1)[1].split()[19])
    assert found[master]["started_at"] == pytest.approx(psutil.boot_time() + ticks / os.sysconf("SC_CLK_TCK"), abs=0.01)


def test_read_processes_classifies_a_real_tree(fake_prefork):
    master, children = fake_prefork
    config = {"limit_memory_soft": 1 << 31, "limit_memory_hard": 1 << 32, "limit_memory_soft_gevent": 1 << 30}
    found = {p["pid"]: p for p in engine.read_processes(master, "prefork", config)}
    assert {pid: p["role"] for pid, p in found.items()} == {master: "master", **children}
    for pid, proc in found.items():
        real = psutil.Process(pid)
        assert proc["ppid"] == (os.getpid() if pid == master else master)
        assert proc["started_at"] == real.create_time()
        assert proc["num_threads"] == real.num_threads()
        assert abs(proc["vms"] - real.memory_info().vms) <= 0.1 * real.memory_info().vms
        assert proc["cpu_percent"] >= 0
        soft = 1 << 30 if proc["role"] == "gevent" else 1 << 31
        assert (proc["limit_memory_soft"], proc["limit_memory_hard"]) == (soft, 1 << 32)
    assert server_pids(master) == {master, *children}


def test_threaded_mode_is_the_process_alone(fake_prefork):
    master, _children = fake_prefork
    assert [(p["pid"], p["role"]) for p in engine.read_processes(master, "threaded")] == [(master, "server")]


def test_vanished_server_gives_empty_list():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    assert engine.read_processes(proc.pid, "prefork") == []


def test_cpu_meter_measures_between_snapshots():
    meter = CpuMeter()
    started = 1000.0
    first, reused = ProcessKey(1, 100000), ProcessKey(1, 101150)
    # First sighting: average over the lifetime.
    assert meter.percent(first, started, cpu_seconds=5.0, now=1010.0) == 50.0
    # Then: the delta since the previous snapshot.
    assert meter.percent(first, started, cpu_seconds=5.5, now=1011.0) == 50.0
    assert meter.percent(first, started, cpu_seconds=5.5, now=1012.0) == 0.0
    # A reused pid (another start) starts afresh.
    assert meter.percent(reused, 1011.5, cpu_seconds=0.25, now=1012.0) == 50.0
    meter.forget_except({reused})
    assert list(meter._last) == [reused]


def test_read_threads_reports_what_odoo_sets():
    release = threading.Event()
    worker = threading.Thread(target=release.wait, name="odoo.service.http.request.1", daemon=True)
    worker.dbname, worker.uid = "prod", 7
    worker.url = "http://localhost:8069/web/dataset/call_kw?token=s3cret"
    worker.query_count, worker.query_time, worker.perf_t0 = 12, 0.25, time.time() - 3
    worker.start()
    try:
        threads = {t["ident"]: t for t in engine.read_threads()}
    finally:
        release.set()
    described = threads[worker.ident]
    assert described["kind"] == "http"
    assert described["db"] == "prod" and described["uid"] == 7
    assert described["url"] == "/web/dataset/call_kw"
    assert described["query_count"] == 12 and described["query_time"] == 0.25
    assert 3 <= described["elapsed"] < 30
    assert described["native_id"] == worker.native_id
    assert threads[threading.main_thread().ident]["kind"] == "main"


def test_snapshot_shape_for_this_process():
    info = engine.ServerInfo(os.getpid(), engine.MODE_THREADED, "18.0")
    snap = engine.take_snapshot(info, {"workers": 0, "db_password": "hunter2"})
    assert snap["server"] == {"mode": "threaded", "pid": os.getpid(), "odoo_version": "18.0"}
    assert snap["served_by"] == os.getpid()
    assert [p["pid"] for p in snap["processes"]] == [os.getpid()]
    assert set(snap["processes"][0]) >= {
        "pid",
        "ppid",
        "role",
        "started_at",
        "cpu_percent",
        "rss",
        "vms",
        "num_threads",
    }
    assert snap["host"]["memory_total"] == psutil.virtual_memory().total
    assert "hunter2" not in repr(snap)


def test_main_thread_id_is_the_pid_after_fork():
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: report what the engine says of its main thread
        os.close(read)
        main = next(t for t in engine.read_threads() if t["kind"] == "main")
        os.write(write, str(main["native_id"]).encode())
        os._exit(0)
    os.close(write)
    reported = int(os.read(read, 64))
    os.waitpid(pid, 0)
    assert reported == pid


def test_zombie_children_are_not_listed(fake_prefork):
    master, children = fake_prefork
    http = next(pid for pid, role in children.items() if role == "http")
    os.kill(http, 9)  # the fake master never reaps it: a zombie, like a worker between death and waitpid
    assert wait_until(lambda: psutil.Process(http).status() == psutil.STATUS_ZOMBIE)
    assert http not in server_pids(master)


def _wait_gone(pid, timeout=10):
    """Whether ``pid`` exited (the fake master never reaps: a zombie counts)."""

    def gone():
        try:
            return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return True

    return wait_until(gone, timeout)


@pytest.mark.parametrize("force", [False, True], ids=["graceful", "force"])
def test_recycle_signals_only_the_chosen_worker(fake_prefork, force):
    master, children = fake_prefork
    for role in ("http", "cron"):
        pid = next(pid for pid, r in children.items() if r == role)
        result = engine.recycle_worker(master, "prefork", pid, force=force)
        assert result == {"pid": pid, "role": role, "signal": "SIGTERM" if force else "SIGINT", "graceful": not force}
        assert _wait_gone(pid)
    survivors = server_pids(master)
    gevent = next(pid for pid, r in children.items() if r == "gevent")
    assert survivors == {master, gevent}


def test_recycle_refuses_the_master_gevent_and_foreign_pids(fake_prefork):
    master, children = fake_prefork
    gevent = next(pid for pid, role in children.items() if role == "gevent")
    refusals = {
        master: "master process",
        gevent: "gevent process",
        os.getpid(): "not a worker of this Odoo server",
        os.getppid(): "not a worker of this Odoo server",
        0: "Not a process id",
        -1: "Not a process id",
        "123": "Not a process id",
        True: "Not a process id",
    }
    for pid, reason in refusals.items():
        with pytest.raises(engine.RecycleRefused, match=reason):
            engine.recycle_worker(master, "prefork", pid, force=True)
    with pytest.raises(engine.RecycleRefused, match="threaded"):
        engine.recycle_worker(master, "threaded", next(iter(children)))
    # Nothing was signalled: every process is still there and running.
    assert server_pids(master) == {master, *children}
    assert all(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE for pid in children)


def test_a_real_snapshot_has_exactly_the_declared_shape():
    """engine/schema.py is the JSON's one declaration: every key it names is filled, and no other."""
    from typing import get_type_hints

    from worker_inspector.engine import schema

    snap = engine.take_snapshot(engine.ServerInfo(os.getpid(), engine.MODE_THREADED, "18.0"), {"workers": 0})
    engine.add_logins(snap, lambda db, uids: {})

    def keys(typed):
        return set(get_type_hints(typed))

    assert set(snap) == keys(schema.Snapshot)
    assert set(snap["server"]) == keys(schema.Server)
    assert set(snap["host"]) == keys(schema.Host)
    assert set(snap["cron"]) == keys(schema.CronSection)
    for process in snap["processes"]:
        assert set(process) == keys(schema.Process)
    assert snap["threads"]
    for thread in snap["threads"]:
        assert set(thread) == keys(schema.Thread)
    assert snap["processes"][0]["role"] in list(engine.Role)
    assert {thread["kind"] for thread in snap["threads"]} <= set(engine.ThreadKind)


def test_a_worker_asked_to_force_recycle_itself_is_recycled_gracefully():
    """Killing the worker answering the call would lose that very answer: it gets SIGINT instead."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # a child of this process, which plays the prefork master
        try:
            received = []
            signal.signal(signal.SIGINT, lambda *_args: received.append("SIGINT"))
            result = engine.recycle_worker(os.getppid(), "prefork", os.getpid(), force=True)
            os.write(write, json.dumps([result, received]).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as answer:
        result, received = json.loads(answer.read())
    os.waitpid(pid, 0)
    assert result == {"pid": pid, "role": "http", "signal": "SIGINT", "graceful": True}
    assert received == ["SIGINT"]


def test_a_killed_worker_still_exiting_is_not_listed():
    """A killed worker takes a while to exit (the kernel unmaps its memory,
    then closes its sockets) before it is a zombie: listed meanwhile, it
    would show the PostgreSQL sessions it still holds. From the moment the
    kernel has it exiting (PF_EXITING) it is gone."""
    from worker_inspector.engine.identity import start_ticks

    hold = "import sys; b = bytearray(256 << 20); print(flush=True); sys.stdin.read()"
    caught = 0
    for _attempt in range(5):
        child = subprocess.Popen([sys.executable, "-c", hold], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        child.stdout.readline()
        assert child.pid in server_pids(os.getpid())
        os.kill(child.pid, signal.SIGKILL)
        assert wait_until(lambda pid=child.pid: start_ticks(pid) is None, interval=0.0001)
        listed = server_pids(os.getpid())
        # Still tearing down after the read (not a zombie yet): the window was caught.
        with open(f"/proc/{child.pid}/stat") as handle:
            state = handle.read().rsplit(")", 1)[1].split()[0]
        child.wait()
        assert child.pid not in listed
        caught += state not in ("Z", "X")
    assert caught, "the kernel never had a killed 256 MiB process still exiting: nothing was tested"
