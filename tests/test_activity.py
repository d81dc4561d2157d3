"""The activity board and the API fields built from it, with real processes and threads."""

import json
import os
import signal
import threading
import time
from typing import get_type_hints

import pytest
from waiting import wait_until

from worker_inspector import engine
from worker_inspector.engine import activity, board, schema
from worker_inspector.engine.activity import add_activity
from worker_inspector.engine.board import ProcessBoard, read_board, start_ticks
from worker_inspector.engine.recorder import Recorder

SERVER = os.getpid()


@pytest.fixture
def base(tmp_path):
    return str(tmp_path)


@pytest.fixture
def recorder(base):
    rec = Recorder(lambda: (SERVER, 8), base=base)
    yield rec
    rec.close()


def own_records(base, pid=None):
    requests, records = read_board(SERVER, base=base).get(pid or os.getpid(), (0, []))
    return requests, records


def test_request_shows_busy_with_path_user_then_idle(recorder, base):
    before = time.time()
    slot = recorder.begin_request("/web/dataset/call_kw/res.partner/search_read")
    recorder.set_user("prod", 2, "admin")
    requests, [record] = own_records(base)
    assert requests == 1
    assert record["state"] == "busy"
    assert record["kind"] == "http"
    assert record["tid"] == threading.get_native_id()
    assert record["url"] == "/web/dataset/call_kw/res.partner/search_read"
    assert (record["db"], record["uid"], record["login"]) == ("prod", 2, "admin")
    assert before <= record["since"] <= time.time()
    assert record["requests"] == 1
    assert record["cron_job"] is None

    recorder.end_request(slot)
    requests, [record] = own_records(base)
    assert record["state"] == "idle"
    assert (record["url"], record["db"], record["uid"], record["login"]) == (None, None, None, None)
    assert record["requests"] == 1

    recorder.end_request(recorder.begin_request("/web/health"))
    assert own_records(base)[0] == 2


def test_long_and_non_ascii_paths_are_truncated_cleanly(recorder, base):
    # PATH_INFO is the raw path decoded as latin-1; é is two bytes in UTF-8.
    path = "/shop/" + "é" * 300
    wsgi_path = path.encode("utf-8").decode("latin-1")
    recorder.begin_request(wsgi_path)
    url = own_records(base)[1][0]["url"]
    assert url.startswith("/shop/éé")
    assert len(url.encode("utf-8", "replace")) <= 255 + 3


def test_user_without_request_is_ignored(recorder, base):
    recorder.set_user("prod", 2, "admin")
    assert own_records(base) == (0, [])


def test_cron_job_inside_a_request_and_on_its_own(recorder, base):
    slot = recorder.begin_request("/web/dataset/call_button/ir.cron/method_direct_trigger")
    recorder.begin_cron(7, "Mail: send queued", "prod", 2)
    record = own_records(base)[1][0]
    assert record["state"] == "busy" and record["kind"] == "http"
    assert record["url"].endswith("method_direct_trigger")
    assert record["cron_job"] == {"id": 7, "name": "Mail: send queued", "db": "prod"}
    recorder.end_cron(slot)
    record = own_records(base)[1][0]
    assert record["state"] == "busy" and record["cron_job"] is None
    recorder.end_request(slot)

    slot = recorder.begin_cron(9, "Auto-vacuum", "prod", 1)
    record = own_records(base)[1][0]
    assert (record["state"], record["kind"], record["url"]) == ("busy", "cron", None)
    assert (record["db"], record["uid"]) == ("prod", 1)
    assert record["cron_job"] == {"id": 9, "name": "Auto-vacuum", "db": "prod"}
    recorder.end_cron(slot)
    record = own_records(base)[1][0]
    assert (record["state"], record["cron_job"]) == ("idle", None)
    assert record["requests"] == 1  # jobs are not requests


def test_each_thread_has_its_record_given_back_when_it_ends(recorder, base):
    started, release = threading.Barrier(4), threading.Event()
    tids = []

    def serve(n):
        slot = recorder.begin_request(f"/thread/{n}")
        tids.append(threading.get_native_id())
        started.wait()
        release.wait()
        recorder.end_request(slot)

    threads = [threading.Thread(target=serve, args=(n,)) for n in range(3)]
    for thread in threads:
        thread.start()
    started.wait()
    requests, records = own_records(base)
    assert requests == 3
    assert sorted(r["url"] for r in records) == ["/thread/0", "/thread/1", "/thread/2"]
    assert {r["tid"] for r in records} == set(tids)
    assert all(r["state"] == "busy" and r["requests"] == 1 for r in records)
    release.set()
    for thread in threads:
        thread.join()
    # Ended threads gave their records back: nothing of them shows.
    assert wait_until(lambda: own_records(base)[1] == [], interval=0.01)
    assert len(recorder.board._free) == recorder.board.slots


