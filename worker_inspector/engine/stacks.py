"""Python stacks of every thread of a worker, on demand, without ptrace or signals.

Each process that records on the board (see ``recorder``) also runs one small
daemon thread, the inspector, blocked on a Unix datagram socket
``<pid>-<start>.ctl`` beside its board file, in the same private directory
(mode 0700: only this user can connect). Asked for a stack, it reads
``sys._current_frames()`` and writes the answer to a reply file there. It is a
thread of its own, not a signal handler, because a signal handler runs in the
main thread between bytecodes: a worker waiting in libpq (``pg_sleep``) or in
``select`` would answer only when the call returns. A thread blocked in C
releases the GIL, so the inspector runs at once. No signal is sent, so none of
Odoo's own handlers is disturbed.

The same thread is the process's writer (``Recorder.flush``) and, waking every
``WATCH_INTERVAL`` seconds while a request or scheduled action runs or records
wait to be written, takes the stack of a request or scheduled action of its
process once it has run longer than its threshold (``Slot.slow_after``). With
nothing to write or watch it sleeps until a message comes; the next request
wakes it (``wake``, one datagram to itself) for a first turn ``WATCH_INTERVAL``
later (not beside the request that woke it, which has nothing to write yet), so
an idle worker never wakes and a busy one once a second. It keeps a slow stack
in ``<pid>-<start>.slow``, a bounded file that outlives the process (a worker killed by
``limit_time_real`` leaves its last stack there). The history joins these
onto its request records and exits when it is read (``join_request_stacks``,
``join_exit_stacks``), never on the request path. A sampling profile runs in a
thread started for its duration only: nothing samples otherwise.

Frames carry no local variables (they hold data): file (relative to its
addons path or Odoo's root), line, function, source line, and the origin
(``odoo``, ``addon`` or ``python``).
"""

import contextlib
import errno
import json
import linecache
import logging
import math
import os
import re
import secrets
import socket
import stat
import sys
import threading
import time
import types

from .activity import public_activity
from .board import CTL_SUFFIX, UntrustedBoard, _open_server_dir, _parse_key, read_board
from .identity import ProcessKey, is_alive, process_key, start_ticks
from .jsonout import to_json
from .threads import OS_PROFILER, OS_WRITER, name_os_thread
from .tree import read_processes

_logger = logging.getLogger(__name__)

ORIGIN_ODOO, ORIGIN_ADDON, ORIGIN_PYTHON = "odoo", "addon", "python"
SLOW_SUFFIX = ".slow"
REPLY_SUFFIX = ".reply"
_REPLY_RE = re.compile(r"[0-9a-f]{32}\.reply")
MAX_DEPTH = 128
MAX_THREADS = 512
MAX_REPLY = 16 * 2**20
# The writer's turn while its process works: each turn costs it a few hundred µs with the
# caches cold, whatever it writes; the history's sampler looks at the board once a second.
WATCH_INTERVAL = 1.0
DEFAULT_SLOW_AFTER = 10.0
# A prefork master counts limit_time_real from a worker's last heartbeat, sent
# before it waits up to this long (Odoo's ``beat``) for a connection.
PREFORK_BEAT = 4.0
SLOW_CAP_SHARE = 0.5
# A slow stack is joined to its request by process and start time: both clocks
# are read within microseconds as a request starts. An exit's request start is
# its end less the elapsed time, both measured by another process: less exact.
JOIN_SLACK = 0.05
EXIT_SLACK = 1.0
SLOW_KEPT = 20  # slow stacks kept per process
SLOW_FILES_KEPT = 64  # per server, dead processes' files included
MAX_PROFILE_SECONDS = 60
PROFILE_HZ = 100
STACK_TIMEOUT = 2.0
FLUSH_TIMEOUT = 0.5  # seconds a read waits for the processes to write their records
_REPLY_MAX_AGE = 300


