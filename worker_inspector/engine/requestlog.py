"""The request log: one record per HTTP request and per scheduled action run.

Each process appends to its own ring of ``CAPACITY`` fixed-size records,
``<server dir>/<pid>-<start>.requests`` beside its activity board (0600 in
the 0700 directory of the Odoo user). The ring is written where the request
ends, without a lock shared with other processes: one ``pwrite`` of the
record (never a store into a mapping, which a file shrunk meanwhile would turn
into SIGBUS: see ``board``). Unlike the board, the
file stays when its process exits, so the requests of a recycled worker stay
readable; the oldest files of exited processes are deleted beyond
``MAX_FILES`` per server, which bounds the total (README: Request log).

A record ends with a CRC-32 of the rest: a reader skips a record being
rewritten, never uses a torn one. The counters for the metrics are kept in
the process and written every ``FLUSH_EVERY`` records, with the sequence
number they cover and a CRC-32: a reader adds the records after it, which
the ring still holds, so its counts are exact without a write per request.
"""

import bisect
import contextlib
import fcntl
import math
import os
import struct
import threading
import time
import types
import zlib

from .board import (
    _TEXTS,
    CHECK_EVERY,
    NO_RESPONSE,
    W_CPU,
    W_DB,
    W_ENDED,
    W_JOB,
    W_LOGIN,
    W_PATH,
    W_QUERIES,
    W_QUERY_TIME,
    W_RPC,
    W_START,
    W_STATUS,
    W_UID,
    WrittenFile,
    close_fds,
    create_file,
    encode_text,
    existing_server_dir,
    is_whole,
    open_server_dir,
    raw_path,
    regrow,
    status_code,
)
from .history import parse_seconds
from .identity import ProcessKey, is_alive, start_ticks
from .stacks import _read_private

MAGIC = b"WIRQ"
VERSION = 2
SUFFIX = ".requests"
CAPACITY = 1024  # records per process
MAX_FILES = 48  # ring files per server, live ones never deleted
KIND_HTTP, KIND_CRON = 1, 2
KINDS = {KIND_HTTP: "http", KIND_CRON: "cron"}

# seq, started_at, duration, cpu_time, sql_time, sql_count, pid, uid, status,
# kind, cron id, db, login, url (path), rpc (model.method), cron name; CRC-32.
_BODY_FORMAT = "<QddddIIqHB5xq64p64p200p96p96p4x"
_BODY = struct.Struct(_BODY_FORMAT)
_RECORD = struct.Struct(_BODY_FORMAT + "I")
RECORD_SIZE = _RECORD.size
_CRC_AT = _BODY.size
assert RECORD_SIZE % 8 == 0 and _CRC_AT == RECORD_SIZE - 4
_CRC = struct.Struct("<I")
_U64 = struct.Struct("<Q")
# magic, version, capacity, pid, start ticks
_HEADER = struct.Struct("<4sHHIQ")
# Counters for the metrics, never decreasing: the sequence number of the last record
# they count, then per kind and HTTP status class a series of the requests per
# duration bucket (not cumulative), count, seconds, CPU seconds, SQL seconds; then
# the CRC-32 of all that. Bucket bounds (seconds) for Odoo: from a cached asset to a
# long report.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
STATUS_CLASSES = ("none", "1xx", "2xx", "3xx", "4xx", "5xx")
_STATUS_COUNT = len(STATUS_CLASSES)
_SERIES_COUNT = len(KINDS) * len(STATUS_CLASSES)
_SERIES_LENGTH = len(BUCKETS) + 5
_TOTALS_BODY = struct.Struct("<Q" + _SERIES_COUNT * f"{len(BUCKETS) + 2}Qddd")
_TOTALS_AT = 64
_TOTALS_SIZE = _TOTALS_BODY.size + 8
_NO_TOTALS = bytes(_TOTALS_SIZE)
_HEADER_SIZE = _TOTALS_AT + _TOTALS_SIZE
# Records between two writes of the counters: one write every few of the writer's turns
# under load; a reader adds the records since, which the ring still holds.
FLUSH_EVERY = 256
assert FLUSH_EVERY < CAPACITY
RETIRED = "retired.totals"  # totals of the pruned rings
_READ_RETRIES = 200
FILE_SIZE = _HEADER_SIZE + CAPACITY * RECORD_SIZE
_MAX_FIELD = 2**31


