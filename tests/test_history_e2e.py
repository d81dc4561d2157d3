"""History of a real prefork Odoo server: worker exits with their cause, series, backlog."""

import os
import shutil
import signal
import subprocess
import sys
import time
import uuid

import psutil
import pytest
import requests
from activity_helpers import BUSY_URL, Background, Hold, trigger_cron
from odoo_harness import OdooServer, odoo_available
from test_recycle_e2e import BusyWorker, csrf_token, pid_of, recycle, wait_respawned, workers_by_role
from waiting import wait_until

pytestmark = pytest.mark.odoo

HISTORY_URL = "/worker_inspector/api/history"
GROW_URL = "/worker_inspector_test/grow"
BREAK_LOOP_URL = "/worker_inspector_test/break_loop"
LOOP_BROKEN = "worker_inspector_test broke the loop"  # what the route raises in the loop
MIB = 1 << 20
SOFT = 700 * MIB
LIMIT_REQUEST = 60
LIMIT_TIME_REAL = 8
LIMIT_TIME_CPU = 2  # CPU seconds: reached well within limit_time_real even on a loaded machine


@pytest.fixture(scope="module")
def server(odoo_db):
    """Prefork with small limits, so each exit cause can be provoked; a point every second."""
    args = [
        f"--limit-request={LIMIT_REQUEST}",
        f"--limit-time-real={LIMIT_TIME_REAL}",
        f"--limit-time-cpu={LIMIT_TIME_CPU}",
        "--limit-time-real-cron=0",  # the cron worker sleeps a minute between polls
        f"--limit-memory-soft={SOFT}",
        f"--limit-memory-hard={4 * SOFT}",
    ]
    env = {"WORKER_INSPECTOR_HISTORY_INTERVAL": "1"}
    with OdooServer(odoo_db, workers=2, max_cron_threads=1, extra_args=args, env=env) as srv:
        yield srv


@pytest.fixture(scope="module")
def admin(server):
    return server.login_session()


def history(server, session, **params):
    response = session.get(server.url + HISTORY_URL, params=params, timeout=60)
    assert response.status_code == 200, response.text
    return response.json()


def wait_exit(server, session, match, what, since=0.0, timeout=60, pid=None):
    """The first exit since ``since`` that ``match`` accepts; else fails with what the
    server's processes (``pid`` among them) and its log show."""
    deadline = time.monotonic() + timeout
    while True:
        exits = history(server, session, since=since, kinds="exits")["exits"]
        found = [e for e in exits if match(e)]
        if found:
            return found[0]
        if time.monotonic() > deadline:
            diagnosis = server.diagnose(*([pid] if pid else []))
            raise AssertionError(f"{what}: no such exit in {timeout}s; exits: {exits}\n{diagnosis}")
        time.sleep(0.3)


def test_bad_parameters_are_400_and_access_is_the_snapshots(server, admin):
    for params in ({"since": "yesterday"}, {"since": "-5"}, {"since": "nan"}, {"kinds": "exits,bogus"}, {"kinds": ""}):
        response = admin.get(server.url + HISTORY_URL, params=params, timeout=60)
        assert response.status_code == 400, (params, response.text)
        assert response.json()["error"]["reason"]
    response = admin.get(server.url + HISTORY_URL, params={"pid": "1"}, timeout=60)
    assert response.status_code == 400
    assert "pid" in response.json()["error"]["reason"]
    anonymous = requests.get(server.url + HISTORY_URL, timeout=60)
    assert anonymous.status_code == 401
    only = history(server, admin, kinds="series")
    assert "series" in only and "exits" not in only
    assert only["series"]["interval"] == 1.0


def test_worker_reaching_limit_request_is_recorded(server, admin):
    started = time.time()
    for _ in range(3 * LIMIT_REQUEST):
        assert requests.get(server.url + "/web/health", timeout=60).status_code == 200
    gone = wait_exit(server, admin, lambda e: e["reason"] == "limit_request", "limit_request", since=started)
    assert gone["role"] == "http"
    assert gone["requests"] == LIMIT_REQUEST
    assert gone["doing"]["url"] == "/web/health"
    assert str(LIMIT_REQUEST) in gone["detail"]
    assert gone["started_at"] < gone["ended_at"] <= time.time()
    assert not psutil.pid_exists(gone["pid"]) or gone["pid"] not in workers_by_role(server)
    # The points of those seconds carry their rate (a worker's requests since the point before its
    # exit are not counted: over a second, not all 180) and the worker's memory.
    points = history(server, admin, since=started, kinds="series")["series"]["points"]
    assert max(p["requests_per_second"] for p in points) >= 10, points
    http = [p for point in points for p in point["processes"] if p["role"] == "http"]
    assert http and all(p["rss"] > 50 * MIB and p["vms"] > p["rss"] for p in http), http


