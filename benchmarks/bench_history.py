"""What the history costs: on the request path, to read 24 hours, and on a real server.

Goals (history issue): the request path costs today's bookkeeping plus a few
µs; the API reads 24 h of a 16-worker server in under 100 ms; the serving
worker's CPU per request with the addon is at most 1.01x without it. One run
prints:

1. the median cost of the per-request bookkeeping (begin, user, end, with
   the last request remembered for the exit record), in this process;
2. reading and JSON-encoding 24 h of history of a 16-worker server (8,641
   points of 21 processes, 2,048 exits) from a history file in shared memory;
   with ``--api``, the same through the real API of a 16-worker prefork
   server whose history file was filled first;
3. CPU time per request of the serving worker, from
   ``/proc/<pid>/task/*/schedstat`` (nanoseconds), on three real prefork
   servers with one HTTP worker each: one with the addon (A) and two
   without (B1, B2), in interleaved rounds, for ``/web/health`` and an
   authenticated JSON-RPC ``call_kw``; the A/B ratio is printed beside the
   B2/B1 ratio (A/A control), which shows the method's own noise. A
   request's cost includes the writer's (the addon's thread that writes its
   record, after the request): the other threads' CPU over each set, per
   request. The sampler's and heartbeat's per-second work is shown apart.

   The servers are started afresh ``--generations`` times (a process keeps
   a bias of its own for its life), and the serving workers share one core.
   The three servers of a set are laid out alike in memory (address-space
   randomization off, one hash seed per set, ``--no-steady`` to leave them
   random): B1 and B2 then differ by the method's noise alone, and A by the
   addon; the seed changes from set to set. What no seed fixes is where each
   process's memory lands in physical memory: the A/A ratio's spread from set
   to set gives the run's resolution (printed). Transparent huge pages
   ``always`` halve that spread (the mode and the workers' share of huge
   pages are printed).

   ``--mode threaded``: the same on ``--workers=0`` servers, which start a
   thread per request (Werkzeug closes every connection): a round's CPU is
   the process's CPU clock, its ended threads included, less what its
   lasting threads spent (schedstat). Their sets stray several times more
   than a prefork worker's (see README, Tests).

   ``--switch``: instead, the addon's hook turned off and on in the same
   process (``hook_switch``), on a server with the addon and a control without
   it that gets the same signals: the hook's cost (and the writer's), free of the
   bias each process keeps for its life. It leaves out what the addon costs with
   its hook off (its modules, its threads' per-second work; the default method
   includes them). With ``--floor`` too, "on" is ``hook_switch.floor_hook``: the
   least any hook does to read the request log's fields, no writer behind it.

    python benchmarks/bench_history.py [--mode prefork|threaded] [--rounds 60] [--generations 4] [--requests 40]
        [--switch [--floor]] [--api] [--skip-servers]
"""

import argparse
import contextlib
import http.client
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "benchmarks")]

import hook_switch
from bench_activity import bookkeeping_costs, databases, paired_ratio
from odoo_harness import OdooServer, odoo_available

from worker_inspector.engine import board, jsonout
from worker_inspector.engine.history import EXITS_CAPACITY, HistoryStore
from worker_inspector.engine.jsonout import stdlib_json, to_json
from worker_inspector.engine.stacks import WATCH_INTERVAL
from worker_inspector.engine.threads import OS_HEARTBEAT, OS_SAMPLER, OS_WRITER

# The addon's threads whose work is per second, not per request.
BACKGROUND_THREADS = (OS_SAMPLER, OS_HEARTBEAT)
# Long enough for the writer's turn after the last request (a woken writer's first turn
# comes an interval later) to fall inside a set's window.
SETTLE = 2 * WATCH_INTERVAL + 0.3

GOAL_READ_MS = 100.0
GOAL_CPU_RATIO = 1.01
DAY = 24 * 3600


def fill(store, workers=16, crons=2, interval=10.0, end=None):
    """24 h of points of a ``workers``-worker server and a full exit ring."""
    end = end or time.time()
    pids = list(range(1000, 1000 + workers + crons + 2))
    roles = ["master", "gevent"] + ["http"] * workers + ["cron"] * crons
    count = int(DAY / interval) + 1
    for i in range(count):
        processes = [
            {"pid": pid, "role": role, "rss": 200 << 20, "vms": (600 << 20) + i * 4096, "cpu_percent": 3.5}
            for pid, role in zip(pids, roles, strict=True)
        ]
        point = {"t": end - DAY + i * interval, "utilization": 0.5, "http_busy": 8, "http_capacity": workers}
        store.add_point(dict(point, backlog=1, requests_per_second=20.0, longest_busy=0.4), processes)
    for i in range(EXITS_CAPACITY):
        store.add_exit(
            {
                "pid": 50_000 + i,
                "role": "http",
                "started_at": end - DAY,
                "ended_at": end - DAY + i,
                "reason": "memory_soft",
                "detail": "VMS 2.10 GiB > soft 2.00 GiB",
                "requests": 100,
                "doing": {"url": "/web/dataset/call_kw/sale.order/action_confirm", "elapsed": 1.2},
            }
        )
    return count


