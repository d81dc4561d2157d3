"""The history store, its query parsing, exit classification and the listen backlog (no Odoo)."""

import contextlib
import fcntl
import os
import signal
import socket
import stat
import time

import pytest
from waiting import settled_wakeups, wait_until, wakeups

from worker_inspector.engine import board, history, snapshot
from worker_inspector.engine import sampler as sampler_module
from worker_inspector.engine.backlog import find_listen_inode, listen_backlog, socket_inode
from worker_inspector.engine.history import BadQuery, HistoryStore, parse_kinds, parse_since
from worker_inspector.engine.identity import is_zombie
from worker_inspector.engine.recorder import Recorder
from worker_inspector.engine.sampler import Sampler, classify_exit, doing_of, infer_exit

GIB = 1 << 30


@pytest.fixture
def directory(tmp_path):
    path = tmp_path / "server"
    path.mkdir(mode=0o700)
    return str(path)


def _exit(pid, reason="memory_soft", **extra):
    record = {
        "pid": pid,
        "start_ticks": pid * 10,
        "role": "http",
        "started_at": 1000.0,
        "ended_at": 2000.0 + pid,
        "reason": reason,
        "detail": "VMS 2.10 GiB > soft 2.00 GiB",
        "requests": 12,
        "peak_rss": 300 << 20,
        "peak_vms": 2 * GIB,
        "doing": {"url": "/web/dataset/call_kw", "cron_job": None, "elapsed": 1.5, "db": "prod"},
    }
    record.update(extra)
    return record


def test_store_file_is_private_and_sized_for_a_day(directory):
    store = HistoryStore(directory, interval=10, rows_per_point=5)
    info = os.stat(store.path)
    assert stat.S_IMODE(info.st_mode) == 0o600
    assert store.points_cap * store.interval >= history.RETENTION
    assert info.st_size == history.file_size(store.points_cap, store.rows_cap)
    assert info.st_blocks * 512 >= info.st_size, "allocated, not sparse: no SIGBUS on a full tmpfs"
    # A second process adopts the first one's sizes.
    other = HistoryStore(directory, interval=1, rows_per_point=50)
    assert (other.interval, other.points_cap, other.rows_cap) == (10, store.points_cap, store.rows_cap)


def test_store_refuses_a_symlink(directory, tmp_path):
    target = tmp_path / "elsewhere"
    target.write_bytes(b"")
    os.symlink(target, os.path.join(directory, history.FILE_NAME))
    with pytest.raises(OSError):
        HistoryStore(directory)


def test_exits_round_trip_and_are_counted_once(directory):
    store = HistoryStore(directory)
    assert store.add_exit(_exit(7))
    assert not store.add_exit(_exit(7, reason="crashed")), "the same process is recorded once"
    assert store.add_exit(_exit(8, reason="time_real", doing=None, detail="x" * 500))
    exits = store.exits()
    assert [e["pid"] for e in exits] == [7, 8]
    first = exits[0]
    assert first == {
        "pid": 7,
        "role": "http",
        "started_at": 1000.0,
        "ended_at": 2007.0,
        "reason": "memory_soft",
        "detail": "VMS 2.10 GiB > soft 2.00 GiB",
        "requests": 12,
        "peak_rss": 300 << 20,
        "peak_vms": 2 * GIB,
        "doing": {"url": "/web/dataset/call_kw", "cron_job": None, "elapsed": 1.5},
        "db": "prod",  # kept for the API to hide other databases' requests
    }
    assert exits[1]["doing"] is None and len(exits[1]["detail"]) < 160
    assert [e["pid"] for e in store.exits(since=2007.5)] == [8]
    assert store.totals()["exits"]["memory_soft"] == 1 and store.totals()["exits"]["crashed"] == 0


def test_exit_ring_keeps_the_latest(directory):
    store = HistoryStore(directory)
    for pid in range(1, history.EXITS_CAPACITY + 11):
        store.add_exit(_exit(pid, start_ticks=0))
    pids = [e["pid"] for e in store.exits()]
    assert len(pids) == history.EXITS_CAPACITY
    assert pids[0] == 11 and pids[-1] == history.EXITS_CAPACITY + 10
    assert store.totals()["exits"]["memory_soft"] == history.EXITS_CAPACITY + 10