def test_worker_past_limit_memory_soft_is_recorded_with_its_growth(server, admin):
    started = time.time()
    grown = admin.get(server.url + GROW_URL, params={"vms": SOFT + 64 * MIB, "seconds": 3}, timeout=120)
    assert grown.status_code == 200, grown.text
    pid = grown.json()["pid"]
    assert grown.json()["vms"] > SOFT
    gone = wait_exit(server, admin, lambda e: e["pid"] == pid, "memory_soft", since=started, pid=pid)
    assert gone["reason"] == "memory_soft", gone
    assert gone["doing"]["url"] == GROW_URL
    assert gone["doing"]["elapsed"] >= 2.5
    assert "> soft" in gone["detail"]
    assert gone["peak_vms"] > SOFT
    # The series saw the worker grow while the request ran.
    points = history(server, admin, since=started, kinds="series")["series"]["points"]
    vms = [p["vms"] for point in points for p in point["processes"] if p["pid"] == pid]
    assert len(vms) >= 2, points
    assert max(vms) - min(vms) >= 100 * MIB, vms
    assert all(started - 1 <= point["t"] <= time.time() for point in points)


def test_worker_hitting_limit_memory_hard_is_recorded(server, admin):
    started = time.time()
    failed = admin.get(server.url + GROW_URL, params={"vms": SOFT + 64 * MIB, "overshoot": 4 * SOFT}, timeout=120)
    assert failed.status_code == 500  # the MemoryError, handled by Odoo
    gone = wait_exit(
        server, admin, lambda e: e["reason"] in ("memory_hard", "memory_soft"), "memory_hard", since=started
    )
    assert gone["reason"] == "memory_hard", gone
    assert "MemoryError" in gone["detail"] and gone["doing"]["url"] == GROW_URL
    assert gone["peak_vms"] > SOFT


def test_worker_past_limit_time_cpu_is_recorded(server, admin):
    started = time.time()
    try:
        response = admin.get(server.url + "/worker_inspector_test/burn", params={"seconds": 4}, timeout=60)
        status = response.status_code
    except requests.ConnectionError:
        status = None  # the worker ended before answering
    assert status != 200
    gone = wait_exit(server, admin, lambda e: e["reason"] == "time_cpu", "time_cpu", since=started)
    assert gone["doing"]["url"] == "/worker_inspector_test/burn", gone
    assert gone["doing"]["elapsed"] >= LIMIT_TIME_CPU - 1
    assert "limit_time_cpu" in gone["detail"]
    # The series saw that worker burn a core while the request ran.
    points = history(server, admin, since=started, kinds="series")["series"]["points"]
    burning = [p["cpu_percent"] for point in points for p in point["processes"] if p["pid"] == gone["pid"]]
    assert burning and max(burning) >= 50, burning


def killed_for_limit_time_real(server, session, limit=LIMIT_TIME_REAL):
    """The exit of a worker held busy on one request until the master killed it for
    ``limit_time_real`` (``limit``), named with that request, which never got an answer."""
    started = time.time()
    busy = BusyWorker(server, session)
    try:
        pid = busy.pid
        gone = wait_exit(server, session, lambda e: e["pid"] == pid, "time_real", started, timeout=limit + 30, pid=pid)
    finally:
        busy.release()
    busy.call.join(60)
    assert gone["reason"] == "time_real", gone
    assert gone["doing"]["url"] == BUSY_URL and gone["doing"]["elapsed"] >= limit - 4, gone
    assert busy.call.response is None or busy.call.response.status_code != 200
    return gone


def test_worker_killed_for_limit_time_real_is_named_with_its_request(server, admin):
    gone = killed_for_limit_time_real(server, admin)
    # Its stack was taken before the kill (the slow threshold is capped below the limit).
    assert "busy" in [frame["function"] for frame in gone["doing"]["stack"] or ()], gone
    # The master loaded the addon (-d preloads it): the cause is its own, not inferred.
    assert "limit_time_real" in gone["detail"] and "without a heartbeat" in gone["detail"], gone
    assert gone["role"] == "http" and gone["peak_rss"] > 50 * MIB and gone["peak_vms"] > gone["peak_rss"]


