"""The advice rules and the crons' health, on facts given by the test (no Odoo)."""

import pytest

from worker_inspector.engine import advice, crons
from worker_inspector.engine.advice import Facts

GIB = 1024**3
SANE = {
    "workers": 5,
    "max_cron_threads": 1,
    "limit_memory_soft": 3 * GIB // 2,
    "limit_memory_hard": 2 * GIB,
    "limit_time_real": 120,
    "limit_time_cpu": 60,
    "db_maxconn": 8,
}
PG = {"max_connections": 100, "reserved": 3, "in_use": 10, "own": 6, "shared_buffers": 128 * 1024**2, "local": True}


def _procs(workers, rss=300 * 1024**2, vms=900 * 1024**2):
    procs = [{"role": "master", "rss": 150 * 1024**2, "vms": vms}, {"role": "gevent", "rss": 200 * 1024**2}]
    procs += [{"role": "cron", "rss": rss, "vms": vms}]
    return procs + [{"role": "http", "rss": rss, "vms": vms} for _ in range(workers)]


def _facts(**changes):
    config = dict(SANE, **changes.pop("config", {}))
    base = {"config": config, "cpu_count": 2, "memory_total": 16 * GIB, "processes": _procs(config["workers"])}
    base.update(postgres=dict(PG), databases=1, overdue_crons=[])
    base.update(changes)
    return Facts(**base)


def _levels(facts):
    return {item["id"]: item["level"] for item in advice.advise(facts)}


def test_sane_config_is_all_ok_and_every_item_has_the_contract_keys():
    items = advice.advise(_facts())
    assert [i["id"] for i in items] == list(advice.CHECK_IDS)
    assert all(set(i) == {"id", "level", "title", "detail", "fix"} for i in items)
    assert {i["level"] for i in items} == {"ok"}
    assert all(i["fix"] == advice.NOTHING_TO_DO for i in items)
    assert advice.exit_status(items) == 0


@pytest.mark.parametrize(
    ("workers", "level"),
    [(1, "warning"), (2, "info"), (4, "info"), (5, "ok"), (12, "ok")],
)
def test_workers_vs_cpus_against_two_cpus_plus_one(workers, level):
    assert _levels(_facts(config={"workers": workers}))["workers_vs_cpus"] == level


def test_saturation_from_history_asks_for_workers_unless_cpu_bound():
    history = {"window": 3600, "utilization_max": 1.0, "all_busy_ratio": 0.2, "backlog_max": 3, "cpu_ratio": 0.1}
    item = advice.advise(_facts(history=history))[0]
    assert (item["level"], item["fix"]) == ("warning", "workers = 7")
    item = advice.advise(_facts(history=dict(history, cpu_ratio=0.9)))[0]
    assert item["level"] == "warning" and "more workers will not help" in item["title"]
    assert item["fix"] == advice.NOTHING_TO_DO


def test_workers_vs_memory_uses_the_measured_rss_and_postgres_share():
    facts = _facts(config={"workers": 30}, processes=_procs(30, rss=1 * GIB), memory_total=16 * GIB)
    item = advice.advise(facts)[1]
    assert item["level"] == "critical" and "1024 MiB" in item["detail"]
    # 90% of 16 GiB - 1 GiB cron - 350 MiB others - 128 MiB shared_buffers, by 1 GiB: 12.
    assert item["fix"] == "workers = 12"
    assert _levels(_facts(processes=[]))["workers_vs_memory"] == "info"


def test_memory_hard_times_processes_against_ram():
    # 5 HTTP + 1 cron + gevent = 7 x 2 GiB = 14 GiB on 16 GiB: under 90%? No: 14 > 14.4 is false.
    assert _levels(_facts())["memory_hard_vs_ram"] == "ok"
    item = advice.advise(_facts(config={"limit_memory_hard": 3 * GIB}))[2]
    assert item["level"] == "critical" and "= 21504 MiB" in item["detail"]
    assert int(item["fix"].split("= ")[1]) * 7 <= 16 * GIB
    assert _levels(_facts(config={"limit_memory_hard": 0}))["memory_hard_vs_ram"] == "warning"


def test_memory_soft_rules():
    assert _levels(_facts(config={"limit_memory_soft": 0}))["memory_soft_vs_usage"] == "warning"
    assert _levels(_facts(config={"limit_memory_soft": 3 * GIB}))["memory_soft_vs_usage"] == "warning"
    above = _facts(processes=_procs(5, vms=2 * GIB - 1), config={"limit_memory_soft": GIB})
    assert _levels(above)["memory_soft_vs_usage"] == "warning"
    history = {"requests": 1000, "exits": {"memory_soft": 50}}
    item = advice.advise(_facts(history=history))[3]
    assert item["level"] == "warning" and "50 soft-limit exits for 1000 requests" in item["detail"]