class StackUnavailable(Exception):
    """No stack: ``status`` 400 (not ours, not reporting) or 504 (no answer in time)."""

    def __init__(self, status, reason):
        super().__init__(reason)
        self.status = status
        self.reason = reason


class FrameFormatter:
    """Turns frames into ``{"file", "line", "function", "code", "origin"}``.

    ``roots``: ``(directory, origin)`` pairs, the most specific first; a file
    under one is shown relative to it (an addons path, Odoo's root).
    """

    def __init__(self, roots=()):
        self.roots = [(os.path.join(os.path.realpath(path), ""), origin) for path, origin in roots if path]
        self.roots.sort(key=lambda root: -len(root[0]))
        self._files = {}

    def place(self, filename):
        """``(shown file, origin)`` of a code object's file."""
        found = self._files.get(filename)
        if found is None:
            real = os.path.realpath(filename) if filename.startswith("/") else filename
            found = (filename, ORIGIN_PYTHON)
            for prefix, origin in self.roots:
                if real.startswith(prefix):
                    found = (real[len(prefix) :], origin)
                    break
            self._files[filename] = found
        return found

    def frames(self, frame, limit=MAX_DEPTH):
        """The stack ending at ``frame``, outermost first (as a traceback)."""
        found = []
        while frame is not None and len(found) < limit:
            code = frame.f_code
            shown, origin = self.place(code.co_filename)
            line = frame.f_lineno or 0
            found.append(
                {
                    "file": shown,
                    "line": line,
                    "function": code.co_name,
                    "code": linecache.getline(code.co_filename, line).strip(),
                    "origin": origin,
                }
            )
            frame = frame.f_back
        found.reverse()
        return found


def _native_ids():
    """``{ident: (native id, name)}`` of this process's Python threads."""
    main = threading.main_thread().ident
    found = {}
    for thread in threading.enumerate():
        # After a fork the main thread keeps its parent's native_id; on Linux it is the pid.
        native = os.getpid() if thread.ident == main else thread.native_id
        found[thread.ident] = (native, thread.name)
    return found


def thread_stacks(formatter, only=None, skip=()):
    """``[{"native_id", "name", "frames"}]`` of this process's threads (``only``: those native ids)."""
    names = _native_ids()
    threads = []
    for ident, frame in sys._current_frames().items():
        native, name = names.get(ident, (None, f"thread {ident}"))
        if ident in skip or (only is not None and native not in only):
            continue
        threads.append({"native_id": native, "name": name, "frames": formatter.frames(frame)})
        if len(threads) >= MAX_THREADS:
            break
    return threads


def text_of(threads):
    """A stack answer as plain text (traceback-like), for the clipboard and logs."""
    lines = []
    for thread in threads:
        lines.append(f'Thread {thread.get("native_id")} "{thread.get("name")}"')
        for frame in thread.get("frames") or ():
            lines.append(f'  File "{frame["file"]}", line {frame["line"]}, in {frame["function"]}')
            if frame.get("code"):
                lines.append(f"    {frame['code']}")
        lines.append("")
    return "\n".join(lines)


def _write_private(dir_fd, name, payload):
    """Write ``payload`` (bytes) to ``name`` in ``dir_fd`` atomically, mode 0600."""
    tmp = f".{name}.{secrets.token_hex(4)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=dir_fd)
    try:
        with os.fdopen(fd, "wb", closefd=False) as handle:
            handle.write(payload)
    finally:
        os.close(fd)
    os.rename(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)


def _read_private(dir_fd, name, limit=MAX_REPLY):
    """The bytes of ``name`` if it is a regular file of this user, private, and not too big."""
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dir_fd)
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_uid != os.geteuid() or info.st_mode & 0o077:
            return None
        if info.st_size > limit:
            return None
        return os.pread(fd, info.st_size, 0)
    finally:
        os.close(fd)


def _key_name(key):
    return f"{key[0]}-{key[1]}"