def http_worker_far_from_limit_request(server, session, margin=10):
    """An HTTP worker that cannot end for ``limit_request`` meanwhile. The earlier tests'
    requests leave workers anywhere up to the limit: one that just reached it is already on
    its way out, and a signal then finds its exit recorded, rightly, as ``limit_request``."""

    def far():
        snap = server.snapshot(session)
        counts = {
            p["pid"]: p["activity"]["requests"] for p in snap["processes"] if p["role"] == "http" and p["activity"]
        }
        fresh = [pid for pid, count in counts.items() if count <= LIMIT_REQUEST - margin]
        return min(fresh, key=counts.get) if fresh else None

    pid = wait_until(far, 60, interval=0.2)
    assert pid, "no HTTP worker far from limit_request"
    return pid


def test_crashed_worker_is_recorded_with_the_signal_that_killed_it(server, admin):
    """The master loaded the addon (the database is preloaded with -d): it sees how a worker died."""
    started = time.time()
    victim = http_worker_far_from_limit_request(server, admin)
    before = workers_by_role(server)
    assert before.get(victim) == "http"
    os.kill(victim, signal.SIGSEGV)
    wait_respawned(server, victim, "http", set(before))
    gone = wait_exit(server, admin, lambda e: e["pid"] == victim, "crash", since=started, pid=victim)
    assert gone["reason"] == "crashed" and gone["detail"] == "killed by SIGSEGV", gone


def broken_loop_exit(server, session):
    """The exit of a worker whose loop an exception escaped (``break_loop``, asked again of
    a worker too close to limit_request)."""
    started = time.time()
    workers = set(workers_by_role(server))

    def broken():
        response = session.post(server.url + BREAK_LOOP_URL, timeout=60)
        assert response.status_code in (200, 409), response.text
        return response.status_code == 200 and response.json()["pid"]

    pid = wait_until(broken, 60, interval=0.2)
    assert pid, "no worker far enough from limit_request"
    wait_respawned(server, pid, "http", workers)
    return wait_exit(server, session, lambda e: e["pid"] == pid, "crashed", since=started, pid=pid)


def test_an_exception_that_escapes_the_loop_is_crashed_with_its_text(server, admin):
    """Odoo's loop logs it and ends the worker cleanly (its atexit runs): the worker records it."""
    gone = broken_loop_exit(server, admin)
    assert (gone["reason"], gone["detail"]) == ("crashed", f"RuntimeError: {LOOP_BROKEN}"), gone
    assert gone["role"] == "http" and gone["doing"]["url"] == BREAK_LOOP_URL, gone


def test_more_slow_requests_than_workers_fill_the_backlog(server, admin):
    started = time.time()
    before = history(server, admin, kinds="series")["series"]["points"]
    all_busy_before = before[-1]["all_busy_seconds"] if before else 0.0
    with Hold() as hold:
        calls = [Background(server, admin, BUSY_URL, hold.token) for _ in range(5)]
        time.sleep(4)  # under limit_time_real: nobody is killed
    for call in calls:
        call.join(60)
        assert call.response is not None and call.response.status_code == 200, call.error
    points = history(server, admin, since=started, kinds="series")["series"]["points"]
    assert max(p["backlog"] for p in points) >= 2, [(p["t"], p["backlog"]) for p in points]
    assert max(p["http_busy"] for p in points) == 2
    assert max(p["utilization"] for p in points) == 1.0
    assert 3.0 <= max(p["longest_busy"] or 0 for p in points) < 10, [(p["t"], p["longest_busy"]) for p in points]
    assert points[-1]["all_busy_seconds"] - all_busy_before >= 2.0


def test_a_forced_recycle_names_the_request_it_killed(server, admin):
    started = time.time()
    busy = BusyWorker(server, admin)
    try:
        response = recycle(server, admin, csrf_token(server, admin), pid=busy.pid, force=1)
        assert response.status_code == 200, response.text
        assert response.json()["signal"] == "SIGTERM"  # another worker answered: the busy one is killed
        wait_respawned(server, busy.pid, "http", busy.workers_before)
        gone = wait_exit(server, admin, lambda e: e["pid"] == busy.pid, "forced recycle", since=started, pid=busy.pid)
    finally:
        busy.release()
    busy.call.join(60)
    assert gone["reason"] == "recycled" and "SIGTERM" in gone["detail"], gone
    assert gone["doing"]["url"] == BUSY_URL and gone["doing"]["elapsed"] > 0, gone


