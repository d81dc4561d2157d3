"""Sizing advice and the scheduled actions' health, against real Odoo servers.

The servers run on this machine (2 CPUs, its RAM) and its PostgreSQL: each
configuration below is bad or sane *for this host*, as the advice says.
"""

import os
import subprocess
import sys
import time
from typing import get_type_hints

import psutil
import pytest
from activity_helpers import CRON_NAME, Background, Hold, arm_cron, cancel_cron, trigger_cron
from odoo_harness import REPO, OdooServer

from worker_inspector.engine import advice, schema

pytestmark = pytest.mark.odoo

GIB = 1024**3
# What the suite's servers must never be told twice: these ids stay below warning when sane.
SIZING = ("workers_vs_cpus", "memory_hard_vs_ram", "threaded_in_production", "db_maxconn_vs_postgres")


def _advice(server):
    session = server.login_session()
    items = server.snapshot(session)["advice"]
    assert [item["id"] for item in items] == list(advice.CHECK_IDS)
    for item in items:
        assert set(item) == {"id", "level", "title", "detail", "fix"}
        assert item["level"] in advice.LEVELS and item["title"] and item["detail"] and item["fix"]
    return {item["id"]: item for item in items}


def _max_connections():
    out = subprocess.run(
        ["psql", "-d", "postgres", "-tAc", "SHOW max_connections"], capture_output=True, text=True, check=True
    )
    return int(out.stdout)