def _socket_path(dir_fd, name):
    # Through the verified directory's descriptor: never a path another user could swap.
    return f"/proc/self/fd/{dir_fd}/{name}"


# Shortest wait for a turn already due (a timeout of 0 would make the socket non-blocking).
MIN_WAIT = 0.001
# Seconds ``Inspector.close`` waits for the inspector's threads before it closes their descriptors.
CLOSE_WAIT = 1.0


class Inspector:
    """The inspector thread of one process (see the module's docstring).

    ``board``: this process's ``ProcessBoard`` (its private directory, its
    slots). Stop it with ``close``; a forked child calls ``detach``.
    """

    def __init__(self, board, formatter, slow_store=True, flush=None, idle=None, rest=None):
        self.board = board
        # Holds ``asleep``: the recorder's request-path state, which the request path reads
        # without reading this object (``Recorder.wsgi``).
        self._rest = rest if rest is not None else types.SimpleNamespace()
        # The recorder's writer: run at each turn, and when a reader asks.
        self._flush = flush or (lambda checked=False: 0)
        # Whether no thread of the process works and nothing waits to be written.
        self._idle = idle or (lambda: False)
        self.asleep = False
        self.formatter = formatter
        self.pid = board.pid
        self.key = ProcessKey(board.pid, board.start)
        self.name = _key_name(self.key) + CTL_SUFFIX
        self._dir_fd = os.dup(board._dir_fd)
        self._closed = False
        self._profiling = None
        self.slow = SlowStore(self._dir_fd, self.key) if slow_store else None
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.name, dir_fd=self._dir_fd)  # a previous process with this pid+start cannot exist
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        self._address = _socket_path(self._dir_fd, self.name)
        try:
            self.sock.bind(self._address)
            self.sock.settimeout(WATCH_INTERVAL)
        except OSError:
            self.sock.close()
            os.close(self._dir_fd)
            raise
        self.thread = threading.Thread(target=self._run, name="worker_inspector", daemon=True)
        self.thread.start()

    @property
    def asleep(self):
        """Read by the request path (``Recorder``): blocked until a message, call ``wake``."""
        return self._rest.asleep

    @asleep.setter
    def asleep(self, value):
        self._rest.asleep = value

    def _run(self):
        name_os_thread(OS_WRITER)
        # After a wake-up, when the first turn is due (monotonic seconds): a turn right away
        # would run beside the request that woke the thread, which has nothing to write yet.
        due = None
        while not self._closed:
            try:
                if due is None:
                    self._set_timeout(None if self._may_sleep() else WATCH_INTERVAL)
                else:  # woken again meanwhile: the turn stays due when it was
                    self._set_timeout(max(due - time.monotonic(), MIN_WAIT))
                data = self.sock.recv(4096)
            except TimeoutError:
                data = None
            except OSError:
                return  # closed
            if self._closed:
                return
            self.asleep = False
            if data == b"":  # ``wake``: a request began in this idle process
                if due is None:
                    due = time.monotonic() + WATCH_INTERVAL
                continue
            due = None
            try:
                if data:
                    self._serve(data)
                self._flush()
                self.watch()
            except Exception:  # the inspector must never break Odoo
                _logger.debug("inspector request failed", exc_info=True)

    def _may_sleep(self):
        # Asleep first, then the check: a request that begins after the check finds it
        # asleep and wakes it; one that began before it is seen by the check.
        self.asleep = True
        try:
            self.asleep = self._idle()
        except Exception:  # the writer must never stop: it keeps turning instead
            _logger.debug("idle check failed", exc_info=True)
            self.asleep = False
        return self.asleep

    def _set_timeout(self, timeout):
        if self.sock.gettimeout() != timeout:
            self.sock.settimeout(timeout)

    def wake(self):
        """Make the sleeping thread take its turns again (the first request after a rest).

        Never blocks: a full queue already holds a message that wakes it."""
        self._rest.asleep = False  # not through the property: no further call on the request path
        with contextlib.suppress(OSError):
            self.sock.sendto(b"", socket.MSG_DONTWAIT, self._address)

    def _serve(self, data):
        try:
            message = json.loads(data)
            reply = message["reply"]
            op = message["op"]
        except (ValueError, KeyError, TypeError):
            return
        if not isinstance(reply, str) or not _REPLY_RE.fullmatch(reply):
            return
        # For a reader, the files are also checked whole first (turns check them now and then).
        if op == "flush":
            self._flush(checked=True)
            self._answer(reply, {"flushed": True})
        elif op == "stack":
            self._flush(checked=True)  # the asker tags the threads with their records next
            self._answer(reply, self.stack())
        elif op == "profile":
            seconds = message.get("seconds")
            hz = message.get("hz") or PROFILE_HZ
            if not isinstance(seconds, (int, float)) or not 0 < seconds <= MAX_PROFILE_SECONDS:
                return
            if not isinstance(hz, int) or not 1 <= hz <= 1000:
                return
            if self._profiling is not None and self._profiling.is_alive():
                self._answer(reply, {"error": "a profile of this process is already running"})
                return
            self._profiling = threading.Thread(
                target=self._profile, args=(reply, seconds, hz), name="worker_inspector profile", daemon=True
            )
            self._profiling.start()

    def _answer(self, reply, payload):
        _write_private(self._dir_fd, reply, to_json(payload))

    def stack(self):
        return {
            "pid": self.pid,
            "taken_at": time.time(),
            "threads": thread_stacks(self.formatter, skip=self._own_idents()),
        }

    def _own_idents(self):
        own = {self.thread.ident}
        if self._profiling is not None:
            own.add(self._profiling.ident)
        return own

    def _profile(self, reply, seconds, hz):
        name_os_thread(OS_PROFILER)
        try:
            self._answer(reply, sample(self.formatter, seconds, hz, skip=self._own_idents()))
        except Exception:
            _logger.warning("profile failed", exc_info=True)

    def watch(self, now=None):
        """Take, once, the stack of each request or job of this process slower than its threshold."""
        if self.slow is None:
            return
        now = time.time() if now is None else now
        for slot in self.board.claimed.values():
            work = slot.working()
            if work is None or slot.stack_taken is work:
                continue
            elapsed = now - work[0]  # its start (epoch)
            if elapsed < slot.slow_after(work):
                continue
            slot.stack_taken = work
            threads = thread_stacks(self.formatter, only={slot.tid})
            if threads:
                self.slow.add(slot, threads[0]["frames"], elapsed)

    def detach(self):
        """In a forked child: forget the parent's socket without deleting it."""
        self._closed = True
        with contextlib.suppress(OSError):
            self.sock.close()
        with contextlib.suppress(OSError):
            os.close(self._dir_fd)

    def close(self):
        """Stop answering and delete the socket (the process is done).

        The descriptors are closed only once the inspector's threads are done with them:
        closed under a running thread, their numbers could be reused for another file
        by then, which that thread would read or write. A thread still running after
        ``CLOSE_WAIT`` (a profile) keeps them open until the process ends."""
        if self._closed:
            return
        self._closed = True
        self.wake()  # a thread blocked in ``recv`` is not woken by closing the socket
        with contextlib.suppress(OSError):
            os.unlink(self.name, dir_fd=self._dir_fd)
        deadline = time.monotonic() + CLOSE_WAIT
        threads = [thread for thread in (self.thread, self._profiling) if thread is not None]
        for thread in threads:
            if thread is not threading.current_thread():
                thread.join(max(deadline - time.monotonic(), 0))
        if any(thread.is_alive() for thread in threads):
            return
        self.detach()


