"""The inspector thread: stacks on demand, slow-request stacks, profiles (plain tests, real threads and processes)."""

import os
import subprocess
import sys
import threading
import time

import pytest

from worker_inspector.engine import board, requestlog, stacks
from worker_inspector.engine.identity import process_key
from worker_inspector.engine.recorder import Recorder
from worker_inspector.engine.sampler import Sampler

HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.fixture
def recorder(tmp_path):
    rec = Recorder(
        lambda: (os.getpid(), 8),
        base=str(tmp_path),
        inspect=True,
        frame_roots=lambda: [(HERE, stacks.ORIGIN_ADDON)],
        slow_limits=lambda: (0.6, 5.0),
    )
    rec.slot()
    yield rec
    rec.close()


def _own_key():
    return process_key(os.getpid())


def _sleeping_in_c(event):
    # A C call holding no GIL (as libpq waiting for PostgreSQL does).
    event.wait()


def test_stack_of_a_thread_blocked_in_c_names_its_function(recorder, tmp_path):
    release = threading.Event()
    thread = threading.Thread(target=_sleeping_in_c, args=(release,), name="blocked")
    thread.start()
    try:
        started = time.monotonic()
        answer = stacks.request_stack(os.getpid(), _own_key(), base=str(tmp_path))
        assert time.monotonic() - started < 1.0
    finally:
        release.set()
        thread.join()
    assert answer["pid"] == os.getpid()
    by_id = {t["native_id"]: t for t in answer["threads"]}
    blocked = by_id[thread.native_id]
    assert blocked["name"] == "blocked"
    functions = [f["function"] for f in blocked["frames"]]
    assert "_sleeping_in_c" in functions
    mine = next(f for f in blocked["frames"] if f["function"] == "_sleeping_in_c")
    assert (mine["file"], mine["origin"], mine["code"]) == ("test_stacks.py", "addon", "event.wait()")
    assert all(set(f) == {"file", "line", "function", "code", "origin"} for f in blocked["frames"])
    # The inspector itself is not shown; the asking (main) thread is, under the pid.
    assert "worker_inspector" not in {t["name"] for t in answer["threads"]}
    assert os.getpid() in by_id
    assert "in _sleeping_in_c" in stacks.text_of([blocked])


def test_a_process_without_inspector_is_refused_and_one_not_answering_times_out(recorder, tmp_path):
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        key = None
        while key is None:
            key = process_key(child.pid)
        with pytest.raises(stacks.StackUnavailable) as refused:
            stacks.request_stack(os.getpid(), key, base=str(tmp_path))
        assert refused.value.status == 400
    finally:
        child.kill()
        child.wait()
    # An inspector that cannot answer (here: stopped) -> 504 in time.
    recorder.inspector._closed = True
    recorder.inspector.wake()
    recorder.inspector.thread.join()
    started = time.monotonic()
    with pytest.raises(stacks.StackUnavailable) as late:
        stacks.request_stack(os.getpid(), _own_key(), timeout=0.3, base=str(tmp_path))
    assert late.value.status == 504
    assert time.monotonic() - started < 1.0


def _slow_request(recorder, seconds):
    slot = recorder.begin_request("/slow/path")
    recorder.set_user("somedb", 2, "admin")
    try:
        time.sleep(seconds)
    finally:
        recorder.end_request(slot)


def test_a_slow_request_keeps_its_stack_once_and_a_fast_one_none(recorder, tmp_path):
    _slow_request(recorder, 0.1)
    assert stacks.read_slow(os.getpid(), base=str(tmp_path)) == []
    _slow_request(recorder, 1.6)
    kept = stacks.read_slow(os.getpid(), base=str(tmp_path))
    assert len(kept) == 1
    entry = kept[0]
    assert (entry["url"], entry["db"], entry["login"], entry["kind"]) == ("/slow/path", "somedb", "admin", "http")
    assert entry["pid"] == os.getpid() and entry["native_id"] == threading.get_native_id()
    assert 0.6 <= entry["elapsed"] < 1.6
    assert "_slow_request" in [f["function"] for f in entry["stack"]]


def _burn(stop):
    total = 0
    while not stop.is_set():
        for i in range(1000):
            total += i * i
    return total


