"""What the activity board costs on Odoo's hot path.

Goals (issue 4): the per-request bookkeeping costs a few microseconds
(median), and the lightest Odoo route loses at most 2% throughput with the
addon installed. One run prints both, side by side:

1. the median cost of the bookkeeping each request does through the WSGI hook
   (its begin, its end, the database and user read where Odoo keeps them on the
   request's thread),
   the writer's turn every 50 requests included, on a real board
   in shared memory, in this process;
2. the throughput of ``/web/health`` (the lightest route; it goes through
   the addon's one hook, the WSGI wrapper) on two real
   Odoo servers started alike, one on a database with worker_inspector
   installed and one on a database without it, measured in interleaved
   rounds of sequential requests on 127.0.0.1, and the ratio.

    python benchmarks/bench_activity.py [--rounds 100] [--requests 40] [--workers 1]

It creates two databases (``wia_bench_on_*``, ``wia_bench_off_*``) and drops
them at the end, unless ``--db-on``/``--db-off`` name existing ones.
"""

import argparse
import contextlib
import http.client
import itertools
import mmap
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from odoo_harness import OdooServer, create_database, drop_database, odoo_available

from worker_inspector.engine import board
from worker_inspector.engine.recorder import PREFORK_SLOTS, Recorder

ROUTE = "/web/health"
GOAL_LOSS = 0.02
# Requests per turn of the writer in the bookkeeping measurement: a worker serving
# 100 requests a second, at the writer's 0.5 s turns.
WRITER_BATCH = 50


def median_cost_us(operation, batches=300, batch=1000):
    """Median over batches of the time per call, less the cost of an empty call."""

    def per_call(func):
        samples = []
        for _ in range(batches):
            start = time.perf_counter_ns()
            for _ in range(batch):
                func()
            samples.append((time.perf_counter_ns() - start) / batch / 1000)
        return statistics.median(samples)

    return per_call(operation) - per_call(lambda: None)


def write_costs():
    """µs of one board record's write (``pwrite`` of ``SLOT_SIZE`` bytes to a file in
    shared memory) and, for comparison, of an 8-byte store into a mapping of that file
    (how the board wrote before: faster, but SIGBUS if the file is shrunk meanwhile)."""
    fd, path = tempfile.mkstemp(dir=board.default_base())
    try:
        os.posix_fallocate(fd, 0, 1 << 16)
        record = bytearray(board.SLOT_SIZE)
        with mmap.mmap(fd, 1 << 16) as mapped:
            store = median_cost_us(lambda: board._SEQ.pack_into(mapped, 64, 1))
        return median_cost_us(lambda: os.pwrite(fd, record, 64)), store
    finally:
        os.close(fd)
        os.unlink(path)


def bookkeeping_costs(batch=WRITER_BATCH):
    """µs per request, as the addon records them: through its WSGI hook
    (``Recorder.wsgi``, less the bare application's own cost), for a request
    without a user and for one whose database and user the application leaves on
    its thread as Odoo does (both with the request log), the request log's share
    of the latter, and for scale one ``time.thread_time()`` and one bare system
    call (``getppid``) on this machine.

    The request path keeps the request in memory; the process's writer
    (``Recorder.flush``) writes the records after every ``batch`` requests, and its
    cost is counted, shared among them.
    """
    recorder = Recorder(lambda: (os.getpid(), PREFORK_SLOTS), deferred=True, busy_context=lambda _t, _db: (12345, 5.0))
    flush = recorder.flush
    served = itertools.count(1)
    thread = threading.current_thread()
    body = [b""]

    def start_response(line, headers, exc_info=None):
        return None

    def anonymous(_app, _environ, start_response):
        start_response("200 OK", [])
        return body

    def authenticated(_app, _environ, start_response):
        # Where Odoo keeps the request's database and user: read by the end of the request.
        thread.dbname, thread.uid = "production", 2
        start_response("200 OK", [])
        return body

    def through(application, environ):
        hooked = recorder.wsgi(application)

        def request():
            hooked(None, environ, start_response)
            if next(served) % batch == 0:
                flush()

        return request

    environ, rpc_environ = {"PATH_INFO": ROUTE}, {"PATH_INFO": "/web/dataset/call_kw/res.partner/web_search_read"}
    request, authenticated_request = through(anonymous, environ), through(authenticated, rpc_environ)
    try:
        thread.dbname = thread.uid = None
        request()  # opens the board
        flush()
        assert board.read_board(os.getpid())[os.getpid()][0] == 1, "nothing recorded"
        assert recorder._log is not None, "the request log is not open"
        bare = (
            median_cost_us(lambda: anonymous(None, environ, start_response)),
            median_cost_us(lambda: authenticated(None, rpc_environ, start_response)),
        )
        with_log = median_cost_us(request) - bare[0], median_cost_us(authenticated_request) - bare[1]
        # The same without the request log's record (its fields and its write, by the writer).
        log, recorder._log = recorder._log, None
        without_log = median_cost_us(authenticated_request) - bare[1]
        recorder._log = log
        del thread.dbname, thread.uid
        return (*with_log, with_log[1] - without_log, median_cost_us(time.thread_time), median_cost_us(os.getppid))
    finally:
        recorder.close()


