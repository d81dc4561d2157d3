"""The request log on real Odoo servers (prefork and threaded): what each request
and scheduled action cost, the routes table and the load profile."""

import time

import pytest
import requests
from activity_helpers import CRON_NAME, Hold, trigger_cron
from odoo_harness import OdooServer

pytestmark = pytest.mark.odoo

HISTORY_URL = "/worker_inspector/api/history"


def views(server, session, **params):
    response = session.get(server.url + HISTORY_URL, params=params, timeout=60)
    assert response.status_code == 200, response.text
    return response.json()


def timed_get(session, url, **params):
    started = time.monotonic()
    response = session.get(url, params=params, timeout=120)
    return response, time.monotonic() - started


def recorded(server, session, url, since, what, timeout=30, **match):
    """The request log's records of ``url`` since ``since``, once at least one is there."""
    deadline = time.monotonic() + timeout
    while True:
        found = [
            r
            for r in views(server, session, kinds="requests", since=since)["requests"]
            if r["url"] == url and all(r[k] == v for k, v in match.items())
        ]
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not in the request log after {timeout}s")
        time.sleep(0.2)


class RequestLogChecks:
    @pytest.fixture(scope="class")
    def session(self, server):
        return server.login_session()

    def test_cpu_sleep_and_sql_time_are_measured(self, server, session):
        since = time.time()
        burn, burn_wall = timed_get(session, server.url + "/worker_inspector_test/burn", seconds="1")
        sleep, sleep_wall = timed_get(session, server.url + "/worker_inspector_test/sleep", seconds="1")
        sql, sql_wall = timed_get(session, server.url + "/worker_inspector_test/pg_sleep_once", seconds="0.5")
        assert (burn.status_code, sleep.status_code, sql.status_code) == (200, 200, 200)
        (cpu,) = recorded(server, session, "/worker_inspector_test/burn", since, "CPU route")
        (slept,) = recorded(server, session, "/worker_inspector_test/sleep", since, "sleep route")
        (waited,) = recorded(server, session, "/worker_inspector_test/pg_sleep_once", since, "pg_sleep route")
        assert cpu["cpu_time"] >= 0.8, cpu
        assert slept["cpu_time"] < 0.2, slept
        assert waited["sql_time"] >= 0.45 and waited["sql_count"] >= 1, waited
        for record, wall in ((cpu, burn_wall), (slept, sleep_wall), (waited, sql_wall)):
            assert 0.8 * wall <= record["duration"] <= 1.2 * wall, (record, wall)
            assert record["kind"] == "http" and record["status"] == 200 and record["rpc"] is None
            assert record["db"] == server.db and record["login"] == "admin" and record["uid"]
            assert since <= record["started_at"] <= time.time()
        pids = {p["pid"] for p in server.snapshot(session)["processes"]}
        assert cpu["pid"] in pids

    def test_json_rpc_names_model_and_method(self, server, session):
        since = time.time()
        body = {
            "jsonrpc": "2.0",
            "method": "call",
            "params": {"model": "res.partner", "method": "search_read", "args": [[]], "kwargs": {"limit": 1}},
        }
        url = "/web/dataset/call_kw/res.partner/search_read"
        assert "result" in session.post(server.url + url, json=body, timeout=60).json()
        (record,) = recorded(server, session, url, since, "call_kw")
        assert record["rpc"] == "res.partner.search_read"
        # object.execute_kw over JSON-RPC names them in its parameters only.
        uid = record["uid"]
        rpc = {
            "jsonrpc": "2.0",
            "method": "call",
            "params": {
                "service": "object",
                "method": "execute_kw",
                "args": [server.db, uid, "admin", "res.partner", "search_read", [[]], {"limit": 1}],
            },
        }
        assert "result" in requests.post(server.url + "/jsonrpc", json=rpc, timeout=60).json()
        (rpc_record,) = recorded(server, session, "/jsonrpc", since, "execute_kw")
        assert rpc_record["rpc"] == "res.partner.search_read"
        routes = views(server, session, kinds="routes", since=since)["routes"]
        row = next(r for r in routes if r["key"] == "res.partner.search_read")
        assert row["count"] == 2 and row["p50"] <= row["p95"] <= row["p99"] <= row["max"] <= row["total"]

    def test_failing_route_shows_its_status(self, server, session):
        since = time.time()
        assert session.get(server.url + "/worker_inspector_test/fail", timeout=60).status_code == 500
        assert session.get(server.url + "/worker_inspector_test/no_such_route", timeout=60).status_code == 404
        assert recorded(server, session, "/worker_inspector_test/fail", since, "failing route")[0]["status"] == 500
        missing = recorded(server, session, "/worker_inspector_test/no_such_route", since, "404")
        assert missing[0]["status"] == 404

    def test_scheduled_action_shows_as_cron_with_its_name(self, server, session):
        since = time.time()
        with Hold() as hold:
            cron_id = trigger_cron(server, session, hold.token)
            time.sleep(0.5)
        deadline = time.monotonic() + 120
        while True:
            records = views(server, session, kinds="requests", since=since)["requests"]
            crons = [r for r in records if r["kind"] == "cron" and r["cron_job"]["id"] == cron_id]
            if crons or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert crons, "no scheduled action in the request log"
        assert crons[0]["cron_job"] == {"id": cron_id, "name": CRON_NAME}
        assert crons[0]["db"] == server.db and crons[0]["url"] is None and crons[0]["status"] is None
        keys = [r["key"] for r in views(server, session, kinds="routes", since=since)["routes"]]
        assert f"cron:{CRON_NAME}" in keys

    def test_verdicts_on_cpu_only_and_sleep_only_load(self, server, session):
        since = time.time()
        for _ in range(3):
            timed_get(session, server.url + "/worker_inspector_test/burn", seconds="0.5")
        profile = views(server, session, kinds="profile", since=since)["profile"]
        assert profile["verdict"] == "cpu_bound", profile
        assert profile["cpu_share"] > profile["sql_share"] and "CPU-bound" in profile["explanation"]
        since = time.time()
        for _ in range(3):
            timed_get(session, server.url + "/worker_inspector_test/sleep", seconds="0.5")
        profile = views(server, session, kinds="profile", since=since)["profile"]
        assert profile["verdict"] == "io_bound", profile
        assert profile["other_share"] >= 0.6 and "I/O-bound" in profile["explanation"]
        total = profile["cpu_share"] + profile["sql_share"] + profile["other_share"]
        assert abs(total - 1.0) < 0.01
        # Idle: nothing in the window.
        assert views(server, session, kinds="profile", since=time.time() + 60)["profile"]["verdict"] == "idle"

    def test_metrics_have_the_request_histogram_and_cpu_sql_counters(self, server, session):
        parser = pytest.importorskip("prometheus_client.parser")
        timed_get(session, server.url + "/worker_inspector_test/pg_sleep_once", seconds="0.2")
        text = session.get(server.url + "/worker_inspector/metrics", timeout=60).text
        families = {f.name: f for f in parser.text_string_to_metric_families(text)}
        hist = families["odoo_http_request_duration_seconds"]
        assert hist.type == "histogram"
        counts = [
            s for s in hist.samples if s.name.endswith("_count") and s.labels == {"kind": "http", "status_class": "2xx"}
        ]
        assert counts and counts[0].value >= 1
        assert all(set(s.labels) <= {"kind", "status_class", "le"} for s in hist.samples)
        sql = families["odoo_http_request_sql_seconds"].samples
        assert sum(s.value for s in sql) >= 0.18
        assert "odoo_http_request_cpu_seconds" in families

    def test_filters_and_bad_values(self, server, session):
        since = time.time()
        timed_get(session, server.url + "/worker_inspector_test/sleep", seconds="0.3")
        timed_get(session, server.url + "/web/health")
        url = "/worker_inspector_test/sleep"
        recorded(server, session, url, since, "sleep")
        only = views(server, session, kinds="requests,routes,profile", since=since, route=url)
        assert {r["url"] for r in only["requests"]} == {url}
        assert [r["key"] for r in only["routes"]] == [url]
        slow = views(server, session, kinds="requests", since=since, min_duration="0.25")["requests"]
        assert slow and all(r["duration"] >= 0.25 for r in slow)
        assert views(server, session, kinds="requests", since=since, db=server.db)["requests"]
        for params in (
            {"min_duration": "fast"},
            {"min_duration": "-1"},
            {"min_duration": "inf"},
            {"route": ""},
            {"route": "x" * 301},
            {"kinds": "requests,nope"},
            {"db": "another_database"},
        ):
            response = session.get(server.url + HISTORY_URL, params=params, timeout=60)
            assert response.status_code == 400, (params, response.text)
            assert response.json()["error"]["reason"]


class TestPrefork(RequestLogChecks):
    @pytest.fixture(scope="class")
    def server(self, odoo_db):
        with OdooServer(odoo_db, workers=2, max_cron_threads=1) as srv:
            yield srv


class TestThreaded(RequestLogChecks):
    @pytest.fixture(scope="class")
    def server(self, odoo_db):
        with OdooServer(odoo_db, workers=0, max_cron_threads=1) as srv:
            yield srv
