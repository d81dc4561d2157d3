# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
import contextlib
import inspect
import json
import mmap
import os
import time

import psutil
import psycopg2

from odoo import http
from odoo.http import request

from ..models.worker_inspector_test import TOKEN_PARAM, held

# What ``break_loop`` raises in the worker's loop.
LOOP_BROKEN = "worker_inspector_test broke the loop"
# Memory a test made this worker hold: it stays until the worker exits.
_HELD_MEMORY = []
_CHUNK = 32 << 20


def _sleep_cron():
    cron = request.env.ref("worker_inspector_test.ir_cron_sleep").sudo()
    if "numbercall" in cron._fields:
        # 17.0 runs a job numbercall times (default once), then archives it.
        cron.write({"numbercall": -1, "active": True})
    return cron


def _json(payload):
    return request.make_response(json.dumps(payload), headers=[("Content-Type", "application/json")])


def burn_cpu():
    """About 10 ms of pure Python work: what a profile must find."""
    total = 0
    for i in range(100000):
        total += i % 7
    return 1 if total else 0


# Thread CPU (ns) and calls of each timed part of this process's writer (``writer_parts``).
_WRITER_PARTS = {}


def _timed(part, function):
    """``function`` adding its thread CPU time and one call to ``part``."""

    def timed(*args, **kwargs):
        began = time.thread_time_ns()
        try:
            return function(*args, **kwargs)
        finally:
            spent = _WRITER_PARTS.setdefault(part, [0, 0])
            spent[0] += time.thread_time_ns() - began
            spent[1] += 1

    return timed


