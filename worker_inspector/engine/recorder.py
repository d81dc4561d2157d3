"""Recording what every worker is doing: the hot path.

``Recorder`` is what Odoo's hot path calls (a request begins and ends, a user
is authenticated, a scheduled action runs) and never raises into Odoo. With
``deferred`` (the addon's recorder), a request only keeps what it does in
memory: its thread's CPU clock is the one system call it makes. The process's
writer, its inspector thread (see ``stacks``), writes the threads' records on
the board (see ``board``) and the finished requests in the request log every
``stacks.WATCH_INTERVAL`` seconds while there is work (it rests while its process is
idle: the next request wakes it), and at once when a reader asks (the API
reads fresh records: ``stacks.request_flush``). Scheduled actions, seconds
long, are written as they start and end. Turning boards into the API's fields
is ``activity``'s job.
"""

import atexit
import collections
import functools
import logging
import os
import threading
import time
import types
import weakref

from .board import (
    KIND_HTTP,
    NO_RESPONSE,
    W_BACKEND,
    W_CPU,
    W_DB,
    W_ENDED,
    W_JOB,
    W_PATH,
    W_QUERIES,
    W_QUERY_TIME,
    W_RPC,
    W_SLOW,
    W_START,
    W_STATUS,
    W_UID,
    ProcessBoard,
    raw_path,
    remove_dead_servers,
)
from .requestlog import RequestLog
from .stacks import DEFAULT_SLOW_AFTER, FrameFormatter, Inspector

_logger = logging.getLogger(__name__)
_time = time.time
_thread_time = time.thread_time
_current_thread = threading.current_thread
_main_thread = threading.main_thread
_FUNCTION = types.FunctionType

# Records per process: a prefork worker serves requests or runs jobs in one
# thread; the threaded server has a thread per connection and per cron thread.
# (A prefork worker's main thread holds one from its fork, its work thread another.)
PREFORK_SLOTS = 4
THREADED_SLOTS = 256
# A thread idle longer than this (seconds) reads its CPU clock as its next request
# begins: the prefork worker's loop wakes every few seconds while it waits.
CPU_IDLE = 1.0


class _RequestPath:
    """The recorder's state that the request path reads, in one small object: between two
    requests Odoo's code takes the caches over, and each further object or dictionary the
    hook reads costs it memory accesses (``Recorder.wsgi``)."""

    __slots__ = ("asleep", "board", "busy", "deferred", "finished", "inspector", "last")


