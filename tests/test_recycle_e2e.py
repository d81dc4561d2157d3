"""Recycling a worker from the API, against real Odoo 18 servers, checked with psutil from outside."""

import contextlib
import os

import psutil
import pytest
import requests
from activity_helpers import BUSY_URL, Background, Hold, busy_on, csrf_token, poll
from odoo_harness import OdooServer
from waiting import wait_until

pytestmark = pytest.mark.odoo

RECYCLE_URL = "/worker_inspector/api/recycle"
WORKER_TITLES = {"http": "odoo: WorkerHTTP", "cron": "odoo: WorkerCron"}


@pytest.fixture(scope="module")
def admin(prefork):
    return prefork.login_session()


def recycle(server, session, token, **params):
    data = dict(params, csrf_token=token) if token else params
    return session.post(server.url + RECYCLE_URL, data=data, timeout=60)


def workers_by_role(server):
    """``{pid: role}`` of the master's titled workers, read from outside."""
    found = {}
    for child in server.children():
        with contextlib.suppress(psutil.Error):
            title = " ".join(child.cmdline())
            for role, prefix in WORKER_TITLES.items():
                if title.startswith(prefix):
                    found[child.pid] = role
    return found


def pid_of(server, role):
    return min(pid for pid, r in workers_by_role(server).items() if r == role)


def wait_respawned(server, old_pid, role, before, timeout=60):
    """Wait until ``old_pid`` is gone and the master is back to full strength.

    ``before``: the worker pids before the recycle. Returns the new worker's pid.
    """

    def replaced():
        workers = workers_by_role(server)
        new = [pid for pid, r in workers.items() if r == role and pid not in before]
        if old_pid not in workers and not psutil.pid_exists(old_pid) and new and server._children_ready():
            return new[0]
        return None

    new_pid = wait_until(replaced, timeout, interval=0.1)
    if new_pid:
        return new_pid
    raise AssertionError(f"{role} worker {old_pid} not replaced in {timeout}s: {workers_by_role(server)}")


class BusyWorker:
    """An HTTP worker held busy on a request (in the background) until ``release()``."""

    def __init__(self, server, session):
        self.hold = Hold().__enter__()
        self.call = Background(server, session, BUSY_URL, self.hold.token)
        _snap, (_place, entry) = poll(server, session, lambda s: busy_on(s, BUSY_URL), "busy request")
        self.pid = entry["pid"]
        self.elapsed = entry["activity"]["elapsed"]
        self.workers_before = set(workers_by_role(server))

    def release(self):
        self.hold.release()


@pytest.fixture
def busy_worker(prefork, admin):
    busy = BusyWorker(prefork, admin)
    yield busy
    busy.release()


def test_graceful_recycle_lets_the_busy_request_finish(prefork, admin, busy_worker):
    worker = busy_worker.pid
    response = recycle(prefork, admin, csrf_token(prefork, admin), pid=str(worker))
    assert response.status_code == 200, response.text
    assert response.json() == {"pid": worker, "role": "http", "signal": "SIGINT", "graceful": True}

    def still_running(snap):
        # Well after the signal the request is still running: the worker waits for it.
        found = busy_on(snap, BUSY_URL)
        return found if found and found[1]["activity"]["elapsed"] > busy_worker.elapsed + 1.0 else None

    _snap, (_place, later) = poll(prefork, admin, still_running, "request still running")
    assert later["pid"] == worker
    assert psutil.Process(worker).status() != psutil.STATUS_ZOMBIE
    busy_worker.release()
    assert busy_worker.call.result().status_code == 200
    new = wait_respawned(prefork, worker, "http", busy_worker.workers_before)
    assert new != worker
    assert sorted(workers_by_role(prefork).values()) == ["cron", "http", "http"]
    assert f"Worker {worker} recycled by admin (SIGINT)" in prefork.log.read_text()