def test_threaded_is_a_warning_outside_debugging_only():
    assert _levels(_facts(config={"workers": 0}))["threaded_in_production"] == "warning"
    assert _levels(_facts(config={"workers": 0}, debug_session=True))["threaded_in_production"] == "ok"
    assert _levels(_facts(config={"workers": 0, "dev_mode": ["xml"]}))["threaded_in_production"] == "ok"


def test_cron_threads():
    assert _levels(_facts(config={"max_cron_threads": 0}))["cron_threads"] == "warning"
    assert _levels(_facts(config={"max_cron_threads": 0}, debug_session=True))["cron_threads"] == "ok"
    late = [{"id": 1, "overdue": advice.OVERDUE_GRACE + 1}]
    assert _levels(_facts(overdue_crons=late))["cron_threads"] == "warning"
    assert _levels(_facts(overdue_crons=[{"id": 1, "overdue": 30}]))["cron_threads"] == "ok"
    assert _levels(_facts(databases=3))["cron_threads"] == "info"


def test_db_maxconn_against_max_connections():
    # 8 x 6 + 8 = 56 of 97, 4 others: ok. 16 x 6 + 16 = 112: critical. 40 others on top of 56: warning.
    assert _levels(_facts())["db_maxconn_vs_postgres"] == "ok"
    item = advice.advise(_facts(config={"db_maxconn": 16}))[6]
    assert item["level"] == "critical" and "= 112" in item["detail"]
    fixed = int(item["fix"].split("= ")[1])
    assert _levels(_facts(config={"db_maxconn": fixed}))["db_maxconn_vs_postgres"] != "critical"
    assert _levels(_facts(postgres=dict(PG, in_use=50, own=6)))["db_maxconn_vs_postgres"] == "warning"
    assert _levels(_facts(postgres=dict(PG, nodes=2)))["db_maxconn_vs_postgres"] == "critical"
    assert _levels(_facts(postgres={"error": "refused"}))["db_maxconn_vs_postgres"] == "info"


def test_time_limits():
    assert _levels(_facts(config={"limit_time_real": 0}))["time_limits_vs_requests"] == "warning"
    assert _levels(_facts(config={"limit_time_real": 7200}))["time_limits_vs_requests"] == "warning"
    slow = {"request_p99": 110.0, "request_max": 119.0}
    item = advice.advise(_facts(history=slow))[7]
    assert (item["level"], item["fix"]) == ("warning", "limit_time_real = 179")
    assert _levels(_facts(config={"limit_time_cpu": 300}))["time_limits_vs_requests"] == "info"


def test_websocket_and_proxy_mode():
    assert _levels(_facts(websocket_on_http=2))["websocket_routing"] == "warning"
    assert _levels(_facts(forwarded_headers=True))["websocket_routing"] == "warning"
    assert _levels(_facts(forwarded_headers=True, config={"proxy_mode": True}))["websocket_routing"] == "ok"


def test_exit_status_is_the_worst_level():
    assert advice.exit_status([{"level": "info"}, {"level": "ok"}]) == 0
    assert advice.exit_status([{"level": "warning"}, {"level": "info"}]) == 1
    assert advice.exit_status([{"level": "warning"}, {"level": "critical"}]) == 2


# Scheduled actions ---------------------------------------------------------


def _row(cron_id=7, **changes):
    row = {
        "id": cron_id,
        "name": "Mass mailing",
        "db": "prod",
        "active": True,
        "interval": {"number": 1, "type": "minutes"},
        "next_call": 1000.0,
        "last_run": 900.0,
        "failure_count": None,
        "first_failure_date": None,
        "triggered_at": None,
    }
    row.update(changes)
    return row


def _snapshot(*activities):
    processes = [{"pid": 10, "role": "master", "activity": None}]
    processes += [{"pid": pid, "role": role, "activity": act} for pid, role, act in activities]
    return {"server": {"mode": "prefork", "pid": 10}, "served_by": 11, "taken_at": 2000.0, "processes": processes}


def _busy(kind, cron_id, since=1500.0):
    return {"state": "busy", "kind": kind, "since": since, "cron_job": {"id": cron_id, "name": "x", "db": "prod"}}


def test_manual_run_overlapping_a_cron_worker_is_flagged():
    snap = _snapshot((11, "http", _busy("http", 7)), (12, "cron", _busy("cron", 7, 1600.0)))
    (row,) = crons.cron_health([_row()], snap, cron_on=True)
    assert sorted((r["pid"], r["manual"]) for r in row["running"]) == [(11, True), (12, False)]
    assert [w["code"] for w in row["warnings"]] == [crons.WARN_MANUAL_OVERLAP]
    assert row["overdue"] is None  # running now