def test_full_board_records_nothing_more_and_never_raises(base):
    rec = Recorder(lambda: (SERVER, 1), base=base)
    try:
        held = threading.Event()
        done = threading.Event()

        def hold():
            rec.begin_request("/first")
            held.set()
            done.wait()

        thread = threading.Thread(target=hold)
        thread.start()
        held.wait()
        assert rec.begin_request("/second") is None
        rec.set_user("db", 1, "x")
        assert [r["url"] for r in own_records(base)[1]] == ["/first"]
        done.set()
        thread.join()
    finally:
        rec.close()


def test_a_dropped_recorder_does_nothing_at_fork(base):
    recorder = Recorder(lambda: (SERVER, 2), base=base, report_at_fork=True)
    del recorder
    pid = _fork(lambda: None)
    os.waitpid(pid, 0)
    assert not os.path.exists(board.root_dir(base))


def test_disabled_or_failing_recorders_record_nothing(base):
    silent = Recorder(lambda: None, base=base)
    assert silent.begin_request("/websocket") is None
    assert silent.begin_cron(1, "x", "db") is None

    def broken():
        raise RuntimeError("no server")

    failing = Recorder(broken, base=base)
    assert failing.begin_request("/web") is None
    assert read_board(SERVER, base=base) == {}


def _fork(child):
    pid = os.fork()
    if pid == 0:  # child: never return into pytest
        try:
            child()
        finally:
            os._exit(0)
    return pid


def test_dead_process_never_shows_and_its_file_stays_for_its_exit(recorder, base):
    ready_r, ready_w = os.pipe()

    def child():
        stuck = Recorder(lambda: (SERVER, 2), base=base)
        stuck.begin_request("/stuck")
        os.write(ready_w, b"x")
        time.sleep(60)

    pid = _fork(child)
    os.read(ready_r, 1)
    [record] = read_board(SERVER, base=base)[pid][1]
    assert (record["state"], record["url"]) == ("busy", "/stuck")
    files = os.listdir(board.server_dir(SERVER, start_ticks(SERVER), base))
    start_ticks_of_dead = start_ticks(pid)
    assert f"{pid}-{start_ticks_of_dead}.board" in files

    os.kill(pid, signal.SIGKILL)
    # Killed but not reaped yet: a zombie is dead too.
    assert wait_until(lambda: start_ticks(pid) is None, interval=0.01)
    assert os.path.exists(f"/proc/{pid}")
    assert pid not in read_board(SERVER, base=base)
    os.waitpid(pid, 0)
    assert pid not in read_board(SERVER, base=base)
    files = os.listdir(board.server_dir(SERVER, start_ticks(SERVER), base))
    # Its request log stays (bounded, README: Request log); its board too, the only record of how
    # it ended, until the history's sampler records its exit (``Sampler.harvest``, test_history).
    left = sorted(name for name in files if name.startswith(f"{pid}-"))
    assert left == [f"{pid}-{start_ticks_of_dead}.board", f"{pid}-{start_ticks_of_dead}.requests"]
    assert (pid, start_ticks_of_dead) in board.dead_boards(SERVER, base)


def test_a_reused_pid_never_inherits_records(base):
    # A file for this very pid but another start time: a dead process whose
    # pid the kernel gave to us. It must not show; it is a dead process's board.
    stale = ProcessBoard(SERVER, 2, base=base)
    stale.claim().begin_request(b"/old-life")
    stale.detach()
    ghost = os.path.join(stale.dir, f"{os.getpid()}-{stale.start - 1}.board")
    os.rename(stale.path, ghost)
    assert read_board(SERVER, base=base) == {}
    assert board.dead_boards(SERVER, base) == [(os.getpid(), stale.start - 1)]