def test_history_request_records_carry_the_stack_of_the_slow_one_only(recorder, tmp_path):
    _slow_request(recorder, 0.05)
    _slow_request(recorder, 1.4)
    records = requestlog.read_requests(os.getpid(), base=str(tmp_path))
    entries = stacks.read_slow(os.getpid(), base=str(tmp_path), pids={os.getpid()})
    assert len(records) == 2 and len(entries) == 1
    assert stacks.read_slow(os.getpid(), base=str(tmp_path), pids={os.getpid() + 1}) == []
    fast, slow = stacks.join_request_stacks(records, entries)
    assert fast["stack"] is None
    assert slow["stack"] == entries[0]["stack"]
    assert "_slow_request" in [f["function"] for f in slow["stack"]]
    # Another process, another kind, or a start too far apart: no stack.
    others = [
        {**slow, "pid": slow["pid"] + 1, "stack": "x"},
        {**slow, "kind": "cron", "url": None, "stack": "x"},
        {**slow, "started_at": slow["started_at"] + 2 * stacks.JOIN_SLACK, "stack": "x"},
    ]
    assert [r["stack"] for r in stacks.join_request_stacks(others, entries)] == [None, None, None]


def _entry(pid, started_at, url="/web/slow", stack=("frame",)):
    return {
        "pid": pid,
        "kind": "http",
        "url": url,
        "started_at": started_at,
        "taken_at": started_at + 5,
        "stack": list(stack),
    }


def test_an_exit_while_busy_carries_the_stack_of_its_last_request():
    entries = [_entry(7, 1000.0, stack=["earlier"]), _entry(7, 2000.0, stack=["last"]), _entry(8, 2000.0)]
    killed = {"pid": 7, "ended_at": 2012.0, "doing": {"url": "/web/slow", "cron_job": None, "elapsed": 12.0}}
    # Its last request was fast (no stack), or another path, or it was idle.
    fast = {"pid": 7, "ended_at": 2100.0, "doing": {"url": "/web/slow", "cron_job": None, "elapsed": 0.2}}
    other = {"pid": 7, "ended_at": 2012.0, "doing": {"url": "/web/other", "cron_job": None, "elapsed": 12.0}}
    idle = {"pid": 7, "ended_at": 2012.0, "doing": None}
    stacks.join_exit_stacks([killed, fast, other, idle], entries)
    assert killed["doing"]["stack"] == ["last"]
    assert fast["doing"]["stack"] is None and other["doing"]["stack"] is None
    assert idle["doing"] is None


@pytest.mark.parametrize(
    ("limits", "cap"),
    [
        ((120, -1), 60.0),  # Odoo's default: the 10 s default threshold stays
        ((120, 30), 15.0),  # limit_time_real_cron lower
        ((12,), 6.0),  # half
        ((10,), 4.0),  # before a request started a beat after the heartbeat is killed
        ((8,), 2.0),
        ((4,), stacks.WATCH_INTERVAL),
        ((0, None, -1), float("inf")),  # no limit: no ceiling
    ],
)
def test_the_slow_threshold_is_capped_below_limit_time_real(limits, cap):
    assert stacks.slow_cap(limits) == cap
    assert min(stacks.DEFAULT_SLOW_AFTER, cap) < min([x for x in limits if x and x > 0] or [float("inf")])


def test_a_profile_attributes_most_samples_to_the_burning_function(recorder, tmp_path):
    stop = threading.Event()
    burner = threading.Thread(target=_burn, args=(stop,), name="burner")
    burner.start()
    try:
        profile = stacks.request_profile(os.getpid(), _own_key(), 1.0, base=str(tmp_path))
    finally:
        stop.set()
        burner.join()
    samples = [cell for _t, row in profile["samples"] for cell in row if cell[0] == burner.native_id]
    assert len(profile["samples"]) >= 50
    burning = [cell for cell in samples if any(profile["frames"][i][2] == "_burn" for i in profile["stacks"][cell[2]])]
    assert len(burning) >= 0.9 * len(samples) > 0
    traces = stacks.to_odoo_traces(profile)
    assert traces[-1]["stack"] == []
    assert any(frame[2] == "_burn" for entry in traces for frame in entry["stack"])


CHILD = r"""
import os, sys, time
sys.path.insert(0, {root!r})
from worker_inspector.engine.recorder import Recorder

rec = Recorder(lambda: ({server}, 4), base={base!r}, inspect=True)
rec.slot()

def waiting_for_the_test():
    print("ready", flush=True)
    sys.stdin.readline()

waiting_for_the_test()
"""


