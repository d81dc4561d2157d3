"""What every worker is doing, against real Odoo 18 servers (prefork and threaded).

See ``activity_helpers``: the test addon's routes and scheduled action stay
busy until the test releases them, so there are no fixed sleeps.
"""

import os
import signal
import time
import uuid

import pytest
from activity_helpers import (
    BUSY_URL,
    CRON_NAME,
    PG_SLEEP_URL,
    Background,
    Hold,
    arm_cron,
    busy_on,
    cancel_cron,
    places,
    poll,
    running_job,
    session_uid,
    trigger_cron,
)
from odoo_harness import OdooServer
from waiting import wait_until

from worker_inspector.engine import board

pytestmark = pytest.mark.odoo


class ActivityChecks:
    """Run against the ``server`` of each mode (see the Test classes below)."""

    @pytest.fixture(scope="class")
    def session(self, server):
        return server.login_session()

    def test_busy_request_shows_busy_with_growing_elapsed_then_idle(self, server, session):
        prefork = server.workers > 0
        with Hold() as hold:
            call = Background(server, session, BUSY_URL, hold.token)

            def authenticated(s):
                # The request shows from its first microsecond; the user once authenticated.
                found = busy_on(s, BUSY_URL)
                return found if found and found[1]["activity"]["login"] else None

            _snap, (_place, entry) = poll(server, session, authenticated, "busy request")
            first = entry["activity"]
            key = "pid" if prefork else "native_id"
            where = entry[key]
            assert first["kind"] == "http"
            assert (first["db"], first["login"], first["uid"]) == (server.db, "admin", session_uid(server, session))
            assert first["cron_job"] is None and first["requests"] >= 1

            # The same request, observed later: its elapsed time grows.
            def grown(s):
                found = busy_on(s, BUSY_URL)
                return found if found and found[1]["activity"]["elapsed"] > first["elapsed"] + 0.2 else None

            snap, (_place, entry) = poll(server, session, grown, "elapsed growing")
            later = entry["activity"]
            assert entry[key] == where
            assert later["since"] == first["since"]
            assert later["elapsed"] == pytest.approx(snap["taken_at"] - later["since"], abs=0.01)
            assert snap["longest_busy"] >= later["elapsed"]
            # Busy: this request; the one answering the snapshot does not count itself.
            assert snap["http_busy"] >= 1
            if prefork:
                roles = {p["pid"]: p["role"] for p in snap["processes"]}
                assert roles[entry["pid"]] == "http"
                assert snap["served_by"] != entry["pid"]
                assert (snap["utilization"], snap["http_busy"], snap["http_capacity"]) == (0.5, 1, 2)
                assert snap["utilization_basis"] == "http_workers"
            else:
                assert entry["kind"] == "http"
                server_activity = snap["processes"][0]["activity"]
                assert (server_activity["state"], server_activity["url"]) == ("busy", BUSY_URL)
                assert snap["utilization"] == round(snap["http_busy"] / snap["http_capacity"], 3)
            hold.release()
            assert call.result().status_code == 200

        if prefork:
            worker = entry["pid"]

            def idle_again(s):
                proc = next((p for p in s["processes"] if p["pid"] == worker), None)
                # The worker may be the one answering this very snapshot: then look again.
                return proc if proc and s["served_by"] != worker and proc["activity"]["state"] == "idle" else None

            _snap, proc = poll(server, session, idle_again, "worker idle again")
            assert proc["activity"]["url"] is None and proc["activity"]["db"] is None
            assert proc["activity"]["requests"] >= later["requests"]  # counted when it began
        else:
            thread = entry["native_id"]

            def request_thread_done(s):
                mine = [t for t in s["threads"] if t["native_id"] == thread]
                # The connection's thread ends; while it lingers, it is idle.
                return all(t["activity"] is None or t["activity"]["state"] == "idle" for t in mine)

            poll(server, session, request_thread_done, "request thread idle or gone")
        snap = server.snapshot(session)
        assert busy_on(snap, BUSY_URL) is None

    def test_pg_sleep_shows_in_the_sql_of_its_worker(self, server, session):
        def sleeping(s):
            found = busy_on(s, PG_SLEEP_URL)
            if not found:
                return None
            # An active session may be caught before pg_sleep starts waiting (parse, plan): look again.
            sessions = [
                q
                for q in found[1]["sql"]
                if q["state"] == "active" and "pg_sleep" in q["query"] and q["wait_event"] is not None
            ]
            return (found, sessions[0]) if sessions else None

        with Hold() as hold:
            call = Background(server, session, PG_SLEEP_URL, hold.token)
            snap, (_found, query) = poll(server, session, sleeping, "pg_sleep in sql")
            assert query["query"] == "SELECT pg_sleep(0.5)"
            assert (query["wait_event_type"], query["wait_event"]) == ("Timeout", "PgSleep")
            assert query["db"] == server.db and query["matched_by"] == "cursor"
            assert 0 <= query["duration"] < 5
            if server.workers:
                # The other worker answers the snapshot: no pg_sleep there.
                serving = next(p for p in snap["processes"] if p["pid"] == snap["served_by"])
                assert not [q for q in serving["sql"] if "pg_sleep" in (q["query"] or "")]
            else:
                # The thread's session belongs to the server process too.
                assert query in snap["processes"][0]["sql"]
            hold.release()
            assert call.result().status_code == 200

    def test_sleeping_scheduled_action_shows_as_cron_job_then_disappears(self, server, session):
        with Hold() as hold:
            cron_id = trigger_cron(server, session, hold.token)
            snap, runner = poll(server, session, lambda s: running_job(s, cron_id), "cron job running", timeout=90)
            activity = runner["activity"]
            assert activity["cron_job"] == {"id": cron_id, "name": CRON_NAME, "db": server.db}
            assert (activity["state"], activity["kind"], activity["url"]) == ("busy", "cron", None)
            # The job's user (OdooBot, who installed it), by login as on requests.
            assert (activity["uid"], activity["login"]) == (1, "__system__")
            assert snap["cron"]["max_cron_threads"] == 1 and snap["cron"]["overdue"] is None
            if server.workers:
                proc = next(p for p in snap["processes"] if p["pid"] == runner["pid"])
                assert proc["role"] == "cron" and proc["activity"]["cron_job"]["id"] == cron_id
                assert runner["tid"] is None
            else:
                thread = next(t for t in snap["threads"] if t["native_id"] == runner["tid"])
                assert thread["kind"] == "cron" and thread["name"].startswith("odoo.service.cron.cron")
                assert runner["pid"] == server.pid
            hold.release()

            def done(s):
                if running_job(s, cron_id):
                    return None
                after = next(r for r in s["cron"]["runners"] if (r["pid"], r["tid"]) == (runner["pid"], runner["tid"]))
                if after["activity"]["state"] == "busy":
                    # The runner may pick up one of Odoo's own due actions next: that job shows, never none.
                    assert after["activity"]["cron_job"] is not None, after
                    return None
                return after

            _snap, after = poll(server, session, done, "cron job done")
            assert after["activity"]["state"] == "idle" and after["activity"]["cron_job"] is None

    def test_run_manually_shows_the_job_on_the_request(self, server, session):
        # The bare route exists on 17.0 to 19.0 (18.0 added /<model>/<method> after it).
        url = "/web/dataset/call_button"

        def running(s):
            found = busy_on(s, url)
            job = found and found[1]["activity"]["cron_job"]
            return found if job and job["id"] == cron_id else None

        with Hold() as hold:
            cron_id = arm_cron(server, session, hold.token)
            rpc = {"model": "ir.cron", "method": "method_direct_trigger", "args": [[cron_id]], "kwargs": {}}
            call = Background(server, session, url, rpc=rpc)
            _snap, (_place, entry) = poll(server, session, running, "job run manually")
            activity = entry["activity"]
            assert (activity["kind"], activity["login"]) == ("http", "admin")
            assert activity["cron_job"] == {"id": cron_id, "name": CRON_NAME, "db": server.db}
            hold.release()
            response = call.result()
            assert response.status_code == 200 and "error" not in response.json(), response.text
        assert busy_on(server.snapshot(session), url) is None