def sample(formatter, seconds, hz=PROFILE_HZ, skip=(), clock=time.monotonic):
    """Sample every thread's stack ``hz`` times a second for ``seconds``.

    Returns ``{"pid", "started_at", "duration", "cpu_seconds", "hz", "frames": [[file,
    line, function, code]], "stacks": [[frame index]], "samples": [[t,
    [[native id, name, stack index]]]]}`` (``t`` relative to the start):
    frames and stacks are interned, a 60 s profile stays small.
    """
    frame_index = {}
    frames = []
    stack_index = {}
    stacks = []
    places = {}
    samples = []
    period = 1.0 / hz
    started_at = time.time()
    cpu = time.thread_time()
    start = clock()
    deadline = start + seconds
    tick = start
    while True:
        now = clock()
        if now >= deadline:
            break
        names = _native_ids()
        row = []
        for ident, frame in sys._current_frames().items():
            if ident in skip:
                continue
            ids = []
            while frame is not None and len(ids) < MAX_DEPTH:
                code = frame.f_code
                key = (code, frame.f_lineno)
                index = frame_index.get(key)
                if index is None:
                    shown = places.get(code)
                    if shown is None:
                        shown = places[code] = formatter.place(code.co_filename)[0]
                    index = frame_index[key] = len(frames)
                    line = frame.f_lineno or 0
                    frames.append([shown, line, code.co_name, linecache.getline(code.co_filename, line).strip()])
                ids.append(index)
                frame = frame.f_back
            ids.reverse()
            ids = tuple(ids)
            sid = stack_index.get(ids)
            if sid is None:
                sid = stack_index[ids] = len(stacks)
                stacks.append(list(ids))
            native, name = names.get(ident, (None, f"thread {ident}"))
            row.append([native, name, sid])
        samples.append([round(now - start, 4), row])
        tick += period
        delay = tick - clock()
        if delay > 0:
            time.sleep(delay)
        else:
            tick = clock()  # late (the GIL was busy): do not burst to catch up
    return {
        "pid": os.getpid(),
        "started_at": started_at,
        "duration": round(clock() - start, 4),
        # CPU the sampling took (this thread's), the cost to the process.
        "cpu_seconds": round(time.thread_time() - cpu, 4),
        "hz": hz,
        "frames": frames,
        "stacks": stacks,
        "samples": samples,
    }


