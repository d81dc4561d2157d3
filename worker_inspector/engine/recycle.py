"""Recycle one worker of a prefork server, the way Odoo itself does.

Odoo's ``Worker.start`` handles SIGINT with ``signal_handler`` (``alive =
False``): the worker finishes the request or scheduled action it is running,
leaves its loop and exits, and the master forks a new one. SIGTERM is left at
``SIG_DFL`` in workers: the kernel ends the process at once, whatever it was
doing (the request's transaction is rolled back by PostgreSQL when the
connection drops), and the master respawns it the same way.
"""

import os
import signal

import psutil

from .identity import process_key
from .tree import read_processes
from .vocabulary import WORKER_ROLES, Mode, is_recyclable

RECYCLABLE_ROLES = WORKER_ROLES
GRACEFUL_SIGNAL = signal.SIGINT
FORCE_SIGNAL = signal.SIGTERM


class RecycleRefused(Exception):
    """The pid may not be recycled; the message says why, for the caller."""


def recycle_worker(server_pid, mode, pid, force=False):
    """Signal worker ``pid`` of the server rooted at ``server_pid`` to exit.

    Only HTTP and cron workers of that prefork server are accepted, checked
    against the live process tree at call time. A worker asked to force-exit
    itself is recycled gracefully instead: killing it would lose the answer
    of the very request asking for it, and it is evidently not stuck.
    Returns ``{"pid", "role", "signal", "graceful"}``; raises RecycleRefused.
    """
    if mode != Mode.PREFORK:
        raise RecycleRefused(
            "This server is threaded (workers = 0): it has no worker processes to recycle; restart Odoo instead."
        )
    if isinstance(pid, bool) or not isinstance(pid, int) or pid <= 0:
        raise RecycleRefused(f"Not a process id: {pid!r}.")
    processes = {proc["pid"]: proc for proc in read_processes(server_pid, mode)}
    proc = processes.get(pid)
    if proc is None:
        raise RecycleRefused(f"Process {pid} is not a worker of this Odoo server (or has already exited).")
    if not is_recyclable(mode, proc["role"]):
        raise RecycleRefused(
            f"Process {pid} is the {proc['role']} process: only HTTP and cron workers can be recycled "
            "(the master and the gevent process are not respawned by Odoo)."
        )
    graceful = not force or pid == os.getpid()
    sig = GRACEFUL_SIGNAL if graceful else FORCE_SIGNAL
    try:
        target = psutil.Process(pid)
        # The pid must still be the process read above, not a reused one.
        if process_key(pid) != proc["key"]:
            raise psutil.NoSuchProcess(pid)
        target.send_signal(sig)
    except psutil.NoSuchProcess:
        raise RecycleRefused(f"Process {pid} exited meanwhile.") from None
    except psutil.AccessDenied:
        raise RecycleRefused(f"Process {pid} may not be signalled by this process.") from None
    return {"pid": pid, "role": proc["role"], "signal": sig.name, "graceful": graceful}
