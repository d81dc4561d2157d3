"""The accept backlog of the server's HTTP listen socket (Linux).

For a socket in state LISTEN, the kernel reports its accept queue where other
sockets report their receive queue: the number of connections that completed
the handshake and wait for ``accept()`` (``sk_ack_backlog``; ``ss -lt``
shows it as Recv-Q). It is asked through sock_diag (netlink), for listening
sockets only, which costs the same however many connections the machine
has; ``/proc/net/tcp`` (and ``tcp6``), which lists every TCP socket, is the
fallback. In prefork mode that queue is exactly the
requests no worker has taken yet. The socket is found by its inode, which
every process that inherited it can read with ``fstat``.
"""

import contextlib
import os
import socket
import struct

_TCP_LISTEN = "0A"
_NETLINK_SOCK_DIAG = 4
_SOCK_DIAG_BY_FAMILY = 20
_NLM_F_REQUEST, _NLM_F_DUMP = 0x1, 0x300
_NLMSG_ERROR, _NLMSG_DONE = 2, 3
_NLMSGHDR = struct.Struct("=IHHII")
# inet_diag_req_v2: family, protocol, extensions, pad, states, then a zeroed inet_diag_sockid.
_REQUEST = struct.Struct("=BBBxI48x")
# inet_diag_msg: family, state, timer, retrans, sockid (48), expires, rqueue, wqueue, uid, inode.
_MESSAGE = struct.Struct("=BBBB48xIIIII")
_TCP_LISTEN_STATE = 10


def _diag_listeners(family):
    """``{inode: accept queue}`` of the TCP sockets in LISTEN state of ``family``, via sock_diag."""
    found = {}
    with socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, _NETLINK_SOCK_DIAG) as sock:
        body = _REQUEST.pack(family, socket.IPPROTO_TCP, 0, 1 << _TCP_LISTEN_STATE)
        header = _NLMSGHDR.pack(_NLMSGHDR.size + len(body), _SOCK_DIAG_BY_FAMILY, _NLM_F_REQUEST | _NLM_F_DUMP, 1, 0)
        sock.sendall(header + body)
        while True:
            data = sock.recv(65536)
            offset = 0
            while offset + _NLMSGHDR.size <= len(data):
                length, kind = _NLMSGHDR.unpack_from(data, offset)[:2]
                if kind == _NLMSG_DONE:
                    return found
                if kind == _NLMSG_ERROR or length < _NLMSGHDR.size:
                    raise OSError("sock_diag refused the request")
                _family, state, _timer, _retrans, _expires, rqueue, _wqueue, _uid, inode = _MESSAGE.unpack_from(
                    data, offset + _NLMSGHDR.size
                )
                if state == _TCP_LISTEN_STATE:
                    found[inode] = rqueue
                offset += (length + 3) & ~3
            if not data:
                return found


def _diag_backlog(inode):
    for family in (socket.AF_INET, socket.AF_INET6):
        queued = _diag_listeners(family).get(inode)
        if queued is not None:
            return queued
    return None


_TABLES = ("/proc/net/tcp", "/proc/net/tcp6")


def socket_inode(fd):
    """Inode of the socket ``fd`` (an int or an object with ``fileno()``), or None."""
    try:
        fd = fd.fileno() if hasattr(fd, "fileno") else int(fd)
        return os.fstat(fd).st_ino
    except (OSError, ValueError, TypeError):
        return None


def listen_backlog(inode, tables=_TABLES):
    """Connections waiting in the accept queue of the LISTEN socket ``inode``, or None if not found."""
    if not inode:
        return None
    if tables is _TABLES:
        # No netlink here (a container may refuse it): read the tables.
        with contextlib.suppress(OSError):
            return _diag_backlog(inode)
    wanted = str(inode)
    for table in tables:
        try:
            with open(table) as handle:
                handle.readline()  # the header
                for line in handle:
                    fields = line.split()
                    # sl local rem st tx:rx tr:when retrnsmt uid timeout inode ...
                    if len(fields) > 9 and fields[9] == wanted and fields[3] == _TCP_LISTEN:
                        return int(fields[4].partition(":")[2], 16)
        except OSError:
            continue
    return None


def _socket_inodes(pid):
    inodes = set()
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return inodes
    for fd in fds:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(int(target[8:-1]))
    return inodes


def find_listen_inode(server_pid, port, tables=_TABLES):
    """Inode of the LISTEN socket on ``port`` that process ``server_pid`` holds, or None.

    For a process that no longer has the socket (a prefork cron worker closes
    it): the master keeps it open.
    """
    owned = _socket_inodes(server_pid)
    for table in tables:
        try:
            with open(table) as handle:
                handle.readline()
                for line in handle:
                    fields = line.split()
                    if len(fields) > 9 and fields[3] == _TCP_LISTEN and int(fields[1].rpartition(":")[2], 16) == port:
                        inode = int(fields[9])
                        if inode in owned:
                            return inode
        except (OSError, ValueError):
            continue
    return None
