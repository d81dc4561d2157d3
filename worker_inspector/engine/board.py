"""The activity board: fixed-size records in shared memory, one file per process.

Every Odoo process of a server writes what its request and cron threads are
doing into its own small file on a tmpfs; the process serving the dashboard
reads them all. Files work across forked workers without a restart, and a
write is a few ``struct.pack_into`` calls on an mmap.

Layout::

    <base>/worker_inspector-<euid>/<server pid>-<server start>/<pid>-<start>.board

``start`` is the process start time in clock ticks since boot (field 22 of
``/proc/<pid>/stat``): a pid plus its start time names one process for good,
so a reused pid never inherits a dead process's records. Each file holds a
header and ``slots`` records of ``SLOT_SIZE`` bytes. Each record has a single
writer (its thread) and starts with a sequence number that is odd while the
record is being written (a seqlock): readers retry, and never see a torn one.
"""

import contextlib
import errno
import itertools
import mmap
import os
import shutil
import struct
import tempfile
import threading
import time

MAGIC = b"WIAB"
VERSION = 1

STATE_FREE, STATE_IDLE, STATE_BUSY = 0, 1, 2
STATES = {STATE_IDLE: "idle", STATE_BUSY: "busy"}
KIND_NONE, KIND_HTTP, KIND_CRON = 0, 1, 2
KINDS = {KIND_NONE: None, KIND_HTTP: "http", KIND_CRON: "cron"}

# Header: magic, version, slot count, pid, start ticks, requests started by
# the process (8-aligned, so one 8-byte store updates it).
_HEADER = struct.Struct("<4sHHI4xQQ")
_HEADER_SIZE = 64
_REQUESTS_OFFSET = _HEADER.size - 8
assert _REQUESTS_OFFSET % 8 == 0
_U64 = struct.Struct("<Q")

# A record: sequence, then the body. The body groups what each write changes
# together: the head, the user (set once authenticated), the URL, the cron job.
_SEQ = _U64
_HEAD = struct.Struct("<qBB6xdQ")  # tid, kind, state, since, requests of this slot
# uid (0: none), PostgreSQL backend pid of the current cursor (0: none), db, login
_USER = struct.Struct("<qi64p64p")
_URL = struct.Struct("<256p")  # URL path, no query string
_CRON = struct.Struct("<q128p64p")  # cron id (0: none), name, db
_BODY = struct.Struct("<qBB6xdQqi64p64p256pq128p64p")
_HEAD_AT = _SEQ.size
_USER_AT = _HEAD_AT + _HEAD.size
_URL_AT = _USER_AT + _USER.size
_CRON_AT = _URL_AT + _URL.size
SLOT_SIZE = 640
assert _SEQ.size + _BODY.size <= SLOT_SIZE
assert _CRON_AT + _CRON.size == _SEQ.size + _BODY.size

# Kernel flag of a task that has started to exit (/proc/<pid>/stat field 9).
_PF_EXITING = 0x4
_NO_USER = (0, 0, b"", b"")
_NO_CRON = (0, b"", b"")
_READ_RETRIES = 200
_FILE_SUFFIX = ".board"


def start_ticks(pid):
    """Start time of ``pid`` in clock ticks since boot, or None if it is gone.

    A process that is exiting, or a zombie (not yet reaped by its parent), is
    gone too.
    """
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after it.
    try:
        fields = stat[stat.rindex(b")") + 2 :].split()
        if fields[0] in (b"Z", b"X") or int(fields[6]) & _PF_EXITING:
            return None
        return int(fields[19])
    except (ValueError, IndexError):
        return None


def default_base():
    """``WORKER_INSPECTOR_BOARD_DIR``, else a tmpfs when there is one: the board never touches a disk."""
    if os.environ.get("WORKER_INSPECTOR_BOARD_DIR"):
        return os.environ["WORKER_INSPECTOR_BOARD_DIR"]
    if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK | os.X_OK):
        return "/dev/shm"
    return tempfile.gettempdir()


def _private_dir(path):
    """Create ``path`` (mode 0700) or accept it only if it is ours and private."""
    with contextlib.suppress(FileExistsError):
        os.mkdir(path, 0o700)
    info = os.lstat(path)
    if not os.path.isdir(path) or os.path.islink(path) or info.st_uid != os.geteuid():
        raise PermissionError(errno.EPERM, "not a private directory of this user", path)
    if info.st_mode & 0o077:
        os.chmod(path, 0o700)
    return path


def root_dir(base=None):
    return os.path.join(base or default_base(), f"worker_inspector-{os.geteuid()}")


def server_dir(server_pid, server_start, base=None):
    return os.path.join(root_dir(base), f"{server_pid}-{server_start}")


