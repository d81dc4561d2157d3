"""Find and read the processes of one Odoo server."""

import os
import threading
import time

import psutil

from .classify import ROLE_MASTER, ROLE_SERVER, classify_child
from .config import effective_memory_limits
from .identity import ProcessKey, start_ticks, ticks_to_epoch
from .vocabulary import Mode


def child_pids(pid):
    """Direct children of ``pid``.

    /proc/<pid>/task/<tid>/children costs one small read per thread of the
    master; psutil's fallback scans every process of the machine.
    """
    try:
        children = []
        task_dir = f"/proc/{pid}/task"
        for tid in os.listdir(task_dir):
            with open(f"{task_dir}/{tid}/children") as handle:
                children.extend(int(child) for child in handle.read().split())
        return children
    except OSError:
        try:
            return [child.pid for child in psutil.Process(pid).children()]
        except psutil.Error:
            return []


class CpuMeter:
    """CPU percent of a process between two snapshots taken by this process.

    The first sighting of a process gives its average over its lifetime, so a
    snapshot never shows a meaningless 0. Entries are keyed on ``ProcessKey``
    (pid and start), so a reused pid starts afresh.
    """

    def __init__(self):
        self._last = {}
        self._lock = threading.Lock()

    def percent(self, key, started_at, cpu_seconds, now):
        with self._lock:
            previous = self._last.get(key)
            self._last[key] = (cpu_seconds, now)
        if previous and now > previous[1]:
            cpu_delta, wall_delta = cpu_seconds - previous[0], now - previous[1]
        else:
            cpu_delta, wall_delta = cpu_seconds, now - started_at
        if wall_delta <= 0:
            return 0.0
        return round(max(cpu_delta, 0.0) * 100.0 / wall_delta, 1)

    def forget_except(self, keys):
        with self._lock:
            for key in list(self._last):
                if key not in keys:
                    del self._last[key]


_CPU_METER = CpuMeter()


def _read(proc, boot):
    with proc.oneshot():
        cpu = proc.cpu_times()
        mem = proc.memory_info()
        start = start_ticks(proc.pid)
        return {
            "pid": proc.pid,
            # Internal (not in the API): which process this pid names.
            "key": ProcessKey(proc.pid, start),
            "ppid": proc.ppid(),
            # Not psutil's create_time(): it adds the boot time psutil read first, for good.
            "started_at": proc.create_time() if start is None else ticks_to_epoch(start, boot),
            "cpu_seconds": cpu.user + cpu.system,
            "rss": mem.rss,
            "vms": mem.vms,
            "num_threads": proc.num_threads(),
            "nice": proc.nice(),
            # setproctitle pads the title with NULs, which psutil splits into empty args.
            "cmdline": [arg for arg in proc.cmdline() if arg],
            "status": proc.status(),
        }


def read_processes(server_pid, mode, config=None, cpu_meter=_CPU_METER):
    """Read every process of the server rooted at ``server_pid``.

    ``mode`` is "threaded" (one process, role ``server``) or "prefork" (the
    master and its direct children: HTTP and cron workers, gevent). Returns
    dicts with pid, ppid, role, started_at, cpu_percent, rss, vms,
    num_threads, nice, cmdline (unredacted: redact before showing), status,
    the memory limits Odoo enforces on that role, and ``key`` (its
    ``ProcessKey``, internal: drop before showing).
    """
    config = config or {}
    boot = psutil.boot_time()
    try:
        root = _read(psutil.Process(server_pid), boot)
    except psutil.Error:
        return []
    root["role"] = ROLE_MASTER if mode == Mode.PREFORK else ROLE_SERVER
    found = [root]
    if mode == Mode.PREFORK:
        for pid in child_pids(server_pid):
            try:
                info = _read(psutil.Process(pid), boot)
            except psutil.Error:
                continue  # exited meanwhile
            if info["key"].start is None:
                # Exiting (PF_EXITING: killed, its memory and sockets still
                # being torn down, its PostgreSQL sessions still open) or a
                # zombie not reaped yet: gone, as identity.start_ticks says.
                continue
            info["role"] = classify_child(info["cmdline"], info["nice"], root["nice"])
            found.append(info)
    now = time.time()
    for info in found:
        info["cpu_percent"] = cpu_meter.percent(info["key"], info["started_at"], info["cpu_seconds"], now)
        soft, hard = effective_memory_limits(config, info["role"])
        info["limit_memory_soft"] = soft
        info["limit_memory_hard"] = hard
    cpu_meter.forget_except({info["key"] for info in found})
    return found
