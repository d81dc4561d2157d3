"""Recording what every worker is doing: the hot path.

``Recorder`` is what Odoo's hot path calls (a request begins and ends, a user
is authenticated, a scheduled action runs): it writes the calling thread's
record on this process's board (see ``board``) and never raises into Odoo.
Turning boards into the API's fields is ``activity``'s job.
"""

import atexit
import logging
import os
import threading
import time
import weakref

from .board import ProcessBoard, remove_dead_servers
from .requestlog import KIND_CRON, KIND_HTTP, RPC_PREFIXES, RequestLog, rpc_of_path
from .stacks import DEFAULT_SLOW_AFTER, FrameFormatter, Inspector

_logger = logging.getLogger(__name__)

# Records per process: a prefork worker serves requests or runs jobs in one
# thread; the threaded server has a thread per connection and per cron thread.
# (A prefork worker's main thread holds one from its fork, its work thread another.)
PREFORK_SLOTS = 4
THREADED_SLOTS = 256
# A thread idle longer than this (seconds) reads its CPU clock as its next request
# begins: the prefork worker's loop wakes every few seconds while it waits.
CPU_IDLE = 1.0


class Recorder:
    """Records the calling thread's activity on this process's board.

    ``locate`` returns ``(server_pid, slots)`` for this process, or None when
    it must not record (the gevent process). The board is opened on first use
    in each process, so forked workers get their own file without a restart;
    each thread gets its own record, given back when the thread ends. With
    ``report_at_fork``, a process forked after the recorder was created (a
    prefork worker of a master that preloaded the addon) shows idle from its
    first instant instead of nothing until its first request.

    With ``inspect``, each process with a board also runs an inspector thread
    (see ``stacks``): stacks on demand, slow-request stacks, profiles.
    ``frame_roots`` returns the ``(directory, origin)`` pairs frames are
    shown relative to; ``slow_limits`` returns ``(threshold, cap)``: the
    default slow-request threshold and the ceiling no database may raise it
    above (before ``limit_time_real`` kills the request).
    """

    def __init__(
        self,
        locate,
        base=None,
        report_at_fork=False,
        on_open=None,
        on_close=None,
        inspect=False,
        frame_roots=None,
        slow_limits=None,
    ):
        self._locate = locate
        self._base = base
        self._report_at_fork = report_at_fork
        # Called with the board once it is open in a process, and before it is
        # deleted at the process's exit (the history's sampler and exit record).
        self._on_open = on_open
        self._on_close = on_close
        self._last = None
        self._inspect = inspect
        self._frame_roots = frame_roots or (lambda: ())
        self._slow_limits = slow_limits or (lambda: (DEFAULT_SLOW_AFTER, DEFAULT_SLOW_AFTER))
        self.inspector = None
        self._board = None
        self._log = None
        self._disabled = False
        # Why this process records nothing (the board cannot be used), for the API.
        self.problem = None
        self._lock = threading.Lock()
        self._tls = threading.local()
        # Through a weak reference: a dropped recorder leaves no work to forks and exit.
        alive = weakref.ref(self)
        os.register_at_fork(after_in_child=lambda: (recorder := alive()) and recorder._after_fork())
        atexit.register(lambda: (recorder := alive()) and recorder.close())

    @property
    def board(self):
        return self._board

    def _after_fork(self):
        # The child must never write into its parent's file.
        board, self._board = self._board, None
        self._last = None
        inspector, self.inspector = self.inspector, None
        self._disabled = False
        self.problem = None
        self._lock = threading.Lock()
        if inspector is not None:
            inspector.detach()
        if board is not None:
            board.detach()
        log, self._log = self._log, None
        if log is not None:
            log.detach()
        self._tls = threading.local()
        if self._report_at_fork:
            try:
                self.slot()
            except Exception:  # the inspector must never break Odoo
                _logger.debug("no record at fork", exc_info=True)

    def _open(self):
        with self._lock:
            if self._board is None and not self._disabled:
                try:
                    located = self._locate()
                    if located is None:
                        self._disabled = True
                    else:
                        server_pid, slots = located
                        remove_dead_servers(self._base)
                        self._board = ProcessBoard(server_pid, slots, self._base)
                        if self._inspect:
                            self._start_inspector(self._board)
                        try:
                            self._log = RequestLog(server_pid, self._base)
                        except OSError as exc:  # the activity is still recorded
                            self.problem = f"process {os.getpid()} cannot log its requests: {exc}"
                            _logger.warning("Requests are not logged: %s", self.problem)
                except Exception as exc:  # the inspector must never break Odoo
                    self.problem = f"process {os.getpid()} cannot record its activity: {exc}"
                    _logger.warning(
                        "Worker activity is not recorded: %s", self.problem, exc_info=not isinstance(exc, OSError)
                    )
                    self._disabled = True
                if self._board is not None and self._on_open is not None:
                    try:
                        self._on_open(self._board)
                    except Exception:
                        _logger.warning("Worker history is not recorded by this process", exc_info=True)
            return self._board

    def _start_inspector(self, board):
        try:
            threshold, cap = self._slow_limits()
            board.slow_cap = cap
            board.slow_after = min(threshold, cap)
            self.inspector = Inspector(board, FrameFormatter(self._frame_roots()))
        except Exception as exc:  # noqa: BLE001 - the activity is still recorded without it
            _logger.warning("Worker stacks are not available in process %s: %s", os.getpid(), exc)

    def _claim(self):
        if self._disabled:
            return None
        board = self._board or self._open()
        slot = board.claim() if board is not None else None
        self._tls.slot = slot
        return slot

    def slot(self):
        """The calling thread's record (claimed on first use), or None."""
        slot = getattr(self._tls, "slot", None)
        if slot is None or slot.board is not self._board:
            slot = self._claim()
        return slot

    def begin_request(self, path):
        """A request for ``path`` (WSGI ``PATH_INFO``) starts in this thread; returns its record."""
        try:
            slot = self.slot()
            if slot is None:
                return None
            tls = self._tls
            # PATH_INFO holds the raw bytes of the path decoded as latin-1.
            raw = path.encode("latin-1", "replace")
            now = slot.begin_request(raw)
            # What the request log needs at the end: start, path, user, rpc.
            tls.req = [now, raw[:199], path, 0, b"", b"", None]
            if now - getattr(tls, "ended", 0.0) > CPU_IDLE:
                # The thread's CPU clock, read once per request under load: back to back,
                # a request's CPU counts from the end of the previous one (its loop, its parsing).
                tls.cpu = time.thread_time()
            # For the record of this process's exit: what it began last, when, when it ended.
            self._last = [path, None, now, None, None]
            return slot
        except Exception:  # the inspector must never break Odoo
            _logger.debug("begin_request failed", exc_info=True)
            return None

    def end_request(self, slot, status=0):
        """The request of ``slot`` ended with HTTP ``status`` (0: no response)."""
        try:
            cpu, now = time.thread_time(), time.time()
            slot.end_request(now)
            self._last[3] = now
            tls = self._tls
            started_cpu = getattr(tls, "cpu", cpu)
            tls.cpu, tls.ended = cpu, now
            log, req = self._log, getattr(tls, "req", None)
            if log is not None and req is not None:
                tls.req = None
                # Odoo counts the queries of the request on its thread (reset as it begins).
                thread = threading.current_thread()
                rpc = req[6]
                if rpc is None:
                    rpc = rpc_of_path(req[2]) if req[2].startswith(RPC_PREFIXES) else None
                    rpc = rpc.encode("utf-8", "replace")[:95] if rpc else b""
                duration = now - req[0]
                # Never more than its wall time: the CPU/SQL/other split of a request adds up.
                cpu_time = min(cpu - started_cpu, duration)
                log.add(
                    KIND_HTTP, req[0], duration, cpu_time, getattr(thread, "query_time", 0.0),
                    getattr(thread, "query_count", 0), req[3], status, 0, req[4], req[5], req[1], rpc, b"",
                )  # fmt: skip
        except Exception:
            _logger.debug("end_request failed", exc_info=True)

    def set_rpc(self, model, method):
        """The current request calls ``model.method`` (XML-RPC / JSON-RPC ``execute_kw``)."""
        req = getattr(self._tls, "req", None)
        if req is not None:
            req[6] = f"{model}.{method}".encode("utf-8", "replace")[:95]

    def set_user(self, db, uid, login, backend_pid=0, slow_after=None):
        """The current request is authenticated; ``backend_pid``: PostgreSQL backend of its cursor."""
        tls = self._tls
        slot = getattr(tls, "slot", None)
        if slot is not None and slot.board is self._board:
            try:
                written = slot.set_user(db, uid, login, backend_pid, slow_after)
                self._last[4] = db
                req = getattr(tls, "req", None)
                if req is not None and written is not None:
                    req[3] = uid or 0
                    req[4], req[5] = written
            except Exception:
                _logger.debug("set_user failed", exc_info=True)

    def begin_cron(self, job_id, name, db, uid=None, backend_pid=0, slow_after=None):
        """A scheduled action starts in this thread; returns its record."""
        try:
            slot = self.slot()
            if slot is not None:
                slot.begin_cron(job_id, name, db, uid, backend_pid, slow_after)
                thread = threading.current_thread()
                if not hasattr(thread, "query_count"):
                    # Odoo counts the queries of threads that have the counters (requests):
                    # a cron thread gets them, the job's share is the difference.
                    thread.query_count, thread.query_time = 0, 0.0
                self._tls.cron = (
                    time.time(), time.thread_time(), thread.query_count, thread.query_time,
                    job_id or 0, name, db, uid or 0,
                )  # fmt: skip
                if not slot.in_request:
                    self._last = [None, (job_id, name), time.time(), None, db]
            return slot
        except Exception:
            _logger.debug("begin_cron failed", exc_info=True)
            return None

    def end_cron(self, slot):
        try:
            cpu, now = time.thread_time(), time.time()
            in_request = slot.in_request
            slot.end_cron()
            log, cron = self._log, getattr(self._tls, "cron", None)
            if log is not None and cron is not None:
                self._tls.cron = None
                thread = threading.current_thread()
                started, cpu0, count0, time0, job_id, name, db, uid = cron
                log.add(
                    KIND_CRON, started, now - started, cpu - cpu0, max(getattr(thread, "query_time", 0.0) - time0, 0.0),
                    max(getattr(thread, "query_count", 0) - count0, 0), uid, 0, job_id,
                    db.encode("utf-8", "replace")[:63] if db else b"", b"", b"", b"",
                    name.encode("utf-8", "replace")[:95] if name else b"",
                )  # fmt: skip
            if not in_request:
                self._last[3] = time.time()
        except Exception:
            _logger.debug("end_cron failed", exc_info=True)

    def last_doing(self, now):
        """What this process began last: ``{"url", "cron_job", "elapsed", "busy", "db"}``, or None.

        ``elapsed`` is the time it has run so far when still busy, else how
        long it took.
        """
        last = self._last
        if not last:
            return None
        url, cron, began, ended, db = last
        return {
            # PATH_INFO: the path's bytes decoded as latin-1.
            "url": url.encode("latin-1", "replace").decode("utf-8", "replace") if url else None,
            "cron_job": {"id": cron[0], "name": cron[1]} if cron else None,
            "elapsed": round((ended or now) - began, 3),
            "busy": ended is None,
            "db": db,
        }

    def close(self):
        """Delete this process's board file (at exit), after the exit hook."""
        board = self._board
        if board is not None and board.pid == os.getpid():
            if self._on_close is not None:
                try:
                    self._on_close(board)
                except Exception:
                    _logger.warning("The exit of this process was not recorded", exc_info=True)
            if self.inspector is not None:
                self.inspector.close()
            board.close()
        if self._log is not None and self._log.pid == os.getpid():
            self._log.detach()  # the file stays: the requests of an exited worker remain readable