def test_points_keep_their_processes_across_the_ring_end(directory):
    store = HistoryStore(directory, interval=3600, rows_per_point=3)  # 25 points, 75 rows
    for i in range(60):
        processes = [{"pid": 100 + j, "role": "http", "rss": i, "vms": 10 * i, "cpu_percent": 1.5} for j in range(3)]
        store.add_point(
            {"t": 1000.0 + i, "utilization": 0.5, "http_busy": 1, "http_capacity": 2, "backlog": i}, processes
        )
    interval, points = store.points()
    assert interval == 3600
    assert len(points) == store.points_cap
    assert [p["t"] for p in points] == [1000.0 + i for i in range(60 - store.points_cap, 60)]
    for point in points:
        i = int(point["t"] - 1000)
        assert point["backlog"] == i
        assert [p["vms"] for p in point["processes"]] == [10 * i] * 3
        assert point["processes"][0] == {"pid": 100, "role": "http", "rss": i, "vms": 10 * i, "cpu_percent": 1.5}
    assert [p["t"] for p in store.points(since=1058.0)[1]] == [1058.0, 1059.0]
    # Found by bisection across the ring's end: every window starts at its first point.
    for since in (0.0, 1030.0, 1034.5, 1035.0, 1046.0, 1059.0, 1059.5, 2000.0):
        assert [p["t"] for p in store.points(since=since)[1]] == [p["t"] for p in points if p["t"] >= since]
    assert points[0]["longest_busy"] is None


def test_all_busy_seconds_accumulate(directory):
    store = HistoryStore(directory)
    store.add_all_busy(1.5)
    store.add_all_busy(0.25)
    store.add_point({"t": 1.0}, [])
    assert store.points()[1][-1]["all_busy_seconds"] == 1.75
    assert store.totals()["all_busy_seconds"] == 1.75


def test_intents_match_one_process(directory):
    store = HistoryStore(directory)
    store.add_intent(42, 555, "admin", "SIGINT")
    assert store.intent(42, 555)["login"] == "admin"
    assert store.intent(42, 556) is None, "a reused pid is another process"


def test_the_apis_since_and_kinds_parse_or_say_why_not():
    """The parsers of the API's ``since`` and ``kinds`` (the controller makes a BadQuery a 400)."""
    assert parse_since("0") == 0.0 and parse_since("1795569409.5") == 1795569409.5
    assert parse_kinds("series") == ("series",) and parse_kinds("exits, series") == ("exits", "series")
    for text in ("x", "-1", "inf", "nan", ""):
        with pytest.raises(BadQuery, match="since must be epoch seconds"):
            parse_since(text)
    for text in ("", "exits,", "pids"):
        with pytest.raises(BadQuery, match="kinds must be a comma list"):
            parse_kinds(text)


def test_classify_exit_follows_odoo_order():
    assert classify_exit({"cpu_limit": (61.0, 61), "vms": 3 * GIB, "limit_memory_soft": GIB})[0] == "time_cpu"
    assert classify_exit({"memory_error": "x", "vms": 3 * GIB, "limit_memory_soft": GIB})[0] == "memory_hard"
    reason, detail = classify_exit({"vms": int(2.1 * GIB), "limit_memory_soft": 2 * GIB})
    assert reason == "memory_soft" and detail == "VMS 2.10 GiB > soft 2.00 GiB"
    assert classify_exit({"requests": 10, "limit_request": 10})[0] == "limit_request"
    assert classify_exit({"parent_changed": True})[0] == "crashed"
    assert classify_exit({"exception": "KeyError: 1"}) == ("crashed", "KeyError: 1")
    assert classify_exit({"intent": {"login": "bob", "signal": "SIGINT"}}) == ("recycled", "recycled by bob (SIGINT)")
    assert classify_exit({})[0] == "reload"
    assert classify_exit({"decided": ("unknown", "max age")}) == ("unknown", "max age")


def _busy(kind, since, url=None, cron=None):
    return {"kind": kind, "state": "busy", "since": since, "url": url, "cron_job": cron}


