"""The request log's ring and views, on real files in a private directory."""

import os
import struct
import threading
import time

import pytest

from worker_inspector.engine import recorder as recorder_module
from worker_inspector.engine import requestlog
from worker_inspector.engine.board import server_dir
from worker_inspector.engine.recorder import PREFORK_SLOTS, THREADED_SLOTS, Recorder


@pytest.fixture
def base(tmp_path):
    return str(tmp_path)


def test_a_request_and_a_job_are_recorded_and_outlive_the_process_handle(base):
    recorder = Recorder(lambda: (os.getpid(), PREFORK_SLOTS), base=base)
    slot = recorder.begin_request("/web/dataset/call_kw/res.partner/search_read")
    recorder.set_user("prod", 2, "admin", 0)
    recorder.end_request(slot, 200)
    slot = recorder.begin_cron(7, "Mail: send", "prod", 1)
    recorder.end_cron(slot)
    recorder.close()  # the board goes, the request log stays
    http, cron = requestlog.read_requests(os.getpid(), base)
    assert http["kind"] == "http" and http["rpc"] == "res.partner.search_read" and http["status"] == 200
    assert (http["db"], http["uid"], http["login"]) == ("prod", 2, "admin")
    assert 0 <= http["cpu_time"] <= http["duration"] < 1
    assert cron["kind"] == "cron" and cron["cron_job"] == {"id": 7, "name": "Mail: send"} and cron["url"] is None


def test_the_ring_keeps_the_last_capacity_records_and_skips_a_record_being_written(base):
    log = requestlog.RequestLog(os.getpid(), base)
    try:
        for i in range(requestlog.CAPACITY + 10):
            log.add(1, 1000.0 + i, 0.5, 0.1, 0.2, 3, 2, 200, 0, b"db", b"u", f"/r{i}".encode(), b"", b"")
        records = requestlog.read_requests(os.getpid(), base)
        assert len(records) == requestlog.CAPACITY
        assert records[0]["url"] == "/r10" and records[-1]["url"] == f"/r{requestlog.CAPACITY + 9}"
        # A record caught mid-write (its end not written yet): its CRC fails, readers skip it.
        at = requestlog._HEADER_SIZE + 5 * requestlog.RECORD_SIZE + requestlog.RECORD_SIZE - 200
        os.pwrite(log.fd, bytes(200), at)
        assert len(requestlog.read_requests(os.getpid(), base)) == requestlog.CAPACITY - 1
    finally:
        log.detach()
    info = os.stat(os.path.join(server_dir(os.getpid(), log.start, base), log.name))
    assert info.st_mode & 0o077 == 0 and info.st_size == requestlog.FILE_SIZE


def test_rpc_of_path():
    assert requestlog.rpc_of_path("/web/dataset/call_kw/res.partner/search_read") == "res.partner.search_read"
    assert requestlog.rpc_of_path("/json/2/res.partner/search") == "res.partner.search"
    assert requestlog.rpc_of_path("/web/dataset/call_kw") is None
    assert requestlog.rpc_of_path("/web/health") is None


def _rec(url, duration, cpu=0.0, sql=0.0, rpc=None, kind="http", cron=None, db="prod"):
    return {
        "url": url,
        "duration": duration,
        "cpu_time": cpu,
        "sql_time": sql,
        "rpc": rpc,
        "kind": kind,
        "cron_job": cron,
        "db": db,
        "started_at": 100.0,
    }


def test_routes_are_grouped_with_percentiles_and_sorted_by_total():
    records = [_rec("/a", d / 100) for d in range(1, 101)] + [_rec("/b", 30.0, cpu=20.0)]
    records.append(_rec(None, 2.0, kind="cron", cron={"id": 1, "name": "Job"}))
    records.append(_rec("/web/dataset/call_kw/x/y", 1.0, rpc="x.y"))
    table = requestlog.routes(records)
    assert [r["key"] for r in table] == ["/a", "/b", "cron:Job", "x.y"]
    a = table[0]
    assert (a["count"], a["p50"], a["p95"], a["p99"], a["max"]) == (100, 0.5, 0.95, 0.99, 1.0)
    assert table[1]["cpu_time"] == 20.0


