"""The addon's per-request hooks measured inside real Odoo requests, in one process.

``bench_activity`` times the bookkeeping in a tight loop, where its code and
data stay in the CPU's caches: 20 to 25 µs. Between two hooks of a real
request Odoo runs milliseconds of its own code, and every hook then runs cold:
each system call, checksum and Python call costs several times more. This
benchmark loads a real registry and serves real requests through Odoo's WSGI
application (``odoo.http.root``, no socket) in this process, and prints:

1. in place: the WSGI hook's whole cost per request on the serving thread
   (its frame, the request's begin and end; requests come with werkzeug's server's
   ``start_response``, as Odoo serves them;
   the time around Odoo's application less the time inside it, against the
   same two timers without the hook), median over batches, and the writer's
   per request, beside the request's thread CPU time;
2. on/off: the process's CPU time per request (the writer's thread included)
   with the hooks installed and with Odoo's own functions put back, in
   interleaved rounds in this one process (no process bias), with the A/A
   control (off against off) beside it;
3. side by side in alternate batches, the addon's design (the request path
   only keeps the request in memory, and the process's one writer,
   ``Recorder.flush``, writes the threads' records and appends the request log
   for all the requests that finished since its last turn: its cost per
   request is printed beside the hooks') against every change written at
   once inside the hooks (the previous design).

Run it with the Python of an Odoo virtual environment:

    /opt/odoo18-venv/bin/python benchmarks/bench_hotpath.py [--db DB] [--rounds 60] [--requests 50]

Without ``--db`` it creates a database with worker_inspector and drops it at the end.
"""

import argparse
import statistics
import sys
import time
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "benchmarks")]

from bench_activity import database, paired_ratio
from bench_history import CALL_KW_BODY
from odoo_harness import addons_path

ENVIRON = {"REMOTE_ADDR": "127.0.0.1"}


def load(db):
    """Odoo's WSGI application with ``db``'s registry loaded (the addon's hooks installed)."""
    import odoo
    from odoo.tools import config

    config.parse_config(
        ["-d", db, "--db-filter", f"^{db}$", "--addons-path", addons_path(), "--log-level", "warn", "--workers", "0"]
    )
    import odoo.http
    from odoo.modules.registry import Registry

    return Registry(db), odoo.http.root


def served_by_werkzeug(app):
    """``app`` called as werkzeug's server calls it, which Odoo serves with: with the
    ``start_response`` of ``WSGIRequestHandler.run_wsgi`` (its code, fresh cells), the one
    whose status the addon's hook reads (``post_load.server_status_cell``); the status
    and headers it got then go to the caller's (the test client's)."""
    import werkzeug.serving

    code, _index = sys.modules["odoo.addons.worker_inspector.post_load"].server_status_cell()

    def served(environ, start_response):
        cells = {name: types.CellType(None) for name in code.co_freevars}
        cells["write"].cell_contents = lambda data: None  # for applications that write: none here
        closure = tuple(cells[name] for name in code.co_freevars)
        body = app(environ, types.FunctionType(code, vars(werkzeug.serving), code.co_name, (None,), closure))
        start_response(cells["status_set"].cell_contents, cells["headers_set"].cell_contents)
        return body

    return served


class Client:
    def __init__(self, app, db):
        from werkzeug.test import Client as WerkzeugClient

        self.client = WerkzeugClient(served_by_werkzeug(app))
        response = self.client.post(
            "/web/session/authenticate",
            json={"jsonrpc": "2.0", "params": {"db": db, "login": "admin", "password": "admin"}},
            environ_overrides=ENVIRON,
        )
        assert "error" not in response.json, response.json

    def run(self, route, count):
        for _ in range(count):
            if route == "call_kw":
                response = self.client.post(
                    "/web/dataset/call_kw/res.users/read",
                    data=CALL_KW_BODY,
                    headers={"Content-Type": "application/json"},
                    environ_overrides=ENVIRON,
                )
                assert "error" not in response.json, response.json
            else:
                response = self.client.get("/web/health", environ_overrides=ENVIRON)
            assert response.status_code == 200, response.status_code


class Hooks:
    """Switch the addon's per-request hooks off (Odoo's own functions back) and on."""

    def __init__(self, registry):
        from odoo.http import Application

        self.application = Application
        self.hooked = Application.__call__
        self.original = self.hooked.__wrapped__

    def set(self, on):
        """``True``: the addon's hook; ``False``: Odoo's own; else the given function."""
        if on is True or on is False:
            on = self.hooked if on else self.original
        self.application.__call__ = on