def test_forked_child_writes_its_own_file_not_its_parents(recorder, base):
    slot = recorder.begin_request("/parent")
    done_r, done_w = os.pipe()

    def child():
        # The child inherited the parent's recorder, open board and thread record.
        child_slot = recorder.begin_request("/child")
        recorder.end_request(child_slot)
        recorder.begin_request("/child-busy")
        os.write(done_w, b"x")
        time.sleep(60)

    pid = _fork(child)
    try:
        os.read(done_r, 1)
        found = read_board(SERVER, base=base)
        assert [(r["url"], r["requests"]) for r in found[os.getpid()][1]] == [("/parent", 1)]
        assert [(r["url"], r["requests"]) for r in found[pid][1]] == [("/child-busy", 2)]
        assert found[pid][0] == 2 and found[os.getpid()][0] == 1
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    recorder.end_request(slot)
    assert own_records(base)[1][0]["state"] == "idle"


def test_workers_forked_after_the_recorder_report_idle_at_once(base):
    recorder = Recorder(lambda: (SERVER, 4), base=base, report_at_fork=True)
    ready_r, ready_w = os.pipe()

    def child():
        os.write(ready_w, b"x")  # forked: nothing served yet
        time.sleep(60)

    try:
        forked_at = time.time()
        pid = _fork(child)
        os.read(ready_r, 1)
        found = wait_until(lambda: read_board(SERVER, base=base).get(pid), interval=0.01)
        assert found
        requests, [record] = found
        assert (record["state"], record["kind"], record["url"], requests) == ("idle", None, None, 0)
        assert record["since"] >= forked_at - 0.01
        # The recording process itself opened nothing.
        assert os.getpid() not in read_board(SERVER, base=base)
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        recorder.close()


def test_reader_never_sees_a_torn_record(base):
    """A writer process rewrites its record as fast as it can; every read is whole."""

    def pause():
        # A few microseconds in each state (a real request writes three times
        # per request, milliseconds apart): the reader gets windows between writes.
        until = time.perf_counter() + 5e-6
        while time.perf_counter() < until:
            pass

    def child():
        rec = Recorder(lambda: (SERVER, 2), base=base)
        n = 0
        while True:
            n += 1
            slot = rec.begin_request(f"/n/{n}")
            pause()
            rec.set_user(f"db{n}", n, f"login{n}")
            pause()
            rec.end_request(slot)
            pause()

    pid = _fork(child)
    try:
        assert wait_until(lambda: pid in read_board(SERVER, base=base), interval=0.01)
        seen_busy = seen_user = 0
        # Read for a second at least, and until both kinds of busy record were seen.
        started = time.monotonic()
        while time.monotonic() - started < 1.0 or (seen_busy < 50 or seen_user < 10):
            assert time.monotonic() - started < 30, (seen_busy, seen_user)
            records = read_board(SERVER, base=base).get(pid, (0, []))[1]
            for r in records:
                if r["state"] == "idle":
                    assert (r["url"], r["db"], r["uid"], r["login"]) == (None, None, None, None)
                    continue
                seen_busy += 1
                n = int(r["url"].rsplit("/", 1)[1])
                # Right after begin_request the user is not set yet.
                if r["db"] is not None:
                    seen_user += 1
                    assert (r["db"], r["uid"], r["login"]) == (f"db{n}", n, f"login{n}")
                else:
                    assert (r["uid"], r["login"]) == (None, None)
                assert r["requests"] == n
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)


def test_boards_of_dead_servers_are_removed(base):
    live = ProcessBoard(SERVER, 1, base=base)
    dead = board.server_dir(SERVER, start_ticks(SERVER) - 1, base)
    os.mkdir(dead, 0o700)
    open(os.path.join(dead, "1-2.board"), "w").close()
    board.remove_dead_servers(base)
    assert not os.path.exists(dead)
    assert os.path.exists(live.path)
    live.close()
    assert not os.path.exists(live.path)


def test_board_directories_are_private(base):
    live = ProcessBoard(SERVER, 1, base=base)
    for path in (board.root_dir(base), live.dir):
        assert os.stat(path).st_mode & 0o777 == 0o700
    assert os.stat(live.path).st_mode & 0o777 == 0o600
    live.close()


# --- API fields --------------------------------------------------------------


def _record(pid, tid, state="idle", since=100.0, kind="http", url=None, requests=1, cron_job=None, backend_pid=None):
    return {
        "pid": pid, "tid": tid, "kind": kind, "state": state, "since": since, "requests": requests,
        "uid": 2 if state == "busy" else None, "backend_pid": backend_pid, "db": "prod" if state == "busy" else None,
        "login": "admin" if state == "busy" else None, "url": url, "cron_job": cron_job,
    }  # fmt: skip