def _path_attribute(name, doc):
    return property(
        lambda recorder: getattr(recorder._path, name),
        lambda recorder, value: setattr(recorder._path, name, value),
        doc=doc,
    )


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
    above (before ``limit_time_real`` kills the request). ``busy_context``: see
    ``_note_busy``; without it, ``set_user`` says who a request is for.
    ``connection_threads``: the name prefix of the threads a threaded server starts for
    each connection, whose first request needs no CPU clock read as it begins (``_claim``).
    ``status_cell``: ``(code, index)`` of the server's ``start_response`` (see ``wsgi``).
    """

    _board = _path_attribute("board", "This process's board, once open.")
    _deferred = _path_attribute("deferred", "Whether the writer (``flush``) writes the request path's changes.")
    _finished = _path_attribute("finished", "The requests and jobs that ended since the writer's last turn.")
    _last = _path_attribute("last", "What this process began last (``last_doing``).")
    inspector = _path_attribute("inspector", "This process's inspector thread (its writer), or None.")

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
        deferred=False,
        busy_context=None,
        connection_threads=None,
        status_cell=None,
    ):
        self._locate = locate
        # ``(code, index)``: the code of the server's own ``start_response``, a closure whose
        # free variable ``index`` holds the status line it was given (``Recorder.wsgi``).
        self._status_cell = status_cell or (None, 0)
        # The name prefix of the threads a threaded server starts for one connection: see ``_claim``.
        self._connection_threads = connection_threads
        self._path = _RequestPath()
        # Whether the writer rests (``Inspector.asleep``, kept here for the request path).
        self._path.asleep = False
        # Deferred: the request path keeps its work in memory and the writer (``flush``)
        # writes it; otherwise every change is written at once.
        self._deferred = self._deferred_asked = deferred
        self._finished = collections.deque()
        # With ``busy_context`` (the addon's recorder) the request's database and user are
        # read on its thread, where Odoo keeps them (``thread.dbname``, ``thread.uid``), and
        # ``busy_context(thread, db)`` gives a busy request's ``(backend_pid, slow_after)``:
        # the writer reads them (``_note_busy``), not the request path.
        self._busy_context = busy_context
        self._path.busy = busy_context is not None
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
        self._finished = collections.deque()
        inspector, self.inspector = self.inspector, None
        self._path.asleep = False
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
        # The forking thread is the child's only one: its record was the parent's. Emptied, not
        # replaced: the request path holds this object (``wsgi``).
        self._tls.__dict__.clear()
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
                        # Without its writer (the inspector), every change is written at once.
                        self._deferred = self._deferred_asked and (self.inspector is not None or not self._inspect)
                        # Its writer also writes the records of ended threads free.
                        self._board.defer_free = self._deferred
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
            self.inspector = Inspector(
                board, FrameFormatter(self._frame_roots()), flush=self.flush, idle=self.idle, rest=self._path
            )
        except Exception as exc:  # noqa: BLE001 - the activity is still recorded without it
            _logger.warning("Worker stacks are not available in process %s: %s", os.getpid(), exc)

    def _claim(self, write=True):
        """Claim the calling thread's record; ``write=False`` leaves it to the writer (see
        ``ProcessBoard.claim``): the request path's claim, which a flush or wake-up follows."""
        if self._disabled:
            return None
        board = self._path.board or self._open()
        slot = None
        if board is not None:
            thread = _current_thread()
            # The thread's id as ``threading`` keeps it (no system call), but the main thread's:
            # after a fork, Python 3.11 keeps the parent's there.
            slot = board.claim(tid=thread.native_id if thread is not _main_thread() else None, write=write)
        if slot is not None:
            slot.thread = thread
            prefix = self._connection_threads
            if prefix and "perf_t0" not in thread.__dict__ and thread.name.startswith(prefix):
                # A thread started for this connection, before any request (Odoo sets ``perf_t0``
                # as one begins): its CPU clock started with it, at 0. Its first request's CPU
                # counts from there, as a request's counts from the end of the previous one (the
                # request's parsing included), and the request path reads the clock once, at its end.
                slot.cpu, slot.cpu_at = 0.0, _time()
        self._tls.slot = slot
        return slot

    def slot(self):
        """The calling thread's record (claimed on first use), or None."""
        slot = getattr(self._tls, "slot", None)
        if slot is None or slot.board is not self._board:
            slot = self._claim()
        return slot

    def begin_request(self, path):
        """A request for ``path`` (WSGI ``PATH_INFO``) starts in this thread; returns its record.

        It only keeps the request in memory (see ``flush``). On Odoo's request path,
        ``wsgi`` does the same inline.
        """
        try:
            try:
                slot = self._tls.slot
                if slot.board is not self._board:
                    slot = self._claim()
            except AttributeError:  # the thread's first request (or no record for it)
                slot = self._claim()
            if slot is None:
                return None
            now = _time()
            if now - slot.cpu_at > CPU_IDLE:
                # The thread's CPU clock, read once per request under load: back to back,
                # a request's CPU counts from the end of the previous one (its loop, its parsing).
                slot.cpu = _thread_time()
            # Also what this process began last, for the record of its exit.
            self._last = slot.start_request(path, now)
            if not self._deferred:
                self.flush()
            if self.inspector is not None and self.inspector.asleep:
                self.inspector.wake()  # it rests while its process has nothing to write or watch
            return slot
        except Exception:  # the inspector must never break Odoo
            _logger.debug("begin_request failed", exc_info=True)
            return None

    def end_request(self, slot, status=0):
        """The request of ``slot`` ended with HTTP ``status`` (a number or the WSGI status line;
        0: no response). On Odoo's request path, ``wsgi`` does the same inline."""
        try:
            cpu, now = _thread_time(), _time()
            req = slot.finish_request(now)
            if req is None:
                return
            # Odoo counts the queries of the request on its thread (reset as it begins).
            thread = slot.thread
            req[W_CPU] = cpu - slot.cpu
            req[W_QUERY_TIME] = getattr(thread, "query_time", 0.0)
            req[W_QUERIES] = getattr(thread, "query_count", 0)
            req[W_STATUS] = status
            if self._busy_context is not None:
                # Odoo resets them as each request begins: this request's, or none.
                req[W_UID] = getattr(thread, "uid", None) or 0
                req[W_DB] = getattr(thread, "dbname", None)
            self._finished.append(req)
            slot.cpu, slot.cpu_at = cpu, now
            if not self._deferred:
                self.flush()
        except Exception:
            _logger.debug("end_request failed", exc_info=True)

    def wsgi(self, call):
        """``call`` (a WSGI application's ``__call__``) recording each of its requests: busy
        from its start to its end, whatever escapes, with the status of its response.

        What ``begin_request`` and ``end_request`` do, inline: the request path's one
        Python frame. The status is the one the server's own ``start_response`` keeps:
        where it is the closure ``status_cell`` names (werkzeug's, which Odoo serves
        with), the record keeps that closure's cell, which the writer reads (the status
        the server answered, also when it is set after the request's end); under any
        other server the thread's record takes its place, notes the status and passes
        it on (``Slot.record_status``: a second frame).

        Between two requests Odoo runs milliseconds of its own code, so the hook runs
        with cold caches, where each object and dictionary it reads
        costs a memory access: it reads the thread's record through one thread-local
        lookup, the recorder's state from one small object (``_RequestPath``), and the
        clocks and constants from its own defaults (one tuple), not from the recorder's
        dictionary and the module's globals. A request inside a request of the same thread
        is served unrecorded: the thread's record is the outer one's.
        """
        recorder = self

        @functools.wraps(call)
        def __call__(
            app, environ, start_response,
            _path=self._path, _tls=self._tls, _time=_time, _thread_time=_thread_time, _cpu_idle=CPU_IDLE,
            _http=KIND_HTTP, _function=_FUNCTION, _status_code=self._status_cell[0], _status_at=self._status_cell[1],
            _no_response=NO_RESPONSE,
        ):  # fmt: skip
            try:
                try:
                    slot = _tls.slot
                    if slot.board is not _path.board:
                        slot = recorder._claim(False)
                except AttributeError:  # the thread's first request (or no record for it)
                    slot = recorder._claim(False)
            except Exception:  # the inspector must never break Odoo
                _logger.debug("no record for this thread", exc_info=True)
                slot = None
            if slot is None or slot.current is not None:
                return call(app, environ, start_response)
            try:
                now = _time()
                if now - slot.cpu_at > _cpu_idle:
                    slot.cpu = _thread_time()  # see begin_request
                # The thread's count: the writer sets the process's from them (``count_started``).
                slot.requests += 1
                respond, status = start_response, _no_response
                if respond.__class__ is _function and respond.__code__ is _status_code:
                    status = respond.__closure__[_status_at]  # the server's cell of its status line
                else:  # another server: the record notes the status (``Slot.record_status``)
                    slot.server_start_response, respond = start_response, slot
                # ``new_work(now, path)``, inline: no call, no global read.
                work = slot.current = [
                    now, environ.get("PATH_INFO") or "/", 0, None, None, 0, None, None, None, None, 0.0, 0, 0.0, status,
                ]  # fmt: skip
                slot.status_work = work
                _path.last = work
                if not _path.deferred:
                    recorder.flush()
                if _path.asleep:
                    _path.inspector.wake()
            except Exception:  # the inspector must never break Odoo: served unrecorded
                _logger.debug("begin_request failed", exc_info=True)
                slot.current = None
                return call(app, environ, start_response)
            try:
                return call(app, environ, respond)
            finally:
                try:
                    cpu, now = _thread_time(), _time()
                    if slot.current is work:
                        slot.current = None
                        slot.idle_since = now
                        slot.last_kind = _http
                        # Odoo's counters of the request, on its thread (reset as each begins).
                        counters = slot.thread.__dict__
                        work[W_ENDED] = now
                        work[W_CPU] = cpu - slot.cpu
                        work[W_QUERY_TIME] = counters.get("query_time", 0.0)
                        work[W_QUERIES] = counters.get("query_count", 0)
                        if _path.busy:
                            work[W_UID] = counters.get("uid") or 0
                            work[W_DB] = counters.get("dbname")
                        _path.finished.append(work)
                        slot.cpu, slot.cpu_at = cpu, now
                        if not _path.deferred:
                            recorder.flush()
                except Exception:
                    _logger.debug("end_request failed", exc_info=True)

        return __call__

    def set_rpc(self, model, method):
        """The current request calls ``model.method`` (XML-RPC / JSON-RPC ``execute_kw``)."""
        slot = getattr(self._tls, "slot", None)
        req = slot.current if slot is not None else None
        if req is not None:
            req[W_RPC] = f"{model}.{method}"

    def set_user(self, db, uid, login, backend_pid=0, slow_after=None):
        """The current request is authenticated; ``backend_pid``: PostgreSQL backend of its cursor."""
        slot = getattr(self._tls, "slot", None)
        if slot is not None and slot.board is self._board:
            req = slot.current
            if req is not None:
                req[W_UID:W_RPC] = uid or 0, db, login, backend_pid or 0, slow_after
                if not self._deferred:
                    self.flush()

    def begin_cron(self, job_id, name, db, uid=None, backend_pid=0, slow_after=None):
        """A scheduled action starts in this thread; returns its record (written at once)."""
        try:
            slot = self.slot()
            if slot is not None:
                thread = _current_thread()
                if not hasattr(thread, "query_count"):
                    # Odoo counts the queries of threads that have the counters (requests):
                    # a cron thread gets them, the job's share is the difference.
                    thread.query_count, thread.query_time = 0, 0.0
                work = slot.start_cron(job_id, name, db, uid, backend_pid, slow_after)
                work[W_CPU], work[W_QUERIES], work[W_QUERY_TIME] = _thread_time(), thread.query_count, thread.query_time
                if slot.current is None:
                    self._last = work
                self.flush()
                if self.inspector is not None and self.inspector.asleep:
                    self.inspector.wake()  # it watches the job for its slow stack
            return slot
        except Exception:
            _logger.debug("begin_cron failed", exc_info=True)
            return None

    def end_cron(self, slot):
        try:
            cpu, now = _thread_time(), _time()
            if slot.cron is None:
                return
            work = slot.finish_cron(now)
            thread = _current_thread()
            work[W_CPU] = cpu - work[W_CPU]
            work[W_QUERIES] = max(getattr(thread, "query_count", 0) - work[W_QUERIES], 0)
            work[W_QUERY_TIME] = max(getattr(thread, "query_time", 0.0) - work[W_QUERY_TIME], 0.0)
            self._finished.append(work)
            self.flush()
        except Exception:
            _logger.debug("end_cron failed", exc_info=True)

    def idle(self):
        """No thread of this process works and nothing waits to be written (its writer may rest)."""
        # A record changes only as work begins (then it works) or ends (then it waits in
        # ``_finished``): with neither, the writer's last turn left the board up to date.
        if self._finished:
            return False
        board = self._board
        if board is None:
            return True
        return not board.ended and all(slot.working() is None for slot in board.claimed.values())

    def flush(self, checked=False):
        """Write what the threads of this process did since the last call: their records on
        the board (those that changed) and the finished requests and jobs in the request log.

        The process's writer calls it (the inspector thread, every ``stacks.WATCH_INTERVAL``
        seconds and when a reader asks), so the request path writes nothing: one writer
        for all the requests since its last turn. Returns the number of log records written.
        ``checked`` (a reader asked): the files are first checked whole, and written back
        whole if something shrank them, as a turn does every ``board.CHECK_EVERY`` seconds.
        """
        board = self._board
        if board is None or board.closed or board.pid != os.getpid():
            return 0
        if checked:
            board.check_at = 0.0
            if self._log is not None:
                self._log.check_at = 0.0
        written = 0
        try:
            if self._busy_context is not None:
                for slot in board.claimed.values():
                    req = slot.current
                    if req is not None:
                        self._note_busy(slot, req)
            with board.writing():
                if _time() >= board.check_at:
                    board.ensure_intact()
                if self._log is not None:
                    written = self._log.add_works(self._finished)
                else:
                    self._finished.clear()
                freed = board.retire_ended()
                slots = board.claimed.values()
                board.count_started(slots)
                if freed:
                    board.write_free(freed)
                for slot in slots:
                    slot.publish()
        except Exception:  # the inspector must never break Odoo
            _logger.debug("flush failed", exc_info=True)
        return written

    def _note_busy(self, slot, req):
        """A busy request's database and user, read on its thread, then its backend and
        slow-request threshold (``busy_context``), once its database is known."""
        thread = slot.thread
        # Odoo sets ``perf_t0`` as it begins a request, then drops the previous request's
        # database and user: until then, the thread's are not this request's.
        began = getattr(thread, "perf_t0", None)
        if began is not None and began < req[W_START]:
            return
        db = getattr(thread, "dbname", None)
        uid = getattr(thread, "uid", None) or 0
        backend, slow = (0, None) if db != req[W_DB] else (req[W_BACKEND], req[W_SLOW])
        if db and not backend:
            try:
                backend, slow = self._busy_context(thread, db)
            except Exception:  # the inspector must never break Odoo
                _logger.debug("busy request context not read", exc_info=True)
        # The request may have ended meanwhile (its end wrote its own): no call from the
        # check to the stores, so the GIL cannot pass to its thread in between.
        if slot.current is req:
            req[W_UID], req[W_DB], req[W_BACKEND], req[W_SLOW] = uid, db, backend, slow

    def last_doing(self, now):
        """What this process began last: ``{"url", "cron_job", "elapsed", "busy", "db"}``, or None.

        ``elapsed`` is the time it has run so far when still busy, else how
        long it took.
        """
        last = self._last
        if not last:
            return None
        url, cron, began, ended, db = last[W_PATH], last[W_JOB], last[W_START], last[W_ENDED], last[W_DB]
        return {
            "url": raw_path(url).decode("utf-8", "replace") if url else None,
            "cron_job": {"id": cron[0], "name": cron[1]} if cron else None,
            "elapsed": round((ended or now) - began, 3),
            "busy": ended is None,
            "db": db,
        }

    def close(self):
        """Delete this process's board file (at exit), after the exit hook."""
        board = self._board
        if board is not None and board.pid == os.getpid():
            self.flush()
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
