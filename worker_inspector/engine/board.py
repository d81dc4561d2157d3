"""The activity board: fixed-size records in shared memory, one file per process.

Every Odoo process of a server writes what its request and cron threads are
doing into its own small file on a tmpfs; the process serving the dashboard
reads them all. Files work across forked workers without a restart, and a
write is one ``pwrite`` of the record.

Layout::

    <base>/worker_inspector-<euid>/<server pid>-<server start>/<pid>-<start>.board

``start`` is the process start time in clock ticks since boot (see
``identity``): a pid plus its start time names one process for good, so a
reused pid never inherits a dead process's records. Each file holds a header
and ``slots`` records of ``SLOT_SIZE`` bytes, one per thread. A thread keeps
what it does in memory (``Slot``); its record is written whole from that
state, under the board's lock (one writer at a time: the process's writer,
see ``recorder``), ending with a CRC-32 of the rest: a reader that copies a record while it is
being written sees the CRC fail and reads it again, and never uses a torn one.

No file is ever mapped in memory: writers use ``pwrite``, readers ``pread``.
A store into a mapping past the end of a file that someone shrank meanwhile
(``truncate``, ``: > file``, by root or this user) would raise SIGBUS and
kill the Odoo process; a ``pwrite`` there only extends the file again, and a
full filesystem makes it fail with ENOSPC, which the recorder swallows. The
writer notices a shrunk file before it answers a reader, else within
``CHECK_EVERY`` seconds, and writes it back whole (``repairs`` counts it).

Trust: the base (``/dev/shm``, ``/tmp``) is shared with other users, so
nothing below it is used by name. Both directories must be created by this
user with mode 0700; each is opened with ``O_NOFOLLOW`` relative to the
already verified directory above it, and checked with ``fstat`` on the open
descriptor. Anything else raises ``UntrustedBoard``: nothing is deleted,
opened or read there. Board files are opened the same way, must be regular
files of this user, and every field read is validated.
"""

import collections
import contextlib
import errno
import logging
import math
import os
import stat
import struct
import tempfile
import threading
import time
import weakref
import zlib

from .identity import ProcessKey, is_alive, start_ticks
from .vocabulary import ActivityKind, ActivityState

_logger = logging.getLogger(__name__)

MAGIC = b"WIAB"
VERSION = 2

STATE_FREE, STATE_IDLE, STATE_BUSY = 0, 1, 2
STATES = {STATE_IDLE: ActivityState.IDLE, STATE_BUSY: ActivityState.BUSY}
KIND_NONE, KIND_HTTP, KIND_CRON = 0, 1, 2
KINDS = {KIND_NONE: None, KIND_HTTP: ActivityKind.HTTP, KIND_CRON: ActivityKind.CRON}


def _layout(name, *fields):
    """A struct and a named tuple of its values, from ``(name, format)`` pairs
    (a name of None is padding): each binary layout is declared once."""
    fmt = "<" + "".join(code for _name, code in fields)
    return struct.Struct(fmt), collections.namedtuple(name, [field for field, _code in fields if field])


# Header: magic, version, slot count, pid, start ticks; written once.
_HEADER, Header = _layout(
    "Header",
    ("magic", "4s"),
    ("version", "H"),
    ("slots", "H"),
    ("pid", "I"),
    (None, "4x"),
    ("start", "Q"),
)
_HEADER_SIZE = 64

# A record: sequence (0: never used), the body, then a CRC-32 of both. The
# body: the head, the user (set once authenticated), the URL, the cron job;
# always written whole. ``process_requests``: requests the
# process had started when the record was written (the process's count is the
# highest of its records: no shared counter to write on each request).
_U64 = struct.Struct("<Q")
_SEQ = _U64
_CRC = struct.Struct("<I")
_HEAD_FIELDS = (
    ("tid", "q"),
    ("kind", "B"),
    ("state", "B"),
    (None, "6x"),
    ("since", "d"),
    ("requests", "Q"),
    ("process_requests", "Q"),
)
# uid (0: none), PostgreSQL backend pid of the current cursor (0: none), db, login
_USER_FIELDS = (("uid", "q"), ("backend_pid", "i"), ("db", "64p"), ("login", "64p"))
_URL_FIELDS = (("url", "256p"),)  # URL path, no query string
_CRON_FIELDS = (("cron_id", "q"), ("cron_name", "128p"), ("cron_db", "64p"))  # cron id 0: none
_HEAD, _ = _layout("Head", *_HEAD_FIELDS)  # a freed record's
_BODY, RawRecord = _layout("RawRecord", *_HEAD_FIELDS, *_USER_FIELDS, *_URL_FIELDS, *_CRON_FIELDS)
_HEAD_AT = _SEQ.size
_CRC_AT = _HEAD_AT + _BODY.size
SLOT_SIZE = _CRC_AT + _CRC.size
assert SLOT_SIZE == 648
# Seconds between two checks, by a writer, that its file is still whole (a system call
# in the writer's turn, which Odoo's request thread may take the GIL back at).
CHECK_EVERY = 10.0

