"""Say so once Odoo answers HTTP, after odoo-debug has become Odoo.

odoo-debug execs Odoo, so nothing of it runs once Odoo starts, and the banner
scrolls away under Odoo's log (a new database logs its whole install). Just
before the exec a detached watcher is forked: it asks ``/web/health`` until
Odoo answers, which it does once the database is loaded (the request waits
for the registry), prints one short text and exits.

The watcher is a grandchild re-parented to init, so Odoo has no child of its
own and never reaps it. It exits as soon as Odoo does: Odoo keeps the write
end of a pipe, the watcher the read end, and end-of-file means Odoo is gone.
"""

import contextlib
import os
import select
import signal
import socket
import sys

RETRY_SECONDS = 0.5
HEALTH_REQUEST = b"GET /web/health HTTP/1.0\r\nHost: odoo-debug\r\n\r\n"


def _answers(address, odoo_gone):
    """True once ``address`` answers an HTTP request; None when Odoo exited first."""
    family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        try:
            sock.connect(address)
            sock.sendall(HEALTH_REQUEST)
        except OSError:
            return False
        # One request, no timeout: it waits for the database to load, however long that takes.
        readable, _, _ = select.select([sock, odoo_gone], [], [])
        if odoo_gone in readable:
            return None
        with contextlib.suppress(OSError):
            return sock.recv(16).startswith(b"HTTP/")
    return False


def _watch(address, text, odoo_gone):
    # Ctrl-C in the terminal reaches the whole process group: it is for Odoo.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    while True:
        answered = _answers(address, odoo_gone)
        if answered is None:
            return
        if answered:
            sys.stdout.write(text)
            sys.stdout.flush()
            return
        readable, _, _ = select.select([odoo_gone], [], [], RETRY_SECONDS)
        if readable:
            return


def start_watcher(address, text):
    """Fork the watcher; the calling process then execs Odoo, which inherits the pipe's write end."""
    sys.stdout.flush()
    sys.stderr.flush()
    odoo_gone, odoo_alive = os.pipe()
    os.set_inheritable(odoo_alive, True)
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the forked processes
        code = 0
        try:
            os.close(odoo_alive)
            if os.fork() == 0:
                _watch(address, text, odoo_gone)
        except BaseException:  # noqa: BLE001 - a watcher never shows a traceback over Odoo's log
            code = 1
        os._exit(code)
    os.close(odoo_gone)
    os.waitpid(child, 0)
    return odoo_alive
