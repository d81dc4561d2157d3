"""Stacks, slow-request stacks and profiles of real Odoo servers (prefork and threaded)."""

import subprocess
import sys
import time

import psutil
import psycopg2
import pytest
from activity_helpers import BUSY_URL, PG_SLEEP_URL, Background, Hold, busy_on, csrf_token, poll
from odoo_harness import OdooServer

from worker_inspector.engine import stacks

SLOW_PARAM = "worker_inspector.slow_stack_seconds"

pytestmark = pytest.mark.odoo

BURN_URL = "/worker_inspector_test/burn_held"


def get_stack(server, session, pid, **params):
    return session.get(server.url + "/worker_inspector/api/stack", params={"pid": pid, **params}, timeout=60)


def _worker_on(server, session, url):
    """``(pid, native id)`` of the thread serving ``url``, once it is authenticated
    (the native id only in threaded mode: a prefork worker serves in its work thread)."""

    def found(snap):
        hit = busy_on(snap, url)
        return hit if hit and hit[1]["activity"]["login"] else None

    _snap, (_place, entry) = poll(server, session, found, f"busy on {url}")
    pid = entry.get("pid") or server.pid
    return pid, entry.get("native_id") or pid


def _thread(answer, url):
    """The thread whose activity is serving ``url``."""
    found = [t for t in answer["threads"] if (t["activity"] or {}).get("url") == url]
    assert len(found) == 1, [(t["name"], t["activity"]) for t in answer["threads"]]
    return found[0]


class StackChecks:
    @pytest.fixture(scope="class")
    def session(self, server):
        return server.login_session()

    def test_stack_of_a_sleeping_route_names_its_function(self, server, session):
        with Hold() as hold:
            call = Background(server, session, BUSY_URL, hold.token)
            pid, tid = _worker_on(server, session, BUSY_URL)
            started = time.monotonic()
            response = get_stack(server, session, pid)
            elapsed = time.monotonic() - started
        call.result()
        assert response.status_code == 200, response.text
        assert elapsed < 1.5
        answer = response.json()
        assert answer["pid"] == pid and answer["taken_at"] > 0
        thread = _thread(answer, BUSY_URL)
        assert thread["activity"]["state"] == "busy" and thread["activity"]["login"] == "admin"
        if server.workers == 0:
            assert thread["native_id"] == tid
        frames = thread["frames"]
        assert set(frames[0]) == {"file", "line", "function", "code", "origin"}
        mine = next(f for f in frames if f["function"] == "busy")
        assert mine["file"] == "worker_inspector_test/controllers/main.py"
        assert mine["origin"] == "addon"
        assert "held(token, started)" in mine["code"] or "time.sleep" in mine["code"]
        http_frame = next(f for f in frames if f["file"].endswith("http.py") and f["origin"] == "odoo")
        assert http_frame["file"] == "odoo/http.py"

    def test_stack_of_a_route_waiting_on_pg_sleep_shows_cursor_execute(self, server, session):
        with Hold() as hold:
            call = Background(server, session, PG_SLEEP_URL, hold.token)
            pid, _tid = _worker_on(server, session, PG_SLEEP_URL)
            time.sleep(0.2)  # inside pg_sleep(0.5) most of the time
            started = time.monotonic()
            answers = []
            for _ in range(5):
                response = get_stack(server, session, pid)
                assert response.status_code == 200, response.text
                answers.append(_thread(response.json(), PG_SLEEP_URL))
            elapsed = (time.monotonic() - started) / 5
        call.result()
        assert elapsed < 1.0
        in_sql = [
            t for t in answers if any(f["function"] == "execute" and f["file"] == "odoo/sql_db.py" for f in t["frames"])
        ]
        assert in_sql, [[f["function"] for f in t["frames"][-4:]] for t in answers]
        assert in_sql[0]["frames"][-1]["function"] == "execute"

    def test_foreign_pids_get_400_and_are_never_signalled(self, server, session, tmp_path):
        # A process of this user outside the server, and the master or server itself for a pid of another server.
        marker = tmp_path / "signalled"
        code = (
            "import signal, sys, time, pathlib\n"
            f"p = pathlib.Path({str(marker)!r})\n"
            "for s in (signal.SIGURG, signal.SIGUSR1, signal.SIGUSR2, signal.SIGQUIT, signal.SIGINT, signal.SIGTERM):\n"
            "    signal.signal(s, lambda n, f: p.write_text(str(n)))\n"
            "time.sleep(60)\n"
        )
        stranger = subprocess.Popen([sys.executable, "-c", code])
        try:
            for pid in (stranger.pid, 1, 0, 999999999):
                response = get_stack(server, session, pid)
                assert response.status_code == 400, response.text
                assert "not a process of this Odoo server" in response.json()["error"]["reason"]
            assert get_stack(server, session, "x1").status_code == 400
            time.sleep(0.3)
            assert not marker.exists()
            assert stranger.poll() is None
        finally:
            stranger.kill()
            stranger.wait()