def read_cost_ms(runs=15):
    """``(points, {encoder: (median ms, best ms, bytes)})`` of reading 24 h and encoding them,
    with the API's encoder (``jsonout.to_json``) and the standard library's, alternating."""
    encoders = {"the API's": to_json, "the standard library's": stdlib_json}
    with tempfile.TemporaryDirectory() as directory:
        os.chmod(directory, 0o700)
        store = HistoryStore(directory, interval=10.0, rows_per_point=21)
        points = fill(store)
        samples, sizes = {name: [] for name in encoders}, {}
        for _ in range(runs):
            for name, encode in encoders.items():
                start = time.perf_counter()
                sizes[name] = len(encode(store.query(0.0)))
                samples[name].append((time.perf_counter() - start) * 1000)
        store.close()
    return points, {name: (statistics.median(ms), min(ms), sizes[name]) for name, ms in samples.items()}


def api_read_cost(db, runs=30):
    """Median ms of GET /worker_inspector/api/history (24 h, 16 workers) on a real server."""
    env = {"WORKER_INSPECTOR_HISTORY_INTERVAL": "10"}
    with OdooServer(db, workers=16, max_cron_threads=2, env=env, extra_args=["--log-level", "warn"]) as server:
        session = server.login_session()
        session.get(server.url + "/worker_inspector/api/history", params={"kinds": "exits"}, timeout=60)
        directory = board.server_dir(server.pid, board.start_ticks(server.pid))
        store = HistoryStore(directory)
        assert store.rows_cap >= 21 * store.points_cap, "the file is sized by the server's first process"
        fill(store)
        # Each worker's first request builds its routing map and caches: warm them all up.
        for _ in range(4 * 16):
            session.get(server.url + "/worker_inspector/api/history", timeout=60).raise_for_status()
        samples = []
        for _ in range(runs):
            start = time.perf_counter()
            response = session.get(server.url + "/worker_inspector/api/history", timeout=60)
            response.raise_for_status()
            samples.append((time.perf_counter() - start) * 1000)
        store.close()
        return len(response.content), statistics.median(samples), min(samples)


