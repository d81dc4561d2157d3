# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""Odoo's side of the history (``engine.history``, ``engine.sampler``).

Where each exit cause is decided in Odoo 17/18/19 (``odoo/service/server.py``)
and where it is recorded:

- ``Worker.check_limits`` (in the worker, between requests) ends the worker
  for ``limit_request``, ``limit_memory_soft``, a changed parent and, from 18,
  ``limit_time_worker_cron``, by setting ``alive = False``; only SIGINT
  (``signal_handler``) does that otherwise. So when the worker's loop ends
  (``_runloop``, wrapped here) and no SIGINT came while it was alive,
  ``check_limits`` ended it: the cause is noted from the same facts (nothing
  has changed them since: no request runs after the check), and recorded when
  the worker exits. ``check_limits`` itself is not wrapped: Odoo calls it
  after every request, on the request path.
- ``limit_time_cpu``: ``check_limits`` sets ``RLIMIT_CPU``; the kernel sends
  SIGXCPU, whose handler raises in the worker's main thread and ``run`` exits.
  At exit, CPU used ≥ the soft ``RLIMIT_CPU`` says so.
- ``limit_memory_hard``: ``RLIMIT_AS`` makes an allocation fail with
  MemoryError, usually inside a request, where the dispatcher's
  ``handle_error`` sees it (wrapped here); the worker then ends on the soft
  limit it is above.
- SIGINT (``Worker.signal_handler``: ``alive = False``) comes from this
  product's recycle (an intent is written first) or from the master stopping
  its workers (a reload on SIGHUP, a module update from the UI, a shutdown).
- An exception that escapes ``_runloop``: Odoo logs it and ends the loop's thread
  (``sys.exit(1)`` there), and the worker exits cleanly, ``alive`` still true. The
  wrapped loop notes the exception; in a worker that imported the addon after its
  loop began, ``alive`` says so and a filter on Odoo's log record gives its text.
- ``limit_time_real``: the master's ``process_timeout`` SIGKILLs the worker,
  which cannot say anything. A master that imported the addon (``-d`` with it
  installed, or ``--load``) notes the kill (wrapped ``process_timeout``) and
  reads the wait status of every worker it is about to reap (wrapped
  ``process_zombie``): exact causes. Otherwise the sampler finds the board
  file the worker left and infers the cause from what the record shows.
- Anything else that kills it (SIGTERM, OOM killer, a segfault) leaves the
  board file too: ``crashed`` with the signal (from the master), or
  ``recycled`` for a forced recycle.