class TestPrefork(ActivityChecks):
    @pytest.fixture(scope="class")
    def server(self, odoo_db):
        with OdooServer(odoo_db, workers=2, max_cron_threads=1) as server:
            yield server

    def test_killed_worker_activity_never_shows_under_the_respawned_pid(self, server, session):
        with Hold() as hold:
            call = Background(server, session, BUSY_URL, hold.token)
            snap, (_place, entry) = poll(server, session, lambda s: busy_on(s, BUSY_URL), "busy request")
            victim, since = entry["pid"], entry["activity"]["since"]
            before = {p["pid"] for p in snap["processes"]}
            board_dir = board.server_dir(server.pid, board.start_ticks(server.pid))
            assert [n for n in os.listdir(board_dir) if n.startswith(f"{victim}-")]
            os.kill(victim, signal.SIGKILL)
            # From the moment the kernel has it exiting, it is dead.
            assert wait_until(lambda: board.start_ticks(victim) is None, interval=0.001)

            def respawned(s):
                # Every snapshot, from the kill on: the dead request shows nowhere,
                # and the dead worker (a zombie until the master reaps it) has no activity.
                for _place, item in places(s):
                    activity = item["activity"] or {}
                    assert activity.get("since") != since and activity.get("url") != BUSY_URL, item
                    if item.get("pid") == victim:
                        assert item["activity"] is None and item["sql"] == [], item
                pids = {p["pid"] for p in s["processes"]}
                http = [p for p in s["processes"] if p["role"] == "http"]
                new = [p for p in http if p["pid"] not in before]
                return new[0] if victim not in pids and len(http) == 2 and new else None

            killed_at = time.time()
            snap, new_worker = poll(server, session, respawned, "respawned worker")
            activity = new_worker["activity"]
            assert activity is None or activity["since"] > killed_at
            # Its board file goes; its request log stays (README: Request log).
            assert not [n for n in os.listdir(board_dir) if n.startswith(f"{victim}-") and n.endswith(".board")]
            call.result()
            assert call.error is not None  # the connection died with its worker