def test_the_backlog_gauge_counts_the_connections_still_waiting_when_a_scrape_is_answered(server, admin):
    """Every worker busy: a scrape waits in the accept queue, two connections behind it. When a
    worker frees it takes the scrape, the oldest, and the two are still waiting as it answers."""
    from worker_inspector.engine.backlog import find_listen_inode, listen_backlog
    from worker_inspector.engine.board import read_board

    inode = find_listen_inode(server.pid, server.port)
    assert inode

    def busy_on_hold():
        records = [r for _count, rs in read_board(server.pid).values() for r in rs]
        return len([r for r in records if r["state"] == "busy" and r["url"] == BUSY_URL]) == server.workers

    with Hold() as first, Hold() as others:
        held = [Background(server, admin, BUSY_URL, token) for token in (first.token, others.token)]
        assert wait_until(busy_on_hold, 30, interval=0.05), "the HTTP workers never all got busy"
        scrape = Background(server, admin, "/worker_inspector/metrics")
        assert wait_until(lambda: listen_backlog(inode) == 1, 10, interval=0.02), "the scrape never queued"
        held += [Background(server, admin, BUSY_URL, others.token) for _ in range(2)]
        assert wait_until(lambda: listen_backlog(inode) == 3, 10, interval=0.02), listen_backlog(inode)
        first.release()
        response = scrape.result()
    for call in held:
        call.result()
    assert response is not None and response.status_code == 200, scrape.error
    gauge = [line for line in response.text.splitlines() if line.startswith("odoo_http_listen_backlog ")]
    assert gauge == ["odoo_http_listen_backlog 2.0"], gauge


def test_recycled_worker_is_recorded_and_history_survives_its_restart(server, admin):
    started = time.time()
    snap = server.snapshot(admin)
    first_server = snap["served_by"]
    points_before = history(server, admin, kinds="series")["series"]["points"]
    assert points_before
    token = csrf_token(server, admin)
    before = set(workers_by_role(server))
    response = recycle(server, admin, token, pid=first_server, force=1)
    assert response.status_code == 200, response.text
    wait_respawned(server, first_server, "http", before)
    respawned = time.time()
    gone = wait_exit(server, admin, lambda e: e["pid"] == first_server, "recycled", since=started)
    assert gone["reason"] == "recycled", gone
    assert "admin" in gone["detail"]
    # What was recorded before that worker went is all still there, and the series goes on.
    deadline = time.monotonic() + 10
    while True:
        after = history(server, admin, kinds="series,exits")
        if after["series"]["points"][-1]["t"] > respawned + 1 or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    times = {p["t"] for p in after["series"]["points"]}
    assert {p["t"] for p in points_before} <= times
    assert after["series"]["points"][-1]["t"] > respawned + 1
    assert first_server in {e["pid"] for e in after["exits"]}


def test_metrics_follow_prometheus_conventions_and_count_exits(server, admin, tmp_path):
    response = admin.get(server.url + "/worker_inspector/metrics", timeout=60)
    assert response.status_code == 200, response.text
    text = response.text
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            samples[name] = float(value)
    assert samples['odoo_worker_exits_total{reason="limit_request"}'] >= 1
    assert samples['odoo_worker_exits_total{reason="memory_soft"}'] >= 1
    assert samples['odoo_worker_exits_total{reason="time_real"}'] >= 1
    assert samples['odoo_worker_exits_total{reason="recycled"}'] >= 1
    assert samples["odoo_http_all_workers_busy_seconds_total"] >= 2
    assert samples["odoo_http_listen_backlog"] == 0
    assert samples["odoo_http_requests_total"] >= 3 * LIMIT_REQUEST
    assert samples['odoo_cpu_seconds_total{role="http"}'] > 0
    assert samples['odoo_server_processes{role="http"}'] == 2
    # The scrape itself is not counted (observer): nothing else runs now.
    assert samples["odoo_http_utilization_ratio"] == 0
    # No label that changes with every recycled worker; the server's pid is in the info metric only.
    assert [name for name in samples if "pid=" in name] == [
        next(n for n in samples if n.startswith("odoo_server_info"))
    ]
    recent = server.snapshot(admin)["exits_last_hour"]["http"]
    assert recent["count"] >= 4 and {"limit_request", "memory_soft", "time_real", "recycled"} <= set(recent["reasons"])
    promtool = shutil.which("promtool")
    if not promtool:
        pytest.skip("promtool is not installed (Debian: apt-get install prometheus)")
    checked = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, check=False)
    assert checked.returncode == 0 and not checked.stdout.strip(), checked.stdout + checked.stderr