A worker records its own exit in its ``atexit`` (the activity recorder's
close), before its board file is deleted. The patches apply to a worker
whenever the addon is imported in it: the wrapped methods are looked up on
each call.
"""

import logging
import os
import resource
import signal
import sys
import threading
import time

import odoo
from odoo.service import server as odoo_server
from odoo.tools import config

from .. import engine
from ..engine import board as board_mod
from ..engine.config import effective_config
from ..engine.identity import ticks_to_epoch
from ..engine.sampler import (
    Sampler,
    classify_exit,
    cpu_limit_reached,
    doing_of,
    own_memory_peaks,
)
from ..post_load import RECORDER, current_server

_logger = logging.getLogger(__name__)


class _State:
    """What this process knows about its own end (reset in a forked child)."""

    def __init__(self):
        self.worker = None
        # The worker was found after its loop began (``on_board_open``), its hooks unbound.
        self.late = False
        self.decided = None
        # SIGINT came while the worker was alive: it, not check_limits, ended the loop.
        self.signalled = False
        self.memory_error = None
        self.exception = None
        self.cpu_signalled = False
        self.sampler = None
        self.restart_cause = None
        # When this process image began (a threaded server re-executes itself under the same pid).
        self.started_at = time.time()


STATE = _State()
os.register_at_fork(after_in_child=lambda: _after_fork())


def _after_fork():
    MASTER.after_fork()
    sampler = STATE.sampler
    STATE.__init__()
    if sampler is None:
        return
    if sampler.pid == os.getpid():
        # Started in this child already, by the recorder's own fork handler.
        STATE.sampler = sampler
    else:
        sampler.after_fork()


def _own_cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _vms():
    return odoo_server.memory_info(odoo_server.psutil.Process(os.getpid()))


def _decide(worker):
    """Why Odoo's ``check_limits`` just ended ``worker``, in Odoo's words."""
    soft = config["limit_memory_soft"]
    vms = _vms()
    facts = {
        "vms": vms,
        "limit_memory_soft": soft,
        "requests": worker.request_count,
        "limit_request": worker.request_max,
    }
    if worker.ppid != os.getppid():
        facts["parent_changed"] = True
        return classify_exit(facts)
    if (soft and vms > soft) or worker.request_count >= worker.request_max:
        return classify_exit(facts)
    max_age = config.get("limit_time_worker_cron") or 0
    alive_since = getattr(worker, "alive_time", None)  # WorkerCron, 18+
    if max_age > 0 and alive_since is not None and time.monotonic() - alive_since > max_age:
        # A planned recycle by a configured limit, as limit_request is for HTTP workers.
        return "limit_request", f"cron worker max age reached (limit_time_worker_cron {max_age} s)"
    return None


def _note_loop_end(worker):
    """The worker's loop ended: unless SIGINT ended it (a recycle, a reload, a stop),
    ``check_limits`` did, and why is decided now."""
    if STATE.signalled or STATE.decided is not None:
        return
    try:
        STATE.decided = _decide(worker)
    except Exception:  # the inspector must never break Odoo
        _logger.debug("exit cause not decided", exc_info=True)


def _escaped(exc):
    """How an exception that ended the worker's loop is named in its exit's detail."""
    return f"{type(exc).__name__}: {exc}"


# Odoo's words as an exception escapes a worker's loop (``_runloop``) or ``run`` (17.0 to 19.0).
LOOP_EXCEPTION_LOG = "Exception occurred, exiting"
LOOP_EXCEPTION = f"an exception escaped its loop (in Odoo's log: {LOOP_EXCEPTION_LOG})"


class _LoopExceptionFilter(logging.Filter):
    """On ``odoo.service.server``'s logger of a worker that imported the addon after its loop
    began (its ``_runloop`` unwrapped): notes the exception Odoo logs as it leaves the loop.
    Never drops a record."""

    def filter(self, record):
        exc = record.exc_info[1] if record.exc_info else None
        if exc is not None and LOOP_EXCEPTION_LOG in str(record.msg) and STATE.exception is None:
            STATE.exception = _escaped(exc)
        return True


def _install_worker_hooks():
    worker_cls = odoo_server.Worker
    if getattr(worker_cls._runloop, "_worker_inspector_hook", False):
        return
    runloop = worker_cls._runloop

    def wrapped_runloop(self):
        STATE.worker = self
        try:
            result = runloop(self)
        except SystemExit as exc:
            # Odoo logs the exception and calls sys.exit(1) from its except block.
            if exc.__context__ is not None:
                STATE.exception = _escaped(exc.__context__)
            raise
        _note_loop_end(self)
        return result

    wrapped_runloop._worker_inspector_hook = True
    worker_cls._runloop = wrapped_runloop
    # Bound when the worker starts, as the next one: SIGINT sets ``alive = False``.
    stop = worker_cls.signal_handler

    def wrapped_stop(self, sig, frame):
        if self.alive:
            STATE.signalled = True
        return stop(self, sig, frame)

    worker_cls.signal_handler = wrapped_stop
    # Bound when the worker starts: applies to workers forked after the addon was imported.
    expired = worker_cls.signal_time_expired_handler

    def wrapped_expired(self, n, stack):
        STATE.cpu_signalled = True
        return expired(self, n, stack)

    worker_cls.signal_time_expired_handler = wrapped_expired


def _install_error_hooks():
    """Note a MemoryError (RLIMIT_AS reached) that a request's dispatcher handles."""
    for cls in list(getattr(odoo.http, "_dispatchers", {}).values()):
        handle_error = cls.__dict__.get("handle_error")
        if handle_error is None or getattr(handle_error, "_worker_inspector_hook", False):
            continue

        def wrapped(self, exc, handle_error=handle_error):
            if isinstance(exc, MemoryError):
                STATE.memory_error = str(exc) or "allocation failed"
            return handle_error(self, exc)

        wrapped._worker_inspector_hook = True
        cls.handle_error = wrapped