def test_infer_exit_of_a_vanished_worker():
    config = {"limit_time_real": 120, "limit_time_real_cron": -1}
    now = 10_000.0
    reason, detail, record = infer_exit([_busy("http", now - 121, "/slow")], now, config)
    assert reason == "time_real" and "120" in detail
    assert doing_of(record, now) == {"url": "/slow", "cron_job": None, "elapsed": 121.0, "db": None}
    assert infer_exit([_busy("http", now - 30, "/x")], now, config)[0] == "crashed"
    assert infer_exit([], now, config)[0] == "crashed"
    # A cron job: limit_time_real_cron, -1 meaning limit_time_real; 0 meaning none.
    job = _busy("cron", now - 200, cron={"id": 3, "name": "Mail", "db": "prod"})
    assert infer_exit([job], now, config)[0] == "time_real"
    assert infer_exit([job], now, dict(config, limit_time_real_cron=0))[0] == "crashed"
    forced = infer_exit([_busy("http", now - 500, "/x")], now, config, {"login": "admin", "signal": "SIGTERM"})
    assert forced[0] == "recycled"


def test_listen_backlog_counts_connections_nobody_accepted():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        inode = socket_inode(server)
        assert listen_backlog(inode) == 0
        clients = [socket.create_connection(server.getsockname()) for _ in range(3)]
        try:
            deadline = time.monotonic() + 5
            while listen_backlog(inode) < 3 and time.monotonic() < deadline:
                time.sleep(0.01)
            assert listen_backlog(inode) == 3
            server.accept()[0].close()
            assert listen_backlog(inode) == 2
            assert find_listen_inode(os.getpid(), server.getsockname()[1]) == inode
        finally:
            for client in clients:
                client.close()
    assert listen_backlog(inode) is None


def test_long_windows_are_merged_into_fewer_points(directory):
    store = HistoryStore(directory, interval=60, rows_per_point=1)
    for i in range(25):
        processes = [{"pid": 7, "role": "http", "rss": i, "vms": i, "cpu_percent": 0.0}]
        point = {"t": 1000.0 + 60 * i, "utilization": i / 24, "http_busy": i % 5, "http_capacity": 4}
        store.add_point(dict(point, backlog=i % 7, requests_per_second=float(i), longest_busy=None), processes)
    interval, points = store.points(max_points=10)
    assert interval == 180  # groups of 3, the latest point ending the last one
    assert [p["t"] for p in points] == [1000.0 + 60 * i for i in (0, 3, 6, 9, 12, 15, 18, 21, 24)]
    last = points[-1]  # points 22, 23, 24
    assert last["backlog"] == max(22 % 7, 23 % 7, 24 % 7)
    assert last["http_busy"] == max(22 % 5, 23 % 5, 24 % 5)
    assert last["requests_per_second"] == 23.0
    assert last["utilization"] == round(23 / 24, 3)
    assert last["processes"][0]["vms"] == 24
    assert last["longest_busy"] is None
    assert points[0]["t"] == 1000.0 and len(store.points(max_points=100)[1]) == 25


def test_recorder_remembers_the_last_request_for_the_exit_record(tmp_path):
    closed = []
    rec = Recorder(
        lambda: (os.getpid(), 4), base=str(tmp_path), on_close=lambda b: closed.append(os.path.exists(b.path))
    )
    assert rec.last_doing(time.time()) is None
    slot = rec.begin_request("/web/dataset/call_kw/res.partner/read")
    busy = rec.last_doing(time.time() + 5)
    assert busy["url"] == "/web/dataset/call_kw/res.partner/read" and busy["busy"] and busy["elapsed"] >= 5
    rec.end_request(slot)
    done = rec.last_doing(time.time() + 100)
    assert not done["busy"] and done["elapsed"] < 1, "the duration of the request, not the time since"
    rec.close()
    assert closed == [True], "the exit hook runs before the board file is deleted"


def _worker_killed_while_busy(base, path, busy_for=0.0):
    """A child process of this one (the "master") killed ``busy_for`` seconds into a request
    for ``path``: its pid and the server directory where its board file was left."""
    ready_r, ready_w = os.pipe()
    child = os.fork()
    if child == 0:  # a worker busy on a request until it is killed
        try:
            rec = Recorder(lambda: (os.getppid(), 4), base=base)
            rec.begin_request(path)
            os.write(ready_w, b"x")
            time.sleep(60)
        finally:
            os._exit(0)
    os.read(ready_r, 1)
    time.sleep(busy_for)
    os.kill(child, signal.SIGKILL)
    os.waitpid(child, 0)
    return child, board.server_dir(os.getpid(), board.start_ticks(os.getpid()), base)