def _parse_name(name):
    if not name.endswith(SUFFIX):
        return None
    pid, sep, start = name[: -len(SUFFIX)].partition("-")
    if not sep or not pid.isdigit() or not start.isdigit() or len(pid) > 10 or len(start) > 20:
        return None
    return ProcessKey(int(pid), int(start))


# Paths that name a model and method (``call_kw``, JSON-2).
RPC_PREFIXES = ("/web/dataset/call_kw/", "/json/2/")


def rpc_of_path(path):
    """``model.method`` named by a JSON-RPC path (``call_kw``, JSON-2), else None."""
    for prefix in RPC_PREFIXES:
        if path.startswith(prefix):
            model, sep, method = path[len(prefix) :].partition("/")
            if sep and model and method and "/" not in method:
                return f"{model}.{method}"
            return None
    return None


RPC_PREFIXES_RAW = tuple(prefix.encode() for prefix in RPC_PREFIXES)
# Each path's raw bytes and the ``model.method`` it names, by path, and each WSGI status
# line's number: a server's repeat. Emptied when full.
_PATHS = {}
PATHS_KEPT = 4096
_STATUSES = {}
STATUSES_KEPT = 256


def path_fields(path):
    """A request path's raw bytes and the ``model.method`` it names (JSON-RPC), encoded."""
    fields = _PATHS.get(path)
    if fields is None:
        if len(_PATHS) >= PATHS_KEPT:
            _PATHS.clear()
        raw = raw_path(path)
        rpc = rpc_of_path(raw.decode("latin-1")) if raw.startswith(RPC_PREFIXES_RAW) else None
        fields = _PATHS[path] = (raw, encode_text(rpc))
    return fields


def _status_number(line):
    code = _STATUSES.get(line)
    if code is None:
        if len(_STATUSES) >= STATUSES_KEPT:
            _STATUSES.clear()
        code = _STATUSES[line] = status_code(line)
    return code