def _threaded_cause(srv):
    """Why ``ThreadedServer.run`` asks for a reload: its memory, or a thread over limit_time_real."""
    soft, vms = config["limit_memory_soft"], _vms()
    if soft and vms > soft:
        return classify_exit({"vms": vms, "limit_memory_soft": soft}), None
    threads = [t for t in srv.limits_reached_threads if getattr(t, "start_time", None)]
    if not threads:
        return None, None
    thread = min(threads, key=lambda t: t.start_time)
    elapsed = time.time() - thread.start_time
    detail = f"thread {thread.name} busy {elapsed:.0f} s, limit_time_real {config['limit_time_real']} s"
    return ("time_real", detail), thread.native_id


def _install_threaded_hooks():
    """The threaded server restarts itself (execve, same pid) on its limits or on SIGHUP."""
    threaded = odoo_server.ThreadedServer
    if getattr(threaded.reload, "_worker_inspector_hook", False):
        return
    reload = threaded.reload

    def wrapped_reload(self):
        try:
            STATE.restart_cause = _threaded_cause(self)
        except Exception:  # the inspector must never break Odoo
            _logger.debug("restart cause not decided", exc_info=True)
        return reload(self)

    wrapped_reload._worker_inspector_hook = True
    threaded.reload = wrapped_reload
    reexec = odoo_server._reexec

    def wrapped_reexec(*args, **kwargs):
        try:
            _record_threaded_restart()
        except Exception:
            _logger.warning("The restart of this server was not recorded", exc_info=True)
        return reexec(*args, **kwargs)

    odoo_server._reexec = wrapped_reexec


def _record_threaded_restart():
    sampler, board = STATE.sampler, RECORDER.board
    if sampler is None or board is None or not isinstance(odoo_server.server, odoo_server.ThreadedServer):
        return
    RECORDER.flush()
    now = time.time()
    cause, tid = STATE.restart_cause or (None, None)
    reason, detail = cause or ("reload", "SIGHUP: server reload or module update (the process re-executes itself)")
    requests, records = board_mod.read_process(current_server().pid, (board.pid, board.start)) or (0, [])
    busy = [r for r in records if r["state"] == "busy" and r["kind"] == "http" and (tid is None or r["tid"] == tid)]
    peak_rss, peak_vms = own_memory_peaks()
    sampler.store.add_exit(
        {
            "pid": board.pid,
            "start_ticks": 0,  # the same process restarts: never deduplicated
            "role": "server",
            "started_at": STATE.started_at,
            "ended_at": now,
            "reason": reason,
            "detail": detail,
            "requests": requests,
            "cpu_seconds": _own_cpu_seconds(),
            "peak_rss": peak_rss,
            "peak_vms": peak_vms,
            "doing": doing_of(min(busy, key=lambda r: r["since"]), now) if busy else None,
        }
    )


class _Master:
    """The prefork master's part, when it imported the addon (``--load`` or a preloaded ``-d``).

    Its sampler records the exits it reaps and, started before the first
    worker is forked, wins the election for good: the series are sampled by
    the idle master, never recycled, instead of in a serving worker (whose
    request would wait for the GIL during each tick).
    """

    def __init__(self):
        self.sampler = None
        self.sampling = False  # its sampler's thread runs
        self.timed_out = {}  # pid: (seconds without heartbeat, limit), from process_timeout

    def recorder(self, srv):
        if self.sampler is None:
            self.sampler = Sampler(srv.pid, "prefork", effective_config(config.options), listen_socket=_listen_socket)
        return self.sampler

    def after_fork(self):
        """In a worker: the master's election lock and thread are not its own."""
        if self.sampler is not None:
            self.sampler.after_fork()
        self.__init__()