def _snapshot(mode, processes, threads=(), config=None, served_by=11):
    return {
        "server": {"mode": mode, "pid": 10},
        "served_by": served_by,
        "taken_at": 160.0,
        "config": config or {"workers": 3, "max_cron_threads": 1, "db_maxconn": 64},
        "processes": [{"pid": pid, "role": role} for pid, role in processes],
        "threads": [{"native_id": tid, "name": name, "kind": kind} for tid, name, kind in threads],
    }


def test_prefork_activity_utilization_and_cron():
    snap = _snapshot(
        "prefork",
        [(10, "master"), (11, "http"), (12, "http"), (13, "http"), (14, "cron"), (15, "gevent")],
        # read_threads reports the worker's pid as its main thread's id.
        threads=[(11, "MainThread", "main"), (99, "Worker 11 workthread", "worker"), (98, "other", "other")],
    )
    job = {"id": 5, "name": "Sleep", "db": "prod"}
    board_records = {
        11: (
            40,
            [
                _record(11, 11, "idle", 90.0, kind=None, requests=0),  # the main thread, since the fork
                _record(11, 99, "busy", 150.0, url="/worker_inspector/api/snapshot", requests=40),
            ],
        ),
        12: (7, [_record(12, 12, "busy", 130.0, url="/slow", requests=7, backend_pid=501)]),
        13: (3, [_record(13, 13, "idle", 120.0, requests=3)]),
        14: (0, [_record(14, 14, "busy", 100.0, kind="cron", requests=0, cron_job=job)]),
        77: (1, [_record(77, 77, "busy", 1.0, url="/not-of-this-server")]),
    }
    # Worker 12's cursor runs on a connection named after the master (a
    # preloaded registry's settings); its other session has its own name.
    sessions = [
        {"application_name": "odoo-12", "backend_pid": 500, "db": "prod", "state": "idle",
         "wait_event_type": "Client", "wait_event": "ClientRead", "duration": 80.0, "query": "SELECT 1"},
        {"application_name": "odoo-10", "backend_pid": 501, "db": "prod", "state": "active",
         "wait_event_type": "Timeout", "wait_event": "PgSleep", "duration": 30.0, "query": "SELECT pg_sleep(60)"},
        {"application_name": "odoo-10", "backend_pid": 502, "db": "prod", "state": "idle", "query": "COMMIT"},
        {"application_name": "odoo-77", "backend_pid": 503, "db": "prod", "state": "active", "query": "SELECT 3"},
        {"application_name": "psql", "backend_pid": 504, "db": "prod", "state": "active", "query": "SELECT 2"},
    ]  # fmt: skip
    # Thread 99 of worker 11 takes this snapshot.
    add_activity(snap, board_records, sessions, overdue_crons=[{"id": 1}], environ={}, observer_tid=99)
    procs = {p["pid"]: p for p in snap["processes"]}
    assert procs[12]["activity"] == {
        "state": "busy", "kind": "http", "since": 130.0, "elapsed": 30.0, "db": "prod", "uid": 2,
        "login": "admin", "url": "/slow", "requests": 7, "cron_job": None, "hidden": False, "observer": False,
    }  # fmt: skip
    assert procs[13]["activity"]["state"] == "idle" and procs[13]["activity"]["elapsed"] == 40.0
    assert procs[14]["activity"]["cron_job"] == job
    assert procs[10]["activity"] is None and procs[15]["activity"] is None
    assert [(s["backend_pid"], s["matched_by"]) for s in procs[12]["sql"]] == [
        (501, "cursor"),
        (500, "application_name"),
    ]
    assert procs[12]["sql"][0]["query"] == "SELECT pg_sleep(60)" and "application_name" not in procs[12]["sql"][0]
    assert procs[11]["sql"] == [] and procs[10]["sql"] == []
    assert [s["backend_pid"] for s in snap["sql_unattributed"]] == [502]
    # The serving worker's work thread serves requests; its main thread idles.
    threads = {t["native_id"]: t for t in snap["threads"]}
    assert threads[99]["activity"]["url"] == "/worker_inspector/api/snapshot"
    assert (threads[11]["activity"]["state"], threads[11]["activity"]["kind"]) == ("idle", None)
    assert threads[98]["activity"] is None and threads[99]["sql"] == []
    assert procs[11]["activity"]["url"] == "/worker_inspector/api/snapshot"
    assert procs[11]["activity"]["observer"] is True and threads[99]["activity"]["observer"] is True
    assert procs[12]["activity"]["observer"] is False
    # Busy: worker 12 only; 11 is busy taking this snapshot, which does not count.
    assert (snap["utilization"], snap["http_busy"], snap["http_capacity"]) == (0.333, 1, 3)
    assert snap["utilization_basis"] == "http_workers"
    assert snap["longest_busy"] == 60.0  # the cron job; other servers' records do not count
    assert snap["cron"] == {
        "max_cron_threads": 1,
        "runners": [{"pid": 14, "tid": None, "name": None, "activity": procs[14]["activity"]}],
        "overdue": None,
    }


