"""The snapshot and the history's counters as Prometheus metrics, for ops monitoring.

Formatting is prometheus_client's (escaping, types, HELP lines); this module
only maps the snapshot onto metric families. Names follow Prometheus'
conventions: base units (bytes, seconds), counters end in ``_total``, ratios
in ``_ratio``. Labels have few values: ``role``, ``reason``, ``kind``; never
the pid of a worker, which changes at every recycle and would leave a new
series behind each time. Every metric is listed in the README.
"""

import collections

try:
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, InfoMetricFamily
except ImportError:  # optional: only the metrics endpoint needs it
    CollectorRegistry = None

from .history import REASONS
from .requestlog import BUCKETS

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
MISSING_LIBRARY = "prometheus_client is not installed on the server (pip install prometheus-client)"

# Per role: (metric name, help, how the processes' values combine, snapshot key).
_ROLE_GAUGES = (
    ("odoo_resident_memory_bytes", "Resident memory of the server's processes, by role (sum).", sum, "rss"),
    ("odoo_virtual_memory_bytes", "Virtual memory of the server's processes, by role (sum).", sum, "vms"),
    (
        "odoo_virtual_memory_max_bytes",
        "Largest virtual memory of one process of the role: what Odoo's memory limits check.",
        max,
        "vms",
    ),
    ("odoo_threads", "Threads of the server's processes, by role (sum).", sum, "num_threads"),
)


def available():
    return CollectorRegistry is not None


def _by_role(processes):
    roles = collections.defaultdict(list)
    for proc in processes:
        roles[proc["role"]].append(proc)
    return dict(sorted(roles.items()))


class _SnapshotCollector:
    def __init__(self, snapshot, totals, backlog, requests=None):
        self.snapshot = snapshot
        self.totals = totals
        self.backlog = backlog
        self.requests = requests

    def _request_metrics(self):
        """From the request log: labels of bounded cardinality only (kind, status class)."""
        labels = ["kind", "status_class"]
        duration = HistogramMetricFamily(
            "odoo_http_request_duration_seconds",
            "Wall time of HTTP requests and scheduled action runs (kind cron), by status class.",
            labels=labels,
        )
        cpu = CounterMetricFamily(
            "odoo_http_request_cpu_seconds", "CPU time of the threads that served them.", labels=labels
        )
        sql = CounterMetricFamily("odoo_http_request_sql_seconds", "Time spent in SQL queries.", labels=labels)
        for (kind, status_class), series in sorted(self.requests.items()):
            running, buckets = 0, []
            for bound, count in zip((*map(str, BUCKETS), "+Inf"), series["buckets"], strict=True):
                running += count
                buckets.append((bound, running))
            duration.add_metric([kind, status_class], buckets, series["sum"])
            cpu.add_metric([kind, status_class], series["cpu"])
            sql.add_metric([kind, status_class], series["sql"])
        return duration, cpu, sql

    def collect(self):
        snap = self.snapshot
        info = InfoMetricFamily("odoo_server", "The Odoo server inspected.")
        info.add_metric(
            [],
            {
                "mode": snap["server"]["mode"],
                "pid": str(snap["server"]["pid"]),
                "odoo_version": str(snap["server"]["odoo_version"]),
            },
        )
        yield info

        roles = _by_role(snap["processes"])
        processes = GaugeMetricFamily("odoo_server_processes", "Processes of the server, by role.", labels=["role"])
        for role, procs in roles.items():
            processes.add_metric([role], len(procs))
        yield processes

        for name, help_text, combine, key in _ROLE_GAUGES:
            family = GaugeMetricFamily(name, help_text, labels=["role"])
            for role, procs in roles.items():
                values = [proc[key] for proc in procs if proc.get(key) is not None]
                if values:
                    family.add_metric([role], combine(values))
            yield family

        for name, index, help_text in (
            (
                "odoo_memory_soft_limit_bytes",
                0,
                "limit_memory_soft of the role: a worker above it is recycled (0: none).",
            ),
            ("odoo_memory_hard_limit_bytes", 1, "limit_memory_hard of the role: allocations fail above it (0: none)."),
        ):
            family = GaugeMetricFamily(name, help_text, labels=["role"])
            keys = ("limit_memory_soft", "limit_memory_hard")
            for role, procs in roles.items():
                family.add_metric([role], procs[0].get(keys[index]) or 0)
            yield family

        busy = GaugeMetricFamily(
            "odoo_busy_processes", "Processes serving a request or running a job, by role.", labels=["role"]
        )
        for role, procs in roles.items():
            reporting = [p for p in procs if p.get("activity")]
            if reporting:
                # The worker answering this scrape (the observer) is busy with it: not counted.
                busy.add_metric(
                    [role],
                    sum(1 for p in reporting if p["activity"]["state"] == "busy" and not p["activity"].get("observer")),
                )
        yield busy

        cpu = CounterMetricFamily(
            "odoo_cpu_seconds",
            "CPU time (user + system) of the server's processes by role, exited workers included.",
            labels=["role"],
        )
        for role, seconds in sorted(self.totals.get("cpu_seconds", {}).items()):
            cpu.add_metric([role], seconds)
        yield cpu

        threads = collections.Counter(thread["kind"] for thread in snap.get("threads", []))
        kinds = GaugeMetricFamily(
            "odoo_serving_process_threads", "Threads of the process that answered the scrape, by kind.", labels=["kind"]
        )
        for kind in sorted(threads):
            kinds.add_metric([kind], threads[kind])
        yield kinds

        if snap.get("utilization") is not None:
            yield GaugeMetricFamily(
                "odoo_http_utilization_ratio",
                "Busy HTTP workers (prefork) or request threads (threaded) over all of them, 0 to 1.",
                value=snap["utilization"],
            )
        yield GaugeMetricFamily(
            "odoo_longest_busy_seconds",
            "How long the longest running request or job has been running (0: none).",
            value=snap.get("longest_busy") or 0,
        )
        if self.backlog is not None:
            yield GaugeMetricFamily(
                "odoo_http_listen_backlog",
                "Connections waiting in the HTTP listen socket's accept queue, taken by no worker yet.",
                value=self.backlog,
            )
        if self.totals:
            yield CounterMetricFamily(
                "odoo_http_all_workers_busy_seconds",
                "Time with every HTTP worker (or request thread) busy.",
                value=self.totals["all_busy_seconds"],
            )
            yield CounterMetricFamily(
                "odoo_http_requests",
                "HTTP requests begun by the server's processes, exited workers included.",
                value=self.totals["http_requests"],
            )
            exits = CounterMetricFamily(
                "odoo_worker_exits", "Exits of HTTP and cron workers, by cause (see the README).", labels=["reason"]
            )
            for reason in REASONS:
                exits.add_metric([reason], self.totals["exits"].get(reason, 0))
            yield exits

        if self.requests is not None:
            yield from self._request_metrics()

        host = snap["host"]
        yield GaugeMetricFamily("odoo_host_memory_total_bytes", "Memory of the host.", value=host["memory_total"])
        yield GaugeMetricFamily(
            "odoo_host_memory_available_bytes", "Memory available on the host.", value=host["memory_available"]
        )
        yield GaugeMetricFamily("odoo_host_cpus", "CPUs of the host.", value=host["cpu_count"])