class WorkerInspectorTestController(http.Controller):
    @http.route("/worker_inspector_test/busy", type="http", auth="user", methods=["GET"])
    def busy(self, token):
        """Keep this worker busy (not in SQL) while the test holds ``token``."""
        started = time.monotonic()
        while held(token, started):
            time.sleep(0.05)
        return _json({"held": round(time.monotonic() - started, 3)})

    @http.route("/worker_inspector_test/burn_held", type="http", auth="user", methods=["GET"])
    def burn_held(self, token):
        """Burn CPU in Python (``burn_cpu``) while the test holds ``token``."""
        started = time.monotonic()
        rounds = 0
        while held(token, started):
            # Checking the token (a system call) only every ~0.2 s: CPU, not I/O.
            for _i in range(20):
                rounds += burn_cpu()
        return _json({"rounds": rounds})

    @http.route("/worker_inspector_test/pg_sleep", type="http", auth="user", methods=["GET"])
    def pg_sleep(self, token):
        """Keep this worker waiting in PostgreSQL while the test holds ``token``."""
        started = time.monotonic()
        while held(token, started):
            request.env.cr.execute("SELECT pg_sleep(0.5)")
        return _json({"held": round(time.monotonic() - started, 3)})

    @http.route("/worker_inspector_test/pg_sleep_once", type="http", auth="user", methods=["GET"])
    def pg_sleep_once(self, seconds="60"):
        """One long query (``pg_sleep``), for a test to cancel."""
        request.env.cr.execute("SELECT pg_sleep(%s)", (float(seconds),))
        return _json({"slept": float(seconds)})

    @http.route("/worker_inspector_test/cron/arm", type="http", auth="user", methods=["POST"], csrf=False)
    def arm_cron(self, token):
        """Make the sleeping scheduled action sleep, when it runs, while the test holds ``token``."""
        request.env["ir.config_parameter"].sudo().set_param(TOKEN_PARAM, token)
        return _json({"cron_id": _sleep_cron().id})

    @http.route("/worker_inspector_test/cron/trigger", type="http", auth="user", methods=["POST"], csrf=False)
    def trigger_cron(self, token):
        """Run the sleeping scheduled action now; it sleeps while the test holds ``token``."""
        request.env["ir.config_parameter"].sudo().set_param(TOKEN_PARAM, token)
        cron = _sleep_cron()
        cron._trigger()
        return _json({"cron_id": cron.id})

    @http.route("/worker_inspector_test/cron/cancel", type="http", auth="user", methods=["POST"], csrf=False)
    def cancel_cron(self):
        """Forget pending triggers of the sleeping scheduled action."""
        cron = request.env.ref("worker_inspector_test.ir_cron_sleep").sudo()
        request.env["ir.cron.trigger"].sudo().search([("cron_id", "=", cron.id)]).unlink()
        return _json({"cron_id": cron.id})

    @http.route("/worker_inspector_test/apikey", type="http", auth="user", methods=["POST"], csrf=False)
    def apikey(self):
        """An API key of the logged-in user (``rpc`` scope), for Bearer callers."""
        apikeys = request.env["res.users.apikeys"]
        args = [None, "worker_inspector_test"]
        if "expiration_date" in inspect.signature(apikeys._generate).parameters:
            args.append(None)
        return _json({"key": apikeys._generate(*args)})

    @http.route("/worker_inspector_test/grow", type="http", auth="user", methods=["GET"])
    def grow(self, vms, seconds="0", overshoot="0"):
        """Grow this worker's virtual memory past ``vms`` bytes in about ``seconds``, and keep it.

        Only the virtual memory grows (RSS hardly does); it stays held until the worker exits.
        Then, with ``overshoot``, allocate that many bytes more at once: past
        ``limit_memory_hard`` (RLIMIT_AS), that raises MemoryError.
        """
        target, duration = int(vms), float(seconds)
        process = psutil.Process()
        missing = max(target - process.memory_info().vms, 0)
        steps = max(missing // _CHUNK + 1, 1)
        while process.memory_info().vms <= target and len(_HELD_MEMORY) < 256:
            # Mapped, never touched: Odoo's limits check virtual memory, and writing the pages
            # would cost CPU time enough to hit a short limit_time_cpu first on a loaded machine.
            _HELD_MEMORY.append(mmap.mmap(-1, _CHUNK))
            time.sleep(duration / steps)
        if int(overshoot):
            _HELD_MEMORY.append(bytearray(int(overshoot)))
        return _json({"pid": process.pid, "vms": process.memory_info().vms})

    @http.route("/worker_inspector_test/burn", type="http", auth="user", methods=["GET"])
    def burn(self, seconds):
        """Spend ``seconds`` of CPU time in Python (past limit_time_cpu, SIGXCPU ends the worker)."""
        until = time.thread_time() + float(seconds)
        spins = 0
        while time.thread_time() < until:
            spins += sum(range(1000))
        return _json({"spins": spins})

    @http.route("/worker_inspector_test/sleep", type="http", auth="user", methods=["GET"])
    def sleep(self, seconds="1"):
        """Wait ``seconds`` without CPU nor SQL."""
        time.sleep(float(seconds))
        return _json({"slept": float(seconds)})

    @http.route("/worker_inspector_test/fail", type="http", auth="user", methods=["GET"])
    def fail(self):
        """A route that fails: Odoo answers 500."""
        raise ZeroDivisionError("worker_inspector_test fails on purpose")

    @http.route("/worker_inspector_test/break_loop", type="http", auth="user", methods=["POST"], csrf=False)
    def break_loop(self):
        """Make this prefork worker's loop raise at its next turn, after this answer: an
        exception that escapes Odoo's ``_runloop``, which then ends the worker."""
        from odoo.addons.worker_inspector.models.history import _running_worker

        worker = _running_worker()
        if worker is None:
            return request.make_response("not a prefork worker", status=409)
        if worker.request_count + 1 >= worker.request_max:
            # It ends for limit_request anyway, which its exit would rightly say: ask again.
            return request.make_response("too close to limit_request", status=409)

        def check_limits():
            raise RuntimeError(LOOP_BROKEN)

        worker.check_limits = check_limits
        return _json({"pid": os.getpid()})

    @http.route("/worker_inspector_test/writer_parts", type="http", auth="user", methods=["GET"])
    def writer_parts(self, action="read"):
        """Time the parts of this process's writer (``benchmarks/bench_writer.py``): ``start``
        wraps them with thread CPU timers, once; ``read`` returns ``{part: [ns, calls]}``."""
        from odoo.addons.worker_inspector.engine import board
        from odoo.addons.worker_inspector.post_load import RECORDER

        if not request.env.user._is_system():
            return request.make_response("admins only", status=403)
        inspector = RECORDER.inspector
        if action == "start" and inspector is not None and not _WRITER_PARTS:
            _WRITER_PARTS["turn"] = [0, 0]
            inspector._flush = _timed("turn", inspector._flush)
            inspector.watch = _timed("slow-request watch", inspector.watch)
            inspector._may_sleep = _timed("rest check", inspector._may_sleep)
            RECORDER._note_busy = _timed("busy request's context", RECORDER._note_busy)
            RECORDER._log.add_works = _timed("request log (pack, count, write)", RECORDER._log.add_works)
            RECORDER.board.ensure_intact = _timed("file check", RECORDER.board.ensure_intact)
            board.Slot.publish = _timed("board records", board.Slot.publish)
        return _json({"pid": os.getpid(), "parts": _WRITER_PARTS})


def _simulate_pg_outage():
    """With WI_TEST_PG_OUTAGE set, PostgreSQL "goes away" just as the inspector
    reads pg_stat_activity: the connection it reads on is terminated first."""
    from odoo.addons.worker_inspector.engine import database

    read_pg_sessions = database.read_pg_sessions

    def read_during_outage(cr, *args, **kwargs):
        with contextlib.suppress(psycopg2.Error):
            cr.execute("SELECT pg_terminate_backend(pg_backend_pid())")
        return read_pg_sessions(cr, *args, **kwargs)

    database.read_pg_sessions = read_during_outage


if os.environ.get("WI_TEST_PG_OUTAGE"):
    _simulate_pg_outage()
