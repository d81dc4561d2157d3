"""History of a server: worker exits and time series, on the machine, bounded.

One file per server beside the activity board
(``<board dir>/<server pid>-<server start>/history.bin``, 0600 in the 0700
directory of the Odoo user), read and written with ``pread``/``pwrite`` by every
process that uses it, never mapped: a file shrunk meanwhile by someone else
reads as zeros instead of raising SIGBUS. It holds four rings of fixed-size
records, so its size never grows:

- ``points``: one per sampling interval (server-wide figures), for 24 hours;
- ``rows``: the processes of each point (pid, role, RSS, VMS, CPU, requests);
- ``exits``: the last ``EXITS_CAPACITY`` worker exits with their cause;
- ``intents``: recycles asked from the API, matched with the exit they cause.

Writers are few and rare (the elected sampler once per interval, a worker at
its exit, the API on a recycle): they take an exclusive ``flock`` on the file.
Readers take a shared one. Nothing here runs on the request path.
"""

import contextlib
import fcntl
import math
import os
import stat
import struct
import threading
import time
import weakref

MAGIC = b"WIHS"
VERSION = 1
FILE_NAME = "history.bin"
RETENTION = 24 * 3600  # seconds of series kept
DEFAULT_INTERVAL = 10.0
EXITS_CAPACITY = 2048
INTENTS_CAPACITY = 64
# Process rows per point the file is sized for, beyond the HTTP and cron
# workers: the master, the gevent process and one spare (a worker being
# replaced). A server with more processes than that keeps fewer hours of
# per-process rows (the server-wide points still cover 24 h).
EXTRA_ROWS = 3

REASONS = (
    "unknown",
    "memory_soft",
    "memory_hard",
    "limit_request",
    "time_cpu",
    "time_real",
    "recycled",
    "reload",
    "crashed",
)
REASON_CODES = {reason: code for code, reason in enumerate(REASONS)}
KINDS = ("exits", "series", "requests", "routes", "profile")
# Without ``kinds``: the request log's views are asked for by name.
DEFAULT_KINDS = ("exits", "series")
# Points in one answer at most: 24 h at 10 s are merged 12 by 12 (2 minutes),
# which keeps an answer for 16 workers near 1.5 MB and fast to encode.
MAX_POINTS = 720

ROLES = (None, "master", "http", "cron", "gevent", "server")
ROLE_CODES = {role: code for code, role in enumerate(ROLES) if role}
# Header: magic, version, interval, the four capacities, then the counters:
# how many records each ring ever received, all-busy seconds, exits per
# reason, CPU seconds of exited processes per role and the CPU totals last
# reported per role, HTTP requests of exited processes and the total last
# reported (so the metrics' counters never go down when a worker goes).
_COUNTER_FORMAT = f"QQQQd{len(REASONS)}Q{len(ROLES)}d{len(ROLES)}ddd"
_HEADER = struct.Struct(f"<4sH2xdIIII{_COUNTER_FORMAT}")
_HEADER_SIZE = 512
assert _HEADER.size <= _HEADER_SIZE
_POINTS_WRITTEN_AT = struct.calcsize("<4sH2xdIIII")
_COUNTERS = struct.Struct(f"<{_COUNTER_FORMAT}")
_ALL_BUSY, _REASONS_AT = 4, 5
_CPU_EXITED_AT = _REASONS_AT + len(REASONS)
_CPU_REPORTED_AT = _CPU_EXITED_AT + len(ROLES)
_REQUESTS_EXITED_AT = _CPU_REPORTED_AT + len(ROLES)
_REQUESTS_REPORTED_AT = _REQUESTS_EXITED_AT + 1
# t, utilization (NaN: none), busy, capacity, backlog, requests/s,
# longest busy (NaN: none), all-busy seconds so far, first row, row count.
_POINT = struct.Struct("<ddIIIxxxxdddQI4x")
# pid, role, rss, vms, cpu percent, CPU seconds used so far.
_ROW = struct.Struct("<IB3xQQdd")
# pid, role, reason, start ticks, started_at, ended_at, requests, peak rss,
# peak vms, elapsed (NaN: not busy), cron id, detail, url, cron name, database
# of what it was doing (to hide it from another database's admins).
_EXIT = struct.Struct("<IBB2xQddQQQdq160p256p128p64p")
_EXIT_KEY = struct.Struct("<IBB2xQ")  # the start of an exit: pid, role, reason, start ticks
# pid, start ticks, asked at, login, signal name.
_INTENT = struct.Struct("<I4xQd64p16p")