def _parse_key(name):
    """``(pid, start)`` from ``<pid>-<start>[.board]``, or None."""
    name = name.removesuffix(_FILE_SUFFIX)
    pid, sep, start = name.partition("-")
    if not sep or not pid.isdigit() or not start.isdigit():
        return None
    return int(pid), int(start)


def is_alive(pid, start):
    return start_ticks(pid) == start


def remove_dead_servers(base=None):
    """Delete the boards of servers that are gone (their pid died or was reused)."""
    root = root_dir(base)
    try:
        names = os.listdir(root)
    except OSError:
        return
    for name in names:
        key = _parse_key(name)
        if key and not is_alive(*key):
            shutil.rmtree(os.path.join(root, name), ignore_errors=True)


def _encode(text, size):
    if not text:
        return b""
    if not isinstance(text, bytes):
        text = str(text).encode("utf-8", "replace")
    return text[: size - 1]


def _decode(raw):
    return raw.decode("utf-8", "replace") or None


class Slot:
    """One record, written only by the thread that claimed it."""

    __slots__ = ("__weakref__", "board", "in_cron", "in_request", "index", "offset", "requests", "seq", "tid")

    def __init__(self, board, index, tid):
        self.board = board
        self.index = index
        self.offset = _HEADER_SIZE + index * SLOT_SIZE
        self.tid = tid
        self.seq = _SEQ.unpack_from(board.mm, self.offset)[0] & ~1
        self.requests = 0
        self.in_request = False
        self.in_cron = False

    # The seqlock: odd while writing, then the next even number.
    def _open(self):
        self.seq += 1
        _SEQ.pack_into(self.board.mm, self.offset, self.seq)

    def _close(self):
        self.seq += 1
        _SEQ.pack_into(self.board.mm, self.offset, self.seq)

    def _write(self, kind, state, user=_NO_USER, url=b"", cron=_NO_CRON):
        self._open()
        _BODY.pack_into(
            self.board.mm, self.offset + _HEAD_AT, self.tid, kind, state, time.time(), self.requests, *user, url, *cron
        )
        self._close()

    def write_idle(self, kind=KIND_NONE):
        self._write(kind, STATE_IDLE)

    def begin_request(self, path):
        """A request starts: busy on ``path`` (bytes, no query string)."""
        self.requests += 1
        _U64.pack_into(self.board.mm, _REQUESTS_OFFSET, next(self.board.requests))
        self.in_request = True
        self.in_cron = False
        self._write(KIND_HTTP, STATE_BUSY, url=path[:255])

    def set_user(self, db, uid, login, backend_pid=0):
        """The request is authenticated: who, on which database, with which PostgreSQL backend."""
        if not self.in_request:
            return
        self._open()
        _USER.pack_into(
            self.board.mm, self.offset + _USER_AT, uid or 0, backend_pid or 0, _encode(db, 64), _encode(login, 64)
        )
        self._close()

    def end_request(self):
        self.in_request = False
        self.in_cron = False
        self.write_idle(KIND_HTTP)

    def begin_cron(self, job_id, name, db, uid=None, backend_pid=0):
        """A scheduled action starts; inside a request ("Run Manually") the request stays."""
        self.in_cron = True
        cron = (job_id or 0, _encode(name, 128), _encode(db, 64))
        if self.in_request:
            self._open()
            _CRON.pack_into(self.board.mm, self.offset + _CRON_AT, *cron)
            self._close()
        else:
            self._write(KIND_CRON, STATE_BUSY, user=(uid or 0, backend_pid or 0, _encode(db, 64), b""), cron=cron)

    def end_cron(self):
        self.in_cron = False
        if self.in_request:
            self._open()
            _CRON.pack_into(self.board.mm, self.offset + _CRON_AT, *_NO_CRON)
            self._close()
        else:
            self.write_idle(KIND_CRON)

    def __del__(self):
        # The thread that owned the record is gone (its thread-local dropped it).
        with contextlib.suppress(Exception):
            self.board.release(self)

    def free(self):
        """Mark the record unused (its thread ended)."""
        if self.board.closed:
            return
        self._open()
        _HEAD.pack_into(self.board.mm, self.offset + _HEAD_AT, 0, KIND_NONE, STATE_FREE, 0.0, 0)
        self._close()


