"""The addon's recorder defers its writes: the request path keeps the request in memory,
the process's writer publishes it (plain tests, real files, threads and processes)."""

import gc
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest
from waiting import settled_wakeups, wait_until, wakeups

from worker_inspector.engine import board, requestlog, stacks
from worker_inspector.engine.identity import process_key
from worker_inspector.engine.recorder import PREFORK_SLOTS, THREADED_SLOTS, Recorder

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def base(tmp_path):
    return str(tmp_path)


def _file_bytes(recorder):
    with open(recorder.board.path, "rb") as handle:
        return handle.read()


def _own_record(base):
    _requests, records = board.read_board(os.getpid(), base)[os.getpid()]
    (record,) = records
    return record


def test_the_request_path_writes_nothing_until_the_writer_turns(base):
    recorder = Recorder(lambda: (os.getpid(), PREFORK_SLOTS), base=base, deferred=True)
    try:
        recorder.slot()
        before = _file_bytes(recorder)
        slot = recorder.begin_request("/web/dataset/call_kw/res.partner/search_read")
        recorder.set_user("prod", 2, "admin", 4321)
        assert _file_bytes(recorder) == before  # nothing written by the request's thread
        assert _own_record(base)["state"] == "idle"
        assert recorder.flush() == 0  # no request finished yet; the record is written
        busy = _own_record(base)
        assert (busy["state"], busy["url"], busy["db"], busy["login"], busy["uid"]) == (
            "busy", "/web/dataset/call_kw/res.partner/search_read", "prod", "admin", 2,
        )  # fmt: skip
        assert busy["backend_pid"] == 4321
        time.sleep(0.01)
        recorder.end_request(slot, 404)
        assert _own_record(base)["state"] == "busy"  # still as last written
        assert requestlog.read_requests(os.getpid(), base) == []
        assert recorder.flush() == 1
        idle = _own_record(base)
        assert idle["state"] == "idle" and idle["kind"] == "http" and idle["requests"] == 1
        (logged,) = requestlog.read_requests(os.getpid(), base)
        assert logged["url"] == "/web/dataset/call_kw/res.partner/search_read"
        assert logged["rpc"] == "res.partner.search_read" and logged["status"] == 404
        assert (logged["db"], logged["uid"], logged["login"]) == ("prod", 2, "admin")
        assert logged["duration"] >= 0.01 and 0 <= logged["cpu_time"] <= logged["duration"]
        assert abs(logged["started_at"] - busy["since"]) < 1e-6
        # Nothing changed since: the writer's next turn writes nothing.
        written = _file_bytes(recorder)
        assert recorder.flush() == 0 and _file_bytes(recorder) == written
    finally:
        recorder.close()


def test_requests_between_two_turns_are_all_logged_in_order_and_counted(base):
    recorder = Recorder(lambda: (os.getpid(), PREFORK_SLOTS), base=base, deferred=True)
    try:
        for n in range(5):
            recorder.end_request(recorder.begin_request(f"/r/{n}"), 200)
        assert recorder.flush() == 5
        assert [r["url"] for r in requestlog.read_requests(os.getpid(), base)] == [f"/r/{n}" for n in range(5)]
        requests, _records = board.read_board(os.getpid(), base)[os.getpid()]
        assert requests == 5
        assert _own_record(base)["requests"] == 5
    finally:
        recorder.close()


def test_the_process_count_adds_each_threads_requests_once_also_after_it_ended(base):
    recorder = Recorder(lambda: (os.getpid(), THREADED_SLOTS), base=base, deferred=True)
    hook = recorder.wsgi(lambda _app, _environ, start_response: [start_response("200 OK", [])])

    def serve(count):
        for _ in range(count):
            hook(None, {"PATH_INFO": "/x"}, lambda *_a: None)

    try:
        serve(2)
        recorder.flush()
        served = 2
        own = process_key(os.getpid())
        for count in (3, 4):  # each thread ends, and gives its record back, before the next
            served += count
            done, end = threading.Event(), threading.Event()
            thread = threading.Thread(target=lambda: (serve(count), done.set(), end.wait(5)))  # noqa: B023
            thread.start()
            assert done.wait(5)
            recorder.flush()  # its record written while it lives
            end.set()
            thread.join()
            gc.collect()
            # Its end queued its record for the writer: nothing written (under the writer's
            # lock: none taken either).
            assert not recorder.idle(), "the writer would rest with a freed record unwritten"
            written = _file_bytes(recorder)
            with recorder.board.writing():
                assert _file_bytes(recorder) == written
            _requests, records = board.read_process(os.getpid(), own, base, live_only=False)
            assert thread.native_id in [record["tid"] for record in records]
            # The writer's turn (which every reader asks for first) writes it free, with the
            # process's count: the ended thread's requests counted once.
            recorder.flush()
            requests, records = board.read_process(os.getpid(), own, base, live_only=False)
            assert requests == served
            assert [record["tid"] for record in records] == [threading.get_native_id()]
            assert recorder.idle()
        assert len(recorder.board.claimed) == 1, "an ended thread kept its record"
        assert board.read_board(os.getpid(), base)[os.getpid()][0] == 9
        serve(1)
        assert recorder.flush() == 1
        assert board.read_board(os.getpid(), base)[os.getpid()][0] == 10
        assert _own_record(base)["requests"] == 3  # the thread's own count
    finally:
        recorder.close()


