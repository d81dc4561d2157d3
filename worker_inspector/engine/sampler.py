"""Fill a server's history without a daemon: a light thread in its processes.

Every process that records activity (HTTP and cron workers, the threaded
server) starts a ``Sampler`` thread; one of them at a time is elected with a
``flock`` on ``sampler.lock`` in the server's board directory and does the
work. The others wait for the lock in the kernel, so a process that is not
elected never wakes (a serving worker's GIL and caches are left alone); when the
elected one exits, the kernel hands the lock to the next at once.
Each second the elected one reads the activity board (busy HTTP workers, the
time with all of them busy, the longest busy request) and the accept backlog
of the listen socket, and records the exits of processes that vanished without
recording their own (``infer_exit``); each ``interval`` it writes a point with
every process's memory and CPU.

Exits a worker can see coming are recorded by the worker itself, where Odoo
decides them (``classify_exit``); see the addon's ``models/history.py``.
"""

import collections
import contextlib
import fcntl
import logging
import os
import resource
import threading
import time

from . import board as board_mod
from .activity import request_thread_capacity
from .backlog import find_listen_inode, listen_backlog, socket_inode
from .history import DEFAULT_INTERVAL, EXTRA_ROWS, HistoryBusy, HistoryStore, open_private_dir
from .identity import is_zombie, ticks_to_epoch
from .threads import OS_SAMPLER, name_os_thread
from .tree import CpuMeter, read_processes

_logger = logging.getLogger(__name__)

TICK = 1.0  # seconds between two looks at the board and the backlog
# The prefork master checks its workers' watchdogs once per beat (4 s): it
# kills a worker between limit_time_real - beat and limit_time_real + beat
# after the request began.
MASTER_BEAT = 4.0
# Seconds a gone process's last board count is kept for its exit record, which comes at once
# from a clean exit or this sampler's harvest, within a beat or two from a master reaping a zombie.
VANISHED_KEPT = 60.0
LOCK_NAME = "sampler.lock"
_GIB, _MIB = 1 << 30, 1 << 20


def human_bytes(value):
    if value >= _GIB:
        return f"{value / _GIB:.2f} GiB"
    return f"{value / _MIB:.0f} MiB"


def interval_from_env(environ=None):
    """Seconds between two points: ``WORKER_INSPECTOR_HISTORY_INTERVAL`` (≥ 1), else 10."""
    environ = os.environ if environ is None else environ
    try:
        return max(float(environ.get("WORKER_INSPECTOR_HISTORY_INTERVAL") or DEFAULT_INTERVAL), 1.0)
    except ValueError:
        return DEFAULT_INTERVAL


def own_memory_peaks():
    """``(peak RSS, peak VMS)`` of this process in bytes (``VmHWM``, ``VmPeak``)."""
    peaks = {}
    with contextlib.suppress(OSError), open("/proc/self/status") as handle:
        for line in handle:
            key, _, value = line.partition(":")
            if key in ("VmHWM", "VmPeak"):
                peaks[key] = int(value.split()[0]) * 1024
    return peaks.get("VmHWM", 0), peaks.get("VmPeak", 0)


def cpu_limit_reached(signalled=False):
    """``(cpu seconds, soft RLIMIT_CPU)`` when this process reached its CPU limit, else None.

    ``signalled``: SIGXCPU was seen. Otherwise the CPU used must be within a
    second of the limit: getrusage's user and system times are sampled, and
    run a little behind the runtime the kernel checks the limit against.
    """
    usage = resource.getrusage(resource.RUSAGE_SELF)
    soft, _hard = resource.getrlimit(resource.RLIMIT_CPU)
    cpu = usage.ru_utime + usage.ru_stime
    if soft != resource.RLIM_INFINITY and (signalled or cpu >= soft - 1.0):
        return cpu, soft
    return None