# Bounds of what a reader accepts (a file is never trusted to be well formed).
MAX_SLOTS = 4096
_MAX_FILE_SIZE = _HEADER_SIZE + MAX_SLOTS * SLOT_SIZE
_MAX_ID = 2**31  # pids, tids, uids, cron ids, backend pids
_MAX_COUNT = 2**53  # request counters: exact in JSON
_CLOCK_SKEW = 60.0  # seconds a record may be ahead of the reader's clock

_NO_USER = (0, 0, b"", b"")
_NO_CRON = (0, b"", b"")
_READ_RETRIES = 200
_FILE_SUFFIX = ".board"
CTL_SUFFIX = ".ctl"  # a process's inspector socket, beside its board file (see ``stacks``)
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_WRITE_FLAGS = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


class UntrustedBoard(PermissionError):
    """A board directory or file is not this user's own private one: not used."""


def default_base():
    """``WORKER_INSPECTOR_BOARD_DIR``, else a tmpfs when there is one: the board never touches a disk."""
    if os.environ.get("WORKER_INSPECTOR_BOARD_DIR"):
        return os.environ["WORKER_INSPECTOR_BOARD_DIR"]
    if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK | os.X_OK):
        return "/dev/shm"
    return tempfile.gettempdir()


def _root_name():
    return f"worker_inspector-{os.geteuid()}"


def _key_name(key):
    return f"{key[0]}-{key[1]}"


def root_dir(base=None):
    return os.path.join(base or default_base(), _root_name())


def server_dir(server_pid, server_start, base=None):
    return os.path.join(root_dir(base), _key_name((server_pid, server_start)))


def _parse_key(name, suffix=""):
    """``ProcessKey`` from a name ``<pid>-<start><suffix>`` (a server's directory, or with
    its suffix a process's file in one), or None for any other name."""
    if not name.endswith(suffix):
        return None
    pid, sep, start = name[: len(name) - len(suffix)].partition("-")
    if not sep or not pid.isdigit() or not start.isdigit() or len(pid) > 10 or len(start) > 20:
        return None
    return ProcessKey(int(pid), int(start))


def _open_private_dir(parent_fd, name, shown_path, create):
    """A descriptor of directory ``name`` under ``parent_fd``, only if this user
    created it with mode 0700 (checked on the open descriptor, not the name).

    Returns None when it does not exist (and ``create`` is false).
    """
    if create:
        with contextlib.suppress(FileExistsError):
            os.mkdir(name, 0o700, dir_fd=parent_fd)
    try:
        fd = os.open(name, _DIR_FLAGS, dir_fd=parent_fd)
    except FileNotFoundError:
        if create:
            raise
        return None
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise UntrustedBoard(
                errno.EPERM, "not used: a symlink or not a directory (another user may have created it)", shown_path
            ) from None
        raise
    info = os.fstat(fd)
    if info.st_uid != os.geteuid() or stat.S_IMODE(info.st_mode) != 0o700:
        os.close(fd)
        raise UntrustedBoard(
            errno.EPERM,
            f"not used: owned by uid {info.st_uid} with mode {stat.S_IMODE(info.st_mode):o}, "
            f"expected uid {os.geteuid()} and mode 700",
            shown_path,
        )
    return fd


def _open_root(base, create):
    """The verified ``worker_inspector-<euid>`` directory of ``base`` (None: none yet)."""
    base = base or default_base()
    try:
        base_fd = os.open(base, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except FileNotFoundError:
        if create:
            raise
        return None
    try:
        return _open_private_dir(base_fd, _root_name(), root_dir(base), create)
    finally:
        os.close(base_fd)


def _open_server_dir(server_key, base, create):
    root_fd = _open_root(base, create)
    if root_fd is None:
        return None
    try:
        return _open_private_dir(root_fd, _key_name(server_key), server_dir(*server_key, base), create)
    finally:
        os.close(root_fd)


def _remove_server_dir(root_fd, name):
    """Delete a dead server's board: its files, then the directory itself."""
    try:
        fd = _open_private_dir(root_fd, name, name, create=False)
    except OSError:
        return  # not ours to delete
    if fd is None:
        return
    try:
        for entry in os.listdir(fd):
            with contextlib.suppress(OSError):
                if not stat.S_ISDIR(os.stat(entry, dir_fd=fd, follow_symlinks=False).st_mode):
                    os.unlink(entry, dir_fd=fd)
    finally:
        os.close(fd)
    with contextlib.suppress(OSError):
        os.rmdir(name, dir_fd=root_fd)


def remove_dead_servers(base=None):
    """Delete the boards of servers that are gone (their pid died or was reused).

    Only inside the verified directory; raises ``UntrustedBoard`` otherwise.
    """
    root_fd = _open_root(base, create=False)
    if root_fd is None:
        return
    try:
        for name in os.listdir(root_fd):
            key = _parse_key(name)
            if key and not is_alive(key):
                _remove_server_dir(root_fd, name)
    finally:
        os.close(root_fd)


def _allocate(fd, size):
    """Give the file ``size`` zero bytes of real storage: a full filesystem fails
    here, at the start, rather than at some later write."""
    os.ftruncate(fd, 0)
    try:
        os.posix_fallocate(fd, 0, size)
    except OSError as exc:
        if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL):
            raise
        if os.pwrite(fd, bytes(size), 0) != size:  # allocates too, or fails with ENOSPC
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)) from None


