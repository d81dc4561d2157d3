"""The snapshot as Prometheus metrics, for ops monitoring.

Formatting is prometheus_client's (escaping, types, HELP lines); this module
only maps the snapshot onto metric families.
"""

import collections

from .vocabulary import ActivityState

try:
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.core import GaugeMetricFamily, InfoMetricFamily
except ImportError:  # optional: only the metrics endpoint needs it
    CollectorRegistry = None

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
MISSING_LIBRARY = "prometheus_client is not installed on the server (pip install prometheus-client)"

_PROCESS_GAUGES = (
    # (metric name, snapshot key, help)
    ("odoo_worker_rss_bytes", "rss", "Resident memory of the process."),
    ("odoo_worker_vms_bytes", "vms", "Virtual memory of the process, which Odoo's memory limits check."),
    (
        "odoo_worker_memory_soft_limit_bytes",
        "limit_memory_soft",
        "limit_memory_soft for the process's role: the worker is recycled above it (0: none).",
    ),
    (
        "odoo_worker_memory_hard_limit_bytes",
        "limit_memory_hard",
        "limit_memory_hard for the process's role: allocations fail above it (0: none).",
    ),
    ("odoo_worker_cpu_percent", "cpu_percent", "CPU use of the process, percent of one core."),
    ("odoo_worker_threads", "num_threads", "Threads of the process."),
    ("odoo_worker_start_time_seconds", "started_at", "Start time of the process, epoch seconds."),
)


def available():
    return CollectorRegistry is not None


class _SnapshotCollector:
    def __init__(self, snapshot):
        self.snapshot = snapshot

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

        processes = snap["processes"]
        counts = collections.Counter(proc["role"] for proc in processes)
        workers = GaugeMetricFamily("odoo_server_processes", "Processes of the server by role.", labels=["role"])
        for role in sorted(counts):
            workers.add_metric([role], counts[role])
        yield workers

        for name, key, help_text in _PROCESS_GAUGES:
            family = GaugeMetricFamily(name, help_text, labels=["pid", "role"])
            for proc in processes:
                if proc.get(key) is not None:
                    family.add_metric([str(proc["pid"]), proc["role"]], proc[key])
            yield family

        busy = GaugeMetricFamily(
            "odoo_worker_busy", "1 while the process serves a request or runs a job.", labels=["pid", "role"]
        )
        requests = GaugeMetricFamily(
            "odoo_worker_requests", "Requests served by the process since it started.", labels=["pid", "role"]
        )
        for proc in processes:
            activity = proc.get("activity")
            if activity:
                labels = [str(proc["pid"]), proc["role"]]
                # The request answering this scrape does not count itself busy.
                working = activity.get("state") == ActivityState.BUSY and not activity.get("observer")
                busy.add_metric(labels, 1 if working else 0)
                if activity.get("requests") is not None:
                    requests.add_metric(labels, activity["requests"])
        yield busy
        yield requests

        threads = collections.Counter(thread["kind"] for thread in snap.get("threads", []))
        kinds = GaugeMetricFamily(
            "odoo_serving_process_threads", "Threads of the process that answered, by kind.", labels=["kind"]
        )
        for kind in sorted(threads):
            kinds.add_metric([kind], threads[kind])
        yield kinds

        for key, help_text in (
            ("utilization", "Busy HTTP workers (prefork) or request threads (threaded) over all of them."),
            ("longest_busy", "Seconds the longest running request or job has been busy."),
        ):
            if snap.get(key) is not None:
                yield GaugeMetricFamily(f"odoo_{key}", help_text, value=snap[key])

        host = snap["host"]
        yield GaugeMetricFamily("odoo_host_memory_total_bytes", "Memory of the host.", value=host["memory_total"])
        yield GaugeMetricFamily(
            "odoo_host_memory_available_bytes", "Memory available on the host.", value=host["memory_available"]
        )
        yield GaugeMetricFamily("odoo_host_cpu_count", "CPUs of the host.", value=host["cpu_count"])


def render(snapshot):
    """Prometheus text exposition of ``snapshot`` (bytes)."""
    if not available():
        raise RuntimeError(MISSING_LIBRARY)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_SnapshotCollector(snapshot))
    return generate_latest(registry)