def test_threaded_server_restart_is_recorded_and_its_history_kept(odoo_db):
    # Odoo re-executes itself as basename(sys.executable): that must be this (venv's) Python.
    path = os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")])
    env = {"WORKER_INSPECTOR_HISTORY_INTERVAL": "1", "PATH": path}
    with OdooServer(odoo_db, workers=0, env=env) as threaded:
        admin = threaded.login_session()
        deadline = time.monotonic() + 30
        while not history(threaded, admin, kinds="series")["series"]["points"] and time.monotonic() < deadline:
            time.sleep(0.3)
        before = history(threaded, admin, kinds="series")["series"]["points"]
        assert before
        os.kill(threaded.pid, signal.SIGHUP)  # what a module update from the UI does
        time.sleep(1)
        threaded.wait_ready(120)  # the same process, re-executed
        admin = threaded.login_session()
        gone = wait_exit(threaded, admin, lambda e: e["pid"] == threaded.pid, "threaded restart")
        assert gone["reason"] == "reload" and gone["role"] == "server", gone
        after = history(threaded, admin, kinds="series")["series"]["points"]
        assert {p["t"] for p in before} <= {p["t"] for p in after}


def test_cron_worker_reaching_its_max_age_is_a_planned_recycle(odoo_db):
    """``limit_time_worker_cron`` (18+): the cron worker ends itself once that old, as it
    ends for ``limit_request``; recorded as ``limit_request`` with what limit it was."""
    if odoo_available()[1] == "17.0":
        pytest.skip("Odoo 17.0 has no limit_time_worker_cron option (odoo/tools/config.py)")
    max_age = 3
    args = [f"--limit-time-worker-cron={max_age}", "--limit-time-real-cron=0"]
    with OdooServer(odoo_db, workers=1, max_cron_threads=1, extra_args=args) as srv:
        admin = srv.login_session()
        before = workers_by_role(srv)
        victim = pid_of(srv, "cron")
        started = time.time()
        time.sleep(max_age + 0.5)
        # The cron worker checks its limits after a poll, then sleeps before it exits (polls
        # are a minute apart): triggers wake it, for the check and then for the exit.
        deadline = time.monotonic() + 60
        while psutil.pid_exists(victim) and time.monotonic() < deadline:
            trigger_cron(srv, admin, uuid.uuid4().hex[:16])  # no token file: the job returns at once
            time.sleep(1)
        wait_respawned(srv, victim, "cron", set(before))
        gone = wait_exit(srv, admin, lambda e: e["pid"] == victim, "cron max age", since=started - max_age - 5)
        assert gone["role"] == "cron" and gone["reason"] == "limit_request", gone
        assert gone["detail"] == f"cron worker max age reached (limit_time_worker_cron {max_age} s)", gone


def _flock_holders(path):
    """Pids holding a flock on ``path``, from /proc/locks (the kernel's own table)."""
    inode = os.stat(path).st_ino
    holders = set()
    with open("/proc/locks") as locks:
        for line in locks:
            fields = line.split()
            # 1: FLOCK  ADVISORY  WRITE 4711 00:1a:123 0 EOF
            if len(fields) >= 6 and fields[1] == "FLOCK" and int(fields[5].rsplit(":", 1)[1]) == inode:
                holders.add(int(fields[4]))
    return holders


def test_the_preloading_master_samples_the_history_not_a_worker(server, admin):
    """The master imported the addon (``-d``) and started sampling before its first fork: it holds
    the election, so no serving worker spends a tick of its CPU and its GIL on the series."""
    from worker_inspector.engine import board
    from worker_inspector.engine.sampler import LOCK_NAME

    lock = os.path.join(board.server_dir(server.pid, board.start_ticks(server.pid)), LOCK_NAME)
    wait_until(lambda: os.path.exists(lock) and _flock_holders(lock), timeout=30)
    assert _flock_holders(lock) == {server.pid}
    # It samples: points keep coming (one a second here) while it holds the lock.
    before = history(server, admin, kinds="series")["series"]["points"][-1]["t"]
    wait_until(lambda: history(server, admin, kinds="series")["series"]["points"][-1]["t"] > before, timeout=30)
    assert _flock_holders(lock) == {server.pid}