def summarize_exits(exits):
    """``{role: {"count", "mostly", "reasons": {reason: n}}}`` of a list of exits."""
    summary = {}
    for record in exits:
        entry = summary.setdefault(record["role"], {"count": 0, "mostly": None, "reasons": {}})
        entry["count"] += 1
        entry["reasons"][record["reason"]] = entry["reasons"].get(record["reason"], 0) + 1
    for entry in summary.values():
        entry["mostly"] = max(entry["reasons"], key=lambda reason: (entry["reasons"][reason], reason))
    return summary


def allocate(fd, size):
    """Give the file ``size`` bytes of real storage (the board's way)."""
    from .board import _allocate

    _allocate(fd, size)


class BadQuery(ValueError):
    """A parameter of the history API is unknown or malformed; the message says which."""


def parse_seconds(text, what):
    """A finite number ≥ 0 of the API; raises BadQuery saying ``what`` it must be."""
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise BadQuery(f"{what}, got {text!r}.") from None
    if not math.isfinite(value) or value < 0:
        raise BadQuery(f"{what}, got {text!r}.")
    return value


def parse_since(text):
    """``since`` of the API: epoch seconds, ≥ 0; raises BadQuery."""
    return parse_seconds(text, "since must be epoch seconds")


def parse_kinds(text):
    """``kinds`` of the API: a comma list of ``KINDS``; raises BadQuery."""
    kinds = tuple(kind.strip() for kind in str(text).split(","))
    if any(kind not in KINDS for kind in kinds):
        raise BadQuery("kinds must be a comma list of {}, got {!r}.".format(", ".join(KINDS), text))
    return kinds


def _nan(value):
    return math.nan if value is None else float(value)


def _num(value):
    return None if math.isnan(value) else value


def _encode(text, size):
    if not text:
        return b""
    return str(text).encode("utf-8", "replace")[: size - 1]


def _decode(raw):
    return raw.decode("utf-8", "replace") or None


def capacities(interval, rows_per_point):
    """``(points, rows)`` the file holds for 24 h at ``interval`` seconds."""
    points = math.ceil(RETENTION / interval) + 1
    return points, points * max(rows_per_point, 1)


def file_size(points, rows):
    return (
        _HEADER_SIZE
        + points * _POINT.size
        + rows * _ROW.size
        + EXITS_CAPACITY * _EXIT.size
        + INTENTS_CAPACITY * _INTENT.size
    )


class HistoryBusy(BlockingIOError):
    """Another process or thread holds the history file longer than the caller may wait."""