MASTER = _Master()
# How long the master's loop may wait for the history file to record an exit; its
# sampler's thread records it otherwise (within a tick), never the loop that kills.
MASTER_WAIT = 0.02


def _signal_name(number):
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _master_collect(srv):
    """Exits of workers the master is about to reap: exact causes from their wait status."""
    # Odoo 19 forgets a worker as soon as it SIGKILLs it: the timed-out ones are watched too.
    for pid in set(srv.workers) | set(MASTER.timed_out):
        try:
            info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            MASTER.timed_out.pop(pid, None)
            continue
        if info is None:
            continue
        timed_out = MASTER.timed_out.pop(pid, None)
        sampler = MASTER.recorder(srv)
        # A clean exit deleted its file after recording itself: only the others are left.
        for key in board_mod.dead_boards(srv.pid):
            if key.pid != pid:
                continue
            if timed_out:
                seconds, limit = timed_out
                detail = f"killed by the master after {seconds:.0f} s without a heartbeat (limit_time_real {limit} s)"
                cause = ("time_real", detail)
            elif info.si_code in (os.CLD_KILLED, os.CLD_DUMPED):
                cause = ("crashed", f"killed by {_signal_name(info.si_status)}")
            else:
                cause = ("crashed", f"exited with status {info.si_status} without recording its exit")
            sampler.record_dead(key, time.time(), cause, timeout=MASTER_WAIT)


def _install_master_hooks():
    """``limit_time_real`` is decided in ``process_timeout``; exits are reaped in ``process_zombie``."""
    prefork = odoo_server.PreforkServer
    if getattr(prefork.process_zombie, "_worker_inspector_hook", False):
        return
    process_timeout, process_zombie = prefork.process_timeout, prefork.process_zombie

    def wrapped_process_timeout(self):
        now = time.time()
        for pid, worker in list(self.workers.items()):
            if worker.watchdog_timeout is not None and now - worker.watchdog_time >= worker.watchdog_timeout:
                MASTER.timed_out[pid] = (now - worker.watchdog_time, worker.watchdog_timeout)
        return process_timeout(self)

    def wrapped_process_zombie(self):
        try:
            _start_master_sampler(self)
            _master_collect(self)
        except Exception:  # the inspector must never break Odoo
            _logger.debug("exits not collected", exc_info=True)
        return process_zombie(self)

    wrapped_process_zombie._worker_inspector_hook = True
    prefork.process_timeout = wrapped_process_timeout
    prefork.process_zombie = wrapped_process_zombie


def _start_master_sampler(srv):
    """Sample from the master: at import in a master that preloads the addon, before its first
    fork; else (``--load``: imported before the server exists) from its loop, and it is
    elected when the worker elected meanwhile is gone."""
    if MASTER.sampling or not isinstance(srv, odoo_server.PreforkServer) or srv.pid != os.getpid():
        return
    MASTER.sampling = True
    try:
        MASTER.recorder(srv).start()
    except Exception:  # the workers' samplers elect one of them instead
        _logger.warning("The master does not sample the history", exc_info=True)


_install_worker_hooks()
_install_error_hooks()
_install_threaded_hooks()
_install_master_hooks()


def _listen_socket():
    srv = odoo_server.server
    sock = getattr(srv, "socket", None)  # prefork
    if sock is None:
        sock = getattr(getattr(srv, "httpd", None), "socket", None)  # threaded
    return sock


# In a master that preloads the addon, before it forks its first worker.
_start_master_sampler(odoo_server.server)


def _running_worker():
    """The ``Worker`` of this process, found on its main thread's stack, which waits in
    ``Worker.run`` for the loop's thread; None outside a prefork worker."""
    frame = sys._current_frames().get(threading.main_thread().ident)
    while frame is not None:
        if frame.f_code is _WORKER_RUN:
            worker = frame.f_locals.get("self")
            return worker if isinstance(worker, odoo_server.Worker) else None
        frame = frame.f_back
    return None


