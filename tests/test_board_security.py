"""The activity board against other local users and damaged files, on real directories.

Other users are simulated with ``os.chown``/``os.lchown`` to ``nobody`` (these
tests need root for that, and for the small tmpfs standing for a full
filesystem); what the product must never do is delete, open or believe what
they put in its way.
"""

import json
import math
import os
import pwd
import signal
import struct
import subprocess
import threading
import time
import zlib

import pytest

from worker_inspector.engine import board, requestlog
from worker_inspector.engine.board import ProcessBoard, UntrustedBoard, read_board
from worker_inspector.engine.recorder import THREADED_SLOTS, Recorder
from worker_inspector.engine.snapshot import read_activity_board

SERVER = os.getpid()

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="simulating another user needs root (chown, mount)")


@pytest.fixture
def nobody():
    entry = pwd.getpwnam("nobody")
    return entry.pw_uid, entry.pw_gid


@pytest.fixture
def shared_base(tmp_path):
    """A world-writable sticky directory, like /dev/shm or /tmp."""
    base = tmp_path / "shm"
    base.mkdir()
    base.chmod(0o1777)
    return str(base)


@pytest.fixture
def victim(tmp_path):
    """A directory of the Odoo user's that an attacker would like deleted."""
    path = tmp_path / "victim"
    for name in ("123-456", "1-2", "keep"):
        (path / name).mkdir(parents=True)
        (path / name / "data").write_text("precious")
    return path


def tree(path):
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))


@pytest.fixture
def sleeper():
    """Another live process, to own board files."""
    proc = subprocess.Popen(["sleep", "600"])
    yield proc
    proc.kill()
    proc.wait()


@pytest.fixture
def planted_link(shared_base, victim, nobody):
    """``worker_inspector-<uid>``, planted first by another user: a symlink to the victim."""
    link = board.root_dir(shared_base)
    os.symlink(victim, link)
    os.lchown(link, *nobody)
    return link


@needs_root
def test_a_symlink_planted_by_another_user_is_never_followed(shared_base, victim, planted_link):
    before = tree(victim)
    rec = Recorder(lambda: (SERVER, 8), base=shared_base)
    assert rec.begin_request("/web") is None  # nothing recorded, and Odoo is not bothered
    assert "symlink" in rec.problem
    with pytest.raises(UntrustedBoard):
        board.remove_dead_servers(shared_base)
    with pytest.raises(UntrustedBoard):
        read_board(SERVER, base=shared_base)
    found, status = read_activity_board(SERVER, base=shared_base)
    assert found == {}
    assert status["available"] is False and "symlink" in status["reason"]
    assert tree(victim) == before
    assert os.path.islink(planted_link)  # not ours to remove either


@needs_root
def test_a_forked_worker_deletes_nothing_either(shared_base, victim, planted_link):
    before = tree(victim)
    rec = Recorder(lambda: (SERVER, 8), base=shared_base, report_at_fork=True)
    # A prefork worker opens its board at birth.
    assert _in_child(lambda: 0 if rec.board is None and rec.problem else 1) == 0
    assert tree(victim) == before


@needs_root
@pytest.mark.parametrize("owner, mode", [("nobody", 0o700), ("self", 0o755), ("self", 0o777)])
def test_directories_not_private_to_this_user_are_not_trusted(shared_base, sleeper, nobody, owner, mode):
    # A board the attacker prepared, with a spoofed busy worker.
    spoofed = ProcessBoard(SERVER, 2, base=shared_base, pid=sleeper.pid)
    slot = spoofed.claim(tid=sleeper.pid)
    slot.begin_request(b"/odoo/SPOOFED")
    assert read_board(SERVER, base=shared_base)[sleeper.pid][1][0]["url"] == "/odoo/SPOOFED"
    root = board.root_dir(shared_base)
    os.chmod(root, mode)
    if owner == "nobody":
        os.chown(root, *nobody)
    rec = Recorder(lambda: (SERVER, 8), base=shared_base)
    assert rec.begin_request("/web") is None
    assert rec.problem
    found, status = read_activity_board(SERVER, base=shared_base)
    assert found == {} and status["available"] is False
    assert "expected uid" in status["reason"]


@pytest.fixture
def own_board(tmp_path, sleeper):
    """A valid board of another process of this user, and its server directory."""
    base = str(tmp_path)
    live = ProcessBoard(SERVER, 4, base=base, pid=sleeper.pid)
    live.slot = live.claim(tid=sleeper.pid)  # kept: a dropped record is given back
    live.slot.begin_request(b"/web/ok")
    yield base, live
    live.close()