def test_threaded_activity_utilization_and_overdue_crons():
    config = {"workers": 0, "max_cron_threads": 0, "db_maxconn": 20}
    threads = [(10, "MainThread", "main"), (21, "odoo.service.http.request.1", "http"),
               (22, "odoo.service.http.request.2", "http"), (23, "odoo.service.cron.cron0", "cron")]  # fmt: skip
    snap = _snapshot("threaded", [(10, "server")], threads, config, served_by=10)
    records = [
        _record(10, 21, "busy", 140.0, url="/a", requests=4, backend_pid=600),
        _record(10, 22, "busy", 155.0, url="/b", requests=2),
        _record(10, 23, "idle", 90.0, kind="cron", requests=0),
    ]
    overdue = [{"id": 3, "name": "Late", "db": "prod", "due_at": 50.0, "overdue": 110.0}]
    sessions = [
        {"application_name": "odoo-10", "backend_pid": 600, "state": "active", "duration": 2.0, "query": "SELECT"},
        {"application_name": "odoo-10", "backend_pid": 601, "state": "idle", "duration": 9.0, "query": "COMMIT"},
    ]
    add_activity(snap, {10: (9, records)}, sessions, overdue, environ={}, observer_tid=22)
    server = snap["processes"][0]["activity"]
    assert (server["state"], server["url"], server["requests"], server["elapsed"]) == ("busy", "/a", 9, 20.0)
    by_tid = {t["native_id"]: t["activity"] for t in snap["threads"]}
    assert by_tid[21]["url"] == "/a" and by_tid[21]["requests"] == 4
    assert by_tid[10] is None
    threads_sql = {t["native_id"]: [q["backend_pid"] for q in t["sql"]] for t in snap["threads"]}
    assert threads_sql == {10: [], 21: [600], 22: [], 23: []}
    assert [q["backend_pid"] for q in snap["processes"][0]["sql"]] == [600, 601]
    assert snap["sql_unattributed"] == []
    # (db_maxconn - max_cron_threads) // 2 = 10 requests at once; thread 22 takes the snapshot.
    assert (snap["http_busy"], snap["http_capacity"], snap["utilization"]) == (1, 10, 0.1)
    assert by_tid[22]["observer"] is True and by_tid[21]["observer"] is False
    assert snap["utilization_basis"] == "db_maxconn"
    assert snap["longest_busy"] == 20.0
    assert snap["cron"]["runners"] == [
        {"pid": 10, "tid": 23, "name": "odoo.service.cron.cron0", "activity": by_tid[23]}
    ]
    assert snap["cron"]["overdue"] == overdue

    snap = _snapshot("threaded", [(10, "server")], threads, config, served_by=10)
    add_activity(snap, {}, environ={"ODOO_MAX_HTTP_THREADS": "4"})
    assert (snap["http_busy"], snap["http_capacity"], snap["utilization"]) == (0, 4, 0.0)
    assert snap["utilization_basis"] == "ODOO_MAX_HTTP_THREADS"
    assert snap["longest_busy"] is None
    assert snap["processes"][0]["activity"] is None
    assert snap["cron"]["overdue"] == []


def test_request_thread_capacity_follows_odoo():
    config = {"db_maxconn": 64, "max_cron_threads": 2}
    assert activity.request_thread_capacity(config, {}) == (31, "db_maxconn")
    assert activity.request_thread_capacity(config, {"ODOO_MAX_HTTP_THREADS": "auto"}) == (31, "db_maxconn")
    assert activity.request_thread_capacity(config, {"ODOO_MAX_HTTP_THREADS": "8"}) == (8, "ODOO_MAX_HTTP_THREADS")
    assert activity.request_thread_capacity({"db_maxconn": 2, "max_cron_threads": 2}, {}) == (1, "db_maxconn")