def test_overdue_while_cron_is_on_failures_and_other_servers():
    snap = _snapshot((12, "cron", None))
    rows = [_row(failure_count=3, first_failure_date=0.0), _row(8, next_call=1900.0)]
    pollers = [
        {"application_name": "odoo-12", "client_addr": None, "db": "prod", "query": "SELECT ... ir_cron"},
        {"application_name": "odoo-999", "client_addr": "10.0.0.9", "db": "prod", "query": "SELECT ir_cron"},
    ]
    late, recent = crons.cron_health(rows, snap, cron_on=True, pollers=pollers, own_pids={10, 11, 12})
    assert late["overdue"] == 1000.0
    codes = [w["code"] for w in late["warnings"]]
    assert codes == [crons.WARN_OVERDUE, crons.WARN_FAILING, crons.WARN_OTHER_SERVER]
    assert "1970-01-01 00:00:00 UTC" in late["warnings"][1]["message"]
    assert "odoo-999@10.0.0.9" in late["warnings"][2]["message"]
    assert recent["overdue"] == 100.0 and [w["code"] for w in recent["warnings"]] == [crons.WARN_OTHER_SERVER]
    # Cron off: overdue is shown, not warned about (the debug mode).
    late, _recent = crons.cron_health(rows, snap, cron_on=False, own_pids={10, 11, 12})
    assert late["overdue"] == 1000.0 and crons.WARN_OVERDUE not in [w["code"] for w in late["warnings"]]


def test_history_facts_from_the_store_points_and_totals():
    def point(t, busy, backlog, all_busy, longest, rss):
        procs = [{"pid": 5, "role": "http", "rss": rss, "vms": 0, "cpu_percent": 40.0}]
        return {
            "t": t,
            "utilization": busy / 2,
            "http_busy": busy,
            "http_capacity": 2,
            "backlog": backlog,
            "requests_per_second": 1.0,
            "longest_busy": longest,
            "all_busy_seconds": all_busy,
            "processes": procs,
        }

    points = [point(0, 1, 0, 0.0, None, 100), point(10, 2, 3, 5.0, 4.0, 300), point(20, 1, 0, 6.0, 1.0, 200)]
    totals = {
        "exits": {"memory_soft": 2, "time_real": 1, "time_cpu": 1},
        "cpu_seconds": {"http": 12.0},
        "http_requests": 40,
    }
    history = advice.history_facts(points, 10.0, totals)
    assert history["window"] == 30.0 and history["utilization_max"] == 1.0
    assert history["all_busy_ratio"] == pytest.approx(0.2) and history["backlog_max"] == 3
    assert history["cpu_ratio"] == pytest.approx(0.3)  # 3 x 40% x 10 s = 12 CPU s over 40 busy-worker seconds
    assert (history["rss_max"], history["request_max"], history["exits"]["time_limit"]) == (300, 4.0, 2)
    assert advice.history_facts(points[:1], 10.0, totals) is None
    # Saturated and I/O-bound: more workers.
    assert advice.advise(_facts(config={"workers": 2}, history=history))[0]["fix"] == "workers = 5"


def test_advice_and_cron_rows_have_exactly_the_declared_shape():
    from typing import get_type_hints

    from worker_inspector.engine import schema

    for item in advice.advise(_facts()):
        assert set(item) == set(get_type_hints(schema.AdviceItem))
    snap = _snapshot((12, "cron", _busy("cron", 7)))
    (row,) = crons.cron_health([_row()], snap, cron_on=True)
    assert set(row) == set(get_type_hints(schema.CronRow))
    assert set(row["running"][0]) == set(get_type_hints(schema.CronRunner))
    assert set(get_type_hints(schema.ServedSnapshot)) - set(get_type_hints(schema.Snapshot)) == {
        "advice",
        "exits_last_hour",
    }


def test_advice_levels_count_every_level_and_name_the_alerts():
    items = [
        {"id": "a", "level": "ok"},
        {"id": "b", "level": "warning"},
        {"id": "c", "level": "ok"},
        {"id": "d", "level": "critical"},
        {"id": "e", "level": "info"},
    ]
    levels = advice.advice_levels(items)
    assert levels == {
        "worst": "critical",
        "counts": {"ok": 2, "info": 1, "warning": 1, "critical": 1},
        "alerts": ["b", "d"],
    }
    assert advice.advice_levels([]) == {
        "worst": "ok",
        "counts": {"ok": 0, "info": 0, "warning": 0, "critical": 0},
        "alerts": [],
    }


def test_last_duration_is_the_latest_cron_run_of_this_database_in_the_request_log():
    def record(cron_id, started, duration, db="prod", kind="cron"):
        job = {"id": cron_id, "name": "x"} if kind == "cron" else None
        return {"kind": kind, "db": db, "started_at": started, "duration": duration, "cron_job": job}

    records = [
        record(7, 100.0, 4.0),
        record(7, 300.0, 2.5),  # the latest run of job 7
        record(7, 200.0, 9.0),
        record(7, 400.0, 1.0, db="other"),  # another database's job 7
        record(None, 500.0, 3.0, kind="http"),
    ]
    runs = crons.last_runs(records, "prod")
    assert set(runs) == {7} and runs[7]["started_at"] == 300.0
    seven, eight = crons.cron_health([_row(), _row(8)], _snapshot(), cron_on=True, runs=runs)
    assert seven["last_duration"] == 2.5 and eight["last_duration"] is None