def test_another_process_answers_and_its_socket_goes_when_it_is_killed(tmp_path):
    root = os.path.dirname(HERE)
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD.format(root=root, server=os.getpid(), base=str(tmp_path))],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout.readline().strip() == "ready"
        key = process_key(child.pid)
        answer = stacks.request_stack(os.getpid(), key, base=str(tmp_path))
        (main,) = [t for t in answer["threads"] if t["native_id"] == child.pid]
        # Blocked in C (readline): the innermost Python frame is the one that called it.
        assert main["frames"][-1]["function"] == "waiting_for_the_test"
        server_dir = board.server_dir(os.getpid(), board.start_ticks(os.getpid()), str(tmp_path))
        assert f"{key.pid}-{key.start}.ctl" in os.listdir(server_dir)
    finally:
        child.kill()
        child.wait()
    assert board.read_board(os.getpid(), str(tmp_path)) == {}
    # Its board and socket stay until the history's sampler has recorded its exit; then only its
    # request log stays (README: Request log).
    left = sorted(name for name in os.listdir(server_dir) if name.startswith(f"{key.pid}-"))
    assert left == [f"{key.pid}-{key.start}{suffix}" for suffix in (".board", ".ctl", ".requests")]
    Sampler(os.getpid(), "prefork", {"workers": 1}, server_dir, base=str(tmp_path), interval=1).harvest()
    left = [name for name in os.listdir(server_dir) if name.startswith(f"{key.pid}-")]
    assert left == [f"{key.pid}-{key.start}.requests"]
    with pytest.raises(stacks.StackUnavailable) as gone:
        stacks.request_stack(os.getpid(), key, base=str(tmp_path))
    assert gone.value.status == 400


def test_close_waits_for_the_inspector_thread_before_closing_its_descriptors(tmp_path):
    # A descriptor closed under a running thread may be reused for another file by then.
    proc_board = board.ProcessBoard(os.getpid(), 4, str(tmp_path))
    entered, finished = threading.Event(), []

    def slow_flush():
        if not entered.is_set():
            entered.set()
            time.sleep(0.3)
            finished.append(time.monotonic())
        return 0

    inspector = stacks.Inspector(proc_board, stacks.FrameFormatter(()), flush=slow_flush)
    try:
        inspector.wake()
        assert entered.wait(5)
        inspector.close()
        closed_at = time.monotonic()
        assert len(finished) == 1 and finished[0] <= closed_at
        assert not inspector.thread.is_alive()
        assert inspector.sock.fileno() == -1
    finally:
        proc_board.close()


def _os_thread_name(thread):
    with open(f"/proc/self/task/{thread.native_id}/comm") as handle:
        return handle.read().strip()


def test_the_addon_threads_carry_their_names_in_the_kernel(tmp_path):
    # What top -H and ps -L show: an admin (and the benchmark) tells the writer's and the
    # sampler's CPU from the serving thread's without asking the process.
    from worker_inspector.engine import threads
    from worker_inspector.engine.sampler import Sampler

    proc_board = board.ProcessBoard(os.getpid(), 4, str(tmp_path))
    inspector = stacks.Inspector(proc_board, stacks.FrameFormatter(()))
    sampler = Sampler(os.getpid(), "prefork", {"limit_time_real": 120, "workers": 1}, base=str(tmp_path)).start()
    try:
        named = {inspector.thread: threads.OS_WRITER, sampler._thread: threads.OS_SAMPLER}
        deadline = time.monotonic() + 5  # each names itself as it starts
        while time.monotonic() < deadline and any(_os_thread_name(t) != n for t, n in named.items()):
            time.sleep(0.01)
        assert _os_thread_name(inspector.thread) == threads.OS_WRITER
        assert _os_thread_name(sampler._thread) == threads.OS_SAMPLER
        assert _os_thread_name(threading.current_thread()) not in (threads.OS_WRITER, threads.OS_SAMPLER)
        names = [value for key, value in vars(threads).items() if key.startswith("OS_")]
        assert len(names) == 4 and all(len(name.encode()) <= 15 for name in names)
    finally:
        sampler.stop()
        inspector.close()
        proc_board.close()
