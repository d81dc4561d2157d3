"""Stacks, slow-request stacks and profiles of real Odoo servers (prefork and threaded)."""

import subprocess
import sys
import time

import psutil
import pytest
from activity_helpers import BUSY_URL, PG_SLEEP_URL, Background, Hold, busy_on, csrf_token, poll
from odoo_harness import OdooServer

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


@pytest.fixture(scope="module")
def short_limit(odoo_db):
    """Prefork, requests killed after 10 s: slow stacks are taken at 7.5 s (0.75 of the limit)."""
    with OdooServer(odoo_db, workers=2, max_cron_threads=0, extra_args=("--limit-time-real=10",)) as server:
        yield server


def _slow(server, session, pid=None):
    params = {"pid": pid} if pid else {}
    response = session.get(server.url + "/worker_inspector/api/slow_requests", params=params, timeout=60)
    assert response.status_code == 200, response.text
    return response.json()["requests"]


def test_a_slow_request_keeps_its_stack_and_a_killed_one_its_url_and_stack(short_limit):
    server = short_limit
    session = server.login_session()
    with Hold() as hold:
        call = Background(server, session, BUSY_URL, hold.token)
        pid, _tid = _worker_on(server, session, BUSY_URL)
        deadline = time.monotonic() + 9
        while not (kept := _slow(server, session, pid)) and time.monotonic() < deadline:
            time.sleep(0.1)
        hold.release()
    assert len(kept) == 1, kept
    assert call.result().status_code == 200
    entry = kept[0]
    assert (entry["url"], entry["login"], entry["db"], entry["kind"]) == (BUSY_URL, "admin", server.db, "http")
    assert entry["native_id"] != pid  # the worker's work thread, not its main thread
    assert 7.5 <= entry["elapsed"] < 8.5
    assert "busy" in [f["function"] for f in entry["stack"]]
    # Held past limit_time_real: the master kills the worker; its stack stays.
    with Hold() as hold:
        call = Background(server, session, BUSY_URL, hold.token)
        pid, _tid = _worker_on(server, session, BUSY_URL)
        proc = psutil.Process(pid)
        proc.wait(timeout=30)
    response = call.result()
    assert response is None or response.status_code >= 500
    kept = _slow(server, session, pid)
    assert kept and kept[-1]["url"] == BUSY_URL and kept[-1]["pid"] == pid
    assert "busy" in [f["function"] for f in kept[-1]["stack"]]
    assert not psutil.pid_exists(pid) or psutil.Process(pid).create_time() != proc.create_time()