def test_sampler_records_a_killed_busy_worker_from_the_board_it_left(tmp_path):
    base = str(tmp_path)
    child, directory = _worker_killed_while_busy(base, "/slow/report", busy_for=1.2)
    # Killed 1.2 s into the request: the master (4 s beat) does that for limit_time_real 5.
    config = {"limit_time_real": 5, "limit_time_real_cron": -1, "workers": 1}
    sampler = Sampler(os.getpid(), "prefork", config, directory, base=base, interval=1)
    sampler.tick(time.time())
    (gone,) = sampler.store.exits()
    assert gone["pid"] == child and gone["reason"] == "time_real"
    assert gone["doing"]["url"] == "/slow/report" and gone["doing"]["elapsed"] >= 1.2
    assert not [name for name in os.listdir(directory) if name.endswith(".board")], "the file left behind is deleted"
    # The same tick wrote the first point, with this process (the "master") in it.
    interval, points = sampler.store.points()
    assert interval == 1 and points[-1]["processes"][0]["pid"] == os.getpid()
    assert points[-1]["http_capacity"] == 1 and points[-1]["backlog"] == 0


def test_a_look_at_the_board_before_the_harvest_loses_no_exit(tmp_path):
    # The dashboard's, the heartbeat's or the crons view's read of the board can come first.
    base = str(tmp_path)
    child, directory = _worker_killed_while_busy(base, "/killed/first", busy_for=0.1)
    activity, status = snapshot.read_activity_board(os.getpid(), base=base)
    assert status["available"] and child not in activity
    sampler = Sampler(os.getpid(), "prefork", {"limit_time_real": 120, "workers": 1}, directory, base=base, interval=1)
    sampler.harvest()
    (gone,) = sampler.store.exits()
    assert (gone["pid"], gone["reason"], gone["doing"]["url"]) == (child, "crashed", "/killed/first")
    assert board.dead_boards(os.getpid(), base) == []


def test_summarize_exits_by_role():
    exits = [_exit(1), _exit(2), _exit(3, reason="limit_request"), _exit(4, role="cron", reason="time_real")]
    assert history.summarize_exits(exits) == {
        "http": {"count": 3, "mostly": "memory_soft", "reasons": {"memory_soft": 2, "limit_request": 1}},
        "cron": {"count": 1, "mostly": "time_real", "reasons": {"time_real": 1}},
    }
    assert history.summarize_exits([]) == {}


def test_last_seen_gives_the_peaks_of_a_process_over_its_life(directory):
    store = HistoryStore(directory, interval=60)
    for i in range(10):
        processes = [{"pid": 5, "role": "master", "rss": 1, "vms": 1, "cpu_seconds": 0.0}]
        if 2 <= i < 8:  # pid 7 lived from point 2 to point 7
            processes.append({"pid": 7, "role": "cron", "rss": 100 + i, "vms": 1000 - i, "cpu_seconds": float(i)})
        if i == 0:  # an earlier process with the same pid
            processes.append({"pid": 7, "role": "http", "rss": 10**9, "vms": 10**9, "cpu_seconds": 1.0})
        store.add_point({"t": float(i)}, processes)
    assert store.last_seen(7) == (107, 998, 7.0, "cron")
    assert store.last_seen(8) is None


def test_listen_backlog_from_sock_diag_and_proc_agree():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        inode = socket_inode(server)
        clients = [socket.create_connection(server.getsockname()) for _ in range(2)]
        try:
            deadline = time.monotonic() + 5
            while listen_backlog(inode) < 2 and time.monotonic() < deadline:
                time.sleep(0.01)
            tables = ("/proc/net/tcp", "/proc/net/tcp6")  # not the default object: the /proc path
            assert listen_backlog(inode) == listen_backlog(inode, tables=tables) == 2
        finally:
            for client in clients:
                client.close()