def to_odoo_traces(profile):
    """``ir.profile.traces_async`` entries from ``sample``'s result.

    Each thread becomes a root frame (``thread <name> (<native id>)``), so all
    threads share one flame graph; the samples of one tick share the tick's
    time slice in turn, so each thread's share of the graph is its share of
    the samples.
    """
    frames = profile["frames"]
    stacks = profile["stacks"]
    entries = []
    samples = profile["samples"]
    period = 1.0 / profile["hz"]
    started = profile["started_at"]
    for t, row in samples:
        row = [cell for cell in row if cell[2] is not None]
        if not row:
            continue
        slice_ = period / len(row)
        for position, (native, name, sid) in enumerate(row):
            root = (f"thread {name} ({native})", 0, f"thread {name} ({native})", "")
            stack = [root] + [tuple(frames[index]) for index in stacks[sid]]
            entries.append({"start": started + t + position * slice_, "stack": stack, "exec_context": []})
    entries.append({"start": started + profile["duration"], "stack": [], "exec_context": []})
    return entries


class SlowStore:
    """The slow requests of one process: its last ``SLOW_KEPT`` stacks, in a file."""

    def __init__(self, dir_fd, key):
        self._dir_fd = dir_fd
        self.name = _key_name(key) + SLOW_SUFFIX
        self.pid = key.pid
        self.entries = []

    def add(self, slot, frames, elapsed):
        record = slot.describe()
        record.update(pid=self.pid, taken_at=time.time(), elapsed=round(elapsed, 3), stack=frames)
        self.entries = [*self.entries[-(SLOW_KEPT - 1) :], record]
        _write_private(self._dir_fd, self.name, to_json(self.entries))
        _prune_slow_files(self._dir_fd)