def hammer(port, count):
    """Requests per second of ``count`` sequential GETs, one connection each (Odoo speaks HTTP/1.0)."""
    start = time.perf_counter()
    for _ in range(count):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        try:
            conn.request("GET", ROUTE)
            response = conn.getresponse()
            response.read()
            if response.status != 200:
                raise RuntimeError(f"{ROUTE} answered {response.status}")
        finally:
            conn.close()
    return count / (time.perf_counter() - start)


def requests_recorded(server):
    """Requests the board counted for the server's processes (0: the hooks are not there)."""
    return sum(requests for requests, _records in board.read_board(server.pid).values())


def check_addon(db, installed):
    """Refuse a database given by name that does not exist (Odoo would create an empty one
    at start, without the addon) or whose addon is not as the comparison needs it."""
    found = subprocess.run(
        ["psql", "-d", db, "-Atc", "SELECT state FROM ir_module_module WHERE name = 'worker_inspector'"],
        capture_output=True,
        text=True,
        check=False,
    )
    if found.returncode:
        raise SystemExit(f"database {db} cannot be read: {found.stderr.strip()}")
    if (found.stdout.strip() == "installed") != installed:
        raise SystemExit(f"database {db}: worker_inspector is {found.stdout.strip() or 'absent'}, wanted "
                         f"{'installed' if installed else 'not installed'}")  # fmt: skip


@contextlib.contextmanager
def database(given, prefix, modules, installed):
    """``given``, once ``check_addon`` accepts it; else a new database ``<prefix>_<random>``
    with ``modules`` installed, dropped afterwards."""
    if given:
        check_addon(given, installed=installed)
        yield given
        return
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    print(f"creating {name} ({', '.join(modules)}) ...", flush=True)
    create_database(name, modules)
    try:
        yield name
    finally:
        drop_database(name)


@contextlib.contextmanager
def databases(opts):
    """The databases with (``--db-on``) and without (``--db-off``) the addon."""
    with contextlib.ExitStack() as stack:
        yield [
            stack.enter_context(database(opts.db_on, "wia_bench_on", ["worker_inspector"], installed=True)),
            stack.enter_context(database(opts.db_off, "wia_bench_off", ["web"], installed=False)),
        ]


def serving_process(server):
    """The process that serves the requests: the HTTP worker (prefork, one worker) or the server."""
    if not server.workers:
        return psutil.Process(server.pid)
    workers = server.http_workers()
    return workers[0] if len(workers) == 1 else None


def cpu_seconds(process):
    times = process.cpu_times()
    return times.user + times.system


def measure_round(server, process, count):
    """(requests per second, CPU µs per request of the serving process or None)."""
    before = cpu_seconds(process) if process else None
    rate = hammer(server.port, count)
    cpu = (cpu_seconds(process) - before) / count * 1e6 if process else None
    return rate, cpu