class TestThreaded(ActivityChecks):
    @pytest.fixture(scope="class")
    def server(self, odoo_db):
        with OdooServer(odoo_db, workers=0, max_cron_threads=1) as server:
            yield server


def test_overdue_scheduled_actions_are_listed_when_cron_is_off(odoo_db):
    # After the classes above: no server with cron runs on the database now.
    with OdooServer(odoo_db, workers=0, max_cron_threads=0) as server:
        session = server.login_session()
        snap = server.snapshot(session)
        assert snap["cron"]["max_cron_threads"] == 0 and snap["cron"]["runners"] == []
        cron_id = trigger_cron(server, session, uuid.uuid4().hex[:16])
        try:
            snap = server.snapshot(session)
            overdue = {c["id"]: c for c in snap["cron"]["overdue"]}
            assert overdue[cron_id]["name"] == CRON_NAME and overdue[cron_id]["db"] == odoo_db
            assert 0 <= overdue[cron_id]["overdue"] < 120
            assert overdue[cron_id]["due_at"] <= snap["taken_at"]
            # Oldest first.
            dues = [c["due_at"] for c in snap["cron"]["overdue"]]
            assert dues == sorted(dues)
        finally:
            cancel_cron(server, session)
        snap = server.snapshot(session)
        assert cron_id not in {c["id"] for c in snap["cron"]["overdue"]}