def _prune_slow_files(dir_fd):
    """Keep the newest ``SLOW_FILES_KEPT`` files of slow stacks (those of live processes always)."""
    names = [name for name in os.listdir(dir_fd) if name.endswith(SLOW_SUFFIX)]
    if len(names) <= SLOW_FILES_KEPT:
        return
    dead = []
    for name in names:
        key = _parse_key(name, SLOW_SUFFIX)
        if key is not None and not is_alive(key):
            with contextlib.suppress(OSError):
                dead.append((os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mtime, name))
    dead.sort()
    for _mtime, name in dead[: len(names) - SLOW_FILES_KEPT]:
        with contextlib.suppress(OSError):
            os.unlink(name, dir_fd=dir_fd)


def _server_dir_fd(server_pid, base):
    server_start = start_ticks(server_pid)
    if server_start is None:
        return None
    return _open_server_dir((server_pid, server_start), base, create=False)


def slow_cap(limits):
    """The ceiling of the slow threshold: a stack taken before ``limit_time_real`` kills.

    ``limits``: the time limits a prefork worker is killed at (seconds, 0 or
    less: none). A request can start up to ``PREFORK_BEAT`` after the
    heartbeat the master counts from, and the watch wakes every
    ``WATCH_INTERVAL``: half the limit, and no later than the limit less both.
    """
    limits = [float(limit) for limit in limits if isinstance(limit, (int, float)) and limit > 0]
    if not limits:
        return math.inf
    limit = min(limits)
    return max(min(limit * SLOW_CAP_SHARE, limit - PREFORK_BEAT - 2 * WATCH_INTERVAL), WATCH_INTERVAL)


def read_slow(server_pid, base=None, pid=None, pids=None):
    """Slow-request stacks of a server's processes (gone ones included), oldest first
    (of process ``pid``, or of the processes in ``pids``, only)."""
    try:
        dir_fd = _server_dir_fd(server_pid, base)
    except UntrustedBoard:
        return []
    if dir_fd is None:
        return []
    found = []
    try:
        for name in os.listdir(dir_fd):
            key = _parse_key(name, SLOW_SUFFIX)
            if key is None or (pid is not None and key.pid != pid) or (pids is not None and key.pid not in pids):
                continue
            data = _read_private(dir_fd, name)
            try:
                entries = json.loads(data) if data else []
            except ValueError:
                continue
            if isinstance(entries, list):
                found.extend(
                    {**entry, "process_start": key.start}
                    for entry in entries
                    if isinstance(entry, dict) and entry.get("pid") == key.pid
                )
    finally:
        os.close(dir_fd)
    found.sort(key=lambda entry: entry.get("taken_at") or 0)
    return found


def _slow_by_pid(entries):
    by_pid = {}
    for entry in entries:
        if isinstance(entry.get("started_at"), (int, float)) and isinstance(entry.get("stack"), list):
            by_pid.setdefault(entry["pid"], []).append(entry)
    return by_pid


def _started_near(candidates, started_at, slack):
    """The one of ``candidates`` that started closest to ``started_at``, within ``slack``."""
    best = min(candidates, key=lambda found: abs(found["started_at"] - started_at), default=None)
    if best is None or abs(best["started_at"] - started_at) > slack:
        return None
    return best


def _same_url(one, other):
    """Both name the same path, or neither has one (records cut paths at different lengths)."""
    if not one or not other:
        return not one and not other
    return one.startswith(other) or other.startswith(one)