class RequestLog(WrittenFile):
    """This process's ring, opened in the server's verified private directory."""

    def __init__(self, server_pid, base=None, pid=None):
        self.pid = pid or os.getpid()
        self.start = start_ticks(self.pid)
        if self.start is None:
            raise ProcessLookupError(f"no /proc entry for pid {self.pid}")
        self.name = f"{self.pid}-{self.start}{SUFFIX}"
        self._dir_fd = open_server_dir(server_pid, base, create=True)
        try:
            prune(self._dir_fd, keep=MAX_FILES - 1)
            fd = create_file(self._dir_fd, self.name, FILE_SIZE, self.name)
        except BaseException:
            os.close(self._dir_fd)
            raise
        # The counters, kept here, and the sequence number of the last record they count.
        self._totals = _add_totals([])
        self._last = 0
        self.fd = fd
        try:
            self._write_head()
            self._allocated = is_whole(fd, FILE_SIZE, allocated=True)
        except BaseException:
            close_fds(fd, self._dir_fd)
            del self.fd
            raise
        self._lock = threading.Lock()  # the counters: threads of a threaded server share them
        self._spare = None  # ``add_works``'s buffer, kept between turns
        self.repairs = 0
        self.check_at = time.time() + CHECK_EVERY
        self.closed = False

    def _write_head(self):
        """The header and every counter."""
        head = _HEADER.pack(MAGIC, VERSION, CAPACITY, self.pid, self.start)
        os.pwrite(self.fd, head.ljust(_TOTALS_AT, b"\0") + _pack_totals(self._totals, self._last), 0)

    def _ensure_whole(self):
        """Write the header and counters back if something shrank the file (the records
        it dropped are lost): at most every ``CHECK_EVERY`` seconds, from ``add``."""
        self.check_at = time.time() + CHECK_EVERY
        if is_whole(self.fd, FILE_SIZE, self._allocated):
            return
        with self._lock:
            regrow(self.fd, FILE_SIZE)
            self._write_head()
            self.repairs += 1

    def add(self, *fields):
        """Append one record: ``kind, started_at, duration, cpu_time, sql_time, sql_count, uid,
        status, cron_id, db, login, url, rpc, cron_name``; texts are bytes already cut to size."""
        self.add_many((fields,))

    def add_works(self, works):
        """Append the finished requests and scheduled actions of ``works`` (a deque of the
        board's in-memory records, ``board.new_work``, which this empties); returns how many.

        The writer's loop over every request: ``add_many`` with each record's fields made
        in place, no Python call per record but for a text, path or status seen for the
        first time (each costs far more in a worker whose caches Odoo keeps cold).
        """
        count = len(works)
        if not count:
            return 0
        # The batch is packed in the buffer of the previous turns, taken for this call (a
        # concurrent one gets a buffer of its own): no fresh pages each turn, which a worker's
        # allocator gets and gives back to the kernel when a batch is large.
        buf, self._spare = self._spare, None
        if buf is None or len(buf) < count * RECORD_SIZE:
            buf = bytearray(max(count, min(2 * count, CAPACITY)) * RECORD_SIZE)
        view = memoryview(buf)
        pack_into, sign_into, crc32, pid = _BODY.pack_into, _CRC.pack_into, zlib.crc32, self.pid
        pop, texts, paths, statuses, bucket_of = works.popleft, _TEXTS, _PATHS, _STATUSES, bisect.bisect_left
        cell = types.CellType
        with self._lock:
            totals, seq, flush, at = self._totals, self._last, False, 0
            for _ in range(count):
                work = pop()
                started, path, db = work[W_START], work[W_PATH], work[W_DB]
                duration = work[W_ENDED] - started
                # Never more than its wall time: the CPU/SQL/other split of a request adds up.
                cpu_time, sql_time = min(work[W_CPU], duration), work[W_QUERY_TIME]
                db = (texts.get(db) or encode_text(db)) if db else b""
                if path is None:  # a scheduled action
                    kind, status, login, url, rpc = KIND_CRON, 0, b"", b"", b""
                    job, name = work[W_JOB]
                    job, name = job or 0, encode_text(name)
                else:
                    kind, job, name = KIND_HTTP, 0, b""
                    url, rpc = paths.get(path) or path_fields(path)
                    if work[W_RPC] is not None:
                        rpc = encode_text(work[W_RPC])
                    login = work[W_LOGIN]
                    login = encode_text(login) if login else b""
                    status = work[W_STATUS]
                    if status.__class__ is cell:  # the server's (``Recorder.wsgi``): what it answered
                        status = status.cell_contents or NO_RESPONSE
                    if status.__class__ is not int:
                        status = statuses.get(status) or _status_number(status)
                seq += 1
                # ``_count``, inline.
                series = totals[(kind - 1) * _STATUS_COUNT + (status // 100 if 0 < status < 600 else 0)]
                series[bucket_of(BUCKETS, duration)] += 1
                series[-4] += 1
                series[-3] += duration
                series[-2] += cpu_time
                series[-1] += sql_time
                if not seq % FLUSH_EVERY:
                    flush = True
                pack_into(
                    buf, at, seq, started, duration, cpu_time, sql_time, work[W_QUERIES], pid, work[W_UID] or 0,
                    status, kind, job, db, login, url, rpc, name,
                )  # fmt: skip
                sign_into(buf, at + _CRC_AT, crc32(view[at : at + _CRC_AT]))
                at += RECORD_SIZE
            self._last = seq
            if flush:
                os.pwrite(self.fd, _pack_totals(totals, seq), _TOTALS_AT)
        self._write_ring(view, count, seq)
        if len(buf) <= CAPACITY * RECORD_SIZE:
            self._spare = buf
        return count

    def add_many(self, records):
        """Append records (tuples of ``add``'s fields): one ``pwrite`` per run that does not
        wrap around the ring."""
        if not records:
            return
        # One buffer for the batch, each record packed and signed in place.
        buf = bytearray(len(records) * RECORD_SIZE)
        view = memoryview(buf)
        pack_into, sign_into, crc32, pid = _BODY.pack_into, _CRC.pack_into, zlib.crc32, self.pid
        # The numbers and the counters together: written counters cover exactly the
        # records up to theirs. Their write too: never overwritten by an older copy.
        with self._lock:
            totals, seq, flush, at = self._totals, self._last, False, 0
            for (
                kind,
                started,
                duration,
                cpu,
                sql_time,
                sql_count,
                uid,
                status,
                job,
                db,
                login,
                url,
                rpc,
                name,
            ) in records:
                seq += 1
                _count(totals, kind, status, duration, cpu, sql_time)
                if not seq % FLUSH_EVERY:
                    flush = True
                pack_into(
                    buf, at, seq, started, duration, cpu, sql_time, sql_count, pid, uid, status, kind,
                    job, db, login, url, rpc, name,
                )  # fmt: skip
                sign_into(buf, at + _CRC_AT, crc32(view[at : at + _CRC_AT]))
                at += RECORD_SIZE
            self._last = seq
            if flush:
                os.pwrite(self.fd, _pack_totals(totals, seq), _TOTALS_AT)
        self._write_ring(view, len(records), seq)

    def _write_ring(self, view, count, seq):
        """Write ``count`` packed records ending with number ``seq``: one ``pwrite`` per run
        that does not wrap around the ring."""
        # More than the ring holds: the newest. Record ``seq`` goes to index ``seq % CAPACITY``.
        kept = min(count, CAPACITY)
        at, index = (count - kept) * RECORD_SIZE, (seq - kept + 1) % CAPACITY
        while kept:
            run = min(kept, CAPACITY - index)
            os.pwrite(self.fd, view[at : at + run * RECORD_SIZE], _HEADER_SIZE + index * RECORD_SIZE)
            at, kept, index = at + run * RECORD_SIZE, kept - run, 0
        if time.time() >= self.check_at:
            self._ensure_whole()


def _entries(dir_fd):
    return [(name, key) for name in os.listdir(dir_fd) if (key := _parse_name(name)) is not None]


def prune(dir_fd, keep=MAX_FILES):
    """Delete the oldest rings of exited processes until at most ``keep`` files are left."""
    entries = _entries(dir_fd)
    if len(entries) <= keep:
        return
    dead = []
    for name, key in entries:
        if not is_alive(key):
            with contextlib.suppress(OSError):
                dead.append((os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mtime, name))
    for _mtime, name in sorted(dead)[: len(entries) - keep]:
        totals = _file_totals(dir_fd, name)
        if totals is not None:
            _retire(dir_fd, totals)
        with contextlib.suppress(OSError):
            os.unlink(name, dir_fd=dir_fd)


def _retire(dir_fd, totals):
    """Add a pruned ring's counters to the server's retired totals (the metrics never go down)."""
    fd = os.open(RETIRED, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=dir_fd)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        data = os.pread(fd, _TOTALS_SIZE, 0)
        old = _unpack_totals(data) if len(data) == _TOTALS_SIZE else None
        os.pwrite(fd, _pack_totals(_add_totals([old[1] if old else _add_totals([]), totals]), 0), 0)
    finally:
        os.close(fd)


def _count(totals, kind, status, duration, cpu_time, sql_time, bucket_of=bisect.bisect_left):
    """Count one record into its series."""
    series = totals[(kind - 1) * _STATUS_COUNT + (status // 100 if 0 < status < 600 else 0)]
    series[bucket_of(BUCKETS, duration)] += 1
    series[-4] += 1
    series[-3] += duration
    series[-2] += cpu_time
    series[-1] += sql_time


def _pack_totals(totals, last):
    body = _TOTALS_BODY.pack(last, *(value for series in totals for value in series))
    return body + _U64.pack(zlib.crc32(body))


def _unpack_totals(data):
    """``(last sequence number counted, series of counters)``: bucket counts and counts as
    ints, seconds as floats; None when the CRC fails (being written)."""
    if data == _NO_TOTALS:
        return 0, _add_totals([])
    body = data[: _TOTALS_BODY.size]
    if zlib.crc32(body) != _U64.unpack_from(data, _TOTALS_BODY.size)[0]:
        return None
    values = _TOTALS_BODY.unpack(body)
    return values[0], [list(values[at : at + _SERIES_LENGTH]) for at in range(1, len(values), _SERIES_LENGTH)]


def _add_totals(sources):
    """The sums of lists of series, value by value."""
    total = [[0] * (len(BUCKETS) + 2) + [0.0] * 3 for _ in range(_SERIES_COUNT)]
    for source in sources:
        for mine, theirs in zip(total, source, strict=True):
            mine[:] = [a + b for a, b in zip(mine, theirs, strict=True)]
    return total


def _file_totals(dir_fd, name):
    """The counters of a ring: as last written, plus the records written since."""
    key = _parse_name(name)
    for attempt in range(_READ_RETRIES if key else 0):
        data = _read_raw(dir_fd, name, key)
        if data is None:
            return None
        written = _unpack_totals(data[_TOTALS_AT:_HEADER_SIZE])
        if written is None:
            time.sleep(0 if attempt < 10 else 0.0005)  # being written: let it finish
            continue
        last, totals = written
        view = memoryview(data)
        for seq in range(last + 1, last + FLUSH_EVERY):
            at = _HEADER_SIZE + (seq % CAPACITY) * RECORD_SIZE
            if zlib.crc32(view[at : at + _CRC_AT]) != _CRC.unpack_from(view, at + _CRC_AT)[0]:
                continue  # not written yet, or being written: counted once it is
            rec = _RECORD.unpack_from(view, at)
            if rec[0] == seq and _valid(rec):
                _count(totals, rec[9], rec[8], rec[2], rec[3], rec[4])
        return totals
    return None


def read_totals(server_pid, base=None):
    """Counters of every ring of the server and of the pruned ones, for the metrics:
    ``{(kind, status class): {"buckets": [n per bound, +Inf last], "count", "sum", "cpu", "sql"}}``."""
    with existing_server_dir(server_pid, base) as dir_fd:
        if dir_fd is None:
            return {}
        sources = [_file_totals(dir_fd, name) for name, _key in _entries(dir_fd)]
        data = _read_private(dir_fd, RETIRED, _TOTALS_SIZE)
        retired = _unpack_totals(data) if data is not None and len(data) == _TOTALS_SIZE else None
        if retired is not None:
            sources.append(retired[1])
    totals = _add_totals([source for source in sources if source is not None])
    result = {}
    for k, kind in enumerate(KINDS.values()):
        for c, cls in enumerate(STATUS_CLASSES):
            series = totals[k * len(STATUS_CLASSES) + c]
            if series[len(BUCKETS) + 1]:
                count, total, cpu, sql = series[len(BUCKETS) + 1 :]
                result[(kind, cls)] = {
                    "buckets": series[: len(BUCKETS) + 1],
                    "count": count,
                    "sum": total,
                    "cpu": cpu,
                    "sql": sql,
                }
    return result


def _valid(rec):
    seq, started, duration, cpu, sql_time, _sql_count, pid, uid, _status, kind = rec[:10]
    return (
        seq
        and kind in KINDS
        and all(math.isfinite(v) and v >= 0 for v in (started, duration, cpu, sql_time))
        and 0 < pid < _MAX_FIELD
        and 0 <= uid < _MAX_FIELD
        and 0 <= rec[10] < _MAX_FIELD
    )


def _read_raw(dir_fd, name, key):
    """The bytes of a valid ring file of this user, or None."""
    data = _read_private(dir_fd, name, FILE_SIZE)
    if data is None or len(data) != FILE_SIZE:
        return None
    magic, version, capacity, pid, start = _HEADER.unpack_from(data, 0)
    if magic != MAGIC or version != VERSION or capacity != CAPACITY or (pid, start) != tuple(key):
        return None
    return data


def _read_file(dir_fd, name, key):
    data = _read_raw(dir_fd, name, key)
    if data is None:
        return []
    view = memoryview(data)
    records = []
    for at in range(_HEADER_SIZE, FILE_SIZE, RECORD_SIZE):
        # Never written (zeros) or being rewritten: the CRC fails.
        if zlib.crc32(view[at : at + _CRC_AT]) == _CRC.unpack_from(view, at + _CRC_AT)[0]:
            rec = _RECORD.unpack_from(view, at)
            if _valid(rec):
                records.append(rec)
    return records


def _decode(raw):
    return raw.decode("utf-8", "replace") or None


def to_dict(rec):
    (
        _seq,
        started,
        duration,
        cpu,
        sql_time,
        sql_count,
        pid,
        uid,
        status,
        kind,
        cron_id,
        db,
        login,
        url,
        rpc,
        cname,
        _,
    ) = rec
    return {
        "pid": pid,
        "kind": KINDS[kind],
        "started_at": round(started, 6),
        "duration": round(duration, 6),
        "cpu_time": round(cpu, 6),
        "sql_count": sql_count,
        "sql_time": round(sql_time, 6),
        "db": _decode(db),
        "uid": uid or None,
        "login": _decode(login),
        "url": _decode(url),
        "rpc": _decode(rpc),
        "cron_job": {"id": cron_id, "name": _decode(cname)} if kind == KIND_CRON else None,
        "status": status or None,
    }


def read_requests(server_pid, base=None, since=0.0):
    """Every record of the server's rings (live and exited processes) ending at or after
    ``since``, as the API's dicts, oldest first."""
    with existing_server_dir(server_pid, base) as dir_fd:
        if dir_fd is None:
            return []
        records = []
        for name, key in _entries(dir_fd):
            records.extend(_read_file(dir_fd, name, key))
    records = [rec for rec in records if rec[1] + rec[2] >= since]
    records.sort(key=lambda rec: rec[1])
    return [to_dict(rec) for rec in records]


# --- views of the API (kinds requests, routes, profile) --------------------

MAX_REQUESTS = 500  # slowest requests in one answer
# Verdict thresholds (README: Load profile): the share of request time that is
# Python CPU on the serving thread.
CPU_BOUND_SHARE = 0.6
IO_BOUND_CPU_SHARE = 0.3
# With every core taken (1-minute load average >= cores), a request's time outside
# Python and SQL is mostly a wait for a core: this much CPU share, more than SQL's,
# is then enough.
SATURATED_CPU_SHARE = 0.1
# Less request time than this share of the window (one thread's worth): idle.
IDLE_BUSY_SHARE = 0.01


def route_key(record):
    """What a request is grouped by: ``model.method``, ``cron:<name>``, or the URL path."""
    if record["rpc"]:
        return record["rpc"]
    if record["kind"] == "cron":
        return f"cron:{(record['cron_job'] or {}).get('name')}"
    return record["url"] or "/"


def parse_min_duration(text):
    """``min_duration`` of the API: seconds, ≥ 0; raises ValueError (BadQuery)."""
    return parse_seconds(text, "min_duration must be seconds")


def parse_name(label, size):
    """A ``route`` or ``db`` filter: a non-empty text of at most ``size`` characters."""

    def parse(text):
        if not isinstance(text, str) or not text or len(text) > size or any(ord(c) < 32 for c in text):
            raise ValueError(f"{label} must be a text of 1 to {size} characters, got {text!r}.")
        return text

    return parse


def _percentile(values, q):
    """Nearest-rank percentile of sorted ``values``."""
    return values[min(len(values) - 1, max(math.ceil(q * len(values)) - 1, 0))]


def routes(records):
    """Per route key: count, total, p50, p95, p99, max, cpu_time, sql_time; by total time, largest first."""
    groups = {}
    for rec in records:
        groups.setdefault(route_key(rec), []).append(rec)
    result = []
    for key, recs in groups.items():
        durations = sorted(r["duration"] for r in recs)
        result.append(
            {
                "key": key,
                "count": len(recs),
                "total": round(sum(durations), 6),
                "p50": _percentile(durations, 0.50),
                "p95": _percentile(durations, 0.95),
                "p99": _percentile(durations, 0.99),
                "max": durations[-1],
                "cpu_time": round(sum(r["cpu_time"] for r in recs), 6),
                "sql_time": round(sum(r["sql_time"] for r in recs), 6),
            }
        )
    result.sort(key=lambda route: (-route["total"], route["key"]))
    return result


def _pct(share):
    return f"{round(share * 100)}%"


def profile(records, window, cores, mode, top=(), load=0.0):
    """Where request time goes and the verdict (README: Load profile).

    ``window``: seconds the records cover; ``cores``: CPUs of the machine;
    ``top``: keys of the costliest routes, named in the advice; ``load``: the
    machine's 1-minute load average.
    """
    total = sum(r["duration"] for r in records)
    cpu = sum(min(r["cpu_time"], r["duration"]) for r in records)
    sql = sum(min(r["sql_time"], r["duration"]) for r in records)
    if not records or total <= 0 or total < IDLE_BUSY_SHARE * max(window, 1.0):
        return {
            "cpu_share": 0.0,
            "sql_share": 0.0,
            "other_share": 0.0,
            "verdict": "idle",
            "explanation": f"Idle: {len(records)} request(s) and jobs took {total:.1f} s over {window:.0f} s, "
            "too little to say where time goes.",
        }
    cpu_share = min(cpu / total, 1.0)
    sql_share = min(sql / total, 1.0 - cpu_share)
    other_share = max(1.0 - cpu_share - sql_share, 0.0)
    busy_cores = cpu / max(window, 1e-9)
    routes_text = ", ".join(top[:3]) if top else "the top routes"
    saturated = load >= cores and cpu_share >= max(SATURATED_CPU_SHARE, sql_share)
    if cpu_share >= CPU_BOUND_SHARE or saturated:
        verdict = "cpu_bound"
        explanation = (
            f"CPU-bound: {_pct(cpu_share)} of request time is Python CPU, {busy_cores:.2f} of {cores} cores busy on "
            f"average"
        )
        if saturated and cpu_share < CPU_BOUND_SHARE:
            explanation += (
                f"; the machine's cores are all taken (load {load:.1f} on {cores}), so most of the other "
                f"{_pct(other_share)} is a wait for a core"
            )
        explanation += f"; more workers than 2×CPU+1 ({2 * cores + 1}) will not help: profile {routes_text}."
        if mode == "threaded":
            explanation += " One threaded process runs Python on one core at a time (the GIL): switch to workers."
    elif cpu_share <= IO_BOUND_CPU_SHARE:
        verdict = "io_bound"
        if sql_share >= other_share:
            waiting = f"{_pct(sql_share)} in SQL"
            advice = "more workers help until PostgreSQL saturates; look at slow queries and locks"
        else:
            waiting = f"{_pct(other_share)} waiting outside Python and SQL (locks, I/O, network, the GIL)"
            advice = "more workers or threads help until what they wait on saturates"
        explanation = f"I/O-bound: only {_pct(cpu_share)} of request time is Python CPU, {waiting}; {advice}."
    else:
        verdict = "mixed"
        explanation = (
            f"Mixed: {_pct(cpu_share)} CPU, {_pct(sql_share)} SQL, {_pct(other_share)} other; workers up to "
            f"2×CPU+1 ({2 * cores + 1}) help, beyond that profile {routes_text}."
        )
    return {
        "cpu_share": round(cpu_share, 3),
        "sql_share": round(sql_share, 3),
        "other_share": round(other_share, 3),
        "verdict": verdict,
        "explanation": explanation,
    }


def query(records, kinds, since, now, cores, mode, route=None, db=None, min_duration=None, load=0.0):
    """The ``requests``, ``routes`` and ``profile`` parts of the history answer."""
    if db is not None:
        records = [r for r in records if r["db"] == db]
    if route is not None:
        records = [r for r in records if route_key(r) == route]
    result = {}
    table = routes(records) if ("routes" in kinds or "profile" in kinds) else []
    if "requests" in kinds:
        slow = [r for r in records if min_duration is None or r["duration"] >= min_duration]
        slow.sort(key=lambda r: -r["duration"])
        result["requests"] = slow[:MAX_REQUESTS]
    if "routes" in kinds:
        result["routes"] = table
    if "profile" in kinds:
        start = since or min((r["started_at"] for r in records), default=now)
        result["profile"] = profile(records, now - start, cores, mode, [t["key"] for t in table], load)
    return result