def throughput(opts, db_on, db_off):
    """Per label ("with", "without"): the rates and CPU costs of the interleaved rounds.

    Two halves, each starting both servers afresh: the server started first
    turned out a few percent slower whatever its database, so each server is
    started first in one half.
    """
    args = {"workers": opts.workers, "max_cron_threads": 0, "extra_args": ["--log-level", "warn"]}
    rates, cpus = {"with": [], "without": []}, {"with": [], "without": []}
    for half, start_order in enumerate(
        ([("with", db_on), ("without", db_off)], [("without", db_off), ("with", db_on)])
    ):
        with contextlib.ExitStack() as stack:
            servers = {label: stack.enter_context(OdooServer(db, **args)) for label, db in start_order}
            for server in servers.values():  # warm-up: registries, caches
                hammer(server.port, opts.requests)
            if not requests_recorded(servers["with"]) or requests_recorded(servers["without"]):
                raise RuntimeError("the hooks must run on the 'with' server only")
            targets = {label: (server, serving_process(server)) for label, server in servers.items()}
            for round_ in range(opts.rounds // 2):
                order = ["with", "without"] if (round_ + half) % 2 == 0 else ["without", "with"]
                for label in order:
                    rate, cpu = measure_round(*targets[label], opts.requests)
                    rates[label].append(rate)
                    cpus[label].append(cpu)
    return rates, cpus


def paired_ratio(with_values, without_values):
    """Median and quartiles of with/without over adjacent rounds.

    Each round of one server runs next to a round of the other: their ratio
    cancels most of the load the machine's other tenants add meanwhile.
    """
    ratios = [w / wo for w, wo in zip(with_values, without_values, strict=True) if w and wo]
    quartiles = statistics.quantiles(ratios, n=4)
    return statistics.median(ratios), quartiles[0], quartiles[2]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=100, help="interleaved rounds per server")
    parser.add_argument("--requests", type=int, default=40, help="sequential requests per round")
    parser.add_argument("--workers", type=int, default=1, help="HTTP workers (0: threaded server)")
    parser.add_argument("--db-on", help="existing database with worker_inspector installed")
    parser.add_argument("--db-off", help="existing database without it (web installed)")
    parser.add_argument("--micro-only", action="store_true", help="only the bookkeeping cost")
    opts = parser.parse_args()

    anonymous, with_user, log_share, thread_time, syscall = bookkeeping_costs()
    pwrite, store = write_costs()
    print(
        f"per-request bookkeeping through the WSGI hook, median: {anonymous:.2f} µs; with a database and user"
        f" {with_user:.2f} µs"
        f" (the writer's turn every {WRITER_BATCH} requests included)"
    )
    print(
        f"  of which the request log's record {log_share:.2f} µs (goal <= 5 µs); for scale, on this machine "
        f"time.thread_time() {thread_time:.2f} µs (one per request under load), a bare system call {syscall:.2f} µs"
    )
    print(
        f"  writes: one record's pwrite {pwrite:.2f} µs (none on the request path; the writer's: one per changed"
        f" board record and one per run of log records, each turn), an 8-byte store into a mapping {store:.2f} µs"
        " (SIGBUS if the file shrinks)"
    )
    if opts.micro_only:
        return 0
    available, reason = odoo_available()
    if not available:
        print(f"throughput not measured: {reason}")
        return 1
    with databases(opts) as (db_on, db_off):
        rates, cpus = throughput(opts, db_on, db_off)
    mode = f"prefork, {opts.workers} HTTP worker" if opts.workers else "threaded"
    print(f"{ROUTE} on real Odoo 18 ({mode}), {opts.rounds} interleaved rounds of {opts.requests} requests:")
    medians = {label: statistics.median(values) for label, values in rates.items()}
    for label in ("without", "with"):
        print(f"  {label:>7} worker_inspector: {medians[label]:7.1f} req/s median")
    ratio, low, high = paired_ratio(rates["with"], rates["without"])
    verdict = "OK" if ratio >= 1 - GOAL_LOSS else "ABOVE GOAL"
    print(
        f"  throughput ratio with/without: {ratio:.4f} (quartiles {low:.4f} .. {high:.4f})"
        f" -> loss {(1 - ratio) * 100:.2f}% (goal <= {GOAL_LOSS * 100:.0f}%) {verdict}"
    )
    if None not in cpus["with"] + cpus["without"]:
        # CPU time per request bounds throughput at saturation and is far less
        # disturbed by other tenants than wall-clock time; summed over all
        # rounds, the clock tick is small next to it.
        cpu = {label: statistics.fmean(values) for label, values in cpus.items()}
        cpu_ratio = cpu["without"] / cpu["with"]
        print(
            f"  serving process CPU per request: without {cpu['without']:.0f} µs, with {cpu['with']:.0f} µs"
            f" -> CPU-bound throughput ratio {cpu_ratio:.4f}, loss {(1 - cpu_ratio) * 100:.2f}%"
        )
    share = with_user / (1e6 / medians["without"]) * 100
    print(f"  the bookkeeping ({with_user:.2f} µs) is {share:.3f}% of one request ({1e6 / medians['without']:.0f} µs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