def classify_exit(facts):
    """``(reason, detail)`` of a worker that leaves its loop, from what it knows.

    ``facts`` (all optional): ``decided`` (a cause recorded where Odoo decided
    it), ``cpu_limit`` (``cpu_limit_reached()``), ``limit_time_cpu``,
    ``memory_error`` (text), ``vms``, ``limit_memory_soft``,
    ``limit_memory_hard``, ``requests``, ``limit_request``, ``parent_changed``,
    ``exception`` (text), ``intent`` (a recycle asked by this product).
    Odoo's own order is followed: the CPU limit raises at once; the others
    take effect when the worker next checks its limits.
    """
    if facts.get("cpu_limit"):
        cpu, soft = facts["cpu_limit"]
        return (
            "time_cpu",
            f"CPU {cpu:.0f} s reached RLIMIT_CPU {soft} s (limit_time_cpu {facts.get('limit_time_cpu')} s per request)",
        )
    if facts.get("memory_error"):
        hard = facts.get("limit_memory_hard") or 0
        return "memory_hard", f"MemoryError ({facts['memory_error']}) at VMS {human_bytes(facts.get('vms') or 0)}" + (
            f", hard {human_bytes(hard)}" if hard else ""
        )
    if facts.get("decided"):
        return facts["decided"]
    soft, vms = facts.get("limit_memory_soft") or 0, facts.get("vms") or 0
    if soft and vms > soft:
        return "memory_soft", f"VMS {human_bytes(vms)} > soft {human_bytes(soft)}"
    limit_request = facts.get("limit_request") or 0
    if limit_request and (facts.get("requests") or 0) >= limit_request:
        return "limit_request", f"{facts['requests']} requests served, limit_request {limit_request}"
    if facts.get("parent_changed"):
        return "crashed", "the master is gone (parent changed)"
    if facts.get("exception"):
        return "crashed", facts["exception"][:159]
    if facts.get("intent"):
        intent = facts["intent"]
        return "recycled", f"recycled by {intent['login']} ({intent['signal']})"
    return "reload", "stopped by the master (SIGINT): server reload, module update or shutdown"


def infer_exit(records, now, config, intent=None):
    """``(reason, detail, busy record)`` of a process that vanished without a word.

    Its board file was left behind: it was killed (SIGKILL, SIGTERM) or
    crashed. A recycle forced by this product is ``recycled``; a worker busy
    on one request or job for about ``limit_time_real`` (``limit_time_real_cron``
    for a job) was killed by the master for it; anything else ``crashed``.
    """
    busy = [r for r in records if r["state"] == "busy"]
    record = min(busy, key=lambda r: r["since"]) if busy else None
    if intent:
        return "recycled", f"recycled by {intent['login']} ({intent['signal']})", record
    if record is not None:
        limit = config.get("limit_time_real") or 0
        if record["kind"] == "cron":
            cron_limit = config.get("limit_time_real_cron") or 0
            limit = limit if cron_limit == -1 else cron_limit
        elapsed = now - record["since"]
        if limit and limit > 0 and elapsed >= limit - MASTER_BEAT:
            what = "scheduled action" if record["kind"] == "cron" else "request"
            return "time_real", f"killed by the master: {what} busy {elapsed:.0f} s, limit_time_real {limit} s", record
    return "crashed", "vanished without exiting cleanly (killed by a signal)", record


def doing_of(record, now):
    """The exit's ``doing`` from a board record (None when idle)."""
    if record is None:
        return None
    cron = record.get("cron_job")
    return {
        "url": record.get("url"),
        "cron_job": {"id": cron["id"], "name": cron["name"]} if cron else None,
        "elapsed": round(max(now - record["since"], 0.0), 3),
        "db": record.get("db") or (cron or {}).get("db"),
    }


