"""What every worker is doing, against real Odoo 18 servers (prefork and threaded).

The routes and the scheduled action of ``tests/addons/worker_inspector_test``
hold a worker busy while the test keeps a token file, so each check releases
the worker as soon as it has seen what it expects: no fixed sleeps.
"""

import contextlib
import os
import signal
import tempfile
import threading
import time
import uuid

import pytest
import requests
from odoo_harness import OdooServer

from worker_inspector.engine import board

pytestmark = pytest.mark.odoo

BUSY_URL = "/worker_inspector_test/busy"
PG_SLEEP_URL = "/worker_inspector_test/pg_sleep"
SNAPSHOT_URL = "/worker_inspector/api/snapshot"
CRON_NAME = "Worker Inspector Test: sleep"


class Hold:
    """A token file: the test route or scheduled action stays busy while it exists."""

    def __init__(self):
        self.token = uuid.uuid4().hex[:16]
        self.path = os.path.join(tempfile.gettempdir(), f"worker_inspector_test-{self.token}")

    def __enter__(self):
        open(self.path, "w").close()
        return self

    def release(self):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)

    def __exit__(self, *exc):
        self.release()


class Background(threading.Thread):
    """A request in its own connection (closed after), so the test can look meanwhile:
    a GET with ``token``, or a JSON-RPC POST of ``rpc`` params."""

    def __init__(self, server, session, path, token=None, rpc=None):
        super().__init__(daemon=True)
        self.url, self.token, self.rpc = server.url + path, token, rpc
        self.cookies = session.cookies.copy()
        self.response = self.error = None
        self.start()

    def run(self):
        options = {"cookies": self.cookies, "headers": {"Connection": "close"}, "timeout": 120}
        try:
            if self.rpc is None:
                self.response = requests.get(self.url, params={"token": self.token}, **options)
            else:
                body = {"jsonrpc": "2.0", "method": "call", "params": self.rpc}
                self.response = requests.post(self.url, json=body, **options)
        except requests.RequestException as exc:
            self.error = exc

    def result(self, timeout=60):
        self.join(timeout)
        assert not self.is_alive(), f"{self.url} did not end"
        return self.response


def poll(server, session, find, what, timeout=60):
    """Take snapshots until ``find(snapshot)`` returns something; return both."""
    deadline = time.monotonic() + timeout
    while True:
        snap = server.snapshot(session)
        found = find(snap)
        if found:
            return snap, found
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not seen in {timeout}s; last activity: {_activities(snap)}")
        time.sleep(0.1)


def _activities(snap):
    return [(p["pid"], p["role"], p["activity"]) for p in snap["processes"]] + [
        (t["native_id"], t["kind"], t["activity"]) for t in snap["threads"]
    ]


def places(snap):
    """Where activity shows: the processes, and the threads of the serving process."""
    return [("process", p) for p in snap["processes"]] + [("thread", t) for t in snap["threads"]]


def busy_on(snap, url):
    """``(place, entry)`` of the process (prefork) or request thread (threaded) busy on ``url``."""
    kind = "process" if snap["server"]["mode"] == "prefork" else "thread"
    for place, entry in places(snap):
        activity = entry["activity"]
        if place == kind and activity and activity["state"] == "busy" and activity["url"] == url:
            return place, entry
    return None


def session_uid(server, session):
    body = session.post(
        server.url + "/web/session/get_session_info", json={"jsonrpc": "2.0", "method": "call", "params": {}}
    ).json()
    return body["result"]["uid"]


def arm_cron(server, session, token):
    response = session.post(server.url + "/worker_inspector_test/cron/arm", data={"token": token}, timeout=60)
    response.raise_for_status()
    return response.json()["cron_id"]


def trigger_cron(server, session, token):
    response = session.post(server.url + "/worker_inspector_test/cron/trigger", data={"token": token}, timeout=60)
    response.raise_for_status()
    return response.json()["cron_id"]


def cancel_cron(server, session):
    session.post(server.url + "/worker_inspector_test/cron/cancel", timeout=60).raise_for_status()


def running_job(snap, cron_id):
    for runner in snap["cron"]["runners"]:
        job = (runner["activity"] or {}).get("cron_job")
        if job and job["id"] == cron_id:
            return runner
    return None


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
            # Busy: this request and the one answering the snapshot.
            assert snap["http_busy"] >= 2
            if prefork:
                roles = {p["pid"]: p["role"] for p in snap["processes"]}
                assert roles[entry["pid"]] == "http"
                assert snap["served_by"] != entry["pid"]
                assert (snap["utilization"], snap["http_capacity"]) == (1.0, 2)
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
            sessions = [q for q in found[1]["sql"] if q["state"] == "active" and "pg_sleep" in q["query"]]
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
                return next(r for r in s["cron"]["runners"] if (r["pid"], r["tid"]) == (runner["pid"], runner["tid"]))

            _snap, after = poll(server, session, done, "cron job done")
            assert after["activity"]["state"] == "idle" and after["activity"]["cron_job"] is None

    def test_run_manually_shows_the_job_on_the_request(self, server, session):
        url = "/web/dataset/call_button/ir.cron/method_direct_trigger"

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
            deadline = time.monotonic() + 10
            while board.start_ticks(victim) is not None and time.monotonic() < deadline:
                time.sleep(0.001)

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
            assert not [n for n in os.listdir(board_dir) if n.startswith(f"{victim}-")]
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