def sampler_cost_ms(workers=16, runs=30):
    """Median ms of the elected sampler's per-second look and of a point, for ``workers`` real processes."""
    import subprocess

    from worker_inspector.engine.board import ProcessBoard
    from worker_inspector.engine.sampler import Sampler

    children = [subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"]) for _ in range(workers)]
    try:
        with tempfile.TemporaryDirectory() as base:
            boards = []
            for child in children:
                while board.start_ticks(child.pid) is None:
                    time.sleep(0.01)
                boards.append(ProcessBoard(os.getpid(), 4, base, pid=child.pid))
            for proc_board in boards:
                proc_board.claim(tid=proc_board.pid).begin_request(b"/web/dataset/call_kw")
            config = {"workers": workers, "limit_time_real": 120, "http_port": 0}
            sampler = Sampler(os.getpid(), "prefork", config, boards[0].dir, base=base, interval=3600)
            sampler.tick(time.time())  # the first point
            looks, points = [], []
            for _ in range(runs):
                start = time.perf_counter()
                sampler.tick(time.time())
                looks.append((time.perf_counter() - start) * 1000)
                start = time.perf_counter()
                sampler.point(time.time(), board.read_board(os.getpid(), base), workers)
                points.append((time.perf_counter() - start) * 1000)
            for proc_board in boards:
                proc_board.close()
            return statistics.median(looks), statistics.median(points)
    finally:
        for child in children:
            child.kill()
            child.wait()


# --- CPU per request, from schedstat -------------------------------------------


def schedstat_ns(pid):
    """CPU time of each thread of ``pid`` so far, in ns (first field of each task's schedstat)."""
    spent = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(OSError), open(f"/proc/{pid}/task/{tid}/schedstat") as handle:
            spent[tid] = int(handle.read().split()[0])
    return spent


def split_ns(before, after):
    """CPU ns between two readings: the busiest thread's (the one serving) and the others'."""
    spent = sorted((ns - before.get(tid, 0) for tid, ns in after.items()), reverse=True)
    return spent[0], sum(spent[1:])


def thread_names(pid):
    """The kernel's name of each thread of ``pid`` (the addon names its own: ``wi:writer``...)."""
    names = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(OSError), open(f"/proc/{pid}/task/{tid}/comm") as handle:
            names[tid] = handle.read().strip()
    return names


def process_cpu_ns(pid):
    """CPU time of every thread ``pid`` has had so far, the ended ones included (the process's
    CPU clock), in ns: a threaded server's request threads end with their requests."""
    return time.clock_gettime_ns(((~pid) << 3) | 2)  # CPUCLOCK_SCHED of the process (Linux)


def background_and_rest_ns(before, after, names, serving=True):
    """Over a whole set: the CPU ns of the addon's background threads (the sampler's and the
    heartbeat's per-second work, whatever the load) and of the other threads but the busiest
    (the one serving; with ``serving=False`` none is: a threaded server's request threads
    have ended): the writer's, which writes every request's record, and Odoo's own."""
    spent = {tid: ns - before.get(tid, 0) for tid, ns in after.items()}
    serving = max(spent, key=spent.get) if serving else None
    background = sum(ns for tid, ns in spent.items() if names.get(tid) in BACKGROUND_THREADS)
    rest = sum(ns for tid, ns in spent.items() if tid != serving and names.get(tid) not in BACKGROUND_THREADS)
    return background, rest


THP_ENABLED = "/sys/kernel/mm/transparent_hugepage/enabled"


def huge_pages_mode():
    """The kernel's transparent huge pages mode (``always``, ``madvise``, ``never``), or None."""
    try:
        with open(THP_ENABLED) as handle:
            text = handle.read()
    except OSError:
        return None
    return text[text.find("[") + 1 : text.find("]")] or None


def huge_page_share(pid):
    """The share of ``pid``'s anonymous memory in huge pages (``smaps_rollup``), or None."""
    sizes = {}
    with contextlib.suppress(OSError), open(f"/proc/{pid}/smaps_rollup") as handle:
        for line in handle:
            key, _sep, value = line.partition(":")
            if key in ("Anonymous", "AnonHugePages"):
                sizes[key] = int(value.split()[0])
    return sizes["AnonHugePages"] / sizes["Anonymous"] if sizes.get("Anonymous") else None


def http_worker(server):
    pids = [p.pid for p in server.http_workers()]
    assert len(pids) == 1, pids
    return pids[0]


# The authenticated JSON-RPC request measured (POST /web/dataset/call_kw/res.users/read).
CALL_KW_BODY = json.dumps(
    {
        "jsonrpc": "2.0",
        "method": "call",
        "params": {"model": "res.users", "method": "read", "args": [[2], ["login"]], "kwargs": {}},
    }
)


class Client:
    """Sequential requests on one server: /web/health, or call_kw with a session cookie."""

    def __init__(self, server):
        self.server = server
        self.cookie = "session_id=" + server.login_session().cookies["session_id"]
        self.body = CALL_KW_BODY

    def run(self, route, count):
        for _ in range(count):
            conn = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=60)
            try:
                if route == "call_kw":
                    headers = {"Content-Type": "application/json", "Cookie": self.cookie}
                    conn.request("POST", "/web/dataset/call_kw/res.users/read", self.body, headers)
                else:
                    conn.request("GET", "/web/health")
                response = conn.getresponse()
                response.read()
                if response.status != 200:
                    raise RuntimeError(f"{route} answered {response.status}")
            finally:
                conn.close()


class PreforkMeter:
    """CPU ns of a round on a prefork server's one HTTP worker: its serving thread's (schedstat)."""

    workers = 1
    serving_thread = True
    measured = "serving worker"
    alone = "the serving thread"
    process = staticmethod(http_worker)

    def __init__(self, server):
        self.pid = self.process(server)

    def start(self):
        self._before = schedstat_ns(self.pid)

    def stop(self):
        spent, _others = split_ns(self._before, schedstat_ns(self.pid))
        return spent


class ThreadedMeter:
    """CPU ns of a round on a threaded server (``--workers=0``): its request threads', one per
    request, ended once the round is over: the process's CPU clock less its lasting threads'
    (schedstat). Made once the server is idle, which its lasting threads are counted from."""

    workers = 0
    serving_thread = False
    measured = "threaded server"
    alone = "the request threads"

    @staticmethod
    def process(server):
        return server.pid

    def __init__(self, server):
        self.pid = self.process(server)
        self._lasting = len(os.listdir(f"/proc/{self.pid}/task"))

    def start(self):
        self._before = process_cpu_ns(self.pid), schedstat_ns(self.pid)

    def stop(self):
        # The client has its last answer before that request's thread has ended.
        deadline = time.monotonic() + 5
        while len(os.listdir(f"/proc/{self.pid}/task")) > self._lasting and time.monotonic() < deadline:
            time.sleep(0.001)
        total = process_cpu_ns(self.pid) - self._before[0]
        before, after = self._before[1], schedstat_ns(self.pid)
        return total - sum(ns - before.get(tid, 0) for tid, ns in after.items())