def test_force_recycle_kills_the_worker_mid_request(prefork, admin, busy_worker):
    worker = busy_worker.pid
    response = recycle(prefork, admin, csrf_token(prefork, admin), pid=str(worker), force="1")
    assert response.status_code == 200, response.text
    assert response.json() == {"pid": worker, "role": "http", "signal": "SIGTERM", "graceful": False}
    # Gone while the test still holds its request: that request never gets an answer.
    new = wait_respawned(prefork, worker, "http", busy_worker.workers_before)
    busy_worker.call.join(60)
    assert busy_worker.call.response is None and busy_worker.call.error is not None
    assert new != worker
    assert sorted(workers_by_role(prefork).values()) == ["cron", "http", "http"]
    assert f"Worker {worker} recycled by admin (SIGTERM)" in prefork.log.read_text()


def test_force_recycle_of_the_answering_worker_is_graceful(prefork, admin, busy_worker):
    # One HTTP worker is held busy: the other one answers, and is the one asked to go.
    token = csrf_token(prefork, admin)
    other = next(pid for pid, role in workers_by_role(prefork).items() if role == "http" and pid != busy_worker.pid)
    response = recycle(prefork, admin, token, pid=str(other), force="1")
    assert response.status_code == 200, response.text
    assert response.json() == {"pid": other, "role": "http", "signal": "SIGINT", "graceful": True}
    busy_worker.release()
    assert busy_worker.call.result().status_code == 200
    assert wait_respawned(prefork, other, "http", busy_worker.workers_before) != other


def test_recycle_cron_worker(prefork, admin):
    worker = pid_of(prefork, "cron")
    before = set(workers_by_role(prefork))
    response = recycle(prefork, admin, csrf_token(prefork, admin), pid=str(worker))
    assert response.status_code == 200, response.text
    assert response.json()["role"] == "cron"
    assert wait_respawned(prefork, worker, "cron", before) != worker


def test_refusals_kill_nothing(prefork, admin):
    token = csrf_token(prefork, admin)
    before = {child.pid for child in prefork.children()}
    gevent = next(c.pid for c in prefork.children() if "gevent" in c.cmdline())
    http = pid_of(prefork, "http")
    refused = [
        ({"pid": str(prefork.pid)}, "master process"),
        ({"pid": str(gevent)}, "gevent process"),
        ({"pid": str(os.getpid())}, "not a worker of this Odoo server"),
        ({"pid": "abc"}, "pid must be a process id"),
        ({"pid": "-1"}, "pid must be a process id"),
        ({"pid": "0"}, "Not a process id"),
        ({}, "pid must be a process id"),
        ({"pid": str(http), "force": "maybe"}, "force must be 0 or 1"),
        ({"pid": str(http), "signal": "9"}, "Unknown parameter(s): signal"),
    ]
    for params, reason in refused:
        response = recycle(prefork, admin, token, **params)
        assert response.status_code == 400, (params, response.text)
        assert reason in response.json()["error"]["reason"], (params, response.text)
    no_token = recycle(prefork, admin, None, pid=str(http))
    assert no_token.status_code == 400
    assert "csrf_token" in no_token.json()["error"]["reason"]
    wrong_method = admin.get(prefork.url + RECYCLE_URL, params={"pid": str(http)}, timeout=60)
    assert wrong_method.status_code == 405
    assert psutil.pid_exists(prefork.pid)
    assert {child.pid for child in prefork.children()} == before


def test_only_settings_administrators_may_recycle(prefork, admin):
    http = pid_of(prefork, "http")
    login, password = prefork.create_internal_user(admin)
    user = prefork.login_session(login, password)
    denied = recycle(prefork, user, csrf_token(prefork, user), pid=str(http))
    assert denied.status_code == 403
    assert denied.json()["error"]["reason"]
    anonymous = requests.post(prefork.url + RECYCLE_URL, data={"pid": str(http)}, timeout=60)
    assert anonymous.status_code == 401
    assert psutil.pid_exists(http) and http in workers_by_role(prefork)


def test_threaded_server_refuses(odoo_db):
    with OdooServer(odoo_db, workers=0) as server:
        session = server.login_session()
        response = recycle(server, session, csrf_token(server, session), pid=str(server.pid))
        assert response.status_code == 400
        assert "threaded" in response.json()["error"]["reason"]
        assert server.proc.poll() is None