def test_a_valid_board_is_read(own_board, sleeper):
    base, _live = own_board
    requests, [record] = read_board(SERVER, base=base)[sleeper.pid]
    assert (requests, record["url"], record["state"]) == (1, "/web/ok", "busy")


def _read_with_deadline(base, seconds=10):
    result = {}
    reader = threading.Thread(target=lambda: result.update(board=read_board(SERVER, base=base)), daemon=True)
    reader.start()
    reader.join(seconds)
    assert not reader.is_alive(), "the reader hangs"
    return result["board"]


def test_a_fifo_named_like_a_board_never_blocks_the_reader(own_board, sleeper):
    base, live = own_board
    live.close()
    os.mkfifo(live.path, 0o600)
    assert _read_with_deadline(base) == {}
    # The writer does not get stuck on it either.
    with pytest.raises(UntrustedBoard):
        ProcessBoard(SERVER, 4, base=base, pid=sleeper.pid)


@needs_root
def test_files_of_another_user_or_symlinks_are_skipped(own_board, sleeper, nobody, tmp_path):
    base, live = own_board
    os.chown(live.path, *nobody)
    assert _read_with_deadline(base) == {}
    os.chown(live.path, os.geteuid(), os.getegid())
    assert sleeper.pid in _read_with_deadline(base)
    # A symlink to a valid board is not read through.
    elsewhere = tmp_path / "elsewhere.board"
    os.rename(live.path, elsewhere)
    os.symlink(elsewhere, live.path)
    assert _read_with_deadline(base) == {}


def _poke(live, index, **values):
    """Overwrite fields of record ``index`` as a broken or hostile writer would."""
    offset = board._HEADER_SIZE + index * board.SLOT_SIZE
    data = bytearray(os.pread(live.fd, board.SLOT_SIZE, offset))
    raw = board.RawRecord._make(board._BODY.unpack_from(data, board._HEAD_AT))
    board._BODY.pack_into(data, board._HEAD_AT, *raw._replace(**values))
    struct.pack_into("<I", data, board._CRC_AT, zlib.crc32(data[: board._CRC_AT]))  # signed, as a writer would
    os.pwrite(live.fd, data, offset)


@pytest.mark.parametrize(
    "field, value",
    [
        ("since", math.nan),
        ("since", math.inf),
        ("since", -1.0),
        ("since", time.time() + 86400),
        ("state", 9),
        ("kind", 7),
        ("tid", -5),
        ("uid", -1),
        ("requests", 2**63 - 1),
        ("cron_id", 2**40),
    ],
)
def test_records_with_invalid_fields_are_skipped(own_board, sleeper, field, value):
    base, live = own_board
    _poke(live, 0, **{field: value})
    assert read_board(SERVER, base=base)[sleeper.pid][1] == []


def test_a_nan_never_reaches_the_snapshot_or_the_metrics(own_board, sleeper):
    pytest.importorskip("prometheus_client")
    from worker_inspector.engine import metrics
    from worker_inspector.engine.snapshot import ServerInfo, take_snapshot

    base, live = own_board
    _poke(live, 0, since=math.nan)
    os.environ["WORKER_INSPECTOR_BOARD_DIR"] = base
    try:
        snap = take_snapshot(ServerInfo(SERVER, "threaded", "18.0"), {})
    finally:
        del os.environ["WORKER_INSPECTOR_BOARD_DIR"]
    json.dumps(snap, allow_nan=False)  # raises on NaN or Infinity
    assert b"NaN" not in metrics.render(snap)


def test_headers_that_do_not_match_the_file_name_are_skipped(own_board, sleeper):
    base, live = own_board
    os.pwrite(live.fd, struct.pack("<I", sleeper.pid + 1), 8)  # the header's pid
    assert read_board(SERVER, base=base) == {}


def test_a_truncated_file_is_skipped_by_the_reader(own_board, sleeper):
    base, live = own_board
    os.truncate(live.path, board._HEADER_SIZE + 100)  # mid-record
    # The request count lives in the records: the cut one takes it along.
    assert read_board(SERVER, base=base)[sleeper.pid] == (0, [])
    os.truncate(live.path, 0)
    assert read_board(SERVER, base=base) == {}


def _fork(body):
    """Run ``body`` in a forked child; its pid."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            code = body()
        finally:
            os._exit(code)
    return pid


def _wait(pid):
    """The child's exit status (a signal shows as negative)."""
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


def _in_child(body):
    return _wait(_fork(body))