def test_a_scheduled_action_is_written_as_it_starts_and_ends(base):
    recorder = Recorder(lambda: (os.getpid(), PREFORK_SLOTS), base=base, deferred=True)
    try:
        slot = recorder.begin_cron(7, "Mail: send", "prod", 1)
        busy = _own_record(base)
        assert (busy["state"], busy["kind"], busy["cron_job"]) == (
            "busy", "cron", {"id": 7, "name": "Mail: send", "db": "prod"},
        )  # fmt: skip
        recorder.end_cron(slot)
        assert _own_record(base)["state"] == "idle"
        (logged,) = requestlog.read_requests(os.getpid(), base)
        assert logged["kind"] == "cron" and logged["cron_job"] == {"id": 7, "name": "Mail: send"}
    finally:
        recorder.close()


def test_closing_writes_what_is_left(base):
    recorder = Recorder(lambda: (os.getpid(), PREFORK_SLOTS), base=base, deferred=True)
    recorder.end_request(recorder.begin_request("/last"), 200)
    recorder.close()
    assert [r["url"] for r in requestlog.read_requests(os.getpid(), base)] == ["/last"]


CHILD = textwrap.dedent(
    """
    import os, sys, time
    sys.path.insert(0, {root!r})
    from worker_inspector.engine.recorder import Recorder
    recorder = Recorder(lambda: ({server}, 4), base={base!r}, inspect=True, deferred=True)
    slot = None
    for line in sys.stdin:
        command = line.strip()
        if command == "begin":
            slot = recorder.begin_request("/child/busy")
            recorder.set_user("prod", 5, "demo")
        elif command == "end":
            recorder.end_request(slot, 200)
        elif command == "exit":
            break
        print("ok", flush=True)
    """
)


@pytest.fixture
def child(base):
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD.format(root=ROOT, server=os.getpid(), base=base)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )

    def send(command):
        proc.stdin.write(command + "\n")
        proc.stdin.flush()
        if command != "exit":
            assert proc.stdout.readline().strip() == "ok"

    proc.send = send
    yield proc
    if proc.poll() is None:
        proc.kill()
    proc.wait()


def _child_record(child, base):
    found = board.read_board(os.getpid(), base).get(child.pid)
    return found[1][0] if found and found[1] else None


def _ctl_path(child, base):
    """The child's inspector socket."""
    key = process_key(child.pid)
    directory = board.server_dir(os.getpid(), board.start_ticks(os.getpid()), base)
    return os.path.join(directory, f"{key.pid}-{key.start}{board.CTL_SUFFIX}")


def _state_of(pid):
    with open(f"/proc/{pid}/stat") as handle:
        return handle.read().rpartition(")")[2].split()[0]