def join_request_stacks(records, entries):
    """Give each request log record (``requestlog.to_dict``) its ``stack``: the frames
    of its slow-request stack (``read_slow``), or None. Each stack goes to the record
    of its process, kind and path that started nearest to it (within ``JOIN_SLACK``);
    the join costs nothing on the request path."""
    by_pid = {}
    for record in records:
        record["stack"] = None
        by_pid.setdefault(record["pid"], []).append(record)
    for entry in entries:
        started = entry.get("started_at")
        if not isinstance(started, (int, float)) or not isinstance(entry.get("stack"), list):
            continue
        job = (entry.get("cron_job") or {}).get("id")
        candidates = [
            record
            for record in by_pid.get(entry.get("pid"), ())
            if record["kind"] == entry.get("kind")
            and _same_url(entry.get("url"), record.get("url"))
            and (record["kind"] != "cron" or (record.get("cron_job") or {}).get("id") == job)
        ]
        found = _started_near(candidates, started, JOIN_SLACK)
        if found is not None:
            found["stack"] = entry["stack"]
    return records


def join_exit_stacks(exits, entries):
    """Give each exit's ``doing`` its ``stack``: the slow-request stack of the
    request or job the process was on when it ended (a request killed by
    ``limit_time_real`` started ``elapsed`` before the kill), or None."""
    by_pid = _slow_by_pid(entries)
    for record in exits:
        doing = record.get("doing")
        if not doing:
            continue
        found = None
        elapsed = doing.get("elapsed")
        if isinstance(elapsed, (int, float)) and record.get("ended_at"):
            ended = record["ended_at"]
            candidates = [
                entry
                for entry in by_pid.get(record["pid"], ())
                if (entry.get("taken_at") or 0) <= ended + EXIT_SLACK and _same_url(entry.get("url"), doing.get("url"))
            ]
            found = _started_near(candidates, ended - elapsed, EXIT_SLACK)
        doing["stack"] = found["stack"] if found else None
    return exits


def _ask(server_pid, key, message, timeout, base=None):
    """Send ``message`` to the inspector of process ``key``; its JSON answer, or StackUnavailable."""
    dir_fd = _server_dir_fd(server_pid, base)
    if dir_fd is None:
        raise StackUnavailable(400, "This server has no activity board: its processes do not report.")
    reply = secrets.token_hex(16) + REPLY_SUFFIX
    try:
        _sweep_replies(dir_fd)
        # Non-blocking: an inspector that stopped reading fills its queue; never wait on it.
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC | socket.SOCK_NONBLOCK)
        try:
            sock.sendto(
                json.dumps({**message, "reply": reply}).encode(),
                _socket_path(dir_fd, _key_name(key) + CTL_SUFFIX),
            )
        except OSError as exc:
            if exc.errno in (errno.ENOENT, errno.ECONNREFUSED):
                raise StackUnavailable(
                    400, f"Process {key.pid} does not report stacks (Worker Inspector is not loaded in it)."
                ) from None
            if exc.errno == errno.EAGAIN:
                raise StackUnavailable(504, f"Process {key.pid} is not reading its requests.") from None
            raise
        finally:
            sock.close()
        deadline = time.monotonic() + timeout
        delay = 0.002
        while time.monotonic() < deadline:
            data = _read_private(dir_fd, reply)
            if data is not None:
                with contextlib.suppress(OSError):
                    os.unlink(reply, dir_fd=dir_fd)
                answer = json.loads(data)
                if answer.get("error"):
                    raise StackUnavailable(400, f"Process {key.pid}: {answer['error']}.")
                return answer
            if not is_alive(key):
                raise StackUnavailable(400, f"Process {key.pid} exited.")
            time.sleep(delay)
            delay = min(delay * 2, 0.05)
        with contextlib.suppress(OSError):
            os.unlink(reply, dir_fd=dir_fd)
        raise StackUnavailable(504, f"Process {key.pid} did not answer within {timeout:g} s.")
    finally:
        os.close(dir_fd)