@pytest.mark.parametrize("size", [0, board._HEADER_SIZE + 100], ids=["emptied", "cut mid-record"])
def test_files_shrunk_in_the_middle_of_a_request_never_kill_the_process(tmp_path, size):
    """Both files written on each request (the board, the request log) are cut while a
    request runs: it ends, the next ones are served and recorded, the files come back whole."""
    base = str(tmp_path)
    ready_r, ready_w = os.pipe()
    go_r, go_w = os.pipe()

    def child():
        rec = Recorder(lambda: (os.getpid(), 8), base=base)
        rec.end_request(rec.begin_request("/first"), 200)
        slot = rec.begin_request("/slow")
        rec.set_user("db", 2, "admin")
        log = os.path.join(rec.board.dir, rec._log.name)
        os.write(ready_w, f"{rec.board.path}\0{log}".encode())
        os.read(go_r, 1)  # meanwhile the parent cuts both files
        rec.set_user("db", 2, "admin")  # more writes of the request under way
        rec.end_request(slot, 200)
        rec.board.check_at = rec._log.check_at = 0  # as if a second went by
        for _ in range(3):
            rec.end_request(rec.begin_request("/after"), 200)
        requests, records = read_board(os.getpid(), base=base)[os.getpid()]
        totals = requestlog.read_totals(os.getpid(), base)[("http", "2xx")]
        ok = (rec.board.repairs, rec._log.repairs, requests, totals["count"]) == (1, 1, 5, 5)
        return 0 if ok and [r["requests"] for r in records] == [5] else 2

    pid = _fork(child)
    try:
        paths = os.read(ready_r, 4096).decode().split("\0")
        for path in paths:
            os.truncate(path, size)
        os.write(go_w, b"x")
        status = _wait(pid)
    except BaseException:
        os.kill(pid, signal.SIGKILL)
        _wait(pid)
        raise
    assert status == 0, f"child ended with {status} (-{signal.SIGBUS.value} is SIGBUS)"
    for path in paths:
        info = os.stat(path)
        assert info.st_size >= size and info.st_blocks * 512 >= info.st_size, "written back whole"


@pytest.fixture
def full_fs(tmp_path):
    """A 64 KiB tmpfs: room for the directories, not for a threaded server's board."""
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k,mode=1777", "tmpfs", str(mount)], check=False)
    if done.returncode:
        pytest.skip("cannot mount a small tmpfs here")
    yield str(mount)
    subprocess.run(["umount", "-l", str(mount)], check=False)


@needs_root
def test_a_full_filesystem_leaves_odoo_serving_and_says_why(full_fs):
    def child():
        rec = Recorder(lambda: (os.getpid(), THREADED_SLOTS), base=full_fs)
        for n in range(THREADED_SLOTS):
            rec.end_request(rec.begin_request(f"/request/{n}"))
        _found, status = read_activity_board(os.getpid(), rec.problem, base=full_fs)
        ok = rec.board is None and "No space left" in status["reason"] and not status["available"]
        return 0 if ok else 2

    assert _in_child(child) == 0


@pytest.mark.parametrize("asked_by", ["the reader's own process", "another process"])
def test_a_reader_s_flush_writes_shrunk_files_back_whole_at_once(tmp_path, asked_by):
    """The writer's turns check the files now and then (a system call each); a reader's
    request has them checked first, so what it then reads is whole."""
    from worker_inspector.engine import stacks

    base = str(tmp_path)
    rec = Recorder(lambda: (os.getpid(), 8), base=base, inspect=True, deferred=True)
    try:
        rec.end_request(rec.begin_request("/first"), 200)
        assert rec.inspector is not None and rec.flush() == 1
        rec.board.check_at = rec._log.check_at = time.time() + 3600  # no turn checks them now
        paths = (rec.board.path, os.path.join(rec.board.dir, rec._log.name))
        sizes = {path: os.path.getsize(path) for path in paths}
        for path in paths:
            os.truncate(path, 0)
        rec.end_request(rec.begin_request("/second"), 200)
        if asked_by == "another process":  # its message, as the inspector thread gets it
            rec.inspector._serve(json.dumps({"op": "flush", "reply": "0" * 32 + stacks.REPLY_SUFFIX}).encode())
        else:
            stacks.request_flush(os.getpid(), own=lambda: rec.flush(checked=True), base=base)
        assert (rec.board.repairs, rec._log.repairs) == (1, 1)
        for path, size in sizes.items():
            info = os.stat(path)
            assert info.st_size == size and info.st_blocks * 512 >= size, f"{path} was not written back whole"
        assert [r["url"] for r in requestlog.read_requests(os.getpid(), base)] == ["/second"]  # /first was cut
    finally:
        rec.close()
