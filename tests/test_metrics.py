"""The Prometheus exposition of a snapshot, read back with prometheus_client's own parser."""

import os

import pytest

from worker_inspector import engine
from worker_inspector.engine import metrics

parser = pytest.importorskip("prometheus_client.parser")


def samples(text):
    """``{(metric name, frozenset(labels)): value}`` of an exposition."""
    found = {}
    for family in parser.text_string_to_metric_families(text.decode()):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def test_every_role_of_a_real_snapshot_has_its_gauges():
    snapshot = engine.take_snapshot(engine.ServerInfo(os.getpid(), engine.MODE_THREADED, "18.0"), {"workers": 0})
    found = samples(metrics.render(snapshot))
    (process,) = snapshot["processes"]
    role = frozenset({"role": engine.ROLE_SERVER}.items())
    assert found[("odoo_resident_memory_bytes", role)] == process["rss"]
    assert found[("odoo_virtual_memory_max_bytes", role)] == process["vms"]
    assert found[("odoo_threads", role)] == process["num_threads"]
    assert not [key for key in found if "pid" in dict(key[1]) and key[0] != "odoo_server_info"]
    info = {"mode": "threaded", "pid": str(os.getpid()), "odoo_version": "18.0"}
    assert found[("odoo_server_info", frozenset(info.items()))] == 1
    assert found[("odoo_server_processes", frozenset({"role": "server"}.items()))] == 1
    assert found[("odoo_host_memory_total_bytes", frozenset())] == snapshot["host"]["memory_total"]
    kinds = {thread["kind"] for thread in snapshot["threads"]}
    for kind in kinds:
        count = sum(thread["kind"] == kind for thread in snapshot["threads"])
        assert found[("odoo_serving_process_threads", frozenset({"kind": kind}.items()))] == count


def test_busy_processes_utilization_and_counters():
    def process(pid, role, activity):
        return {"pid": pid, "role": role, "rss": 1, "vms": 2, "activity": activity}

    snapshot = {
        "server": {"mode": "prefork", "pid": 10, "odoo_version": "18.0"},
        "processes": [
            process(10, "master", None),
            process(11, "http", {"state": "busy", "requests": 7}),
            process(12, "http", {"state": "idle", "requests": 3}),
            # The worker answering this scrape: busy with it, which does not count.
            process(14, "http", {"state": "busy", "requests": 1, "observer": True}),
            process(13, "gevent", None),
        ],
        "threads": [],
        "utilization": 0.5,
        "longest_busy": None,
        "host": {"memory_total": 100, "memory_available": 50, "cpu_count": 2},
    }
    totals = {"all_busy_seconds": 3.5, "http_requests": 11, "exits": {"memory_soft": 2}, "cpu_seconds": {"http": 1.5}}
    found = samples(metrics.render(snapshot, totals, backlog=4))
    http = frozenset({"role": "http"}.items())
    assert found[("odoo_busy_processes", http)] == 1
    # Processes that do not report have no busy sample, rather than a false 0.
    assert ("odoo_busy_processes", frozenset({"role": "master"}.items())) not in found
    assert found[("odoo_http_utilization_ratio", frozenset())] == 0.5
    assert found[("odoo_longest_busy_seconds", frozenset())] == 0
    assert found[("odoo_server_processes", http)] == 3
    assert found[("odoo_virtual_memory_bytes", http)] == 6
    assert found[("odoo_http_listen_backlog", frozenset())] == 4
    assert found[("odoo_http_all_workers_busy_seconds_total", frozenset())] == 3.5
    assert found[("odoo_http_requests_total", frozenset())] == 11
    assert found[("odoo_cpu_seconds_total", http)] == 1.5
    assert found[("odoo_worker_exits_total", frozenset({"reason": "memory_soft"}.items()))] == 2
    assert found[("odoo_worker_exits_total", frozenset({"reason": "time_real"}.items()))] == 0