class Sampler:
    """The sampling thread of one process (see the module's docstring).

    ``listen_socket`` returns the server's HTTP listen socket (or None);
    ``config`` is ``effective_config`` of the server.
    """

    def __init__(self, server_pid, mode, config, directory=None, listen_socket=None, interval=None, base=None):
        self.pid = os.getpid()  # the process it samples from
        self.server_pid = server_pid
        self.mode = mode
        self.config = config
        self.base = base
        # The board's verified directory (or ``directory``, checked the same way):
        # the history file and the election lock are opened relative to it.
        if directory is None:
            self._dir_fd = board_mod.open_server_dir(server_pid, base, create=True)
        else:
            self._dir_fd = open_private_dir(directory)
        self.interval = interval or interval_from_env()
        self._listen_socket = listen_socket
        self._inode = None
        rows = (config.get("workers") or 0) + (config.get("max_cron_threads") or 0) + EXTRA_ROWS
        self.store = HistoryStore(interval=self.interval, rows_per_point=rows, dir_fd=self._dir_fd)
        self._lock_fd = None
        self._stop = threading.Event()
        self._thread = None
        self._cpu = CpuMeter()
        self._reset_interval()
        self._all_busy_until = None
        # Exits in the history file when the last point was taken (``exits_after``); each
        # process's ``(started_at, board count, when seen)`` at the last points, kept a while
        # after it is gone (its exit may be recorded later: a zombie's by its master); the
        # pids of HTTP workers whose exit counted their last requests (see ``point``).
        self._exits_seen = None
        self._counts = {}
        self._exited = set()
        self._peaks = {}
        self._last_point = 0.0
        # Exits with their cause the master's loop left to this thread (``record_dead``).
        self._deferred = collections.deque()

    def _reset_interval(self):
        self._busy_sum = 0.0
        self._ticks = 0
        self._busy_max = 0
        self._backlog_max = 0

    # --- the thread ------------------------------------------------------

    def start(self):
        self._thread = threading.Thread(target=self._run, name="worker_inspector.sampler", daemon=True)
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()

    def after_fork(self):
        """In a forked child: the lock (held or waited for) and the thread were the parent's."""
        self._release()
        self._thread = None

    def _release(self):
        if self._lock_fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._lock_fd)
            self._lock_fd = None

    def _wait_for_election(self):
        """Block until this process holds the lock; False when stopped meanwhile.

        The descriptor is kept before the wait: a child forked meanwhile closes its copy
        (``after_fork``) and so never shares the lock once the parent takes it.
        """
        self._lock_fd = os.open(
            LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=self._dir_fd
        )
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)  # releases the GIL while it waits
        return not self._stop.is_set()

    def _run(self):
        name_os_thread(OS_SAMPLER)
        try:
            elected = self._wait_for_election()
        except OSError:  # the directory went with its server
            _logger.debug("history sampler not elected", exc_info=True)
            elected = False
        while elected and not self._stop.wait(TICK):
            try:
                self.tick(time.time())
            except Exception:  # the inspector must never break Odoo
                _logger.debug("history sampling failed", exc_info=True)
        self._release()  # stopped (or never elected): the next one takes over

    # --- the work of the elected one -------------------------------------

    def capacity(self):
        if self.mode == "prefork":
            return self.config.get("workers") or 0
        return request_thread_capacity(self.config, os.environ)[0]

    def backlog(self):
        if self._inode is None:
            sock = self._listen_socket() if self._listen_socket is not None else None
            self._inode = socket_inode(sock) if sock is not None and sock.fileno() >= 0 else None
            if self._inode is None and self.config.get("http_port"):
                self._inode = find_listen_inode(self.server_pid, int(self.config["http_port"]))
            self._inode = self._inode or 0
        return listen_backlog(self._inode) or 0

    def tick(self, now):
        """One look at the board and the backlog; a point when the interval is over."""
        self.harvest(now)
        boards = board_mod.read_board(self.server_pid, self.base)
        busy_http = [
            r for _requests, records in boards.values() for r in records if r["kind"] == "http" and r["state"] == "busy"
        ]
        capacity = self.capacity()
        busy = len(busy_http)
        if capacity and busy >= capacity:
            # Every worker has been busy since the latest of their requests began.
            since = max(r["since"] for r in busy_http)
            start = max(since, self._all_busy_until or since)
            self.store.add_all_busy(now - start)
            self._all_busy_until = now
        self._ticks += 1
        self._busy_sum += min(busy, capacity) / capacity if capacity else 0.0
        self._busy_max = max(self._busy_max, busy)
        self._backlog_max = max(self._backlog_max, self.backlog())
        if now - self._last_point >= self.interval - TICK / 2:
            self.point(now, boards, capacity)

    def point(self, now, boards, capacity):
        processes = read_processes(self.server_pid, self.mode, self.config, self._cpu)
        # An HTTP worker that exited since the last point served requests that no board shows
        # any more (its last ones, or all of a short life): its exit record says how many.
        self._exits_seen, exited = self.store.exits_after(self._exits_seen)
        total_new = 0
        for pid, role, served in exited:
            if role == "http" and pid not in self._exited:
                seen = self._counts.pop(pid, None)
                total_new += max(served - (seen[1] if seen else 0), 0)
                self._exited.add(pid)
        for proc in processes:
            pid, started_at = proc["pid"], proc["started_at"]
            count = boards.get(pid, (0, []))[0]
            if pid not in self._exited:  # still listed while it exits: counted by its record
                seen = self._counts.get(pid)
                # A process new since the last point served all its count since; at the first
                # point, the count before it is unknown. A reused pid is a new process.
                before = seen[1] if seen and seen[0] == started_at else (0 if self._last_point else count)
                total_new += max(count - before, 0)
                self._counts[pid] = (started_at, count, now)
            proc["requests"] = count
            peak = self._peaks.get(proc["pid"], (0, 0, 0.0, None))
            self._peaks[proc["pid"]] = (
                max(peak[0], proc["rss"]),
                max(peak[1], proc["vms"]),
                proc["cpu_seconds"],
                proc["role"],
            )
        listed = {proc["pid"] for proc in processes}
        self._exited &= listed
        self._counts = {
            pid: seen for pid, seen in self._counts.items() if pid in listed or now - seen[2] < VANISHED_KEPT
        }
        self._peaks = {p["pid"]: self._peaks[p["pid"]] for p in processes}
        busy_records = [r for _requests, records in boards.values() for r in records if r["state"] == "busy"]
        dt = now - self._last_point if self._last_point else None
        self.store.add_point(
            {
                "t": now,
                "utilization": round(self._busy_sum / self._ticks, 3) if self._ticks and capacity else None,
                "http_busy": self._busy_max,
                "http_capacity": capacity,
                "backlog": self._backlog_max,
                "requests_per_second": round(max(total_new, 0) / dt, 3) if dt else 0.0,
                "longest_busy": round(max(now - r["since"] for r in busy_records), 3) if busy_records else None,
            },
            processes,
        )
        self._last_point = now
        self._reset_interval()

    def harvest(self, now=None):
        """Record the exits of processes that left their board file behind, then delete it.

        A zombie is left to its parent: a master that loaded the addon
        records it with its exact cause when it reaps it (``record_dead``).
        """
        now = now or time.time()
        self._record_deferred()  # exact causes first: the master could not write them at once
        boards, sockets = board_mod.dead_files(self.server_pid, self.base)
        for key in boards:
            if not is_zombie(key):
                self.record_dead(key, now)
        board_mod.remove_sockets(self.server_pid, sockets, self.base)

    def record_dead(self, key, now, cause=None, timeout=None):
        """Record the exit of process ``key``, gone without a word, from the board file it left.

        ``cause``: ``(reason, detail)`` when known (the master saw it die), else inferred.
        ``timeout``: wait that long at most for the history file, else queue the exit for
        this sampler's thread (its next ``harvest``) and return False. The prefork master's loop,
        which enforces Odoo's time limits, must never wait on another process.
        """
        try:
            with self.store.holding(timeout):
                self._record_dead(key, now, cause)
        except HistoryBusy:
            if timeout is None:
                raise
            self._deferred.append((key, now, cause))
            return False
        return True

    def _record_deferred(self):
        while True:
            try:
                deferred = self._deferred.popleft()
            except IndexError:  # none left (another thread may have taken the last)
                return
            self.record_dead(*deferred)

    def _record_dead(self, key, now, cause):
        pid, start = key
        left = board_mod.read_process(self.server_pid, key, self.base, live_only=False, remove=True)
        requests, records = left or (0, [])
        intent = self.store.intent(pid, start)
        reason, detail, record = infer_exit(records, now, self.config, intent)
        if cause is not None and not intent:
            reason, detail = cause
        # What the last point saw of it: peaks, CPU, role.
        seen = self._peaks.pop(pid, None) or self.store.last_seen(pid) or (0, 0, 0.0, None)
        peak_rss, peak_vms, cpu_seconds, role = seen
        self.store.add_exit(
            {
                "pid": pid,
                "start_ticks": start,
                "role": role or _role_of(records, self.mode),
                "cpu_seconds": cpu_seconds,
                "started_at": ticks_to_epoch(start),
                "ended_at": now,
                "reason": reason,
                "detail": detail,
                "requests": requests,
                "peak_rss": peak_rss,
                "peak_vms": peak_vms,
                "doing": doing_of(record, now),
            }
        )


def _role_of(records, mode):
    if mode != "prefork":
        return "server"
    kinds = {r["kind"] for r in records}
    return "cron" if "cron" in kinds and "http" not in kinds else "http"