def request_flush(server_pid, own=None, base=None, timeout=FLUSH_TIMEOUT):
    """Have the processes of the server write what they keep in memory (their threads'
    records and finished requests: see ``recorder``) before a read; ``own`` does it for
    this process. Waits for their answers, ``timeout`` seconds at most in all (a process
    busy in C code holding the GIL answers late: its records are then a turn old).

    Returns ``(answered, asked)``.
    """
    if own is not None:
        own()
    try:
        dir_fd = _server_dir_fd(server_pid, base)
    except OSError:  # not this user's private directory (UntrustedBoard): the read says why
        return 0, 0
    if dir_fd is None:
        return 0, 0
    me = os.getpid()
    pending = {}
    try:
        _sweep_replies(dir_fd)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC | socket.SOCK_NONBLOCK)
        try:
            for name in os.listdir(dir_fd):
                key = _parse_key(name, CTL_SUFFIX)
                if key is None or key.pid == me or not is_alive(key):
                    continue
                reply = secrets.token_hex(16) + REPLY_SUFFIX
                with contextlib.suppress(OSError):  # gone meanwhile, its queue full: not waited for
                    sock.sendto(json.dumps({"op": "flush", "reply": reply}).encode(), _socket_path(dir_fd, name))
                    pending[reply] = key
        finally:
            sock.close()
        asked = len(pending)
        deadline = time.monotonic() + timeout
        delay = 0.0005
        while pending:
            for reply, key in list(pending.items()):
                try:
                    os.unlink(reply, dir_fd=dir_fd)
                except FileNotFoundError:
                    if is_alive(key):
                        continue
                del pending[reply]
            if not pending or time.monotonic() >= deadline:
                break
            time.sleep(delay)
            delay = min(delay * 2, 0.01)
        return asked - len(pending), asked
    finally:
        os.close(dir_fd)


def _sweep_replies(dir_fd):
    """Delete answers nobody collected (their asker timed out)."""
    now = time.time()
    for name in os.listdir(dir_fd):
        if name.endswith(REPLY_SUFFIX) or (name.startswith(".") and name.endswith(".tmp")):
            with contextlib.suppress(OSError):
                if now - os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mtime > _REPLY_MAX_AGE:
                    os.unlink(name, dir_fd=dir_fd)


def reporting_process(server_pid, mode, pid, base=None):
    """The ``ProcessKey`` of ``pid`` if it is a process of this server that records
    its activity, checked against the live process tree and the board now;
    StackUnavailable (400) otherwise, before anything is sent to it."""
    processes = {proc["pid"]: proc for proc in read_processes(server_pid, mode)}
    proc = processes.get(pid)
    if proc is None:
        raise StackUnavailable(400, f"Process {pid} is not a process of this Odoo server (or has already exited).")
    if pid not in read_board(server_pid, base):
        raise StackUnavailable(
            400, f"Process {pid} ({proc['role']}) does not report its activity, so it has no stacks."
        )
    key = process_key(pid)
    if key != proc["key"]:
        raise StackUnavailable(400, f"Process {pid} exited meanwhile.")
    return key


def request_stack(server_pid, key, timeout=STACK_TIMEOUT, base=None):
    """Every thread's stack of process ``key`` (a ``ProcessKey`` of this server)."""
    return _ask(server_pid, key, {"op": "stack"}, timeout, base)


def request_profile(server_pid, key, seconds, hz=PROFILE_HZ, base=None):
    """A sampling profile of process ``key``, ``seconds`` long (see ``sample``)."""
    return _ask(server_pid, key, {"op": "profile", "seconds": seconds, "hz": hz}, seconds + 10.0, base)


def tag_threads(answer, records, sessions, now):
    """Give each thread of a stack answer its ``activity`` (the board's record of
    that thread, as in the snapshot) and its PostgreSQL sessions (``sql``)."""
    by_tid = {record["tid"]: record for record in records}
    for thread in answer["threads"]:
        record = by_tid.get(thread["native_id"])
        thread["activity"] = public_activity(record, record["requests"], now) if record else None
        backend = record and record.get("backend_pid")
        thread["sql"] = [
            {key: value for key, value in session.items() if key != "application_name"}
            for session in sessions
            if backend and session.get("backend_pid") == backend
        ]
    return answer