def in_place(client, hooks, route, batches, count, deferred=True, own_start_response=False):
    """{part: median µs per request}, and the median thread CPU µs per request.

    ``"hook"``: the WSGI hook's whole cost on the serving thread (its frame, the
    request's begin and end): the time around
    Odoo's application minus the time inside it, less the same difference taken
    through the same two timers without the hook, in alternate batches (the
    timers' own cost cancels out). ``deferred``: the addon's design, where the
    request path keeps the request in memory and the process's writer
    (``Recorder.flush``) writes it; ``"writer"`` is the writer's cost per request,
    run after each batch (thread CPU time). Otherwise every change is written at
    once, inside the hook (the previous design). ``own_start_response``: also
    ``"own"``, the hook's cost where the server is not werkzeug's (it passes a
    ``start_response`` of its own), in the same alternation.
    """
    # The package exports the function ``post_load``: the module is in sys.modules.
    post_load = sys.modules["odoo.addons.worker_inspector.post_load"]
    recorder = post_load.RECORDER
    was_deferred, recorder._deferred = recorder._deferred, deferred
    original, clock = hooks.original, time.perf_counter_ns
    spent = {"around": 0, "inside": 0}

    def timed(application, key):
        def call(app, environ, start_response):
            start = clock()
            try:
                return application(app, environ, start_response)
            finally:
                spent[key] += clock() - start

        return call

    inside = timed(original, "inside")
    variants = {"hooked": timed(recorder.wsgi(inside), "around"), "bare": timed(inside, "around")}
    samples = {"hook": [], "writer": []}
    if own_start_response:
        # The hook as it runs under another server than werkzeug's: with a ``start_response``
        # of its own (``Slot.record_status``), whose records the writer then writes too.
        cell, recorder._status_cell = recorder._status_cell, (None, 0)
        try:
            variants["own"] = timed(recorder.wsgi(inside), "around")
        finally:
            recorder._status_cell = cell
        samples["own"] = []
    cpu = []
    try:
        for variant in variants.values():
            hooks.set(variant)
            client.run(route, count)
        recorder.flush()
        for _ in range(batches):
            margins = {}
            for label, variant in variants.items():
                hooks.set(variant)
                spent.update(around=0, inside=0)
                start = time.thread_time_ns()
                client.run(route, count)
                if label == "bare":
                    cpu.append((time.thread_time_ns() - start) / count / 1000)
                margins[label] = (spent["around"] - spent["inside"]) / count / 1000
                if label == "hooked" and deferred:
                    start = time.thread_time_ns()
                    written = recorder.flush()
                    samples["writer"].append((time.thread_time_ns() - start) / max(written, 1) / 1000)
            samples["hook"].append(margins["hooked"] - margins["bare"])
            if own_start_response:
                samples["own"].append(margins["own"] - margins["bare"])
                recorder.flush()
    finally:
        recorder._deferred = was_deferred
        hooks.set(True)
    return {label: statistics.median(values) for label, values in samples.items() if values}, statistics.median(cpu)


def on_off(client, hooks, route, rounds, count):
    """CPU µs per request in interleaved rounds: hooks on, off, off again. The process's CPU
    time, all threads: the writer (the inspector thread) does its part of the work there."""
    labels = ("on", "off", "off2")
    results = {label: [] for label in labels}
    for label in labels:
        hooks.set(label == "on")
        client.run(route, count)
    for round_ in range(rounds):
        order = labels[round_ % 3 :] + labels[: round_ % 3]
        for label in order:
            hooks.set(label == "on")
            start = time.process_time_ns()
            client.run(route, count)
            results[label].append((time.process_time_ns() - start) / count / 1000)
    hooks.set(True)
    return results


def side_by_side(client, hooks, route, turns, count):
    """Written at once inside the hooks against deferred to the writer, alternate batches of ``count``."""
    micros = {"immediate": [], "deferred": []}
    shares = {"immediate": [], "deferred": []}
    parts_seen = {}
    for _turn in range(turns):
        for label, values in micros.items():
            parts, cpu = in_place(client, hooks, route, 3, count, deferred=label == "deferred")
            values.append(sum(parts.values()))
            shares[label].append(values[-1] / cpu * 100)
            if label == "deferred":
                for hook, value in parts.items():
                    parts_seen.setdefault(hook, []).append(value)
    immediate, deferred = statistics.median(micros["immediate"]), statistics.median(micros["deferred"])
    shown = ", ".join(f"{hook} {statistics.median(values):.1f}" for hook, values in parts_seen.items())
    return (
        f"side by side: written at once {immediate:.1f} µs ({statistics.median(shares['immediate']):.2f}%),"
        f" deferred {deferred:.1f} µs ({shown}; {statistics.median(shares['deferred']):.2f}%):"
        f" {immediate / deferred:.1f}x less per request"
    )


def measure(db, opts):
    """Every measurement, in this process, on ``db``."""
    registry, app = load(db)
    client = Client(app, db)
    hooks = Hooks(registry)
    for route in ("health", "call_kw"):
        parts, cpu = in_place(client, hooks, route, max(opts.rounds // 2, 10), opts.requests, own_start_response=True)
        own = parts.pop("own")
        total = sum(parts.values())
        shown = ", ".join(f"{label} {value:.1f}" for label, value in parts.items())
        print(
            f"{route:>7}: hooks and writer in place {total:.1f} µs per request ({shown}) of {cpu:.0f} µs thread CPU"
            f" = {total / cpu * 100:.2f}%; the hook with a start_response of its own (not werkzeug's server)"
            f" {own:.1f} µs"
        )
        print(f"{'':>7}  {side_by_side(client, hooks, route, max(opts.rounds // 6, 3), opts.requests)}")
        results = on_off(client, hooks, route, opts.rounds, opts.requests)
        medians = {label: statistics.median(values) for label, values in results.items()}
        on, on_low, on_high = paired_ratio(results["on"], results["off"])
        aa, aa_low, aa_high = paired_ratio(results["off2"], results["off"])
        print(
            f"{'':>7}  on/off: on {medians['on']:.0f} µs, off {medians['off']:.0f} µs,"
            f" off2 {medians['off2']:.0f} µs;"
            f" on/off {on:.4f} ({on_low:.4f} .. {on_high:.4f}) beside A/A off2/off {aa:.4f}"
            f" ({aa_low:.4f} .. {aa_high:.4f})"
        )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", help="existing database with worker_inspector installed")
    parser.add_argument("--rounds", type=int, default=60, help="interleaved on/off rounds per route")
    parser.add_argument("--requests", type=int, default=50, help="requests per round or batch")
    opts = parser.parse_args()
    with database(opts.db, "wia_bench_hot", ["worker_inspector"], installed=True) as db:
        try:
            measure(db, opts)
        finally:
            # The in-process registry's connections, before the database may be dropped.
            from odoo.sql_db import close_all

            close_all()
    return 0


if __name__ == "__main__":
    sys.exit(main())