@pytest.mark.parametrize(
    ("cpu", "sql", "load", "verdict"),
    [(0.9, 0.05, 0.0, "cpu_bound"), (0.05, 0.7, 0.0, "io_bound"), (0.02, 0.0, 0.0, "io_bound"),
     (0.45, 0.3, 0.0, "mixed"), (0.25, 0.05, 8.0, "cpu_bound"), (0.25, 0.5, 8.0, "io_bound")],
)  # fmt: skip
def test_verdicts(cpu, sql, load, verdict):
    records = [_rec("/r", 1.0, cpu=cpu, sql=sql) for _ in range(10)]
    profile = requestlog.profile(records, 20.0, 2, "prefork", ["/r"], load)
    assert profile["verdict"] == verdict, profile
    assert abs(profile["cpu_share"] + profile["sql_share"] + profile["other_share"] - 1) < 0.01
    assert profile["explanation"]


def test_idle_and_filters():
    assert requestlog.profile([], 60.0, 2, "prefork")["verdict"] == "idle"
    assert requestlog.profile([_rec("/r", 0.1)], 3600.0, 2, "prefork")["verdict"] == "idle"
    records = [_rec("/a", 1.0), _rec("/b", 0.1, db="other")]
    out = requestlog.query(records, ("requests", "routes"), 0, 200.0, 2, "prefork", db="prod", min_duration=0.5)
    assert [r["url"] for r in out["requests"]] == ["/a"] and [r["key"] for r in out["routes"]] == ["/a"]
    for bad in ("x", "-1", "nan", "inf"):
        with pytest.raises(ValueError):
            requestlog.parse_min_duration(bad)
    with pytest.raises(ValueError):
        requestlog.parse_name("route", 10)("x" * 11)


def test_counters_for_the_metrics_never_go_down_when_a_ring_is_pruned(base):
    prometheus = pytest.importorskip("prometheus_client.parser")
    log = requestlog.RequestLog(os.getpid(), base)
    try:
        log.add(1, 1.0, 0.3, 0.2, 0.05, 2, 2, 200, 0, b"db", b"u", b"/a", b"", b"")
        log.add(1, 2.0, 7.0, 0.1, 6.0, 9, 2, 503, 0, b"db", b"u", b"/b", b"", b"")
        log.add(2, 3.0, 0.001, 0.001, 0.0, 0, 2, 0, 4, b"db", b"", b"", b"", b"job")
        totals = requestlog.read_totals(os.getpid(), base)
    finally:
        log.detach()
    ok = totals[("http", "2xx")]
    assert ok["count"] == 1 and ok["sum"] == 0.3 and ok["cpu"] == 0.2 and ok["sql"] == 0.05
    assert ok["buckets"][requestlog.BUCKETS.index(0.5)] == 1 and sum(ok["buckets"]) == 1
    assert totals[("http", "5xx")]["count"] == 1 and totals[("cron", "none")]["count"] == 1
    # The ring of a process that is gone is pruned: its counters move to the retired totals.
    dead = os.path.join(server_dir(os.getpid(), log.start, base), f"999999999-1{requestlog.SUFFIX}")
    with open(os.path.join(server_dir(os.getpid(), log.start, base), log.name), "rb") as mine:
        data = bytearray(mine.read())
    struct.pack_into("<4sHHIQ", data, 0, requestlog.MAGIC, requestlog.VERSION, requestlog.CAPACITY, 999999999, 1)
    with open(dead, "wb") as copy:
        copy.write(data)
    os.chmod(dead, 0o600)
    assert requestlog.read_totals(os.getpid(), base)[("http", "2xx")]["count"] == 2
    dir_fd = requestlog.open_server_dir(os.getpid(), base)
    try:
        requestlog.prune(dir_fd, keep=1)
    finally:
        os.close(dir_fd)
    assert not os.path.exists(dead)
    assert requestlog.read_totals(os.getpid(), base)[("http", "2xx")]["count"] == 2
    from worker_inspector.engine import metrics

    snapshot = {"processes": [], "threads": [], "host": {"memory_total": 1, "memory_available": 1, "cpu_count": 2}}
    text = metrics._SnapshotCollector(snapshot, {}, None, requestlog.read_totals(os.getpid(), base))
    families = {f.name: f for f in text._request_metrics()}
    hist = families["odoo_http_request_duration_seconds"]
    count = next(s for s in hist.samples if s.name.endswith("_count") and s.labels["status_class"] == "2xx")
    assert count.value == 2 and "url" not in count.labels
    # Their text exposition parses back to the same histogram.
    from prometheus_client import CollectorRegistry, generate_latest

    class RequestMetrics:
        collect = text._request_metrics

    registry = CollectorRegistry(auto_describe=False)
    registry.register(RequestMetrics())
    exposition = generate_latest(registry).decode()
    parsed = {f.name: f for f in prometheus.text_string_to_metric_families(exposition)}
    assert parsed["odoo_http_request_duration_seconds"].type == "histogram"
    counts = [s for s in parsed["odoo_http_request_duration_seconds"].samples if s.name.endswith("_count")]
    assert [(s.labels, s.value) for s in counts if s.labels["status_class"] == "2xx"] == [
        ({"kind": "http", "status_class": "2xx"}, 2.0)
    ]


