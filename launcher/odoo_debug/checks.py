"""Checks before Odoo starts: is the HTTP port free, who else uses the database."""

import contextlib
import errno
import shlex
import socket

import psutil

from worker_inspector.engine import is_odoo_cmdline, parse_title, redact_cmdline

_LOCAL_ADDRESSES = (None, "", "127.0.0.1", "::1")
_MAX_SHOWN_CMDLINE = 120


def bind_error(interface, port):
    """The OSError Odoo would get binding ``interface:port``, or None when it is free.

    Odoo's HTTP server (werkzeug) sets SO_REUSEADDR: so does this test, so a
    port in TIME_WAIT is free here as it is for Odoo.
    """
    host = interface or "0.0.0.0"
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            return exc
    return None


def _cmdline(process):
    with contextlib.suppress(psutil.Error):
        return process.cmdline()
    return []


def _short(cmdline):
    text = shlex.join(redact_cmdline(cmdline))
    return text if len(text) <= _MAX_SHOWN_CMDLINE else text[: _MAX_SHOWN_CMDLINE - 3] + "..."


def server_of(pid):
    """``(server_pid, cmdline)`` for a pid: a prefork worker's master, else the pid itself."""
    try:
        process = psutil.Process(pid)
        cmdline = process.cmdline()
        if parse_title(cmdline):
            parent = process.parent()
            if parent is not None and is_odoo_cmdline(_cmdline(parent)):
                return parent.pid, _cmdline(parent)
        return pid, cmdline
    except psutil.Error:
        return pid, None


def listener_pids(port):
    """Pids of the processes listening on TCP ``port`` (those this user may see)."""
    pids = set()
    with contextlib.suppress(psutil.Error):
        for conn in psutil.net_connections(kind="inet"):
            if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port and conn.pid:
                pids.add(conn.pid)
    # Prefork workers inherit the master's socket: report the master only.
    roots = set()
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            parent = psutil.Process(pid).ppid()
            if parent in pids:
                continue
        roots.add(pid)
    return sorted(roots)


def describe_owner(pid):
    server_pid, cmdline = server_of(pid)
    if cmdline is None:
        return f"pid {pid}"
    if is_odoo_cmdline(cmdline):
        return f"an Odoo server (pid {server_pid}: {_short(cmdline)})"
    return f"pid {server_pid} ({_short(cmdline)})"


def port_problem(interface, port):
    """One line saying why Odoo cannot listen on ``interface:port``, or None."""
    error = bind_error(interface, port)
    if error is None:
        return None
    where = f"{interface}:{port}" if interface else f"port {port}"
    if error.errno == errno.EADDRINUSE:
        owners = listener_pids(port)
        by = " by " + ", ".join(describe_owner(pid) for pid in owners) if owners else ""
        return f"HTTP {where} is already in use{by}; stop it or choose another port with --http-port"
    if error.errno == errno.EADDRNOTAVAIL:
        return f"HTTP interface {interface} is not an address of this machine (--http-interface)"
    if error.errno == errno.EACCES:
        return f"HTTP {where} needs privileges this user lacks; choose a port above 1023 with --http-port"
    return f"cannot listen on HTTP {where}: {error.strerror or error}"


def other_servers(sessions, own_pids=()):
    """Warnings for other Odoo servers connected to the databases, one per server.

    ``sessions`` come from the probe: ``{"database", "pid", "client_addr"}``
    for each ``odoo-<pid>`` application name in ``pg_stat_activity``.
    """
    seen = {}
    for session in sessions:
        pid = session["pid"]
        if session.get("client_addr") not in _LOCAL_ADDRESSES:
            key = ("remote", session["client_addr"], pid)
            who = f"an Odoo server on {session['client_addr']} (pid {pid} there)"
        else:
            server_pid, cmdline = server_of(pid)
            if server_pid in own_pids:
                continue
            key = ("local", server_pid)
            if cmdline is None:
                who = f"an Odoo server (pid {pid}, not a process this user can see)"
            else:
                who = f"another Odoo server (pid {server_pid})"
        seen.setdefault(key, (who, []))[1].append(session["database"])
    warnings = []
    for who, databases in seen.values():
        names = ", ".join(sorted(set(databases)))
        warnings.append(
            f"{who} is connected to database {names}: its cron workers may run scheduled actions there while you debug"
        )
    return warnings
