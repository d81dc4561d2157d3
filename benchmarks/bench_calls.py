"""What the addon adds to Odoo's request path, counted call by call on real servers.

Two servers, one with the addon (A) and one without (B), count every Python function
and builtin their serving threads call (``tests/call_counter``) over ``--requests``
requests of each route: ``/web/health`` and an authenticated JSON-RPC ``call_kw``.
``--mode prefork``: servers with one HTTP worker, whose work thread serves every
request; ``threaded``: ``--workers=0`` servers, where each connection gets a request
thread of its own, all of them counted (one per request: Werkzeug, Odoo's threaded
server, closes every connection from its 2.1). Counts, not times: two runs print the
same numbers on a quiet or a busy machine, where CPU ratios (``bench_history``) move
by a percent. Printed per request: A's and B's calls, A's calls made by the addon's
code (the WSGI hook), A's calls made by Odoo's code (equal to B's when the addon
changes nothing of Odoo's own work), the calls of A's writer thread (which writes
the records after the requests), and what the serving process holds beside Odoo's
(objects the garbage collector tracks, modules, resident memory).

    python benchmarks/bench_calls.py [--mode prefork|threaded|both] [--requests 200] [--db-on DB] [--db-off DB]
"""

import argparse
import collections
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "benchmarks")]

from bench_activity import databases
from bench_history import Client, http_worker
from call_counting import counting, counting_env, from_files
from odoo_harness import OdooServer, odoo_available

from worker_inspector.engine.classify import HTTP_REQUEST_THREAD
from worker_inspector.engine.stacks import WATCH_INTERVAL

ADDON = f"{os.sep}worker_inspector{os.sep}"
ROUTES = ("health", "call_kw")
# The writer (``stacks.Inspector``'s thread) turns every WATCH_INTERVAL while there is work.
SETTLE = WATCH_INTERVAL + 0.5
WRITER_THREAD = "worker_inspector"
MODES = {
    # The server's --workers, its serving process, the name of its serving threads (Odoo's),
    # and their label.
    "prefork": (1, http_worker, "workthread", "the serving thread of a prefork worker"),
    "threaded": (
        0,
        lambda server: server.pid,
        HTTP_REQUEST_THREAD,
        "the request threads of a threaded server",
    ),
}


def serving_calls(server, serving_process, directory, route, requests):
    """The serving process's ``Counts`` over ``requests`` requests of ``route``."""
    client = Client(server)
    client.run(route, 20)  # warm
    with counting(serving_process, directory) as counts:
        client.run(route, requests)
        time.sleep(SETTLE)  # the writer's turn that writes the last requests' records
    return counts


def resident_mib(pid):
    with open(f"/proc/{pid}/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def serving_threads(counts, name):
    """The calls of the threads named ``name`` or, for a name ending in ``.``, named from it."""
    if not name.endswith("."):
        return counts.thread(name)
    threads = [calls for thread, calls in counts.items() if thread.startswith(name)]
    assert threads, f"no thread named {name}* counted: {sorted(counts)}"
    return sum(threads, collections.Counter())


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=(*MODES, "both"), default="both", help="the servers' mode (default both)")
    parser.add_argument("--requests", type=int, default=200, help="requests of each route counted")
    parser.add_argument("--db-on", help="existing database with worker_inspector installed")
    parser.add_argument("--db-off", help="existing database without it (web installed)")
    opts = parser.parse_args()
    available, reason = odoo_available()
    if not available:
        print(f"not measured: {reason}")
        return 1
    with databases(opts) as (db_on, db_off):
        for mode in MODES if opts.mode == "both" else (opts.mode,):
            count_mode(mode, db_on, db_off, opts.requests)
    return 0


def count_mode(mode, db_on, db_off, n):
    """Count ``n`` requests of each route on a server of ``mode`` with the addon and one without."""
    workers, serving_process, thread_name, serving_label = MODES[mode]
    args = {"workers": workers, "max_cron_threads": 0, "extra_args": ["--log-level", "warn"]}
    calls, held, collected, writer = {}, {}, {}, {}
    with tempfile.TemporaryDirectory() as directory:
        for label, db in (("A", db_on), ("B", db_off)):
            with OdooServer(db, env=counting_env(directory), **args) as server:
                pid = serving_process(server)
                for route in ROUTES:
                    counts = serving_calls(server, pid, directory, route, n)
                    calls[label, route] = serving_threads(counts, thread_name)
                    if label == "A":
                        writer[route] = counts.thread(WRITER_THREAD)
                    collected[label, route] = counts.process["gc_collections"]
                held[label] = dict(counts.process, rss=resident_mib(pid))
    print(f"calls per request on {serving_label} ({n} requests of each route):")
    for route in ROUTES:
        a, b = calls["A", route], calls["B", route]
        addon = from_files(a, ADDON)
        odoo_a = sum(a.values()) - sum(addon.values())
        # Summed, not keyed: one name can be called from several places.
        functions, builtins = collections.Counter(), collections.Counter()
        for c, k in addon.items():
            if c.called:
                builtins[c.called] += k
            else:
                functions[Path(c.file).name, c.function] += k
        print(
            f"  {route:>7}: A {sum(a.values()) / n:.1f}, B {sum(b.values()) / n:.1f};"
            f" A's by the addon {sum(addon.values()) / n:.2f}, by Odoo {odoo_a / n:.1f} (B {sum(b.values()) / n:.1f})"
        )
        listed = (f"{file}:{function} {k / n:.2f}" for (file, function), k in functions.most_common())
        print("           the addon's functions: " + ", ".join(listed))
        print("           their builtins: " + ", ".join(f"{name} {k / n:.2f}" for name, k in builtins.most_common()))
        print(
            f"           A's writer thread: {sum(writer[route].values()) / n:.1f} calls per request"
            f" ({sum(k for c, k in writer[route].items() if not c.called) / n:.1f} Python functions)"
        )
        print(
            "           garbage collections (generations 0, 1, 2) per 1,000 requests:"
            f" A {'/'.join(str(round(c * 1000 / n)) for c in collected['A', route])},"
            f" B {'/'.join(str(round(c * 1000 / n)) for c in collected['B', route])}"
        )
    a, b = held["A"], held["B"]
    print(
        f"  the serving process holds: A {a['gc_objects']} objects tracked by the garbage collector,"
        f" {a['modules']} modules, {a['rss']:.0f} MiB resident; B {b['gc_objects']}, {b['modules']}, {b['rss']:.0f} MiB"
    )


if __name__ == "__main__":
    sys.exit(main())