def test_a_zombie_is_left_to_its_parent_then_recorded(tmp_path):
    base = str(tmp_path)
    ready_r, ready_w = os.pipe()
    child = os.fork()
    if child == 0:  # a worker that dies without recording its exit
        rec = Recorder(lambda: (os.getppid(), 4), base=base)
        slot = rec.begin_request("/crash")
        os.write(ready_w, b"x")
        os._exit(3 if slot else 4)
    os.read(ready_r, 1)
    directory = board.server_dir(os.getpid(), board.start_ticks(os.getpid()), base)
    assert wait_until(lambda: any(is_zombie(key) for key in _board_keys(directory)), timeout=5), "no zombie"
    start = board.start_ticks(child)  # a zombie reads as gone
    sampler = Sampler(os.getpid(), "prefork", {"limit_time_real": 120, "workers": 1}, directory, base=base, interval=1)
    sampler.harvest()
    assert sampler.store.exits() == [], "not reaped yet: its parent records it"
    assert start is None
    os.waitpid(child, 0)
    sampler.harvest()
    (gone,) = sampler.store.exits()
    assert gone["pid"] == child and gone["reason"] == "crashed" and gone["doing"]["url"] == "/crash"


def _board_keys(directory):
    return [
        tuple(map(int, name[: -len(".board")].split("-"))) for name in os.listdir(directory) if name.endswith(".board")
    ]


def test_a_shrunk_file_is_grown_back_instead_of_crashing(directory):
    store = HistoryStore(directory, interval=3600)
    store.add_exit(_exit(1))
    os.truncate(store.path, 100)  # only this user or root can do that
    store.add_exit(_exit(2))  # would be SIGBUS on the mapping
    assert os.path.getsize(store.path) == history.file_size(store.points_cap, store.rows_cap)


def test_a_sampler_not_elected_waits_in_the_kernel_and_takes_over_at_once(tmp_path):
    """Two samplers of one server (two processes' worth: a flock is held per open file):
    the one not elected never wakes while it waits, and samples as soon as the other stops."""
    config = {"limit_time_real": 120, "workers": 1}
    first = Sampler(os.getpid(), "prefork", config, base=str(tmp_path), interval=1).start()
    second = None
    try:
        assert wait_until(lambda: first._last_point, timeout=5), "the first sampler never sampled"
        second = Sampler(os.getpid(), "prefork", config, base=str(tmp_path), interval=1).start()
        assert wait_until(lambda: second._lock_fd is not None, timeout=5)
        before = settled_wakeups(second._thread)
        time.sleep(3 * sampler_module.TICK)
        assert wakeups(second._thread) == before, "a sampler that is not elected woke up"
        assert not second._last_point and first._last_point
        first.stop()
        first._thread.join(5)
        assert first._lock_fd is None, "a stopped sampler keeps the election"
        assert wait_until(lambda: second._last_point, timeout=2 * sampler_module.TICK + 1), "no takeover"
    finally:
        first.stop()
        if second is not None:
            second.stop()


def _hold_history_lock(path):
    """Another process holding the history file's exclusive lock; returns what releases it."""
    ready_r, ready_w = os.pipe()
    release_r, release_w = os.pipe()
    child = os.fork()
    if child == 0:
        try:
            fd = os.open(path, os.O_RDWR)
            fcntl.flock(fd, fcntl.LOCK_EX)
            os.write(ready_w, b"x")
            os.read(release_r, 1)
        finally:
            os._exit(0)
    os.close(ready_w)
    assert os.read(ready_r, 1) == b"x", "the holder could not lock the file"

    def release():
        os.write(release_w, b"x")
        os.waitpid(child, 0)

    return release


def test_a_bounded_wait_gives_up_on_a_history_file_another_process_holds(directory):
    store = HistoryStore(directory)
    release = _hold_history_lock(store.path)
    try:
        started = time.monotonic()
        with pytest.raises(history.HistoryBusy), store.holding(timeout=0.05):
            pass
        assert 0.05 <= time.monotonic() - started < 1.0
        with pytest.raises(history.HistoryBusy), store._locked(timeout=0):
            pass
    finally:
        release()
    # Free again: calls inside ``holding`` take no second lock (a Lock is not reentrant).
    with store.holding(timeout=0.05):
        assert store.add_exit(_exit(5))
        assert store.exits()[0]["pid"] == 5