METERS = {"prefork": PreforkMeter, "threaded": ThreadedMeter}


def pin(pid, cpu):
    """Every thread of ``pid`` on ``cpu``: the three servers' workers share one core's caches."""
    for tid in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(OSError):
            os.sched_setaffinity(int(tid), {cpu})


class BenchServer(OdooServer):
    """A server of the benchmark. With a ``seed``, laid out in memory the same way at each
    start: address-space randomization off (``setarch -R``, inherited by the forked workers)
    and a fixed hash seed. Two such servers of the same code run alike, so the A/A control
    measures the method, not the luck of two layouts; each generation draws a new seed for
    its servers. With a ``switch_dir``, run through ``hook_switch`` (the hook turned off and
    on in the running process)."""

    def __init__(self, db, seed=None, switch_dir=None, **kwargs):
        env = {}
        if seed is not None:
            env["PYTHONHASHSEED"] = str(seed)
        if switch_dir is not None:
            env["WI_HOOK_SWITCH"] = str(switch_dir)
        super().__init__(db, env=env, **kwargs)
        self.seed, self.switch_dir = seed, switch_dir

    def command(self):
        command = super().command()
        if self.switch_dir is not None:
            command.insert(command.index(sys.executable) + 1, hook_switch.SCRIPT)
        return ["setarch", platform.machine(), "-R", *command] if self.seed is not None else command


def steady_available():
    """Whether this machine lets a process turn its address-space randomization off."""
    try:
        return subprocess.run(["setarch", platform.machine(), "-R", "true"], check=False).returncode == 0
    except OSError:
        return False