def _wait_for(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    return predicate()


def test_a_reader_has_another_process_write_its_records_before_it_reads(child, base):
    child.send("begin")
    assert _wait_for(lambda: os.path.exists(_ctl_path(child, base)))
    started = time.monotonic()
    assert stacks.request_flush(os.getpid(), base=base) == (1, 1)
    assert time.monotonic() - started < stacks.FLUSH_TIMEOUT
    busy = _child_record(child, base)
    assert (busy["state"], busy["url"], busy["login"]) == ("busy", "/child/busy", "demo")
    child.send("end")
    assert stacks.request_flush(os.getpid(), base=base) == (1, 1)
    assert _child_record(child, base)["state"] == "idle"
    (logged,) = requestlog.read_requests(os.getpid(), base)
    assert (logged["pid"], logged["url"], logged["status"], logged["login"]) == (child.pid, "/child/busy", 200, "demo")


def test_the_writer_turns_on_its_own_and_at_exit(child, base):
    child.send("begin")
    # Nobody asks: the inspector thread writes at its next turn.
    assert _wait_for(lambda: (_child_record(child, base) or {}).get("state") == "busy", 3 * stacks.WATCH_INTERVAL)
    child.send("end")
    child.send("exit")
    assert child.wait(10) == 0
    (logged,) = requestlog.read_requests(os.getpid(), base)
    assert logged["url"] == "/child/busy"


def test_a_flush_skips_dead_processes_and_times_out_on_one_that_does_not_answer(child, base):
    child.send("begin")
    ctl = _ctl_path(child, base)
    assert _wait_for(lambda: os.path.exists(ctl))
    os.kill(child.pid, signal.SIGSTOP)  # it cannot answer
    try:
        # The signal is delivered asynchronously: stopped only once its state says so.
        assert _wait_for(lambda: _state_of(child.pid) == "T")
        started = time.monotonic()
        assert stacks.request_flush(os.getpid(), base=base, timeout=0.3) == (0, 1)
        assert 0.3 <= time.monotonic() - started < 1.5
    finally:
        os.kill(child.pid, signal.SIGCONT)
    child.kill()
    child.wait()
    assert stacks.request_flush(os.getpid(), base=base) == (0, 0)  # its socket is left, it is gone
    assert os.path.exists(ctl)
    # The sampler's harvest: one listing finds the gone process's board file and socket.
    boards, sockets = board.dead_files(os.getpid(), base)
    assert [f"{key.pid}-{key.start}{board.CTL_SUFFIX}" for key in sockets] == [os.path.basename(ctl)]
    assert boards == sockets
    board.remove_sockets(os.getpid(), sockets, base)  # once the exit is recorded
    assert not os.path.exists(ctl)
    assert board.dead_files(os.getpid(), base) == (boards, [])


def test_a_flush_into_an_untrusted_directory_asks_nobody(tmp_path):
    base = tmp_path / "shared"
    base.mkdir()
    (base / f"worker_inspector-{os.geteuid()}").mkdir(mode=0o755)  # not private: not used
    os.chmod(base / f"worker_inspector-{os.geteuid()}", 0o755)
    with pytest.raises(board.UntrustedBoard):
        board.read_board(os.getpid(), str(base))
    assert stacks.request_flush(os.getpid(), base=str(base)) == (0, 0)


def test_without_its_writer_a_process_writes_every_change_at_once(base):
    # Something in the way of the inspector's socket: no inspector thread, so no writer.
    server_start = board.start_ticks(os.getpid())
    directory = board.server_dir(os.getpid(), server_start, base)
    os.makedirs(directory, mode=0o700)
    os.chmod(os.path.dirname(directory), 0o700)
    os.mkdir(os.path.join(directory, f"{os.getpid()}-{server_start}{board.CTL_SUFFIX}"))
    recorder = Recorder(lambda: (os.getpid(), PREFORK_SLOTS), base=base, inspect=True, deferred=True)
    try:
        slot = recorder.begin_request("/at/once")
        assert recorder.inspector is None
        assert _own_record(base)["state"] == "busy"
        recorder.end_request(slot, 200)
        assert [r["url"] for r in requestlog.read_requests(os.getpid(), base)] == ["/at/once"]
    finally:
        recorder.close()


def _app(status, body=b"ok", fail=False):
    """A plain WSGI application's ``__call__`` (``self`` first, as Odoo's ``Application``)."""

    def call(_self, environ, start_response):
        if fail:
            raise RuntimeError("boom")
        start_response(status, [("Content-Type", "text/plain")])
        return [body]

    return call


def test_the_wsgi_hook_records_each_request_with_its_user_and_the_status_of_its_response(base):
    recorder = Recorder(lambda: (os.getpid(), PREFORK_SLOTS), base=base, deferred=True)
    seen = []
    try:
        hooked = recorder.wsgi(_app("404 NOT FOUND", b"missing"))

        def start_response(line, headers, exc_info=None):
            seen.append(line)
            # Inside the request: the framework authenticates it.
            recorder.set_user("prod", 2, "admin", 4321, 3.5)
            recorder.flush()  # the writer's turn while the request is under way
            busy = _own_record(base)
            seen.append((busy["state"], busy["url"], busy["db"], busy["login"], busy["uid"], busy["backend_pid"]))
            (slot,) = recorder.board.claimed.values()
            seen.append(slot.slow_after(slot.current))

        assert hooked(None, {"PATH_INFO": "/web/dataset/call_kw/res.partner/read"}, start_response) == [b"missing"]
        assert seen == [
            "404 NOT FOUND", ("busy", "/web/dataset/call_kw/res.partner/read", "prod", "admin", 2, 4321), 3.5,
        ]  # fmt: skip
        assert recorder.flush() == 1
        (logged,) = requestlog.read_requests(os.getpid(), base)
        assert (logged["status"], logged["db"], logged["uid"], logged["login"], logged["rpc"]) == (
            404, "prod", 2, "admin", "res.partner.read",
        )  # fmt: skip
        assert _own_record(base)["state"] == "idle"
    finally:
        recorder.close()


def test_the_wsgi_hook_logs_an_escaped_error_as_500_and_lets_it_through(base):
    recorder = Recorder(lambda: (os.getpid(), PREFORK_SLOTS), base=base, deferred=True)
    try:
        hooked = recorder.wsgi(_app("200 OK", fail=True))

        def start_response(line, headers, exc_info=None):
            raise AssertionError("no response")

        with pytest.raises(RuntimeError, match="boom"):
            hooked(None, {"PATH_INFO": "/boom"}, start_response)
        recorder.wsgi(_app("302 FOUND"))(None, {}, lambda line, headers, exc_info=None: None)
        assert recorder.flush() == 2
        failed, found = requestlog.read_requests(os.getpid(), base)
        assert (failed["url"], failed["status"]) == ("/boom", 500)
        assert (found["url"], found["status"], found["db"], found["uid"], found["login"]) == (
            "/",
            302,
            None,
            None,
            None,
        )
        assert _own_record(base)["state"] == "idle"
    finally:
        recorder.close()


def test_the_writer_encodes_each_text_once_and_keeps_a_bounded_number(base, monkeypatch):
    monkeypatch.setattr(board, "TEXTS_KEPT", 8)
    monkeypatch.setattr(requestlog, "PATHS_KEPT", 8)
    board._TEXTS.clear()
    requestlog._PATHS.clear()
    recorder = Recorder(lambda: (os.getpid(), PREFORK_SLOTS), base=base, deferred=True)
    try:
        for n in range(20):
            slot = recorder.begin_request(f"/web/dataset/call_kw/m{n}/read")
            recorder.set_user(f"db{n % 3}", 2, "émile")
            recorder.end_request(slot, "200 OK")
        assert recorder.flush() == 20
        assert len(board._TEXTS) <= 8 and len(requestlog._PATHS) <= 8
        logged = requestlog.read_requests(os.getpid(), base)
        assert [r["rpc"] for r in logged] == [f"m{n}.read" for n in range(20)]
        assert {r["login"] for r in logged} == {"émile"} and [r["db"] for r in logged[:3]] == ["db0", "db1", "db2"]
    finally:
        recorder.close()


def test_an_idle_writer_sleeps_until_a_request_wakes_it(base):
    """With nothing to write or watch, the inspector thread blocks until a message: the next
    request wakes it, its record is written on the writer's own turn, then it sleeps again."""
    recorder = Recorder(lambda: (os.getpid(), PREFORK_SLOTS), base=base, inspect=True, deferred=True)
    try:
        recorder.slot()
        inspector = recorder.inspector
        assert wait_until(lambda: inspector.asleep, timeout=5), "an idle writer keeps waking"
        before = settled_wakeups(inspector.thread)
        time.sleep(6 * stacks.WATCH_INTERVAL)
        assert wakeups(inspector.thread) == before, "an idle writer woke up"
        slot = recorder.begin_request("/web/health")
        assert not inspector.asleep
        time.sleep(2 * stacks.WATCH_INTERVAL)
        assert _own_record(base)["state"] == "busy", "a request under way is written on the writer's turn"
        recorder.end_request(slot, "200 OK")
        assert wait_until(lambda: requestlog.read_requests(os.getpid(), base), timeout=5), "never written"
        assert wait_until(lambda: inspector.asleep, timeout=5), "the writer did not rest again"
        assert _own_record(base)["state"] == "idle"
    finally:
        recorder.close()
    inspector.thread.join(2)
    assert not inspector.thread.is_alive(), "closing did not wake and end the sleeping thread"


def _odoo_like_app(steps):
    """A WSGI application doing with its thread what Odoo's ``Application.__call__`` does
    (17.0-19.0): ``perf_t0`` set and the previous request's database and user dropped
    as it begins, then the database and user set once known; ``steps`` pause it."""
    import threading

    def app(environ, start_response):
        thread = threading.current_thread()
        steps.get("before_reset", lambda: None)()
        thread.perf_t0 = time.time()
        for name in ("dbname", "uid"):
            if hasattr(thread, name):
                delattr(thread, name)
        if environ["PATH_INFO"] != "/nodb":
            thread.dbname, thread.uid = "prod", 7
        steps.get("busy", lambda: None)()
        start_response("200 OK", [])
        return [b""]

    return app


def test_a_request_s_database_and_user_are_read_on_its_thread_as_odoo_keeps_them(base):
    import threading

    contexts = []

    def busy_context(thread, db):
        contexts.append((thread, db))
        return 4242, 3.0

    recorder = Recorder(lambda: (os.getpid(), PREFORK_SLOTS), base=base, deferred=True, busy_context=busy_context)
    seen = {}
    steps = {}
    app = recorder.wsgi(lambda _app, environ, start_response: _odoo_like_app(steps)(environ, start_response))
    try:
        app(None, {"PATH_INFO": "/first"}, lambda *a: None)  # leaves prod/7 on the thread
        # A new request, before Odoo reset the thread: the previous request's user is not shown.
        steps["before_reset"] = lambda: (recorder.flush(), seen.setdefault("before", _own_record(base)))
        steps["busy"] = lambda: (recorder.flush(), seen.setdefault("busy", _own_record(base)))
        app(None, {"PATH_INFO": "/second"}, lambda *a: None)
        steps.clear()
        app(None, {"PATH_INFO": "/nodb"}, lambda *a: None)
        recorder.flush()
        before, busy = seen["before"], seen["busy"]
        assert (before["state"], before["url"], before["db"], before["uid"]) == ("busy", "/second", None, None)
        assert (busy["state"], busy["url"], busy["db"], busy["uid"], busy["backend_pid"]) == (
            "busy", "/second", "prod", 7, 4242,
        )  # fmt: skip
        assert contexts == [(threading.current_thread(), "prod")]  # asked once for the request
        logged = requestlog.read_requests(os.getpid(), base)
        assert [(r["url"], r["db"], r["uid"], r["login"]) for r in logged] == [
            ("/first", "prod", 7, None), ("/second", "prod", 7, None), ("/nodb", None, None, None),
        ]  # fmt: skip
        # The slow-request threshold busy_context gave is the request's.
        slot = recorder.slot()
        work = slot.start_request("/again", time.time())
        thread = threading.current_thread()
        thread.perf_t0, thread.dbname = time.time(), "prod"
        recorder.flush()
        assert slot.slow_after(work) == 3.0 and len(contexts) == 2
        slot.finish_request(time.time())
    finally:
        recorder.close()


def test_the_writer_never_rewrites_a_request_that_ended_under_it(base):
    import threading

    recorder = Recorder(
        lambda: (os.getpid(), PREFORK_SLOTS), base=base, deferred=True, busy_context=lambda _t, _db: (99, 1.0)
    )
    thread = threading.current_thread()
    try:
        slot = recorder.begin_request("/ended")
        thread.perf_t0, thread.dbname, thread.uid = time.time(), "prod", 7
        req = slot.current  # what the writer read before the request's thread ran on
        recorder.end_request(slot, 200)
        thread.perf_t0, thread.dbname, thread.uid = time.time(), "other", 8  # the next request's
        recorder._note_busy(slot, req)
        assert (req[board.W_DB], req[board.W_UID], req[board.W_BACKEND]) == ("prod", 7, 0)
        recorder.flush()
        (logged,) = requestlog.read_requests(os.getpid(), base)
        assert (logged["url"], logged["db"], logged["uid"]) == ("/ended", "prod", 7)
    finally:
        del thread.perf_t0, thread.dbname, thread.uid
        recorder.close()


def test_the_wsgi_hook_records_what_begin_request_and_end_request_record(base):
    # The hook inlines both methods (one Python frame on the request path): the same
    # request through either gives the same record and the same log entry.
    import threading

    recorder = Recorder(
        lambda: (os.getpid(), PREFORK_SLOTS), base=base, deferred=True, busy_context=lambda _t, _db: (0, None)
    )
    thread = threading.current_thread()
    path = "/web/dataset/call_kw/res.partner/read"
    busy = []  # the thread's in-memory record, as Odoo serves

    def serve_like_odoo(start_response):
        busy.append(list(recorder.slot().current))
        thread.dbname, thread.uid, thread.query_count, thread.query_time = "prod", 7, 3, 0.25
        sum(range(20000))  # some CPU
        start_response("404 NOT FOUND", [])
        return [b""]

    try:
        slot = recorder.begin_request(path)
        serve_like_odoo(lambda *_a: None)
        recorder.end_request(slot, "404 NOT FOUND")
        recorder.flush()
        by_methods = _own_record(base)
        recorder.wsgi(lambda _app, _environ, start_response: serve_like_odoo(start_response))(
            None, {"PATH_INFO": path}, lambda *_a: None
        )
        recorder.flush()
        by_hook = _own_record(base)
        first, second = requestlog.read_requests(os.getpid(), base)
        fields = ("kind", "url", "rpc", "status", "db", "uid", "login", "sql_count", "sql_time", "pid")
        assert [first[f] for f in fields] == [second[f] for f in fields]
        assert [second[f] for f in fields[:7]] == ["http", path, "res.partner.read", 404, "prod", 7, None]
        assert (second["sql_count"], second["sql_time"]) == (3, 0.25)
        assert 0 < second["cpu_time"] <= second["duration"] and 0 < first["cpu_time"] <= first["duration"]
        assert (by_methods["state"], by_methods["requests"]) == ("idle", 1)
        assert (by_hook["state"], by_hook["requests"], by_hook["kind"]) == ("idle", 2, by_methods["kind"])
        # The hook builds ``new_work``'s record inline; the process's count follows the thread's.
        assert busy == [board.new_work(record[board.W_START], path) for record in busy]
        assert board.read_board(os.getpid(), base)[os.getpid()][0] == 2
    finally:
        for name in ("dbname", "uid", "query_count", "query_time"):
            vars(thread).pop(name, None)
        recorder.close()


def test_without_its_writer_the_wsgi_hook_writes_every_change_at_once(base):
    recorder = Recorder(lambda: (os.getpid(), PREFORK_SLOTS), base=base, deferred=False)
    seen = []

    def app(_app, _environ, start_response):
        seen.append(_own_record(base)["state"])  # nobody flushed
        start_response("200 OK", [])
        return [b""]

    try:
        recorder.wsgi(app)(None, {"PATH_INFO": "/at/once"}, lambda *_a: None)
        assert seen == ["busy"]
        assert _own_record(base)["state"] == "idle"
        assert [(r["url"], r["status"]) for r in requestlog.read_requests(os.getpid(), base)] == [("/at/once", 200)]
    finally:
        recorder.close()


def test_a_request_the_board_has_no_record_for_is_served_unrecorded(base):
    import threading

    recorder = Recorder(lambda: (os.getpid(), 1), base=base, deferred=True)
    calls = []

    def app(_app, environ, start_response):
        calls.append(environ["PATH_INFO"])
        if environ["PATH_INFO"] == "/boom":
            raise RuntimeError("boom")
        return [b"served"]

    hooked = recorder.wsgi(app)
    outcomes = []

    def serve(path):
        try:
            outcomes.append(hooked(None, {"PATH_INFO": path}, lambda *_a: None))
        except RuntimeError as exc:
            outcomes.append(str(exc))

    try:
        recorder.slot()  # this thread takes the board's one record
        for path in ("/x", "/boom"):
            worker = threading.Thread(target=serve, args=(path,))
            worker.start()
            worker.join()
        assert outcomes == [[b"served"], "boom"]
        assert calls == ["/x", "/boom"]  # each served once, its error let through
        assert recorder.flush() == 0  # nothing recorded for them
        assert requestlog.read_requests(os.getpid(), base) == []
    finally:
        recorder.close()


def test_a_woken_writer_takes_its_first_turn_an_interval_later_and_stays_due_then(base):
    # A turn at once would run beside the request that woke the writer, with nothing to
    # write yet; more wake-ups meanwhile do not put the turn off.
    recorder = Recorder(lambda: (os.getpid(), PREFORK_SLOTS), base=base, inspect=True, deferred=True)
    turns = []
    try:
        recorder.slot()
        inspector = recorder.inspector
        flush = inspector._flush
        inspector._flush = lambda: (turns.append(time.monotonic()), flush())[1]
        assert wait_until(lambda: inspector.asleep, timeout=5), "an idle writer keeps waking"
        turns.clear()
        woken = time.monotonic()
        slot = recorder.begin_request("/woke/it")
        # More requests that saw it asleep before it ran (a race): more wake-ups, for longer
        # than an interval. Each putting the turn off, there would be none until they stop.
        while time.monotonic() - woken < 3 * stacks.WATCH_INTERVAL:
            time.sleep(stacks.WATCH_INTERVAL / 5)
            inspector.wake()
        last_wake = time.monotonic()
        assert turns, "the wake-ups kept putting the writer's turn off"
        assert woken + stacks.WATCH_INTERVAL * 0.99 <= turns[0] < last_wake
        assert _own_record(base)["state"] == "busy"
        recorder.end_request(slot, "200 OK")
    finally:
        recorder.close()


def test_a_request_inside_a_request_is_served_unrecorded_and_each_gets_its_own_start_response(base):
    recorder = Recorder(lambda: (os.getpid(), PREFORK_SLOTS), base=base, deferred=True)
    lines = {"outer": [], "inner": []}

    def app(_app, environ, start_response):
        if environ["PATH_INFO"] == "/outer":
            # e.g. a test client called from a route: the same thread, the same record
            assert hooked(None, {"PATH_INFO": "/inner"}, lambda line, *_a: lines["inner"].append(line)) == [b"in"]
            start_response("201 CREATED", [])
            return [b"out"]
        start_response("404 NOT FOUND", [])
        return [b"in"]

    hooked = recorder.wsgi(app)
    try:
        assert hooked(None, {"PATH_INFO": "/outer"}, lambda line, *_a: lines["outer"].append(line)) == [b"out"]
        assert lines == {"outer": ["201 CREATED"], "inner": ["404 NOT FOUND"]}
        assert recorder.flush() == 1
        (logged,) = requestlog.read_requests(os.getpid(), base)
        assert (logged["url"], logged["status"]) == ("/outer", 201)
        hooked(None, {"PATH_INFO": "/next"}, lambda *_a: None)  # the thread records again
        assert recorder.flush() == 1
        assert [r["url"] for r in requestlog.read_requests(os.getpid(), base)] == ["/outer", "/next"]
    finally:
        recorder.close()


def test_a_start_response_called_after_the_request_ended_still_reaches_the_server(base):
    # WSGI lets an application call it from its iterable, which the server runs afterwards.
    recorder = Recorder(lambda: (os.getpid(), PREFORK_SLOTS), base=base, deferred=True)
    sent = []

    def app(_app, _environ, start_response):
        def body():
            start_response("200 OK", [])
            yield b"late"

        return body()

    try:
        iterable = recorder.wsgi(app)(None, {"PATH_INFO": "/lazy"}, lambda line, *_a: sent.append(line))
        assert list(iterable) == [b"late"] and sent == ["200 OK"]
        assert recorder.flush() == 1
        (logged,) = requestlog.read_requests(os.getpid(), base)
        assert (logged["url"], logged["status"]) == ("/lazy", 200)  # written by the writer's next turn
    finally:
        recorder.close()


def _serve_like_werkzeug(app, environ, fail_with=None):
    """Serve one request as werkzeug's ``WSGIRequestHandler.run_wsgi`` does: its
    ``start_response`` is a closure that keeps the status line in its cell ``status_set``;
    an error that escapes the application is answered with the status ``fail_with`` (werkzeug
    answers a 500) through the same ``start_response``, or raised again without one.
    Returns ``(start_response, the body)``."""
    status_set = headers_set = None

    def start_response(status, headers, exc_info=None):
        nonlocal status_set, headers_set
        status_set, headers_set = status, headers

    try:
        body = b"".join(app(None, environ, start_response))
    except Exception:
        if fail_with is None:
            raise
        status_set = headers_set = None
        start_response(fail_with, [])
        body = b"error"
    return start_response, body


def _werkzeug_like_cell():
    start_response, _body = _serve_like_werkzeug(lambda _a, _e, respond: [respond("200 OK", []) or b""], {})
    code = start_response.__code__
    return code, code.co_freevars.index("status_set")


def test_with_the_servers_start_response_the_hook_passes_it_on_and_logs_the_status_it_answered(base):
    recorder = Recorder(
        lambda: (os.getpid(), PREFORK_SLOTS), base=base, deferred=True, status_cell=_werkzeug_like_cell()
    )
    given = []

    def app(_app, environ, start_response):
        given.append(start_response)
        if environ["PATH_INFO"] == "/boom":
            raise RuntimeError("boom")
        if environ["PATH_INFO"] == "/lazy":  # called from the iterable, after the request's end

            def body():
                start_response("201 CREATED", [])
                yield b"late"

            return body()
        start_response("404 NOT FOUND", [])
        return [b"missing"]

    hooked = recorder.wsgi(app)
    try:
        responded, body = _serve_like_werkzeug(hooked, {"PATH_INFO": "/missing"})
        assert body == b"missing"
        assert given == [responded]  # the server's own: no start_response of the hook's
        assert _serve_like_werkzeug(hooked, {"PATH_INFO": "/lazy"})[1] == b"late"
        # The server answers an escaped error with a status set after the request's end.
        assert _serve_like_werkzeug(hooked, {"PATH_INFO": "/boom"}, fail_with="503 SERVICE UNAVAILABLE")[1]
        with pytest.raises(RuntimeError):  # no response at all: the hook's 500
            _serve_like_werkzeug(hooked, {"PATH_INFO": "/boom"})
        assert all(start_response.__code__ is _werkzeug_like_cell()[0] for start_response in given)
        assert recorder.flush() == 4
        logged = [(r["url"], r["status"]) for r in requestlog.read_requests(os.getpid(), base)]
        assert logged == [("/missing", 404), ("/lazy", 201), ("/boom", 503), ("/boom", 500)]
        # Another server's ``start_response`` (another code): the record's own notes the status.
        seen = []
        assert hooked(None, {"PATH_INFO": "/other"}, lambda line, *_a: seen.append(line)) == [b"missing"]
        assert seen == ["404 NOT FOUND"] and given[-1] in recorder.board.claimed.values()
        assert recorder.flush() == 1
        assert requestlog.read_requests(os.getpid(), base)[-1]["status"] == 404
    finally:
        recorder.close()


def test_a_thread_that_served_requests_gives_its_record_back_as_it_ends_without_the_gc(base):
    # The threaded server has a thread per connection: a record kept alive by a reference
    # cycle would wait for a full collection, and the board would run out of records.
    import gc
    import threading

    recorder = Recorder(lambda: (os.getpid(), 2), base=base, deferred=True)
    hooked = recorder.wsgi(_app("200 OK"))
    gc.disable()
    try:
        recorder.slot()  # this thread holds one of the two records
        for round_ in range(5):
            worker = threading.Thread(target=hooked, args=(None, {"PATH_INFO": f"/{round_}"}, lambda *_a: None))
            worker.start()
            worker.join()
            assert len(recorder.board.claimed) == 1, "the ended thread kept its record"
        assert recorder.flush() == 5
    finally:
        gc.enable()
        recorder.close()


def test_a_threads_first_request_neither_waits_for_the_writers_turn_nor_writes(base):
    recorder = Recorder(lambda: (os.getpid(), THREADED_SLOTS), base=base, deferred=True)
    hook = recorder.wsgi(lambda _app, _environ, start_response: [start_response("200 OK", [])])
    served = threading.Event()

    def serve():
        hook(None, {"PATH_INFO": "/first"}, lambda *_a: None)
        served.set()
        time.sleep(0.2)  # the writer's turn below sees the thread alive, its record claimed

    try:
        recorder.slot()  # the board and this thread's record
        recorder.flush()
        before = _file_bytes(recorder)
        thread = threading.Thread(target=serve)
        with recorder.board.writing():  # as the writer holds it for a turn
            thread.start()
            assert served.wait(5), "the thread's first request waited for the board's lock"
            assert _file_bytes(recorder) == before  # its record is claimed, not written
        assert recorder.flush() == 1
        ((_, records),) = board.read_board(os.getpid(), base).values()
        assert sorted(record["requests"] for record in records) == [0, 1]
        thread.join()
    finally:
        recorder.close()


def test_records_claimed_and_given_back_never_break_the_writers_walk_over_them(base):
    recorder = Recorder(lambda: (os.getpid(), THREADED_SLOTS), base=base, deferred=True)
    recorder.slot()
    proc_board, stop, failures = recorder.board, threading.Event(), []

    def churn():  # threads of a threaded server come and go
        while not stop.is_set():
            slots = [proc_board.claim(tid=1) for _ in range(8)]
            del slots  # given back (``Slot.__del__``)

    def walk():
        while not stop.is_set():
            try:
                proc_board.count_started()
                recorder.idle()
            except Exception as exc:  # noqa: BLE001 - what the test looks for
                failures.append(exc)
                return

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # threads switch within a walk
    threads = [threading.Thread(target=churn), threading.Thread(target=walk)]
    try:
        for thread in threads:
            thread.start()
        time.sleep(1.0)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
        sys.setswitchinterval(interval)
        recorder.close()
    assert failures == []
    assert len(proc_board.claimed) == 1