def _flock(fd, how, deadline, path):
    """``flock`` that waits until ``deadline`` (``time.monotonic()``) at most, or for ever."""
    if deadline is None:
        fcntl.flock(fd, how)
        return
    delay = 0.0005
    while True:
        try:
            fcntl.flock(fd, how | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise HistoryBusy(f"{path} is locked by another process") from None
            time.sleep(delay)
            delay = min(delay * 2, 0.01)


def open_private_dir(directory):
    """A descriptor of ``directory``, only if it is this user's and private (0700)."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    info = os.fstat(fd)
    if info.st_uid != os.geteuid() or stat.S_IMODE(info.st_mode) != 0o700:
        os.close(fd)
        raise PermissionError(f"{directory} is not a private directory of this user")
    return fd


class HistoryStore:
    """The history file of one server, opened by one process.

    ``directory`` must be the server's private board directory (see
    ``board``). The first process to open the file sizes it from
    ``interval`` and ``rows_per_point``; later ones adopt what it holds.
    """

    def __init__(self, directory=None, interval=DEFAULT_INTERVAL, rows_per_point=8, dir_fd=None):
        own_dir_fd = dir_fd is None
        if own_dir_fd:
            dir_fd = open_private_dir(directory)
        self.path = os.path.join(directory or f"<fd {dir_fd}>", FILE_NAME)
        self._thread_lock = threading.Lock()
        self._owner = None  # the thread inside ``holding``
        alive = weakref.ref(self)
        os.register_at_fork(after_in_child=lambda: (store := alive()) and store._after_fork())
        try:
            fd = os.open(FILE_NAME, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=dir_fd)
        finally:
            if own_dir_fd:
                os.close(dir_fd)
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode) or info.st_uid != os.geteuid() or info.st_mode & 0o077:
                raise PermissionError(f"{self.path} is not a private file of this user")
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                if os.fstat(fd).st_size < _HEADER_SIZE or os.pread(fd, 4, 0) != MAGIC:
                    points, rows = capacities(interval, rows_per_point)
                    # Real storage, so a full tmpfs fails here rather than SIGBUS later.
                    allocate(fd, file_size(points, rows))
                    header = _HEADER.pack(
                        MAGIC,
                        VERSION,
                        float(interval),
                        points,
                        rows,
                        EXITS_CAPACITY,
                        INTENTS_CAPACITY,
                        *_COUNTERS.unpack(bytes(_COUNTERS.size)),
                    )
                    os.pwrite(fd, header, 0)
                self._size = os.fstat(fd).st_size
                header = os.pread(fd, _HEADER.size, 0)
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
            if len(header) < _HEADER.size:
                raise ValueError(f"{self.path} is not a history file of this version")
        except BaseException:
            os.close(fd)
            raise
        self.fd = fd
        magic, version, self.interval, self.points_cap, self.rows_cap, self.exits_cap, self.intents_cap = (
            _HEADER.unpack(header)[:7]
        )
        if magic != MAGIC or version != VERSION:
            self.close()
            raise ValueError(f"{self.path} is not a history file of this version")
        self._points_at = _HEADER_SIZE
        self._rows_at = self._points_at + self.points_cap * _POINT.size
        self._exits_at = self._rows_at + self.rows_cap * _ROW.size
        self._intents_at = self._exits_at + self.exits_cap * _EXIT.size

    def _after_fork(self):
        self._thread_lock = threading.Lock()
        self._owner = None

    def close(self):
        with contextlib.suppress(OSError):
            os.close(self.fd)

    def _read(self, size, at):
        """``size`` bytes at ``at``; zeros past the end (the file was shrunk)."""
        data = os.pread(self.fd, size, at)
        return data if len(data) == size else data.ljust(size, b"\0")

    def _get(self, layout, at):
        return layout.unpack(self._read(layout.size, at))

    def _put(self, layout, at, *values):
        os.pwrite(self.fd, layout.pack(*values), at)

    @contextlib.contextmanager
    def _locked(self, how=fcntl.LOCK_EX, timeout=None):
        """The file's lock; ``timeout`` (seconds): raise ``HistoryBusy`` rather than wait longer."""
        if self._owner == threading.get_ident():
            yield  # inside ``holding``: its exclusive lock covers this call
            return
        # flock excludes other processes only: threads of this one share the
        # open file (the sampler, request threads of a threaded server).
        deadline = None if timeout is None else time.monotonic() + timeout
        if not self._thread_lock.acquire(timeout=-1 if timeout is None else timeout):
            raise HistoryBusy(f"{self.path} is busy in this process")
        try:
            _flock(self.fd, how, deadline, self.path)
            try:
                # Only this user or root can shrink the file: grow it back (what it
                # lost reads as zeros, an empty history).
                if os.lseek(self.fd, 0, os.SEEK_END) < self._size:
                    os.ftruncate(self.fd, self._size)
                yield
            finally:
                fcntl.flock(self.fd, fcntl.LOCK_UN)
        finally:
            self._thread_lock.release()

    @contextlib.contextmanager
    def holding(self, timeout=None):
        """The exclusive lock over several calls of this thread (one exit read, inferred and
        recorded at once); ``HistoryBusy`` when another holds it for ``timeout`` seconds."""
        with self._locked(timeout=timeout):
            self._owner = threading.get_ident()
            try:
                yield self
            finally:
                self._owner = None

    def _counters(self):
        return list(self._get(_COUNTERS, _POINTS_WRITTEN_AT))

    def _set_counters(self, values):
        self._put(_COUNTERS, _POINTS_WRITTEN_AT, *values)

    # --- writing ---------------------------------------------------------

    def add_point(self, point, processes):
        """Append a point (dict) and its process rows (dicts)."""
        with self._locked():
            counters = self._counters()
            points_written, rows_written = counters[0], counters[1]
            first = rows_written
            for proc in processes:
                self._put(
                    _ROW,
                    self._rows_at + (rows_written % self.rows_cap) * _ROW.size,
                    proc["pid"],
                    ROLE_CODES.get(proc.get("role"), 0),
                    int(proc.get("rss") or 0),
                    int(proc.get("vms") or 0),
                    float(proc.get("cpu_percent") or 0.0),
                    float(proc.get("cpu_seconds") or 0.0),
                )
                rows_written += 1
            self._put(
                _POINT,
                self._points_at + (points_written % self.points_cap) * _POINT.size,
                point["t"],
                _nan(point.get("utilization")),
                point.get("http_busy") or 0,
                point.get("http_capacity") or 0,
                point.get("backlog") or 0,
                float(point.get("requests_per_second") or 0.0),
                _nan(point.get("longest_busy")),
                counters[_ALL_BUSY],
                first,
                rows_written - first,
            )
            counters[0], counters[1] = points_written + 1, rows_written
            self._set_counters(counters)

    def add_all_busy(self, seconds):
        """Add to the running total of seconds with every HTTP worker busy."""
        if seconds <= 0:
            return
        with self._locked():
            counters = self._counters()
            counters[_ALL_BUSY] += seconds
            self._set_counters(counters)

    def add_exit(self, record):
        """Record one exit (dict with the API's fields plus ``start_ticks``).

        An exit already recorded for the same process (pid and start) is
        not recorded twice: the worker's own record wins over an inference.
        Returns True when recorded.
        """
        with self._locked():
            if record.get("start_ticks") and self._find_exit(record["pid"], record["start_ticks"]) is not None:
                return False
            counters = self._counters()
            written = counters[2]
            doing = record.get("doing") or {}
            cron = doing.get("cron_job") or {}
            reason = record["reason"] if record["reason"] in REASON_CODES else "unknown"
            self._put(
                _EXIT,
                self._exits_at + (written % self.exits_cap) * _EXIT.size,
                record["pid"],
                ROLE_CODES.get(record.get("role"), 0),
                REASON_CODES[reason],
                record.get("start_ticks") or 0,
                float(record.get("started_at") or 0.0),
                float(record.get("ended_at") or time.time()),
                int(record.get("requests") or 0),
                int(record.get("peak_rss") or 0),
                int(record.get("peak_vms") or 0),
                _nan(doing.get("elapsed")) if record.get("doing") else math.nan,
                int(cron.get("id") or 0),
                _encode(record.get("detail"), 160),
                _encode(doing.get("url"), 256),
                _encode(cron.get("name"), 128),
                _encode(doing.get("db"), 64),
            )
            counters[2] = written + 1
            counters[_REASONS_AT + REASON_CODES[reason]] += 1
            counters[_CPU_EXITED_AT + ROLE_CODES.get(record.get("role"), 0)] += float(record.get("cpu_seconds") or 0.0)
            if record.get("role") in ("http", "server"):
                counters[_REQUESTS_EXITED_AT] += int(record.get("requests") or 0)
            self._set_counters(counters)
            return True

    def _find_exit(self, pid, start_ticks):
        written = self._counters()[2]
        for seq in range(written - 1, max(written - self.exits_cap, 0) - 1, -1):
            at = self._exits_at + (seq % self.exits_cap) * _EXIT.size
            rec_pid, _role, _reason, rec_start = _EXIT_KEY.unpack(self._read(_EXIT_KEY.size, at))
            if rec_pid == pid and rec_start == start_ticks:
                return seq
        return None

    def add_intent(self, pid, start_ticks, login, signal_name):
        """Remember that this product asked worker ``pid`` to exit (a recycle)."""
        with self._locked():
            counters = self._counters()
            written = counters[3]
            self._put(
                _INTENT,
                self._intents_at + (written % self.intents_cap) * _INTENT.size,
                pid,
                start_ticks or 0,
                time.time(),
                _encode(login, 64),
                _encode(signal_name, 16),
            )
            counters[3] = written + 1
            self._set_counters(counters)

    def intent(self, pid, start_ticks):
        """``{"login", "signal", "at"}`` of the latest recycle asked for that process, or None."""
        with self._locked(fcntl.LOCK_SH):
            written = self._counters()[3]
            for seq in range(written - 1, max(written - self.intents_cap, 0) - 1, -1):
                rec = self._get(_INTENT, self._intents_at + (seq % self.intents_cap) * _INTENT.size)
                if rec[0] == pid and rec[1] == start_ticks:
                    return {"at": rec[2], "login": _decode(rec[3]), "signal": _decode(rec[4])}
        return None

    # --- reading ---------------------------------------------------------

    def totals(self, live_cpu=None, live_requests=None):
        """Counters for the metrics, never decreasing.

        ``live_cpu`` (``{role: CPU seconds of its live processes}``) and
        ``live_requests`` (HTTP requests of the live processes) are added to
        what exited processes had, and each total is kept at least at what
        was last reported: a worker killed between two samples takes its
        last CPU seconds with it, and a counter must not go down.
        """
        with self._locked():
            counters = self._counters()
            cpu = {}
            for role, code in ROLE_CODES.items():
                value = counters[_CPU_EXITED_AT + code] + (live_cpu or {}).get(role, 0.0)
                value = max(value, counters[_CPU_REPORTED_AT + code])
                counters[_CPU_REPORTED_AT + code] = value
                if value or role in (live_cpu or {}):
                    cpu[role] = value
            requests = max(counters[_REQUESTS_EXITED_AT] + (live_requests or 0), counters[_REQUESTS_REPORTED_AT])
            counters[_REQUESTS_REPORTED_AT] = requests
            self._set_counters(counters)
        reasons = counters[_REASONS_AT : _REASONS_AT + len(REASONS)]
        return {
            "all_busy_seconds": counters[_ALL_BUSY],
            "exits": dict(zip(REASONS, reasons, strict=True)),
            "cpu_seconds": cpu,
            "http_requests": int(requests),
        }

    def exits_after(self, seen):
        """``(written, [(pid, role, requests)])``: the exits recorded since ``seen`` exits were
        (the count this returned before; None: none, only the count), for the sampler's rate."""
        with self._locked(fcntl.LOCK_SH):
            written = self._counters()[2]
            if seen is None:
                return written, []
            first = max(seen, written - self.exits_cap)
            records = [
                self._get(_EXIT, self._exits_at + (seq % self.exits_cap) * _EXIT.size) for seq in range(first, written)
            ]
        return written, [(rec[0], ROLES[rec[1]] if rec[1] < len(ROLES) else None, rec[6]) for rec in records]

    def exits(self, since=0.0):
        with self._locked(fcntl.LOCK_SH):
            written = self._counters()[2]
            ring = self._read(self.exits_cap * _EXIT.size, self._exits_at)
            records = [
                _EXIT.unpack_from(ring, (seq % self.exits_cap) * _EXIT.size)
                for seq in range(max(written - self.exits_cap, 0), written)
            ]
        result = []
        for rec in records:
            (
                pid,
                role,
                reason,
                _start,
                started_at,
                ended_at,
                requests,
                rss,
                vms,
                elapsed,
                cron_id,
                detail,
                url,
                cname,
                db,
            ) = rec
            if ended_at < since:
                continue
            doing = None
            if not math.isnan(elapsed):
                doing = {
                    "url": _decode(url),
                    "cron_job": {"id": cron_id, "name": _decode(cname)} if cron_id else None,
                    "elapsed": round(elapsed, 3),
                }
            result.append(
                {
                    "pid": pid,
                    "role": ROLES[role] if role < len(ROLES) else None,
                    "started_at": started_at or None,
                    "ended_at": ended_at,
                    "reason": REASONS[reason] if reason < len(REASONS) else "unknown",
                    "detail": _decode(detail),
                    "requests": requests,
                    "peak_rss": rss or None,
                    "peak_vms": vms or None,
                    "doing": doing,
                    "db": _decode(db),  # internal: the API scopes and drops it
                }
            )
        return result

    def _rows(self, first, count, oldest_row):
        if first < oldest_row:
            return ()  # overwritten: more processes than the file was sized for
        rows_at, rows_cap, row_size = self._rows_at, self.rows_cap, _ROW.size
        start = first % rows_cap
        if start + count <= rows_cap:
            return tuple(_ROW.iter_unpack(self._read(count * row_size, rows_at + start * row_size)))
        return tuple(self._get(_ROW, rows_at + ((first + i) % rows_cap) * row_size) for i in range(count))

    def points(self, since=0.0, max_points=MAX_POINTS):
        """``(interval, points)`` from ``since`` (epoch), oldest first, with their processes.

        When the window holds more than ``max_points`` points, consecutive
        points are merged ``k`` at a time (the returned interval is ``k``
        times the sampling interval; the latest point always ends a group):
        the most busy workers, backlog and longest busy of the group, the
        mean utilization and requests per second, and the processes as the
        group's last point saw them.
        """
        with self._locked(fcntl.LOCK_SH):
            points_written, rows_written = self._counters()[:2]
            first_seq = max(points_written - self.points_cap, 0)
            ring = self._read(self.points_cap * _POINT.size, self._points_at)
            # Points are written in time order: the first one at or after ``since`` by bisection,
            # so a short window (the heartbeat's, the advice's last hour) unpacks only its points.
            low, high = first_seq, points_written
            while low < high:
                middle = (low + high) // 2
                if _POINT.unpack_from(ring, (middle % self.points_cap) * _POINT.size)[0] < since:
                    low = middle + 1
                else:
                    high = middle
            raw = [
                _POINT.unpack_from(ring, (seq % self.points_cap) * _POINT.size) for seq in range(low, points_written)
            ]
            raw = [p for p in raw if p[0] >= since]
            group = max(math.ceil(len(raw) / max_points), 1) if max_points else 1
            # Groups end at the latest point; the oldest one may be shorter.
            groups = [raw[max(end - group, 0) : end] for end in range(len(raw), 0, -group)][::-1]
            oldest_row = max(rows_written - self.rows_cap, 0)
            rows = [self._rows(g[-1][8], g[-1][9], oldest_row) for g in groups]
        result = []
        for members, procs in zip(groups, rows, strict=True):
            last = members[-1]
            if len(members) == 1:
                utilization, busy, backlog, rps, longest = last[1], last[2], last[4], last[5], last[6]
            else:
                known = [m[1] for m in members if not math.isnan(m[1])]
                utilization = sum(known) / len(known) if known else math.nan
                busy = max(m[2] for m in members)
                backlog = max(m[4] for m in members)
                rps = sum(m[5] for m in members) / len(members)
                longest = max((m[6] for m in members if not math.isnan(m[6])), default=math.nan)
            result.append(
                {
                    "t": last[0],
                    "utilization": None if math.isnan(utilization) else round(utilization, 3),
                    "http_busy": busy,
                    "http_capacity": last[3],
                    "backlog": backlog,
                    "requests_per_second": round(rps, 3),
                    "longest_busy": _num(longest),
                    "all_busy_seconds": last[7],
                    "processes": [
                        {
                            "pid": pid,
                            "role": ROLES[role] if role < len(ROLES) else None,
                            "rss": rss,
                            "vms": vms,
                            "cpu_percent": cpu,
                        }
                        for pid, role, rss, vms, cpu, _cpu_seconds in procs
                    ],
                }
            )
        return self.interval * group, result

    def last_seen(self, pid):
        """``(peak rss, peak vms, CPU seconds, role)`` of the process ``pid`` over its latest
        stretch of consecutive points, or None if the series never saw it."""
        with self._locked(fcntl.LOCK_SH):
            points_written, rows_written = self._counters()[:2]
            oldest_row = max(rows_written - self.rows_cap, 0)
            found = None
            for seq in range(points_written - 1, max(points_written - self.points_cap, 0) - 1, -1):
                point = self._get(_POINT, self._points_at + (seq % self.points_cap) * _POINT.size)
                row = next((r for r in self._rows(point[8], point[9], oldest_row) if r[0] == pid), None)
                if row is None:
                    if found is not None:
                        break  # before it started (or another process with that pid)
                    continue
                if found is None:
                    found = [row[2], row[3], row[5], ROLES[row[1]] if row[1] < len(ROLES) else None]
                else:
                    found[0], found[1] = max(found[0], row[2]), max(found[1], row[3])
        return tuple(found) if found else None

    def query(self, since=0.0, kinds=KINDS, now=None):
        """The API's ``history`` answer (see README)."""
        result = {"taken_at": now or time.time(), "since": since}
        if "exits" in kinds:
            result["exits"] = self.exits(since)
        if "series" in kinds:
            interval, points = self.points(since)
            result["series"] = {"interval": interval, "points": points}
        return result