class TestPrefork(StackChecks):
    @pytest.fixture(scope="class")
    def server(self, prefork):
        return prefork

    def test_a_pid_of_another_odoo_server_gets_400(self, server, session, odoo_db):
        with OdooServer(odoo_db, workers=1, max_cron_threads=0) as other:
            other_session = other.login_session()
            assert other_session.get(other.url + "/web/login", timeout=60).ok
            for child in other.children():
                response = get_stack(server, session, child.pid)
                assert response.status_code == 400, response.text
            assert get_stack(server, session, other.pid).status_code == 400

    def test_the_master_and_gevent_do_not_report(self, server, session):
        response = get_stack(server, session, server.pid)
        assert response.status_code == 400
        assert "does not report" in response.json()["error"]["reason"]

    def test_a_profile_of_a_cpu_burning_route_attributes_most_samples_to_it(self, server, session):
        with Hold() as hold:
            call = Background(server, session, BURN_URL, hold.token)
            pid, _tid = _worker_on(server, session, BURN_URL)
            response = session.post(
                server.url + "/worker_inspector/api/profile",
                data={"pid": pid, "seconds": 2, "csrf_token": csrf_token(server, session)},
                timeout=60,
            )
        call.result()
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["speedscope_url"] == f"/worker_inspector/speedscope/{body['profile_id']}"
        profile = session.get(server.url + f"/worker_inspector/api/profile/{body['profile_id']}", timeout=60)
        assert profile.status_code == 200, profile.text
        data = profile.json()
        names = [frame["name"] for frame in data["shared"]["frames"]]
        burning = {i for i, name in enumerate(names) if name == "burn_cpu"}
        # The thread serving the request (a prefork worker's work thread) is a root frame.
        serving = {i for i, name in enumerate(names) if name.startswith("thread ") and "workthread" in name}
        assert burning and len(serving) == 1
        total = inside = 0.0
        for prof in data["profiles"]:
            stack = []
            for event in prof["events"]:
                if event["type"] == "O":
                    stack.append((event["frame"], event["at"]))
                    continue
                frame, opened = stack.pop()
                assert frame == event["frame"]
                if frame in burning and not any(f in burning for f, _at in stack):
                    inside += event["at"] - opened
                elif frame in serving:
                    total += event["at"] - opened
        assert total > 0.1 and inside / total >= 0.8, (inside, total)
        page = session.get(server.url + body["speedscope_url"], timeout=60)
        assert page.status_code == 200 and "/worker_inspector/static/lib/speedscope/speedscope.026f36b0.js" in page.text
        assert session.get(server.url + "/worker_inspector/static/lib/speedscope/speedscope.026f36b0.js").ok


class TestThreaded(StackChecks):
    @pytest.fixture(scope="class")
    def server(self, odoo_db):
        with OdooServer(odoo_db, workers=0, max_cron_threads=1) as server:
            yield server


SHORT_LIMIT = 10


@pytest.fixture(scope="module")
def short_limit(odoo_db):
    """Prefork, requests killed after 10 s: slow stacks are taken at 4 s (``stacks.slow_cap``:
    before a request that began a 4 s beat after the worker's heartbeat is killed, with two
    of the writer's turns to spare)."""
    with OdooServer(odoo_db, workers=2, max_cron_threads=0, extra_args=(f"--limit-time-real={SHORT_LIMIT}",)) as server:
        yield server


@pytest.fixture(scope="module")
def threaded_slow(odoo_db):
    """Threaded (no time limit applies), the database's slow threshold lowered to 1 s."""
    conn = psycopg2.connect(dbname=odoo_db)
    conn.autocommit = True
    try:
        with conn.cursor() as cr:
            cr.execute(
                "INSERT INTO ir_config_parameter (key, value) VALUES (%s, '1') "
                "ON CONFLICT (key) DO UPDATE SET value = '1'",
                (SLOW_PARAM,),
            )
        with OdooServer(odoo_db, workers=0, max_cron_threads=0) as server:
            yield server
    finally:
        with conn.cursor() as cr:
            cr.execute("DELETE FROM ir_config_parameter WHERE key = %s", (SLOW_PARAM,))
        conn.close()


def _slow(server, session, pid=None):
    params = {"pid": pid} if pid else {}
    response = session.get(server.url + "/worker_inspector/api/slow_requests", params=params, timeout=60)
    assert response.status_code == 200, response.text
    return response.json()["requests"]