def test_snapshot_of_this_process_carries_its_activity(recorder, base, monkeypatch):
    """take_snapshot reads the real board of a (threaded) server: this process."""
    from worker_inspector.engine import snapshot as snapshot_module

    monkeypatch.setenv("WORKER_INSPECTOR_BOARD_DIR", base)
    slot = recorder.begin_request("/here")
    snap = snapshot_module.take_snapshot(
        snapshot_module.ServerInfo(SERVER, snapshot_module.MODE_THREADED), {"workers": 0, "max_cron_threads": 1}
    )
    recorder.end_request(slot)
    me = next(t for t in snap["threads"] if t["native_id"] == threading.get_native_id())
    assert me["activity"]["url"] == "/here" and me["activity"]["state"] == "busy"
    assert snap["processes"][0]["activity"]["url"] == "/here"
    # The request taking the snapshot shows, and does not count itself busy.
    assert me["activity"]["observer"] is True
    assert set(me["activity"]) == set(get_type_hints(schema.Activity))
    assert snap["http_busy"] == 0 and snap["utilization"] == 0.0 and snap["longest_busy"] >= 0
    assert snap["cron"]["overdue"] is None and snap["cron"]["runners"] == []


def test_scope_hides_what_other_databases_do_but_not_how_busy_the_server_is():
    snap = _snapshot(
        "threaded",
        [(10, "server")],
        threads=[(21, "odoo.service.http.request.1", "http"), (22, "odoo.service.http.request.2", "http"),
                 (23, "odoo.service.http.request.3", "http")],
        served_by=10,
    )  # fmt: skip
    mine = dict(_record(10, 21, "busy", url="/mine", backend_pid=501), db="prod")
    theirs = dict(_record(10, 22, "busy", url="/theirs", backend_pid=502), db="other")
    anonymous = dict(_record(10, 23, "busy", url="/web/login"), db=None, uid=None, login=None)
    board_records = {10: (3, [mine, theirs, anonymous])}
    sessions = [
        {"application_name": "odoo-10", "backend_pid": 501, "db": "prod", "state": "active", "query": "SELECT 1"},
        {"application_name": "odoo-10", "backend_pid": 502, "db": "other", "state": "active", "query": "SELECT 2"},
    ]
    for thread, db in zip(snap["threads"], ("prod", "other", None), strict=True):
        thread.update(db=db, uid=2 if db else None, url="/x" if db else "/web/login")

    def scoped(several):
        copy = json.loads(json.dumps(snap))
        add_activity(copy, board_records, sessions, environ={})
        return activity.scope_to_database(copy, "prod", several_databases=several)

    one = scoped(several=False)
    acts = [t["activity"] for t in one["threads"]]
    assert [a["hidden"] for a in acts] == [False, True, False]
    assert (acts[1]["state"], acts[1]["db"], acts[1]["url"], acts[1]["login"]) == ("busy", None, None, None)
    assert (one["threads"][1]["db"], one["threads"][1]["url"]) == (None, None)
    assert [s["query"] for t in one["threads"] for s in t["sql"]] == ["SELECT 1"]
    assert one["http_busy"] == 3 and one["scope"] == {"db": "prod"}
    # Several databases: activity not tied to one is not shown either.
    several = scoped(several=True)
    assert [t["activity"]["hidden"] for t in several["threads"]] == [False, True, True]
    assert several["threads"][2]["url"] is None


def test_logins_are_filled_in_where_only_a_uid_is_known_in_this_database():
    cron = _record(10, 23, "busy", 150.0, kind="cron", requests=0)
    cron["login"] = None  # a scheduled action records its uid only
    other_db = dict(cron, db="other", tid=24, since=155.0)
    snap = _snapshot("threaded", [(10, "server")], [(23, "odoo.service.cron.cron0", "cron")], served_by=10)
    snap["threads"].append({"native_id": 30, "name": "websocket", "kind": "websocket", "uid": 2, "db": "prod"})
    snap["threads"].append({"native_id": 31, "name": "other db", "kind": "websocket", "uid": 2, "db": "other"})
    add_activity(snap, {10: (0, [cron, other_db])}, environ={})
    asked = []

    def logins_of(uids):
        asked.append(uids)
        return {2: "admin"}

    engine.add_logins(snap, lambda db, uids: logins_of(uids) if db == "prod" else {})
    threads = {t["native_id"]: t for t in snap["threads"]}
    assert asked == [[2]]
    assert threads[23]["activity"]["login"] == "admin"
    assert snap["processes"][0]["activity"]["login"] == "admin"
    assert (threads[30]["login"], threads[31]["login"]) == ("admin", None)  # uid 2 of "other" is someone else
