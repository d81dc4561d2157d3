"""Which process a pid names: the pid plus its start time.

A pid is reused once its process is gone; a pid and the start time of its
process (clock ticks since boot, field 22 of ``/proc/<pid>/stat``) name one
process for good. The board, the process tree, the CPU meter and recycling
all use this notion of "the same process".
"""

import os
from typing import NamedTuple

import psutil

# Kernel flag of a task that has started to exit (/proc/<pid>/stat field 9).
_PF_EXITING = 0x4


class ProcessKey(NamedTuple):
    pid: int
    start: int  # clock ticks since boot


def start_ticks(pid):
    """Start time of ``pid`` in clock ticks since boot, or None if it is gone.

    A process that is exiting, or a zombie (not yet reaped by its parent), is
    gone too.
    """
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after it.
    try:
        fields = stat[stat.rindex(b")") + 2 :].split()
        if fields[0] in (b"Z", b"X") or int(fields[6]) & _PF_EXITING:
            return None
        return int(fields[19])
    except (ValueError, IndexError):
        return None


def ticks_to_epoch(ticks, boot=None):
    """Epoch time of a process start given in clock ticks since boot. The kernel's boot
    time moves when the clock is stepped: it is read afresh unless ``boot`` is given."""
    return (psutil.boot_time() if boot is None else boot) + ticks / os.sysconf("SC_CLK_TCK")


def process_key(pid):
    """The key of the live process ``pid``, or None if it is gone."""
    start = start_ticks(pid)
    return None if start is None else ProcessKey(pid, start)


def is_alive(key):
    """Whether ``key`` still names a live process (not a reused pid)."""
    return start_ticks(key[0]) == key[1]


def is_zombie(key):
    """Whether ``key`` names a process that exited and is not yet reaped by its parent."""
    try:
        with open(f"/proc/{key[0]}/stat", "rb") as handle:
            stat = handle.read()
        fields = stat[stat.rindex(b")") + 2 :].split()
        return fields[0] == b"Z" and int(fields[19]) == key[1]
    except (OSError, ValueError, IndexError):
        return False