class ProcessBoard:
    """The board file of one process, with ``slots`` records for its threads."""

    def __init__(self, server_pid, slots, base=None, pid=None):
        self.pid = pid or os.getpid()
        self.start = start_ticks(self.pid)
        server_start = start_ticks(server_pid)
        if self.start is None or server_start is None:
            raise ProcessLookupError(f"no /proc entry for pid {self.pid} or server {server_pid}")
        _private_dir(root_dir(base))
        self.dir = _private_dir(server_dir(server_pid, server_start, base))
        self.path = os.path.join(self.dir, f"{self.pid}-{self.start}{_FILE_SUFFIX}")
        self.slots = slots
        size = _HEADER_SIZE + slots * SLOT_SIZE
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        try:
            os.ftruncate(fd, size)
            self.mm = mmap.mmap(fd, size)
        finally:
            os.close(fd)
        _HEADER.pack_into(self.mm, 0, MAGIC, VERSION, slots, self.pid, self.start, 0)
        self.closed = False
        # Requests started by the process: ``next`` is atomic under the GIL.
        self.requests = itertools.count(1)
        self._free = list(range(slots - 1, -1, -1))
        self._lock = threading.Lock()

    def claim(self, tid=None):
        """A record for the calling thread, or None when all are taken."""
        with self._lock:
            if self.closed or not self._free:
                return None
            index = self._free.pop()
        slot = Slot(self, index, tid or threading.get_native_id())
        slot.write_idle()
        return slot

    def release(self, slot):
        """Give the record back (once; later calls do nothing)."""
        with self._lock:
            index, slot.index = slot.index, None
            if self.closed or slot.board is not self or index is None:
                return
            slot.free()
            self._free.append(index)

    def detach(self):
        """Stop using the file without deleting it (a forked child's copy)."""
        self.closed = True
        with contextlib.suppress(ValueError, BufferError):
            self.mm.close()

    def close(self):
        """Delete the file: the process is done."""
        if self.closed:
            return
        self.detach()
        with contextlib.suppress(OSError):
            os.unlink(self.path)


def _read_record(mm, offset):
    """A consistent copy of one record, or None if it stayed mid-write."""
    for attempt in range(_READ_RETRIES):
        seq = _SEQ.unpack_from(mm, offset)[0]
        if not seq & 1:
            body = _BODY.unpack_from(mm, offset + _HEAD_AT)
            if _SEQ.unpack_from(mm, offset)[0] == seq:
                return body
        # The writer was preempted mid-write: let it run.
        time.sleep(0 if attempt < 10 else 0.0005)
    return None


def _record_dict(pid, body):
    (tid, kind, state, since, requests, uid, backend_pid, db, login, url, cron_id, cron_name, cron_db) = body
    return {
        "pid": pid,
        "tid": tid,
        "kind": KINDS.get(kind),
        "state": STATES[state],
        "since": since,
        "requests": requests,
        "uid": uid or None,
        "backend_pid": backend_pid or None,
        "db": _decode(db),
        "login": _decode(login),
        "url": _decode(url),
        "cron_job": {"id": cron_id, "name": _decode(cron_name), "db": _decode(cron_db)} if cron_id else None,
    }


def _live_tids(pid):
    try:
        return {int(tid) for tid in os.listdir(f"/proc/{pid}/task")}
    except OSError:
        return set()


def read_file(path, pid):
    """``(requests, records)`` of one board file; records of live threads only."""
    with open(path, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        if size < _HEADER_SIZE:
            return 0, []
        mm = mmap.mmap(handle.fileno(), size, access=mmap.ACCESS_READ)
    with mm:
        magic, version, slots, _pid, _start, requests = _HEADER.unpack_from(mm, 0)
        if magic != MAGIC or version != VERSION:
            return 0, []
        slots = min(slots, (size - _HEADER_SIZE) // SLOT_SIZE)
        records = []
        for index in range(slots):
            offset = _HEADER_SIZE + index * SLOT_SIZE
            if not _SEQ.unpack_from(mm, offset)[0]:
                continue  # never used
            body = _read_record(mm, offset)
            if body is None or body[2] not in STATES:
                continue
            records.append(_record_dict(pid, body))
    if records:
        tids = _live_tids(pid)
        records = [r for r in records if r["tid"] in tids]
    return requests, records


def read_board(server_pid, base=None, cleanup=True):
    """Activity of the live processes of a server: ``{pid: (requests, records)}``.

    Files of processes that are gone, or whose pid now names another process,
    are skipped and (with ``cleanup``) deleted.
    """
    server_start = start_ticks(server_pid)
    if server_start is None:
        return {}
    directory = server_dir(server_pid, server_start, base)
    try:
        names = os.listdir(directory)
    except OSError:
        return {}
    found = {}
    for name in names:
        key = _parse_key(name) if name.endswith(_FILE_SUFFIX) else None
        if key is None:
            continue
        pid, start = key
        path = os.path.join(directory, name)
        if not is_alive(pid, start):
            if cleanup:
                with contextlib.suppress(OSError):
                    os.unlink(path)
            continue
        try:
            found[pid] = read_file(path, pid)
        except (OSError, ValueError):
            continue  # removed meanwhile
    return found