def test_views_fill_exactly_the_declared_keys(base):
    from typing import get_type_hints

    from worker_inspector.engine import schema

    log = requestlog.RequestLog(os.getpid(), base)
    try:
        log.add(1, 1.0, 2.0, 1.5, 0.1, 1, 2, 200, 0, b"db", b"u", b"/a", b"", b"")
    finally:
        log.detach()
    records = requestlog.read_requests(os.getpid(), base)
    out = requestlog.query(records, ("requests", "routes", "profile"), 0.0, 10.0, 2, "prefork")
    assert set(out["requests"][0]) == set(get_type_hints(schema.RequestRecord))
    assert set(out["routes"][0]) == set(get_type_hints(schema.RouteRow))
    assert set(out["profile"]) == set(get_type_hints(schema.LoadProfile))
    assert out["profile"]["verdict"] == "cpu_bound"


def test_counters_written_every_few_records_are_exact_after_each_record(base):
    """The counters are written every ``FLUSH_EVERY`` records; readers add the records since."""
    log = requestlog.RequestLog(os.getpid(), base)
    try:
        seen = []
        for n in range(1, 2 * requestlog.FLUSH_EVERY + 3):
            log.add(1, float(n), 0.02, 0.01, 0.0, 1, 2, 200 if n % 3 else 404, 0, b"db", b"u", b"/a", b"", b"")
            totals = requestlog.read_totals(os.getpid(), base)
            seen.append(sum(series["count"] for series in totals.values()))
        assert seen == list(range(1, 2 * requestlog.FLUSH_EVERY + 3))
        assert totals[("http", "4xx")]["count"] == len(seen) // 3
        assert totals[("http", "2xx")]["sum"] == pytest.approx(0.02 * (len(seen) - len(seen) // 3))
        # A record caught mid-write is counted once it is whole, never twice.
        at = requestlog._HEADER_SIZE + (len(seen) % requestlog.CAPACITY) * requestlog.RECORD_SIZE
        whole = os.pread(log.fd, requestlog.RECORD_SIZE, at)
        os.pwrite(log.fd, bytes(8), at + 8)  # its start time, half written
        assert sum(s["count"] for s in requestlog.read_totals(os.getpid(), base).values()) == len(seen) - 1
        os.pwrite(log.fd, whole, at)
        assert sum(s["count"] for s in requestlog.read_totals(os.getpid(), base).values()) == len(seen)
    finally:
        log.detach()


def _burn(seconds):
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


def test_a_request_cpu_counts_from_the_previous_end_under_load_and_from_its_start_after_idle(base, monkeypatch):
    """One clock read per request back to back: the CPU a thread spends between two requests
    (its loop, parsing the next one) is the next request's; after an idle pause it is not."""
    recorder = Recorder(lambda: (os.getpid(), PREFORK_SLOTS), base=base)
    try:
        recorder.end_request(recorder.begin_request("/first"), 200)
        _burn(0.05)  # between two requests, back to back
        slot = recorder.begin_request("/second")
        time.sleep(0.06)
        recorder.end_request(slot, 200)
        monkeypatch.setattr(recorder_module, "CPU_IDLE", 0.05)
        _burn(0.05)
        time.sleep(0.06)  # idle longer than CPU_IDLE: the clock is read as the request begins
        slot = recorder.begin_request("/third")
        time.sleep(0.06)
        recorder.end_request(slot, 200)
        records = {r["url"]: r for r in requestlog.read_requests(os.getpid(), base)}
        assert records["/second"]["cpu_time"] >= 0.04
        assert records["/third"]["cpu_time"] < 0.02
        assert all(r["cpu_time"] <= r["duration"] for r in records.values())
    finally:
        recorder.close()


def test_a_connection_threads_first_request_counts_its_cpu_from_the_threads_start_reading_the_clock_once(
    base, monkeypatch
):
    reads = []

    def thread_time():
        reads.append(threading.current_thread().name)
        return time.thread_time()

    monkeypatch.setattr(recorder_module, "_thread_time", thread_time)
    recorder = Recorder(
        lambda: (os.getpid(), THREADED_SLOTS), base=base, deferred=True, connection_threads="conn.request."
    )

    def app(_self, environ, start_response):
        time.sleep(0.1)  # a wall time longer than the CPU before it: no CPU time is cut to it
        start_response("200 OK", [])
        return [b"ok"]

    hook = recorder.wsgi(app)

    def serve(served_before):
        if served_before:
            threading.current_thread().perf_t0 = time.time()  # as Odoo sets it on each request
        _burn(0.03)  # what the thread does before the request: its start, the request's parsing
        hook(None, {"PATH_INFO": "/" + threading.current_thread().name}, lambda *_a: None)

    try:
        for name, served_before in (("conn.request.1", False), ("conn.request.2", True), ("other", False)):
            thread = threading.Thread(target=serve, args=(served_before,), name=name)
            thread.start()
            thread.join()
        recorder.flush()
        cpu = {request["url"]: request["cpu_time"] for request in requestlog.read_requests(os.getpid(), base)}
    finally:
        recorder.close()
    # A thread started for a connection: its request counts its CPU from the thread's start.
    assert cpu["/conn.request.1"] >= 0.025
    assert reads.count("conn.request.1") == 1
    # One that served a request before, or any other thread: from the request's start.
    assert cpu["/conn.request.2"] < 0.02
    assert cpu["/other"] < 0.02
    assert reads.count("conn.request.2") == reads.count("other") == 2


def test_one_batch_larger_than_the_ring_keeps_its_newest_records_and_counts_them_all(base):
    log = requestlog.RequestLog(os.getpid(), base)
    try:

        def record(started, url):
            return 1, started, 0.5, 0.1, 0.2, 3, 2, 200, 0, b"db", b"u", url, b"", b""

        log.add_many([record(1.0, b"/first")] * 7)  # the next batch wraps around the ring's end
        total = requestlog.CAPACITY + 10
        log.add_many([record(1000.0 + i, f"/r{i}".encode()) for i in range(total)])
        records = requestlog.read_requests(os.getpid(), base)
        assert len(records) == requestlog.CAPACITY
        assert [r["url"] for r in records] == [f"/r{i}" for i in range(10, total)]
        totals = requestlog.read_totals(os.getpid(), base)
        assert totals[("http", "2xx")]["count"] == total + 7
    finally:
        log.detach()


def test_the_writer_s_fused_loop_writes_what_add_many_writes(tmp_path):
    """``add_works`` (the writer's loop over the board's in-memory records) and ``add_many``
    (the fields given one by one) leave the same bytes: records, counters, CRCs."""
    from collections import deque

    from worker_inspector.engine import board as board_mod

    works = []
    for start, path, status, db, login, rpc, job in (
        (1.0, "/web/health", "200 OK", None, None, None, None),
        (2.0, b"/web/dataset/call_kw/res.partner/read", 200, "prod", "admin", None, None),
        (3.0, "/xmlrpc/2/object", "404 NOT FOUND", "prod", None, "sale.order.read", None),
        (4.0, "/weird", "xyz", None, None, None, None),
        (5.0, None, 0, "prod", None, None, (7, "Mail: queue")),
        (6.0, "/boom", board_mod.NO_RESPONSE, "ünïcode", "émile", None, None),
    ):
        work = board_mod.new_work(start, path, job)
        work[board_mod.W_ENDED], work[board_mod.W_CPU] = start + 0.25, 0.5  # more CPU than wall time
        work[board_mod.W_QUERIES], work[board_mod.W_QUERY_TIME] = 3, 0.125
        work[board_mod.W_DB], work[board_mod.W_LOGIN], work[board_mod.W_RPC] = db, login, rpc
        work[board_mod.W_UID], work[board_mod.W_STATUS] = 2, status
        works.append(work)
    fields = [
        (requestlog.KIND_HTTP, 1.0, 0.25, 0.25, 0.125, 3, 2, 200, 0, b"", b"", b"/web/health", b"", b""),
        (requestlog.KIND_HTTP, 2.0, 0.25, 0.25, 0.125, 3, 2, 200, 0, b"prod", b"admin",
         b"/web/dataset/call_kw/res.partner/read", b"res.partner.read", b""),
        (requestlog.KIND_HTTP, 3.0, 0.25, 0.25, 0.125, 3, 2, 404, 0, b"prod", b"", b"/xmlrpc/2/object",
         b"sale.order.read", b""),
        (requestlog.KIND_HTTP, 4.0, 0.25, 0.25, 0.125, 3, 2, 0, 0, b"", b"", b"/weird", b"", b""),
        (requestlog.KIND_CRON, 5.0, 0.25, 0.25, 0.125, 3, 2, 0, 7, b"prod", b"", b"", b"", b"Mail: queue"),
        (requestlog.KIND_HTTP, 6.0, 0.25, 0.25, 0.125, 3, 2, 500, 0, "ünïcode".encode(), "émile".encode(),
         b"/boom", b"", b""),
    ]  # fmt: skip
    for name in ("fused", "plain"):
        (tmp_path / name).mkdir()
    fused, plain = (requestlog.RequestLog(os.getpid(), str(tmp_path / name)) for name in ("fused", "plain"))
    try:
        queue = deque(works)
        assert fused.add_works(queue) == len(works) and not queue
        plain.add_many(fields)
        for log in (fused, plain):  # the counters, written every FLUSH_EVERY records, now
            os.pwrite(log.fd, requestlog._pack_totals(log._totals, log._last), requestlog._TOTALS_AT)
        assert fused._totals == plain._totals
        assert os.pread(fused.fd, requestlog.FILE_SIZE, 0) == os.pread(plain.fd, requestlog.FILE_SIZE, 0)
        logged = requestlog.read_requests(os.getpid(), str(tmp_path / "fused"))
        assert [(r["url"], r["status"], r["rpc"], r["db"], r["login"]) for r in logged][1:3] == [
            ("/web/dataset/call_kw/res.partner/read", 200, "res.partner.read", "prod", "admin"),
            ("/xmlrpc/2/object", 404, "sale.order.read", "prod", None),
        ]
    finally:
        fused.detach()
        plain.detach()