def test_the_master_never_waits_for_the_history_file_its_sampler_records_the_exact_cause(tmp_path):
    """The prefork master's loop records a reaped worker's cause with a bounded wait; when
    another process holds the history file, the exit goes to its sampler's thread, with
    the master's cause, not an inferred one, and the board file stays until then."""
    base = str(tmp_path)
    child, directory = _worker_killed_while_busy(base, "/stuck")
    config = {"limit_time_real": 120, "workers": 1}
    sampler = Sampler(os.getpid(), "prefork", config, directory, base=base, interval=1)
    (key,) = _board_keys(directory)
    cause = ("time_real", "killed by the master after 9 s without a heartbeat (limit_time_real 8 s)")
    release = _hold_history_lock(os.path.join(directory, history.FILE_NAME))
    try:
        started = time.monotonic()
        assert sampler.record_dead(key, time.time(), cause, timeout=0.02) is False
        assert time.monotonic() - started < 0.5, "the master's loop waited"
        assert _board_keys(directory) == [key], "the board file is kept for the deferred record"
    finally:
        release()
    sampler.harvest()
    (gone,) = sampler.store.exits()
    assert (gone["pid"], gone["reason"], gone["detail"]) == (child, *cause)
    assert gone["doing"]["url"] == "/stuck"
    assert _board_keys(directory) == []
    # Uncontended, the bounded wait records at once.
    assert sampler.record_dead((key[0] + 1, key[1]), time.time(), ("crashed", "killed by SIGSEGV"), timeout=0.02)


@pytest.fixture
def child():
    """A process of this test's "master" (it sleeps), killed at the end if the test did not."""
    ready_r, ready_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.write(ready_w, b"x")
        time.sleep(30)
        os._exit(0)
    os.read(ready_r, 1)
    yield pid
    with contextlib.suppress(ProcessLookupError, ChildProcessError):
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)


def test_the_request_rate_counts_the_last_requests_of_workers_that_exited(tmp_path, child):
    """A worker's board goes with it: the requests it served since the last point (or in a
    life shorter than one) are counted from its exit record, once."""
    sampler = Sampler(os.getpid(), "prefork", {"workers": 2}, base=str(tmp_path), interval=1)
    sampler.point(100.0, {child: (10, [])}, 2)
    sampler.point(101.0, {child: (14, [])}, 2)
    assert sampler.store.points()[1][-1]["requests_per_second"] == 4.0
    # It served 25 in all and exited; another lived and served 7 between two points.
    sampler.store.add_exit(_exit(child, reason="limit_request", requests=25))
    sampler.store.add_exit(_exit(child + 1, reason="limit_request", requests=7))
    sampler.store.add_exit(_exit(child + 2, role="cron", requests=3))  # a cron worker counts jobs
    os.kill(child, signal.SIGKILL)
    os.waitpid(child, 0)
    sampler.point(103.0, {}, 2)
    assert sampler.store.points()[1][-1]["requests_per_second"] == (25 - 14 + 7) / 2
    sampler.point(104.0, {}, 2)
    assert sampler.store.points()[1][-1]["requests_per_second"] == 0.0, "counted twice"


def test_a_late_exit_record_counts_only_what_the_worker_served_since_it_was_last_seen(tmp_path, child):
    """A zombie's exit is recorded when its master reaps it, a point or more after it left the
    process list: its requests were counted up to its last board count, not again."""
    sampler = Sampler(os.getpid(), "prefork", {"workers": 2}, base=str(tmp_path), interval=1)
    sampler.point(100.0, {child: (4000, [])}, 2)
    sampler.point(101.0, {child: (4010, [])}, 2)
    os.kill(child, signal.SIGKILL)
    os.waitpid(child, 0)
    sampler.point(102.0, {}, 2)  # gone, no record yet
    sampler.store.add_exit(_exit(child, reason="crashed", requests=4012))
    sampler.point(103.0, {}, 2)
    assert [p["requests_per_second"] for p in sampler.store.points()[1]] == [0.0, 10.0, 0.0, 2.0]