def cpu_rounds(opts, db_on, db_off):
    """``({route: {label: [CPU µs per request, per round]}}, {route: {label: [its serving
    thread's alone]}}, {label: [(rest µs per request, background µs per second, the serving worker's
    share of huge pages or None), per set]})``.

    Each round's value is its serving thread's CPU per request (schedstat, in
    the round's window) plus the per-request share of the worker's other
    threads over the whole set: the writer writes a round's records at its
    next turn, often after the round's window has closed, so only a window that
    spans the set (closed once the writer's last turn is done) counts all of it.
    The sampler's and heartbeat's work is per second whatever the load: it is
    shown apart, not charged to requests.

    A process keeps its own small bias for its life (memory layout, hash
    seed, the core it runs on), which interleaving cannot cancel: the rounds
    are spread over ``opts.generations`` sets of freshly started servers, and
    with two or more CPUs the serving workers share one core and the client
    runs on another.
    """
    meter = METERS[opts.mode]
    args = {"workers": meter.workers, "max_cron_threads": 0, "extra_args": ["--log-level", "warn"]}
    labels = (("A", db_on), ("B1", db_off), ("B2", db_off))
    routes = ("health", "call_kw")
    threads = {route: {label: [] for label, _db in labels} for route in routes}
    alone = {route: {label: [] for label, _db in labels} for route in routes}
    parts = {label: [] for label, _db in labels}
    cpus = sorted(os.sched_getaffinity(0))
    per_generation = max(1, opts.rounds // opts.generations)
    for generation in range(opts.generations):
        with contextlib.ExitStack() as stack:
            turn = labels[generation % 3 :] + labels[: generation % 3]  # each is started first in turn
            seed = 1 + generation if opts.steady else None
            servers = {label: stack.enter_context(BenchServer(db, seed, **args)) for label, db in turn}
            clients = {label: Client(server) for label, server in servers.items()}
            workers = {label: meter.process(server) for label, server in servers.items()}
            if len(cpus) > 1:
                os.sched_setaffinity(0, {cpus[0]})
                for worker in workers.values():
                    pin(worker, cpus[-1])
            for route in routes:
                for client in clients.values():  # warm-up
                    client.run(route, opts.requests)
            time.sleep(SETTLE)  # the warm-up's records written
            meters = {label: meter(server) for label, server in servers.items()}
            set_start = {label: schedstat_ns(worker) for label, worker in workers.items()}
            started_at = time.monotonic()
            serving = {route: {label: [] for label in servers} for route in routes}
            for round_ in range(per_generation):
                for route in routes:
                    order = list(servers)
                    order = order[round_ % 3 :] + order[: round_ % 3]  # each goes first in turn
                    for label in order:
                        meters[label].start()
                        clients[label].run(route, opts.requests)
                        serving[route][label].append(meters[label].stop() / opts.requests / 1000)
            time.sleep(SETTLE)  # the last round's records written
            seconds = time.monotonic() - started_at
            served = per_generation * len(routes) * opts.requests
            for label, worker in workers.items():
                background, rest = background_and_rest_ns(
                    set_start[label], schedstat_ns(worker), thread_names(worker), meter.serving_thread
                )
                rest_per_request = rest / served / 1000
                for route in routes:
                    threads[route][label].extend(value + rest_per_request for value in serving[route][label])
                    alone[route][label].extend(serving[route][label])
                parts[label].append((rest_per_request, background / seconds / 1000, huge_page_share(worker)))
            os.sched_setaffinity(0, set(cpus))
    return threads, alone, parts


class Switched:
    """A process of a server run through ``hook_switch``, and the state its hook is in."""

    def __init__(self, pid, directory, hooked):
        self.switch = hook_switch.HookSwitch(pid, directory)
        self.hooked = hooked  # whether it has the addon's hook: the control has none
        self.state = "on"

    def flip(self):
        switched = self.switch.flip()
        self.state = "off" if self.state == "on" else "on"
        expected = self.state if self.hooked else "none"
        if switched != expected:
            raise RuntimeError(f"process {self.switch.pid}'s hook is {switched}, not {expected}")


SWITCH_STATES = ("on", "off")


def switch_rounds(opts, db_on, db_off):
    """``({route: {label: {state: [its serving thread's CPU µs per request, per round]}}},
    {label: [the writer's µs per request served with the hook, per set]})``, states "on"
    and "off".

    Two servers of one HTTP worker (or threaded), A with the addon and B without, both run
    through ``hook_switch``. Each round of a server is two adjacent half-rounds in the same
    process, one with the addon's hook and one without: their ratio carries none of the
    process's own bias, which makes two servers' A/A ratio stray by a few percent from set
    to set. B gets the same signals with no hook to switch: its on/off ratio is the
    control. A half-round's CPU is its serving thread's (schedstat); the writer's over the
    set (it writes the records after their requests) is charged to the requests served
    with the hook (``with_writer``): B has none.

    What this leaves out is what the addon costs with its hook off: its modules loaded,
    its threads' per-second work. The default method measures the whole addon.
    """
    meter = METERS[opts.mode]
    args = {"workers": meter.workers, "max_cron_threads": 0, "extra_args": ["--log-level", "warn"]}
    labels = (("A", db_on), ("B", db_off))
    routes = ("health", "call_kw")
    spent = {route: {label: {state: [] for state in SWITCH_STATES} for label, _db in labels} for route in routes}
    writer = {label: [] for label, _db in labels}
    cpus = sorted(os.sched_getaffinity(0))
    with tempfile.TemporaryDirectory(prefix="wi-switch-") as directory:
        for generation in range(opts.generations):
            with contextlib.ExitStack() as stack:
                seed = 1 + generation if opts.steady else None
                turn = labels[generation % 2 :] + labels[: generation % 2]
                servers = {
                    label: stack.enter_context(BenchServer(db, seed, switch_dir=directory, **args))
                    for label, db in turn
                }
                workers = {label: meter.process(server) for label, server in servers.items()}
                if len(cpus) > 1:
                    os.sched_setaffinity(0, {cpus[0]})
                    for worker in workers.values():
                        pin(worker, cpus[-1])
                switched = {label: Switched(worker, directory, label == "A") for label, worker in workers.items()}
                set_spent, set_writer = _switched_set(opts, meter, servers, switched, routes)
                for label in servers:
                    writer[label].append(set_writer[label])
                    for route in routes:
                        for state in SWITCH_STATES:
                            spent[route][label][state].extend(set_spent[route][label][state])
                os.sched_setaffinity(0, set(cpus))
    return spent, writer


# Rounds whose orders, taken together, carry no bias (see ``_switched_set``).
SWITCH_CYCLE = 4


def _switched_set(opts, meter, servers, switched, routes):
    """One set of ``switch_rounds``: ``({route: {label: {state: [serving thread's µs per request]}}},
    {label: the writer's µs per request served with the hook})``."""
    clients = {label: Client(server) for label, server in servers.items()}
    for _state in SWITCH_STATES:  # warm-up, each way
        for route in routes:
            for client in clients.values():
                client.run(route, opts.requests)
        for process in switched.values():
            process.flip()
    time.sleep(SETTLE)  # the warm-up's records written
    meters = {label: meter(server) for label, server in servers.items()}
    set_start = {label: schedstat_ns(meters[label].pid) for label in servers}
    spent = {route: {label: {state: [] for state in SWITCH_STATES} for label in servers} for route in routes}
    per_generation = max(SWITCH_CYCLE, opts.rounds // opts.generations // SWITCH_CYCLE * SWITCH_CYCLE)
    for round_ in range(per_generation):
        for index, route in enumerate(routes):
            order = list(servers)
            # The first half-round of a server runs after the other server's rounds, with colder
            # caches, and the first server of a round after the previous route's: over a cycle
            # of four rounds each server goes first and second, each time once with the hook
            # first and once without. Crossed, neither order biases the on/off ratio (``balanced``).
            first = SWITCH_STATES[(round_ // 2 + index) % 2]
            for label in order[round_ % 2 :] + order[: round_ % 2]:
                for half in range(2):
                    if (switched[label].state == first) == bool(half):
                        switched[label].flip()  # between the two windows
                    meters[label].start()
                    clients[label].run(route, opts.requests)
                    spent[route][label][switched[label].state].append(meters[label].stop() / opts.requests / 1000)
    time.sleep(SETTLE)  # the last round's records written
    writer = {}
    for label in servers:
        pid = meters[label].pid
        names, end = thread_names(pid), schedstat_ns(pid)
        # The writer's CPU only: the switch's own (Odoo's main thread of a prefork worker, which
        # handles the signals while its work thread serves) is the method's, not the addon's.
        ns = sum(ns - set_start[label].get(tid, 0) for tid, ns in end.items() if names.get(tid) == OS_WRITER)
        writer[label] = ns / (per_generation * len(routes) * opts.requests) / 1000
    return spent, writer


def balanced(with_values, without_values):
    """Both lists with each ``SWITCH_CYCLE`` adjacent rounds added up: a round of each order
    (see ``_switched_set``), so that each value carries no bias of the order."""
    return [
        [sum(values[i : i + SWITCH_CYCLE]) for i in range(0, len(values) - SWITCH_CYCLE + 1, SWITCH_CYCLE)]
        for values in (with_values, without_values)
    ]


def with_writer(values, writer, sets):
    """``values`` (a server's rounds, in ``sets`` sets of adjacent rounds) each with the writer's
    µs per request of its set (``writer``) added."""
    per_set = len(values) // sets
    return [value + writer[index // per_set] for index, value in enumerate(values)]


def print_switch_rounds(opts, spent, writer):
    print(
        f"the addon's hook switched off and on in the same process ({METERS[opts.mode].measured}), CPU per request"
        f" (schedstat), {opts.rounds} rounds of {opts.requests} requests each way on {opts.generations} sets of"
        " fresh servers; A has the addon, B (the control) not and gets the same signals:"
    )
    for route, alone in spent.items():
        a = {"on": with_writer(alone["A"]["on"], writer["A"], opts.generations), "off": alone["A"]["off"]}
        b = {"on": with_writer(alone["B"]["on"], writer["B"], opts.generations), "off": alone["B"]["off"]}
        ab, ab_low, ab_high = paired_ratio(*balanced(a["on"], a["off"]))
        aa, aa_low, aa_high = paired_ratio(*balanced(b["on"], b["off"]))
        verdict = "OK" if ab <= GOAL_CPU_RATIO else "ABOVE GOAL"
        print(
            f"  {route:>7}: A with the hook {statistics.median(a['on']):.0f} µs, without"
            f" {statistics.median(a['off']):.0f} µs; on/off A {ab:.4f} ({ab_low:.4f} .. {ab_high:.4f}) beside the"
            f" control B {aa:.4f} ({aa_low:.4f} .. {aa_high:.4f}); goal <= {GOAL_CPU_RATIO} {verdict}"
        )
        print_sets(
            set_paired_ratios(*balanced(a["on"], a["off"]), opts.generations),
            set_paired_ratios(*balanced(b["on"], b["off"]), opts.generations),
            ("set by set", "A", "B", "the control's"),
        )
        a_ratio, _low, _high = paired_ratio(*balanced(alone["A"]["on"], alone["A"]["off"]))
        b_ratio, _low, _high = paired_ratio(*balanced(alone["B"]["on"], alone["B"]["off"]))
        print(f"  {'':>7}  {METERS[opts.mode].alone} alone: on/off A {a_ratio:.4f}, B {b_ratio:.4f}")
        static, _low, _high = paired_ratio(a["off"], b["off"])
        print(
            f"  {'':>7}  the addon with its hook off against no addon, two processes (each with its own bias:"
            f" the default method's A/A shows how much): {static:.4f}"
        )
    print(
        "  the writer's CPU (it writes the records), charged to each request with the hook: A"
        f" {statistics.mean(writer['A']):.1f} µs (B has none: {statistics.mean(writer['B']):.1f} µs)"
    )


FAR_OFF = 1.5


def far_off_rounds(per_label):
    """Per server, how many rounds cost over ``FAR_OFF`` times its median round, and the costliest."""
    shown = []
    for label, values in per_label.items():
        median = statistics.median(values)
        far = [value for value in values if value > FAR_OFF * median]
        shown.append(f"{label} {len(far)}" + (f" (up to {max(far):.0f} µs)" if far else ""))
    return ", ".join(shown)


def set_ratios(with_values, without_values, sets):
    """The ratio of the two servers' median rounds in each of ``sets`` sets of fresh servers (the
    rounds of a set are adjacent): how far one process's bias (its memory's physical placement,
    which no seed fixes) moves a set."""
    per_set = max(1, len(with_values) // sets)
    return [
        statistics.median(with_values[start : start + per_set])
        / statistics.median(without_values[start : start + per_set])
        for start in range(0, len(with_values), per_set)
    ]


def set_paired_ratios(with_values, without_values, sets):
    """``paired_ratio``'s median in each of ``sets`` sets (adjacent values): the statistic the
    switched run reports, set by set. Two processes' sets differ by their medians (each
    process's own bias, ``set_ratios``); one process's differ only by the pairs' noise."""
    per_set = max(2, len(with_values) // sets)
    return [
        paired_ratio(with_values[start : start + per_set], without_values[start : start + per_set])[0]
        for start in range(0, len(with_values), per_set)
    ]


def print_sets(ab_sets, aa_sets, names):
    """The ratios of each set of fresh servers, and the resolution their control's spread gives.
    ``names``: the line's, the ratio's, its control's, and the control's in the resolution."""
    title, ab_name, aa_name, control = names
    print(
        f"  {'':>7}  {title}: {ab_name} {min(ab_sets):.4f} .. {max(ab_sets):.4f},"
        f" {aa_name} {min(aa_sets):.4f} .. {max(aa_sets):.4f}"
    )
    if len(aa_sets) > 1:
        # Sets are independent: their control's spread is the run's own standard error.
        sigma = statistics.stdev(aa_sets)
        error = sigma / len(aa_sets) ** 0.5
        print(
            f"  {'':>7}  the run's resolution: {control} set by set sigma {sigma:.4f},"
            f" so +/- {2 * error:.4f} (2 standard errors over {len(aa_sets)} sets)"
        )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=60, help="interleaved rounds per server and route")
    parser.add_argument("--requests", type=int, default=40, help="sequential requests per round")
    parser.add_argument("--generations", type=int, default=4, help="sets of freshly started servers")
    parser.add_argument(
        "--no-steady",
        dest="steady",
        action="store_false",
        help="servers with randomized memory layouts and hash seeds (the A/A control strays more)",
    )
    parser.add_argument(
        "--mode",
        choices=sorted(METERS),
        default="prefork",
        help="servers with one HTTP worker (prefork) or none (threaded: a thread per request)",
    )
    parser.add_argument(
        "--switch",
        action="store_true",
        help="the hook turned off and on in the same process, instead of servers with and without the addon",
    )
    parser.add_argument(
        "--floor",
        action="store_true",
        help="with --switch: the least hook that reads the request log's fields (hook_switch.floor_hook) in"
        " place of the addon's",
    )
    parser.add_argument("--api", action="store_true", help="also time the real API on a 16-worker server")
    parser.add_argument("--skip-servers", action="store_true", help="only the in-process measurements")
    parser.add_argument("--db-on", help="existing database with worker_inspector installed")
    parser.add_argument("--db-off", help="existing database without it (web installed)")
    opts = parser.parse_args()

    anonymous, with_user, log_share, _thread_time, _syscall = bookkeeping_costs()
    print(
        f"per-request bookkeeping through the WSGI hook, median: {anonymous:.2f} µs; with a database and user"
        f" {with_user:.2f} µs"
    )
    print(f"  of which the request log's record {log_share:.2f} µs")
    points, costs = read_cost_ms()
    (median, best, size), (plain, _plain_best, _plain_size) = costs.values()
    verdict = "OK" if median < GOAL_READ_MS else "ABOVE GOAL"
    print(
        f"24 h of history, 16 workers ({points} points x 21 processes, {EXITS_CAPACITY} exits):"
        f" read + JSON {median:.1f} ms median (best {best:.1f} ms), {size / 1e6:.1f} MB"
        f" (goal < {GOAL_READ_MS:.0f} ms) {verdict}; with the standard library's json {plain:.1f} ms"
        f" ({'orjson' if jsonout.orjson else 'json'} / json: {median / plain:.2f})"
    )
    look, point = sampler_cost_ms()
    share = (look + point / 10) / 1000 * 100
    print(
        f"sampler, 16 busy workers: {look:.2f} ms per second (board, backlog), {point:.1f} ms per point"
        f" -> {share:.2f}% of one core at the default 10 s interval, in the one elected process"
    )
    if opts.skip_servers:
        return 0
    available, reason = odoo_available()
    if not available:
        print(f"real servers not measured: {reason}")
        return 1
    with databases(opts) as (db_on, db_off):
        if opts.api:
            size, median, best = api_read_cost(db_on)
            print(
                f"  through the API of a real 16-worker server: {median:.1f} ms median"
                f" (best {best:.1f} ms), {size / 1e6:.1f} MB"
            )
        opts.steady = opts.steady and steady_available()
        if opts.switch:
            if opts.floor:  # inherited by the servers' processes (``hook_switch.FLOOR``)
                os.environ["WI_HOOK_FLOOR"] = "1"
                print("'on' below is hook_switch.floor_hook, not the addon's hook (off throughout):")
            print_switch_rounds(opts, *switch_rounds(opts, db_on, db_off))
            return 0
        results, alone, parts = cpu_rounds(opts, db_on, db_off)
    layout = "each set laid out alike (ASLR off, one hash seed per set)" if opts.steady else "randomized memory layouts"
    print(
        f"{METERS[opts.mode].measured} CPU per request (schedstat), {opts.rounds} interleaved rounds of {opts.requests}"
        f" requests on {opts.generations} sets of fresh servers, {layout}:"
    )
    for route, per_label in results.items():
        medians = {label: statistics.median(values) for label, values in per_label.items()}
        ab, ab_low, ab_high = paired_ratio(per_label["A"], per_label["B1"])
        aa, aa_low, aa_high = paired_ratio(per_label["B2"], per_label["B1"])
        totals = {label: sum(values) for label, values in per_label.items()}
        verdict = "OK" if ab <= GOAL_CPU_RATIO else "ABOVE GOAL"
        print(
            f"  {route:>7}: A (addon) {medians['A']:.0f} µs, B1 {medians['B1']:.0f} µs, B2 {medians['B2']:.0f} µs;"
            f" A/B1 {ab:.4f} ({ab_low:.4f} .. {ab_high:.4f}) beside A/A control B2/B1 {aa:.4f}"
            f" ({aa_low:.4f} .. {aa_high:.4f}); goal A/B <= {GOAL_CPU_RATIO} {verdict}"
        )
        print(
            f"  {'':>7}  over all rounds: A/B1 {totals['A'] / totals['B1']:.4f}"
            f" beside A/A B2/B1 {totals['B2'] / totals['B1']:.4f}"
        )
        # The means above move with a few rounds far off the median, which the medians ignore.
        print(f"  {'':>7}  rounds far off (over {FAR_OFF}x their server's median): {far_off_rounds(per_label)}")
        print_sets(
            set_ratios(per_label["A"], per_label["B1"], opts.generations),
            set_ratios(per_label["B2"], per_label["B1"], opts.generations),
            ("set by set (each process's own bias)", "A/B1", "A/A", "A/A"),
        )
        ab, _low, _high = paired_ratio(alone[route]["A"], alone[route]["B1"])
        aa, _low, _high = paired_ratio(alone[route]["B2"], alone[route]["B1"])
        print(f"  {'':>7}  {METERS[opts.mode].alone} alone: A/B1 {ab:.4f} beside A/A {aa:.4f}")
    rest = {label: statistics.mean(part[0] for part in values) for label, values in parts.items()}
    background = {label: statistics.mean(part[1] for part in values) for label, values in parts.items()}
    print(
        "  each round: its serving thread's CPU plus the other threads' over its set (the writer's,"
        " which writes every request's record; Odoo's main thread) per request: A"
        f" {rest['A']:.1f} µs, B1 {rest['B1']:.1f} µs, B2 {rest['B2']:.1f} µs"
    )
    print(
        f"  not per request: A's sampler and heartbeat threads {background['A']:.0f} µs of CPU per second"
        f" ({background['A'] / 1e4:.3f}% of a core; B1 {background['B1']:.0f}, B2 {background['B2']:.0f})"
    )
    shares = {label: [part[2] for part in values if part[2] is not None] for label, values in parts.items()}
    mode = huge_pages_mode()
    print(
        f"  memory: transparent huge pages {mode or 'unknown'}; the serving workers' anonymous memory in huge"
        " pages: " + ", ".join(f"{label} {statistics.mean(v):.0%}" for label, v in shares.items() if v)
    )
    if mode != "always":
        print(
            "  (with transparent huge pages 'always', each process's own bias halves: see README, Tests;"
            f" as root: echo always > {THP_ENABLED})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