_WORKER_RUN = odoo_server.Worker.run.__code__


def on_board_open(board):
    """Start this process's sampler (it elects one per server)."""
    server = current_server()
    if STATE.worker is None and server.pid != os.getpid():
        # A worker that imports the addon at its first request (its master did not load it)
        # runs a loop started unwrapped: its exit is still its own to record (``on_board_close``).
        try:
            STATE.worker = _running_worker()
            STATE.late = STATE.worker is not None
            if STATE.late:
                logging.getLogger(odoo_server.__name__).addFilter(_LoopExceptionFilter())
        except Exception:  # the inspector must never break Odoo
            _logger.debug("worker not found", exc_info=True)
    STATE.sampler = Sampler(
        server.pid, server.mode, effective_config(config.options), board.dir, listen_socket=_listen_socket
    ).start()


def history_store():
    """This process's handle on the server's history, or None when not recording."""
    return STATE.sampler.store if STATE.sampler is not None else None


def recording_store():
    """``history_store()`` for the API, in a request: a worker that imported the addon during
    this very request (its master did not load it) has recorded nothing yet, and starts now
    (its board opened, its sampler started) rather than at its next request. Never in a
    prefork master, which records nothing of its own (its sampler is ``MASTER``'s)."""
    if STATE.sampler is None:
        server = current_server()
        if server.mode != engine.MODE_PREFORK or server.pid != os.getpid():
            RECORDER.slot()
    return history_store()


def harvest():
    """Record the exits of killed workers now (the API is about to read the board)."""
    if STATE.sampler is not None:
        try:
            STATE.sampler.harvest()
        except OSError:  # an untrusted or vanished board directory: the snapshot says why
            _logger.debug("exits not harvested", exc_info=True)


def on_board_close(board):
    """Record the exit of this prefork worker, before its board file goes."""
    worker, sampler = STATE.worker, STATE.sampler
    if worker is None or sampler is None:
        return  # not a prefork worker (the threaded server, the master)
    now = time.time()
    if STATE.late:
        # Its loop and signal handlers were bound before the addon was imported: neither the
        # loop's end nor a SIGINT was seen. Only SIGINT and ``check_limits`` set ``alive =
        # False``: still alive, an exception ended the loop (its text, when Odoo logged it,
        # noted by ``_LoopExceptionFilter``). Else the limits it reached are read now, from the
        # same facts (a request ran since the check only if it ended for another reason).
        if worker.alive:
            STATE.exception = STATE.exception or LOOP_EXCEPTION
        else:
            _note_loop_end(worker)
    soft, hard = config["limit_memory_soft"], config["limit_memory_hard"]
    intent = sampler.store.intent(board.pid, board.start)
    facts = {
        "decided": STATE.decided,
        "cpu_limit": cpu_limit_reached(STATE.cpu_signalled),
        "limit_time_cpu": config["limit_time_cpu"],
        "memory_error": STATE.memory_error,
        "vms": _vms(),
        "limit_memory_soft": soft,
        "limit_memory_hard": hard,
        "requests": worker.request_count,
        "limit_request": worker.request_max,
        "exception": STATE.exception,
        "intent": intent,
    }
    reason, detail = classify_exit(facts)
    if intent and reason in ("limit_request", "memory_soft"):
        # Graceful recycle of a worker that also reached a limit: the admin's call came first.
        reason, detail = classify_exit({"intent": intent})
    doing = RECORDER.last_doing(now)
    if doing is not None:
        doing.pop("busy")
    peak_rss, peak_vms = own_memory_peaks()
    role = "cron" if isinstance(worker, odoo_server.WorkerCron) else "http"
    sampler.store.add_exit(
        {
            "pid": board.pid,
            "start_ticks": board.start,
            "role": role,
            "started_at": ticks_to_epoch(board.start),
            "ended_at": now,
            "reason": reason,
            "detail": detail,
            "requests": worker.request_count,
            "cpu_seconds": _own_cpu_seconds(),
            "peak_rss": peak_rss,
            "peak_vms": peak_vms,
            "doing": doing,
        }
    )