def _history(server, session, **params):
    response = session.get(server.url + "/worker_inspector/api/history", params=params, timeout=60)
    assert response.status_code == 200, response.text
    return response.json()


def _functions(frames):
    return [frame["function"] for frame in frames or ()]


def _request_records(server, session, pid, since, url=BUSY_URL):
    """History request records since ``since``, once one of ``url`` served by ``pid`` is there."""
    deadline = time.monotonic() + 30
    while True:
        records = _history(server, session, since=since, kinds="requests")["requests"]
        if any(r["pid"] == pid and r["url"] == url for r in records) or time.monotonic() > deadline:
            return records
        time.sleep(0.2)


def _hold_until_slow(server, session, deadline_seconds):
    """Serve BUSY_URL until its slow stack is kept; ``(pid, kept entries, response)``."""
    with Hold() as hold:
        call = Background(server, session, BUSY_URL, hold.token)
        pid, _tid = _worker_on(server, session, BUSY_URL)
        deadline = time.monotonic() + deadline_seconds
        while not (kept := [e for e in _slow(server, session, pid) if e["url"] == BUSY_URL]) and (
            time.monotonic() < deadline
        ):
            time.sleep(0.1)
        hold.release()
    return pid, kept, call.result()


def test_a_slow_request_keeps_its_stack_and_a_killed_one_its_url_and_stack(short_limit):
    server = short_limit
    session = server.login_session()
    since = time.time()
    pid, kept, response = _hold_until_slow(server, session, 9)
    assert len(kept) == 1, kept
    assert response.status_code == 200
    entry = kept[0]
    assert (entry["url"], entry["login"], entry["db"], entry["kind"]) == (BUSY_URL, "admin", server.db, "http")
    assert entry["native_id"] != pid  # the worker's work thread, not its main thread
    cap = stacks.slow_cap((SHORT_LIMIT,))
    assert cap <= entry["elapsed"] < cap + stacks.WATCH_INTERVAL, (cap, entry["elapsed"])
    assert "busy" in _functions(entry["stack"])
    # The history's record of that request carries the same stack; fast ones none.
    records = _request_records(server, session, pid, since)
    slow = [r for r in records if r["pid"] == pid and r["url"] == BUSY_URL]
    assert len(slow) == 1, records
    assert slow[0]["stack"] == entry["stack"]
    assert all(set(f) >= {"file", "line", "function", "code"} for f in slow[0]["stack"])
    fast = [r for r in records if r["url"] != BUSY_URL]
    assert fast and all(r["stack"] is None for r in fast), fast
    # Held past limit_time_real: the master kills the worker; its stack stays.
    since = time.time()
    with Hold() as hold:
        call = Background(server, session, BUSY_URL, hold.token)
        pid, _tid = _worker_on(server, session, BUSY_URL)
        proc = psutil.Process(pid)
        proc.wait(timeout=30)
    response = call.result()
    assert response is None or response.status_code >= 500
    kept = _slow(server, session, pid)
    assert kept and kept[-1]["url"] == BUSY_URL and kept[-1]["pid"] == pid
    assert "busy" in _functions(kept[-1]["stack"])
    assert not psutil.pid_exists(pid) or psutil.Process(pid).create_time() != proc.create_time()
    # Its exit names the request it was killed on, with the stack it had just before.
    deadline = time.monotonic() + 30
    while not (gone := [e for e in _history(server, session, since=since, kinds="exits")["exits"] if e["pid"] == pid]):
        assert time.monotonic() < deadline, "no exit recorded"
        time.sleep(0.3)
    assert gone[0]["reason"] == "time_real", gone
    assert gone[0]["doing"]["url"] == BUSY_URL
    assert gone[0]["doing"]["stack"] == kept[-1]["stack"]
    assert "busy" in _functions(gone[0]["doing"]["stack"])


def test_threaded_a_request_slower_than_the_threshold_has_its_stack_in_the_history(threaded_slow):
    server = threaded_slow
    session = server.login_session()
    since = time.time()
    pid, kept, response = _hold_until_slow(server, session, 10)
    assert response.status_code == 200
    assert len(kept) == 1 and 1.0 <= kept[0]["elapsed"] < 2.0, kept
    records = _request_records(server, session, pid, since)
    slow = [r for r in records if r["url"] == BUSY_URL]
    assert len(slow) == 1 and slow[0]["pid"] == server.pid, records
    assert "busy" in _functions(slow[0]["stack"])
    assert slow[0]["stack"] == kept[0]["stack"]
    assert all(r["stack"] is None for r in records if r["url"] != BUSY_URL)
