"""Turn the addon's WSGI hook off and on again in a running Odoo process.

One process then serves rounds with the hook and rounds without it: what the
hook costs, free of the bias each process keeps for its life (where its memory
lies), which two servers cannot be rid of. Run Odoo through this script
(``python hook_switch.py odoo-bin ARGS...``) with ``WI_HOOK_SWITCH`` naming a
directory; its workers inherit the switch from the master.

Each ``SWITCH_SIGNAL`` swaps ``odoo.http.Application.__call__`` between the
addon's hook and the function it wraps, and writes ``<WI_HOOK_SWITCH>/<pid>``:
"<signals so far> <state>", the state being "on", "off", or "none" where the
process has no hook (a server without the addon: the control, which gets the
same signals). Python runs the handler in the main thread, which serves no
request: a prefork worker serves on its work thread (``Worker.run``), the
threaded server on a thread per request. A request reads ``__call__`` as it
begins; the benchmark switches between requests.

With ``WI_HOOK_FLOOR`` set, "on" is not the addon's hook but ``floor_hook``: the
least a request path can do for the request log's fields (see its docstring),
to tell what the addon's hook costs from what any hook that reads them costs.
The addon's hook is off from the first signal on, so its writer has nothing to
write.
"""

import collections
import functools
import os
import runpy
import signal
import sys
import threading
import time
from pathlib import Path

SWITCH_SIGNAL = signal.SIGRTMIN + 6  # Odoo handles none of the real-time signals; the call counter has +5
SCRIPT = os.path.abspath(__file__)

_hooked = None  # the addon's hook, while it is switched off
_signals = 0
FLOOR = bool(os.environ.get("WI_HOOK_FLOOR"))
# What ``floor_hook`` hands on: kept, never written (an unbounded queue for a benchmark's run).
FLOOR_QUEUE = collections.deque()


def floor_hook(call):
    """``call`` with the least any hook must do on the request path for the fields the
    request log keeps: the wall clock as the request begins and ends, the thread's CPU clock
    once, Odoo's counters, user and database on the thread, the path and the cell of the
    server's ``start_response`` that holds its status (which a writer reads later), handed
    on in one tuple. No record of the busy request for a live view, no writer: a lower
    bound, not a design. Made once per process."""
    from odoo.addons.worker_inspector.post_load import server_status_cell

    status_at = server_status_cell()[1]

    @functools.wraps(call)
    def __call__(
        app, environ, start_response,
        _time=time.time, _thread_time=time.thread_time, _current=threading.current_thread, _put=FLOOR_QUEUE.append,
        _status_at=status_at,
    ):  # fmt: skip
        started = _time()
        try:
            return call(app, environ, start_response)
        finally:
            counters = _current().__dict__
            _put((
                started, _time(), _thread_time(), environ.get("PATH_INFO"), start_response.__closure__[_status_at],
                counters.get("query_count"), counters.get("query_time"), counters.get("uid"), counters.get("dbname"),
            ))  # fmt: skip

    __call__._worker_inspector_floor = True
    return __call__


_floor = None  # ``floor_hook`` of this process, once made


def _switch(signum, frame):
    global _hooked, _signals, _floor
    _signals += 1
    state = "none"
    application = getattr(sys.modules.get("odoo.http"), "Application", None)
    if application is not None:
        current = application.__dict__.get("__call__")
        if getattr(current, "_worker_inspector_hook", False):
            _hooked, application.__call__ = current, current.__wrapped__
            state = "off"
        elif getattr(current, "_worker_inspector_floor", False):
            application.__call__ = current.__wrapped__
            state = "off"
        elif _hooked is not None and FLOOR:  # the addon's hook stays off
            _floor = _floor or floor_hook(_hooked.__wrapped__)
            application.__call__ = _floor
            state = "on"
        elif _hooked is not None:
            application.__call__, _hooked = _hooked, None
            state = "on"
    path = os.path.join(os.environ["WI_HOOK_SWITCH"], str(os.getpid()))
    with open(path + ".tmp", "w") as handle:
        handle.write(f"{_signals} {state}")
    os.replace(path + ".tmp", path)  # the sender reads a whole line


class HookSwitch:
    """The sender's side, for process ``pid`` of a server run through this script."""

    def __init__(self, pid, directory):
        self.pid = pid
        self.path = Path(directory) / str(pid)
        self.sent = 0

    def flip(self, timeout=10):
        """Swap the process's hook and return its new state ("on", "off" or "none")."""
        self.sent += 1
        os.kill(self.pid, SWITCH_SIGNAL)
        deadline = time.monotonic() + timeout
        while True:
            try:
                count, state = self.path.read_text().split()
                if int(count) == self.sent:
                    return state
            except (FileNotFoundError, ValueError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"process {self.pid} did not switch its hook in {timeout} s")
            time.sleep(0.001)


if __name__ == "__main__":
    signal.signal(SWITCH_SIGNAL, _switch)
    # Odoo's own script, as if run directly (the prefork master re-runs ``sys.argv[0]`` for
    # its gevent process: that one runs without the switch, which it does not need).
    sys.argv = sys.argv[1:]
    runpy.run_path(sys.argv[0], run_name="__main__")