def test_one_worker_huge_hard_limit_and_pool_get_flagged(odoo_db):
    ram = psutil.virtual_memory().total
    hard = (ram // GIB // 2 + 1) * GIB  # x 2 workers and gevent: over the RAM
    maxconn = _max_connections()  # x 2 worker pools and gevent: thrice PostgreSQL's
    args = ["--limit-memory-hard", str(hard), "--limit-memory-soft", str(hard // 2), "--db_maxconn", str(maxconn)]
    with OdooServer(odoo_db, workers=1, max_cron_threads=1, extra_args=args) as server:
        items = _advice(server)
    assert os.cpu_count() == 2  # the thresholds below are this host's
    assert items["workers_vs_cpus"]["level"] != advice.LEVEL_OK
    assert items["workers_vs_cpus"]["fix"] == "workers = 5"
    assert "workers = 1, 2 CPUs" in items["workers_vs_cpus"]["detail"]
    hard_item = items["memory_hard_vs_ram"]
    assert hard_item["level"] == advice.LEVEL_CRITICAL
    assert f"{hard // 1024**2} MiB x 2 workers" in hard_item["detail"]
    # The fix fits: the suggested limit x (2 workers + gevent) stays under the RAM.
    assert int(hard_item["fix"].split("=")[1]) * 3 < ram
    pool = items["db_maxconn_vs_postgres"]
    assert pool["level"] == advice.LEVEL_CRITICAL
    assert f"max_connections {maxconn}" in pool["detail"]
    assert int(pool["fix"].split("=")[1]) * 3 < maxconn
    assert items["threaded_in_production"]["level"] == advice.LEVEL_OK
    # Measured: the HTTP worker's RSS is in the memory check.
    assert "largest HTTP worker RSS" in items["workers_vs_memory"]["detail"]


def test_sane_prefork_gets_no_warning_from_the_sizing_checks(odoo_db):
    args = ["--limit-memory-hard", str(2 * GIB), "--limit-memory-soft", str(GIB + GIB // 2), "--db_maxconn", "4"]
    with OdooServer(odoo_db, workers=5, max_cron_threads=1, extra_args=args) as server:
        items = _advice(server)
    for check_id in (*SIZING, "workers_vs_memory", "memory_soft_vs_usage", "time_limits_vs_requests"):
        assert items[check_id]["level"] in (advice.LEVEL_OK, advice.LEVEL_INFO), items[check_id]
    assert items["workers_vs_cpus"]["level"] == advice.LEVEL_OK
    assert items["workers_vs_memory"]["level"] == advice.LEVEL_OK
    assert items["time_limits_vs_requests"]["detail"].startswith("limit_time_real 120 s, limit_time_cpu 60 s")


def test_threaded_server_without_odoo_debug_is_told_and_a_debug_session_is_not(odoo_db):
    with OdooServer(odoo_db, workers=0, max_cron_threads=1) as server:
        items = _advice(server)
    assert items["threaded_in_production"]["level"] == advice.LEVEL_WARNING
    assert items["threaded_in_production"]["fix"] == "workers = 5"
    env = {advice.DEBUG_SESSION_ENV: "1"}
    with OdooServer(odoo_db, workers=0, max_cron_threads=0, env=env) as server:
        items = _advice(server)
    assert items["threaded_in_production"]["level"] == advice.LEVEL_OK
    assert items["cron_threads"]["level"] == advice.LEVEL_OK


def test_proxy_headers_without_proxy_mode_are_flagged(prefork):
    session = prefork.login_session()
    headers = {"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"}
    response = session.get(prefork.url + "/worker_inspector/api/snapshot", headers=headers, timeout=60)
    item = next(i for i in response.json()["advice"] if i["id"] == "websocket_routing")
    assert (item["level"], item["fix"]) == (advice.LEVEL_WARNING, "proxy_mode = True")
    item = next(i for i in prefork.snapshot(session)["advice"] if i["id"] == "websocket_routing")
    assert item["level"] == advice.LEVEL_OK


# The crons view ---------------------------------------------------------------

CRON_KEYS = set(get_type_hints(schema.CronRow))


def _crons(server, session):
    response = session.get(server.url + "/worker_inspector/api/crons", timeout=60)
    assert response.status_code == 200, response.text
    rows = response.json()
    assert rows and all(set(row) == CRON_KEYS for row in rows)
    return rows


def _poll_cron(server, session, cron_id, find, what, timeout=90):
    import time

    deadline = time.monotonic() + timeout
    while True:
        row = next(r for r in _crons(server, session) if r["id"] == cron_id)
        if find(row):
            return row
        assert time.monotonic() < deadline, f"{what}: not seen in {timeout}s; last: {row}"
        time.sleep(0.2)


def test_crons_show_a_running_job_on_its_worker(prefork):
    session = prefork.login_session()
    with Hold() as hold:
        cron_id = arm_cron(prefork, session, hold.token)
        row = next(r for r in _crons(prefork, session) if r["id"] == cron_id)
        assert (row["name"], row["db"], row["active"], row["running"]) == (CRON_NAME, prefork.db, True, [])
        assert row["interval"] == {"number": 1, "type": "days"}
        assert row["warnings"] == [] and row["overdue"] is None

        # The cron worker runs it.
        trigger_cron(prefork, session, hold.token)
        row = _poll_cron(prefork, session, cron_id, lambda r: r["running"], "job running")
        (runner,) = row["running"]
        workers = {p.pid: " ".join(p.cmdline()) for p in psutil.Process(prefork.pid).children()}
        assert "WorkerCron" in workers[runner["pid"]]
        assert (runner["kind"], runner["manual"]) == ("cron", False)
        assert row["warnings"] == []
        time.sleep(1.5)
        hold.release()
    # Its duration, from the request log's record of the run (Odoo keeps none).
    row = _poll_cron(prefork, session, cron_id, lambda r: not r["running"] and r["last_duration"], "job done")
    assert 1.5 <= row["last_duration"] <= time.time() - runner["since"] + 1, row
    history = session.get(prefork.url + "/worker_inspector/api/history", params={"kinds": "requests"}, timeout=60)
    history.raise_for_status()
    runs = [r for r in history.json()["requests"] if (r["cron_job"] or {}).get("id") == cron_id]
    latest = max(runs, key=lambda r: r["started_at"])
    assert latest["started_at"] >= runner["since"] - 1 and round(latest["duration"], 3) == row["last_duration"]


def test_crons_flag_a_manual_run_overlapping_a_cron_worker(prefork):
    """17.0 and 18.0 run a manual job in the request's transaction, which holds the job's row lock
    (``FOR NO KEY UPDATE``): a job that commits (as batch jobs do) ends it, a cron worker then
    takes the job too, and the crons view flags the overlap (odoo/odoo#154763). 19.0 runs the
    job on a cursor of its own while the request's transaction keeps the row locked until the
    manual run ends (``ir.cron.method_direct_trigger`` / ``_acquire_one_job``): there the cron
    worker skips the job and a second "Run Manually" is refused, so nothing overlaps."""
    session = prefork.login_session()
    url = "/web/dataset/call_button"  # the route of every series (18.0+ also take a suffix)
    locks_for_the_whole_run = prefork.snapshot(session)["server"]["odoo_version"].startswith("19.")
    workers = {p.pid: " ".join(p.cmdline()) for p in psutil.Process(prefork.pid).children()}
    with Hold() as hold:
        # "Run Manually" first; the job commits, then the cron worker is triggered.
        cron_id = arm_cron(prefork, session, hold.token)
        rpc = {"model": "ir.cron", "method": "method_direct_trigger", "args": [[cron_id]], "kwargs": {}}
        call = Background(prefork, session, url, rpc=rpc)
        row = _poll_cron(prefork, session, cron_id, lambda r: r["running"] or not call.is_alive(), "manual run")
        assert call.is_alive(), call.response.text
        assert [(r["kind"], r["manual"]) for r in row["running"]] == [("http", True)]
        assert row["warnings"] == []
        trigger_cron(prefork, session, hold.token)
        if locks_for_the_whole_run:
            # A second manual run: refused while the first one holds the row.
            second = Background(prefork, session, url, rpc=rpc).result()
            assert "already executing" in second.text, second.text
            # The cron worker, woken by the trigger, skips the locked job: one runner, no warning
            # (on 17.0 and 18.0 it joins within a second).
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                row = next(r for r in _crons(prefork, session) if r["id"] == cron_id)
                assert [(r["kind"], r["manual"]) for r in row["running"]] == [("http", True)], row
                assert row["warnings"] == [], row
                time.sleep(0.2)
        else:
            row = _poll_cron(prefork, session, cron_id, lambda r: len(r["running"]) == 2, "cron run overlapping")
            by_kind = {r["kind"]: r for r in row["running"]}
            assert "WorkerCron" in workers[by_kind["cron"]["pid"]]
            assert "WorkerHTTP" in workers[by_kind["http"]["pid"]]
            assert [w["code"] for w in row["warnings"]] == ["manual_run_overlaps_cron"]
        hold.release()
        call.result()
    cancel_cron(prefork, session)
    row = _poll_cron(prefork, session, cron_id, lambda r: not r["running"], "jobs done")
    assert row["last_run"] is not None and row["warnings"] == []


def test_another_server_running_this_databases_crons_is_seen_from_postgres(prefork):
    """Two servers with cron on one database: whichever runs the job, the other one's
    crons view says another server runs this database's scheduled actions."""
    with OdooServer(prefork.db, workers=0, max_cron_threads=1) as other:
        servers = {"prefork": (prefork, prefork.login_session()), "other": (other, other.login_session())}
        session = servers["prefork"][1]
        with Hold() as hold:
            cron_id = trigger_cron(prefork, session, hold.token)
            runs = {}
            for name, (server, login) in servers.items():
                runs[name] = next(r for r in _crons(server, login) if r["id"] == cron_id)
            # Wait until one of them runs it.
            import time

            deadline = time.monotonic() + 90
            while not any(r["running"] for r in runs.values()):
                assert time.monotonic() < deadline, runs
                time.sleep(0.2)
                runs = {n: next(r for r in _crons(s, lg) if r["id"] == cron_id) for n, (s, lg) in servers.items()}
            (runner,) = [n for n, r in runs.items() if r["running"]]
            (watcher,) = [n for n in runs if n != runner]
            server, login = servers[watcher]
            row = _poll_cron(
                server, login, cron_id, lambda r: "other_server" in [w["code"] for w in r["warnings"]], "other server"
            )
            message = next(w["message"] for w in row["warnings"] if w["code"] == "other_server")
            assert row["running"] == []
            assert "Another Odoo server" in message and "odoo-" in message
            hold.release()
        cancel_cron(prefork, session)


def test_crons_route_refuses_non_admins_with_json(prefork):
    import requests

    response = requests.get(prefork.url + "/worker_inspector/api/crons", timeout=60)
    assert response.status_code == 401 and response.json()["error"]["status"] == 401
    admin = prefork.login_session()
    response = admin.get(prefork.url + "/worker_inspector/api/crons", params={"x": "1"}, timeout=60)
    assert response.status_code == 400 and "Unknown parameter" in response.json()["error"]["reason"]


# odoo-debug --check -----------------------------------------------------------


def _check(tmp_path, text):
    config = tmp_path / "odoo.conf"
    config.write_text("[options]\n" + text)
    before = config.read_bytes()
    result = subprocess.run(
        [sys.executable, "-m", "launcher", "-c", str(config), "--check"],
        cwd=REPO,
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert config.read_bytes() == before
    return result


def test_check_exit_codes_follow_the_worst_level(tmp_path):
    sane = _check(
        tmp_path,
        "workers = 5\nmax_cron_threads = 1\nlimit_memory_hard = 2147483648\n"
        "limit_memory_soft = 1610612736\ndb_maxconn = 4\ndb_password = hunter2-secret\n",
    )
    assert sane.returncode == 0, sane.stdout + sane.stderr
    assert "[OK      ] db_maxconn_vs_postgres" in sane.stdout
    warning = _check(tmp_path, "workers = 0\nmax_cron_threads = 1\ndb_maxconn = 4\n")
    assert warning.returncode == 1, warning.stdout + warning.stderr
    assert "[WARNING ] threaded_in_production" in warning.stdout
    critical = _check(tmp_path, f"workers = 5\nmax_cron_threads = 1\ndb_maxconn = {_max_connections()}\n")
    assert critical.returncode == 2, critical.stdout + critical.stderr
    assert "[CRITICAL] db_maxconn_vs_postgres" in critical.stdout
    for result in (sane, warning, critical):
        assert "hunter2" not in result.stdout + result.stderr