def live_totals(snapshot):
    """``(CPU seconds by role, HTTP requests)`` of the live processes in ``snapshot``."""
    cpu = collections.defaultdict(float)
    requests = 0
    for proc in snapshot["processes"]:
        cpu[proc["role"]] += proc.get("cpu_seconds") or 0.0
        if proc["role"] in ("http", "server") and proc.get("activity"):
            requests += proc["activity"].get("requests") or 0
    return dict(cpu), requests


class _DatabaseCollector:
    """What the scraped database knows: its nodes' heartbeats and its overdue scheduled actions."""

    def __init__(self, database):
        self.database = database

    def collect(self):
        nodes = self.database.get("nodes")
        if nodes is not None:
            age = GaugeMetricFamily(
                "odoo_node_heartbeat_age_seconds",
                "Seconds since the node's last heartbeat in this database.",
                labels=["node"],
            )
            stale = GaugeMetricFamily(
                "odoo_node_stale", "1 when the node missed 3 heartbeats (stopped or cut off).", labels=["node"]
            )
            for node in nodes:
                age.add_metric([node["node"]], node["age"])
                stale.add_metric([node["node"]], 1 if node["stale"] else 0)
            yield age
            yield stale
        overdue = self.database.get("overdue_crons")
        if overdue is not None:
            yield GaugeMetricFamily(
                "odoo_cron_overdue_jobs",
                "Active scheduled actions of this database whose run is due.",
                value=len(overdue),
            )
            yield GaugeMetricFamily(
                "odoo_cron_overdue_max_seconds",
                "How late the most overdue scheduled action of this database is (0: none).",
                value=max((job["overdue"] or 0 for job in overdue), default=0),
            )


def render(snapshot, totals=None, backlog=None, database=None, requests=None):
    """Prometheus text exposition of ``snapshot`` (bytes).

    ``totals``: ``HistoryStore.totals()`` (counters); ``backlog``: the listen
    socket's accept queue now; ``database``: ``{"nodes": [...],
    "overdue_crons": [...]}`` of the scraped database, if read; ``requests``:
    ``requestlog.read_totals()``.
    """
    if not available():
        raise RuntimeError(MISSING_LIBRARY)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_SnapshotCollector(snapshot, totals or {}, backlog, requests))
    if database:
        registry.register(_DatabaseCollector(database))
    return generate_latest(registry)
