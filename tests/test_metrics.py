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


def test_every_process_of_a_real_snapshot_has_its_gauges():
    snapshot = engine.take_snapshot(engine.ServerInfo(os.getpid(), engine.MODE_THREADED, "18.0"), {"workers": 0})
    found = samples(metrics.render(snapshot))
    (process,) = snapshot["processes"]
    labels = {"pid": str(os.getpid()), "role": engine.ROLE_SERVER}
    for name, key, _help in metrics._PROCESS_GAUGES:
        assert found[(name, frozenset(labels.items()))] == pytest.approx(process[key]), name
    info = {"mode": "threaded", "pid": str(os.getpid()), "odoo_version": "18.0"}
    assert found[("odoo_server_info", frozenset(info.items()))] == 1
    assert found[("odoo_server_processes", frozenset({"role": "server"}.items()))] == 1
    assert found[("odoo_host_memory_total_bytes", frozenset())] == snapshot["host"]["memory_total"]
    kinds = {thread["kind"] for thread in snapshot["threads"]}
    for kind in kinds:
        count = sum(thread["kind"] == kind for thread in snapshot["threads"])
        assert found[("odoo_serving_process_threads", frozenset({"kind": kind}.items()))] == count


def test_busy_requests_and_utilization_follow_the_activity():
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
    found = samples(metrics.render(snapshot))
    http = {pid: frozenset({"pid": str(pid), "role": "http"}.items()) for pid in (11, 12, 14)}
    assert found[("odoo_worker_busy", http[11])] == 1
    assert found[("odoo_worker_busy", http[12])] == 0
    assert found[("odoo_worker_busy", http[14])] == 0
    assert found[("odoo_worker_requests", http[11])] == 7
    # Processes that do not report have no busy sample, rather than a false 0.
    assert ("odoo_worker_busy", frozenset({"pid": "10", "role": "master"}.items())) not in found
    assert found[("odoo_utilization", frozenset())] == 0.5
    assert ("odoo_longest_busy", frozenset()) not in found
    assert found[("odoo_server_processes", frozenset({"role": "http"}.items()))] == 3
    # A gauge the snapshot has no value for is left out, not reported as 0.
    assert ("odoo_worker_cpu_percent", http[11]) not in found