def create_file(dir_fd, name, size, shown_path):
    """A descriptor of ``name`` in the verified directory ``dir_fd``, created 0600 if
    needed: a regular file of this user, given ``size`` bytes of real storage."""
    fd = os.open(name, _WRITE_FLAGS, 0o600, dir_fd=dir_fd)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_uid != os.geteuid():
            raise UntrustedBoard(errno.EPERM, "not a regular file of this user", shown_path)
        _allocate(fd, size)
        return fd
    except BaseException:
        os.close(fd)
        raise


def is_whole(fd, size, allocated):
    """Whether the file still has its ``size`` bytes (and, when it had them
    ``allocated``, its storage: shrunk and written again leaves holes)."""
    info = os.fstat(fd)
    return info.st_size >= size and (not allocated or info.st_blocks * 512 >= size)


def close_fds(*fds):
    """Close, whatever is already closed."""
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)


def regrow(fd, size):
    """Give a shrunk file its ``size`` bytes back: allocated, else as holes."""
    try:
        os.posix_fallocate(fd, 0, size)
    except OSError:
        os.ftruncate(fd, size)


def retire_fd(fd):
    """Point ``fd`` at /dev/null: a thread still writing to it writes nothing, where a
    closed number could already name a file opened since. Close it once unused."""
    null = os.open(os.devnull, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.dup2(null, fd)
    finally:
        os.close(null)


class WrittenFile:
    """A file this process writes with ``pwrite`` through ``fd``, in the verified
    directory ``_dir_fd``."""

    closed = True

    def detach(self):
        """Stop writing; the file stays (a forked child's copy, or the process is done)."""
        if self.closed:
            return
        self.closed = True
        with contextlib.suppress(OSError):
            retire_fd(self.fd)
        close_fds(self._dir_fd)

    def __del__(self):
        # Unused: no thread can write through it any more.
        if self.closed and hasattr(self, "fd"):
            close_fds(self.fd)


# Encoded texts by value, for the board's and the request log's writers: a server's
# databases, logins, job names and methods repeat. Emptied when full.
_TEXTS = {}
TEXTS_KEPT = 4096


def encode_text(text):
    """``text`` (str or bytes) as UTF-8 bytes, b"" for none: a field's ``struct`` format
    (``"64p"``) cuts them to its size."""
    if not text:
        return b""
    raw = _TEXTS.get(text)
    if raw is None:
        if len(_TEXTS) >= TEXTS_KEPT:
            _TEXTS.clear()
        raw = _TEXTS[text] = text if isinstance(text, bytes) else str(text).encode("utf-8", "replace")
    return raw


def _decode(raw):
    return raw.decode("utf-8", "replace") or None


# Fields of a request or scheduled action in memory: a list the working thread
# fills and the writer reads (see ``Slot``). A request's ``path`` is the WSGI
# PATH_INFO (str) or bytes; a job's is None and its ``job`` is ``(id, name)``.
# Once it ended: its CPU time, SQL queries and their time, HTTP status (a number,
# the WSGI status line, or the server's cell that holds it: ``Recorder.wsgi``).
(
    W_START, W_PATH, W_UID, W_DB, W_LOGIN, W_BACKEND, W_SLOW, W_RPC, W_ENDED, W_JOB,
    W_CPU, W_QUERIES, W_QUERY_TIME, W_STATUS,
) = range(14)  # fmt: skip
NO_RESPONSE = 500  # the status of a request that an error ended before its response


def new_work(start, path, job=None):
    """The in-memory record of a request (``path``) or a scheduled action (``job``)."""
    return [start, path, 0, None, None, 0, None, None, None, job, 0.0, 0, 0.0, NO_RESPONSE]


def status_code(status):
    """The HTTP status of a request (``W_STATUS``) as a number, 0 when there is none."""
    if status.__class__ is int:
        return status
    code = status[:3]
    return int(code) if code.isdigit() else 0


def raw_path(path):
    # PATH_INFO holds the raw bytes of the path decoded as latin-1.
    return path if isinstance(path, bytes) else path.encode("latin-1", "replace")


class Slot:
    """One record of the board: what one thread is doing.

    The thread keeps what it does in memory (``current``: its request,
    ``cron``: its scheduled action, lists made by ``new_work``), and
    ``publish`` writes the record from that state. Records are written by one
    thread at a time: under the board's lock, by the process's writer (the
    recorder's ``flush``), or at once by the methods below.
    """

    __slots__ = (
        "__weakref__",
        "board",
        "buf",
        "cpu",
        "cpu_at",
        "cron",
        "current",
        "idle_since",
        "index",
        "last_kind",
        "offset",
        "published",
        "requests",
        "seq",
        "server_start_response",
        "signed",
        "stack_taken",
        "status_work",
        "thread",
        "tid",
    )

    def __init__(self, board, index, tid):
        self.board = board
        self.index = index
        self.offset = _HEADER_SIZE + index * SLOT_SIZE
        self.tid = tid
        # The thread (``threading.Thread``) that holds the record: Odoo counts its queries there.
        self.thread = None
        # The record as last written, and the part its CRC covers: made as it is first
        # written (by the writer, for a thread's record claimed on the request path).
        self.buf = self.signed = None
        self.seq = 0
        # Requests this thread started (the process's count adds them: ``count_started``).
        self.requests = 0
        self.current = None
        self.cron = None
        self.last_kind = KIND_NONE
        # Since when the thread is idle (epoch); its CPU clock and when it was read
        # (the recorder's: a request's CPU time counts from the previous reading).
        self.idle_since = time.time()
        self.cpu = 0.0
        self.cpu_at = 0.0
        self.published = None
        # The request or job whose slow-request stack was taken (see ``stacks``).
        self.stack_taken = None
        # Under a server other than werkzeug's: its ``start_response`` for the thread's request,
        # which gets ``record_status`` (see ``Recorder.wsgi``) in its place, and the request's record.
        self.server_start_response = None
        self.status_work = None

    def record_status(self, line, headers, exc_info=None):
        """WSGI ``start_response`` of the thread's request: its status, for its record
        (also when called from the response's iterable, after the request ended)."""
        self.status_work[W_STATUS] = line  # parsed by the writer
        return self.server_start_response(line, headers, exc_info)

    # The record is its thread's ``start_response`` (``Recorder.wsgi``): no bound method
    # made per request, nor one kept per thread and looked up.
    __call__ = record_status

    def working(self):
        """The request (or, outside one, the scheduled action) under way, or None."""
        return self.current if self.current is not None else self.cron

    def slow_after(self, work):
        """Seconds after which ``work`` gets its stack kept: its database's threshold, capped."""
        board = self.board
        threshold = work[W_SLOW]
        return board.slow_after if threshold is None else min(threshold, board.slow_cap)

    def describe(self):
        """What the current request or job is, for a slow-request record."""
        work = self.working()
        if work is None:
            return {"native_id": self.tid, "started_at": None}
        job = self.cron[W_JOB] if self.cron is not None else None
        described = {"kind": "cron" if work[W_PATH] is None else "http", "started_at": work[W_START]}
        if work[W_PATH] is not None:
            described["url"] = raw_path(work[W_PATH])[:255].decode("utf-8", "replace")
        if work[W_DB]:
            described["db"] = work[W_DB]
        if work[W_UID]:
            described["uid"] = work[W_UID]
        if work[W_LOGIN]:
            described["login"] = work[W_LOGIN]
        if job is not None:
            described["cron_job"] = {"id": job[0], "name": job[1], "db": self.cron[W_DB]}
        described["native_id"] = self.tid
        return described

    def _state(self):
        """The record's fields from the thread's state, as ``_BODY`` packs them (after the tid)."""
        board = self.board
        req, cron = self.current, self.cron
        if cron is not None:
            job_id, name = cron[W_JOB]
            cron_fields = (job_id or 0, encode_text(name), encode_text(cron[W_DB]))
        else:
            cron_fields = _NO_CRON
        if req is not None:
            user = (req[W_UID] or 0, req[W_BACKEND] or 0, encode_text(req[W_DB]), encode_text(req[W_LOGIN]))
            return (KIND_HTTP, STATE_BUSY, req[W_START], self.requests, board.started, *user,
                    raw_path(req[W_PATH])[:255], *cron_fields)  # fmt: skip
        if cron is not None:
            user = (cron[W_UID] or 0, cron[W_BACKEND] or 0, encode_text(cron[W_DB]), b"")
            return (KIND_CRON, STATE_BUSY, cron[W_START], self.requests, board.started, *user, b"", *cron_fields)
        return (self.last_kind, STATE_IDLE, self.idle_since, self.requests, board.started, *_NO_USER, b"", *_NO_CRON)

    def publish(self, force=False):
        """Write the record if the thread's state changed since it was last written."""
        state = self._state()
        if state == self.published and not force:
            return
        self.published = state
        if self.buf is None:
            self.buf = bytearray(SLOT_SIZE)
            self.signed = memoryview(self.buf)[:_CRC_AT]
        _BODY.pack_into(self.buf, _HEAD_AT, self.tid, *state)
        self._publish()

    def _publish(self):
        """Write the whole record, signed: one system call, never a store into a mapping."""
        buf = self.buf
        self.seq += 1
        _SEQ.pack_into(buf, 0, self.seq)
        _CRC.pack_into(buf, _CRC_AT, zlib.crc32(self.signed))
        os.pwrite(self.board.fd, buf, self.offset)

    def _publish_now(self):
        with self.board.writing():
            self.publish()

    # --- the state changes in memory (the recorder's ``flush`` writes them in batches) ...

    def start_request(self, path, now):
        """The thread starts a request for ``path``: its in-memory record."""
        self.requests += 1
        self.board.count_started()
        work = self.current = new_work(now, path)
        return work

    def finish_request(self, now):
        """The request ended at ``now`` (epoch): idle again; returns its in-memory record."""
        req, self.current = self.current, None
        if req is not None:
            req[W_ENDED] = now
        self.idle_since = now
        self.last_kind = KIND_HTTP
        return req

    def start_cron(self, job_id, name, db, uid=None, backend_pid=0, slow_after=None):
        """A scheduled action starts (inside a request, "Run Manually", the request stays);
        returns its in-memory record."""
        work = new_work(time.time(), None, (job_id, name))
        work[W_UID:W_RPC] = uid or 0, db, None, backend_pid or 0, slow_after
        self.cron = work
        return work

    def finish_cron(self, now):
        """The scheduled action ended at ``now`` (epoch); returns its in-memory record."""
        work, self.cron = self.cron, None
        if work is not None:
            work[W_ENDED] = now
        if self.current is None:
            self.idle_since = now
            self.last_kind = KIND_CRON
        return work

    # --- ... and the same, each written at once

    def write_idle(self, kind=KIND_NONE):
        self.last_kind = kind
        self.publish(force=True)

    def begin_request(self, path):
        """A request starts: busy on ``path`` (bytes, no query string); returns its start (epoch)."""
        now = time.time()
        self.start_request(path, now)
        self._publish_now()
        return now

    def set_user(self, db, uid, login, backend_pid=0, slow_after=None):
        """The request is authenticated: who, on which database, with which PostgreSQL backend
        (``slow_after``: its slow-request threshold on that database)."""
        req = self.current
        if req is None:
            return
        req[W_UID:W_RPC] = uid or 0, db, login, backend_pid or 0, slow_after
        self._publish_now()

    def end_request(self, now=None):
        """The request ended (at ``now``, epoch): idle again."""
        self.finish_request(now or time.time())
        self._publish_now()

    def begin_cron(self, job_id, name, db, uid=None, backend_pid=0, slow_after=None):
        work = self.start_cron(job_id, name, db, uid, backend_pid, slow_after)
        self._publish_now()
        return work

    def end_cron(self, now=None):
        self.finish_cron(now or time.time())
        self._publish_now()

    def __del__(self):
        # The thread that owned the record is gone (its thread-local dropped it).
        try:
            self.board.release(self)
        except Exception:  # a finalizer must not raise (contextlib.suppress: 3 calls more)
            _logger.debug("record not given back", exc_info=True)


class ClaimedSlots:
    """The records in use by the threads of a process, by index, for its writer and its
    slow-request watch.

    Threads claim records while the writer reads them, without a shared lock: adding one
    and copying them all are each one operation under the GIL, so a claim never breaks a
    reader's iteration, as it would a ``WeakValueDictionary`` being walked in Python code.
    Weak references: a record dies with its thread's thread-local, which gives it back.
    """

    __slots__ = ("_refs",)

    def __init__(self):
        self._refs = {}

    def add(self, index, slot):
        self._refs[index] = weakref.ref(slot)

    def discard(self, index):
        self._refs.pop(index, None)

    def __contains__(self, index):
        return index in self._refs

    def values(self):
        """The live records, as a new list."""
        slots = []
        for ref in list(self._refs.values()):
            slot = ref()
            if slot is not None:
                slots.append(slot)
        return slots

    def __len__(self):
        return len(self.values())


class ProcessBoard(WrittenFile):
    """The board file of one process, with ``slots`` records for its threads.

    Raises ``UntrustedBoard`` when the board directory is not this user's
    private one, ``OSError`` when the file cannot be created and allocated.
    """

    def __init__(self, server_pid, slots, base=None, pid=None):
        self.pid = pid or os.getpid()
        self.start = start_ticks(self.pid)
        server_start = start_ticks(server_pid)
        if self.start is None or server_start is None:
            raise ProcessLookupError(f"no /proc entry for pid {self.pid} or server {server_pid}")
        if not 0 < slots <= MAX_SLOTS:
            raise ValueError(f"slots must be 1..{MAX_SLOTS}")
        self.dir = server_dir(server_pid, server_start, base)
        self.name = f"{_key_name((self.pid, self.start))}{_FILE_SUFFIX}"
        self.path = os.path.join(self.dir, self.name)
        self.slots = slots
        self.size = _HEADER_SIZE + slots * SLOT_SIZE
        self.closed = True
        self._dir_fd = _open_server_dir((server_pid, server_start), base, create=True)
        try:
            fd = create_file(self._dir_fd, self.name, self.size, self.path)
        except BaseException:
            os.close(self._dir_fd)
            raise
        try:
            os.pwrite(fd, _HEADER.pack(MAGIC, VERSION, self.slots, self.pid, self.start), 0)
            self._allocated = is_whole(fd, self.size, allocated=True)
        except BaseException:
            close_fds(fd, self._dir_fd)
            raise
        self.fd = fd
        self.closed = False
        # Requests started by the process (``count_started``), and by its threads that ended.
        self.started = 0
        self.retired = 0
        self._free = list(range(slots - 1, -1, -1))
        # Held by whoever writes records: one writer at a time (see ``Slot``).
        self._lock = threading.RLock()
        self.repairs = 0
        self.check_at = time.time() + CHECK_EVERY
        # Records in use, for the writer and the slow-request watch; thresholds (seconds).
        self.claimed = ClaimedSlots()
        self.slow_after = self.slow_cap = math.inf
        # With ``defer_free`` (a writer turns: the recorder's), a thread's record given back
        # is only queued in ``ended`` as ``(index, requests)``: the writer writes it free
        # (``retire_ended``, ``write_free``). A threaded server's thread per request then
        # ends without a lock or a system call.
        self.defer_free = False
        self.ended = collections.deque()
        self._free_record = bytearray(SLOT_SIZE)

    def _write_header(self):
        os.pwrite(self.fd, _HEADER.pack(MAGIC, VERSION, self.slots, self.pid, self.start), 0)

    def ensure_intact(self):
        """Write the file back whole if something shrank it (at most every ``CHECK_EVERY`` s).

        Writing never faults (no mapping): a shrunk file only loses the
        header and the records of threads that did not write since, until
        this puts them back.
        """
        self.check_at = time.time() + CHECK_EVERY
        if is_whole(self.fd, self.size, self._allocated):
            return
        with self._lock:
            if self.closed or is_whole(self.fd, self.size, self._allocated):
                return
            regrow(self.fd, self.size)
            self._write_header()
            for slot in self.claimed.values():
                if slot.seq:
                    os.pwrite(self.fd, slot.buf, slot.offset)
            self.repairs += 1

    def claim(self, tid=None, write=True):
        """A record for the calling thread (``tid``: its id, read with a system call when
        not given), or None when all are taken.

        Without ``write`` the process's writer writes it, at its next turn (``publish``), and
        the claim takes no lock and makes no system call: a threaded server's thread claims
        its record as its first request begins, and the writer holds the lock for its turn.
        """
        if self.closed:
            return None
        try:
            index = self._free.pop()  # one operation under the GIL: two claims never share one
        except IndexError:
            return None
        slot = Slot(self, index, tid or threading.get_native_id())
        self.claimed.add(index, slot)
        if write:
            with self._lock:
                if not self.closed:
                    slot.write_idle()
        return slot

    def count_started(self, slots=None):
        """Set ``started``, the requests the process started, from its threads' counts (each
        thread counts its own: the request path shares no counter). Never decreases."""
        if slots is None:
            slots = self.claimed.values()
        total = self.retired
        for slot in slots:
            total += slot.requests
        self.started = max(self.started, total)

    def writing(self):
        """The lock a record is written under."""
        return self._lock

    def retire_ended(self):
        """The indexes of the records given back since the last call (``release``), their
        threads' requests now counted in ``retired``. Under the lock: the writer's turn, or
        ``release`` itself without a writer."""
        ended, freed = self.ended, []
        for _ in range(len(ended)):
            index, requests = ended.popleft()
            self.retired += requests
            freed.append(index)
        return freed

    def write_free(self, indexes):
        """Write the records at ``indexes`` free (with the process's count), but those claimed
        again meanwhile: their new thread's record is written in their place. Under the lock."""
        buf, claimed = self._free_record, self.claimed
        _HEAD.pack_into(buf, _HEAD_AT, 0, KIND_NONE, STATE_FREE, 0.0, 0, self.started)
        _SEQ.pack_into(buf, 0, 1)
        _CRC.pack_into(buf, _CRC_AT, zlib.crc32(memoryview(buf)[:_CRC_AT]))
        for index in set(indexes):
            if index not in claimed:
                os.pwrite(self.fd, buf, _HEADER_SIZE + index * SLOT_SIZE)

    def release(self, slot):
        """Give the record back (once; later calls do nothing): queued in ``ended`` and written
        free, with the thread's requests counted in the process's, by the writer's next turn
        (``defer_free``) or at once."""
        index, slot.index = slot.index, None
        if self.closed or slot.board is not self or index is None:
            return
        # Each one operation under the GIL; queued before the index can be claimed again.
        self.claimed.discard(index)
        self.ended.append((index, slot.requests))
        self._free.append(index)
        if not self.defer_free:
            # The writer's part, under the lock every record is written under: a claim of the
            # index meanwhile is written after this, or makes this skip it (``write_free``).
            with self._lock:
                if not self.closed:
                    freed = self.retire_ended()
                    self.count_started()
                    self.write_free(freed)

    def close(self):
        """Delete the file: the process is done."""
        if self.closed:
            return
        with contextlib.suppress(OSError):
            os.unlink(self.name, dir_fd=self._dir_fd)
        self.detach()


def _valid_record(raw, now):
    """The record as a dict, or None when a field is out of bounds."""
    if raw.state not in STATES or raw.kind not in KINDS:
        return None
    if not 0 < raw.tid < _MAX_ID or not 0 <= raw.requests < _MAX_COUNT:
        return None
    if not 0 <= raw.uid < _MAX_ID or not 0 <= raw.backend_pid < _MAX_ID or not 0 <= raw.cron_id < _MAX_ID:
        return None
    if not (math.isfinite(raw.since) and 0 < raw.since <= now + _CLOCK_SKEW):
        return None
    return {
        "tid": raw.tid,
        "kind": KINDS[raw.kind],
        "state": STATES[raw.state],
        "since": raw.since,
        "requests": raw.requests,
        "uid": raw.uid or None,
        "backend_pid": raw.backend_pid or None,
        "db": _decode(raw.db),
        "login": _decode(raw.login),
        "url": _decode(raw.url),
        "cron_job": (
            {"id": raw.cron_id, "name": _decode(raw.cron_name), "db": _decode(raw.cron_db)} if raw.cron_id else None
        ),
    }


def _signed_record(data, offset=0):
    """The record at ``offset`` of ``data`` if its CRC holds, else None."""
    view = memoryview(data)[offset : offset + SLOT_SIZE]
    if len(view) < SLOT_SIZE or zlib.crc32(view[:_CRC_AT]) != _CRC.unpack_from(view, _CRC_AT)[0]:
        return None
    return RawRecord._make(_BODY.unpack_from(view, _HEAD_AT))


def _read_record(fd, offset):
    """A consistent copy of one record, or None if it stayed mid-write.

    Read with ``pread``, never through a mapping: a file shrunk meanwhile
    gives a short read, not SIGBUS.
    """
    for attempt in range(_READ_RETRIES):
        data = os.pread(fd, SLOT_SIZE, offset)
        if len(data) < SLOT_SIZE:
            return None
        raw = _signed_record(data)
        if raw is not None:
            return raw
        # The writer was preempted mid-write: let it run.
        time.sleep(0 if attempt < 10 else 0.0005)
    return None


def _live_tids(pid):
    try:
        return {int(tid) for tid in os.listdir(f"/proc/{pid}/task")}
    except OSError:
        return set()


def _read_open_file(fd, key, now, live_only=True):
    info = os.fstat(fd)
    if (
        not stat.S_ISREG(info.st_mode)
        or info.st_uid != os.geteuid()
        or info.st_mode & 0o077
        or not _HEADER_SIZE <= info.st_size <= _MAX_FILE_SIZE
    ):
        return None
    # One read for the whole file; a record caught mid-write is read again alone.
    data = os.pread(fd, info.st_size, 0)
    if len(data) < _HEADER_SIZE:
        return None
    header = Header._make(_HEADER.unpack_from(data, 0))
    if (header.magic, header.version, header.pid, header.start) != (MAGIC, VERSION, *key):
        return None
    slots = min(header.slots, (len(data) - _HEADER_SIZE) // SLOT_SIZE)
    records = []
    requests = 0
    for index in range(slots):
        offset = _HEADER_SIZE + index * SLOT_SIZE
        if not _SEQ.unpack_from(data, offset)[0]:
            continue  # never used (or lost to a shrink, until its writer puts it back)
        raw = _signed_record(data, offset) or _read_record(fd, offset)
        if raw is None:
            continue
        if 0 <= raw.process_requests < _MAX_COUNT:
            requests = max(requests, raw.process_requests)
        record = _valid_record(raw, now)
        if record:
            record["pid"] = key.pid
            records.append(record)
    if records and live_only:
        tids = _live_tids(key.pid)
        records = [r for r in records if r["tid"] in tids]
    return requests, records


def _read_entry(dir_fd, name, key, now, live_only=True):
    try:
        fd = os.open(name, _READ_FLAGS, dir_fd=dir_fd)
    except OSError:
        return None  # removed meanwhile, a symlink, a FIFO without writer...
    try:
        return _read_open_file(fd, key, now, live_only)
    finally:
        os.close(fd)


def open_server_dir(server_pid, base=None, create=False):
    """A descriptor of the server's verified private directory (None: none yet), for
    the files that live beside the boards (the history); the caller closes it."""
    server_start = start_ticks(server_pid)
    if server_start is None:
        raise ProcessLookupError(f"no /proc entry for server {server_pid}")
    return _open_server_dir((server_pid, server_start), base, create)


@contextlib.contextmanager
def existing_server_dir(server_pid, base=None):
    """The server's verified private directory as a descriptor, closed afterwards; None
    when the server or its directory is gone. Raises ``UntrustedBoard`` like the others."""
    try:
        dir_fd = open_server_dir(server_pid, base)
    except ProcessLookupError:
        dir_fd = None
    try:
        yield dir_fd
    finally:
        if dir_fd is not None:
            os.close(dir_fd)


def dead_boards(server_pid, base=None):
    """Keys of the processes of the server that left their board file behind (gone)."""
    return dead_files(server_pid, base)[0]


def dead_files(server_pid, base=None):
    """``(boards, sockets)``: keys of the gone processes of the server that left their board
    file behind, and of those that left their inspector socket (``stacks``): one listing."""
    found = {_FILE_SUFFIX: [], CTL_SUFFIX: []}
    with existing_server_dir(server_pid, base) as dir_fd:
        if dir_fd is not None:
            alive = {}
            for name in os.listdir(dir_fd):
                for suffix, keys in found.items():
                    key = _parse_key(name, suffix)
                    if key is None:
                        continue
                    if key not in alive:
                        alive[key] = is_alive(key)
                    if not alive[key]:
                        keys.append(key)
    return found[_FILE_SUFFIX], found[CTL_SUFFIX]


def remove_sockets(server_pid, keys, base=None):
    """Delete the inspector sockets of processes ``keys`` of the server (gone: ``dead_files``)."""
    if not keys:
        return
    with existing_server_dir(server_pid, base) as dir_fd:
        if dir_fd is None:
            return
        for key in keys:
            with contextlib.suppress(OSError):
                os.unlink(_key_name(key) + CTL_SUFFIX, dir_fd=dir_fd)


def read_process(server_pid, key, base=None, live_only=True, remove=False):
    """``(requests, records)`` of the board of process ``key``, or None.

    ``live_only=False``: every record, also those of threads that are gone (what a
    dead process left behind); ``remove``: delete the file once read.
    """
    dir_fd = open_server_dir(server_pid, base)
    if dir_fd is None:
        return None
    name = f"{_key_name(key)}{_FILE_SUFFIX}"
    try:
        result = _read_entry(dir_fd, name, ProcessKey(*key), time.time(), live_only)
        if remove:
            with contextlib.suppress(OSError):
                os.unlink(name, dir_fd=dir_fd)
        return result
    finally:
        os.close(dir_fd)


def read_board(server_pid, base=None):
    """Activity of the live processes of a server: ``{pid: (requests, records)}``.

    Files of processes that are gone, or whose pid now names another process,
    are skipped, never deleted: such a file is the only record of how its
    process ended, which the history's sampler records before it deletes it
    (``Sampler.harvest``). Files that are not valid boards of this user are
    skipped. Raises ``UntrustedBoard`` when the board directory is not this
    user's private one.
    """
    server_start = start_ticks(server_pid)
    if server_start is None:
        return {}
    dir_fd = _open_server_dir((server_pid, server_start), base, create=False)
    if dir_fd is None:
        return {}
    found = {}
    now = time.time()
    try:
        for name in os.listdir(dir_fd):
            key = _parse_key(name, _FILE_SUFFIX)
            if key is None or not is_alive(key):
                continue
            result = _read_entry(dir_fd, name, key, now)
            if result is not None:
                found[key.pid] = result
    finally:
        os.close(dir_fd)
    return found
