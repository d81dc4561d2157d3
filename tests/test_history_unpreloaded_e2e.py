"""History of a real prefork server that does not preload its database (no ``-d``).

This is how a server of several databases runs: the master never imports the addon, and
each worker imports it at its first request to a database where it is installed, its loop
already running. A worker then elects itself to sample the series, records its own clean
exit, and the exit of a worker the master killed is inferred from the record it left behind.
"""

import os
import time

import psutil
import pytest
import requests
from odoo_harness import OdooServer
from test_history_e2e import (
    BREAK_LOOP_URL,
    LOOP_BROKEN,
    _flock_holders,
    broken_loop_exit,
    history,
    killed_for_limit_time_real,
    wait_exit,
)
from test_recycle_e2e import csrf_token, recycle, wait_respawned, workers_by_role
from waiting import wait_until

pytestmark = pytest.mark.odoo

LIMIT_REQUEST = 150
LIMIT_TIME_REAL = 8


@pytest.fixture(scope="module")
def server(odoo_db):
    args = [f"--limit-request={LIMIT_REQUEST}", f"--limit-time-real={LIMIT_TIME_REAL}"]
    env = {"WORKER_INSPECTOR_HISTORY_INTERVAL": "1"}
    with OdooServer(odoo_db, workers=2, max_cron_threads=0, extra_args=args, env=env, preload=False) as srv:
        yield srv


@pytest.fixture(scope="module")
def admin(server):
    return server.login_session()


def sampler_lock(server):
    from worker_inspector.engine import board
    from worker_inspector.engine.sampler import LOCK_NAME

    return os.path.join(board.server_dir(server.pid, board.start_ticks(server.pid)), LOCK_NAME)


def http_workers_recording(server, session):
    """Wait until every HTTP worker imported the addon (it shows activity); their pids."""

    def all_recording():
        snap = server.snapshot(session)
        http = [p for p in snap["processes"] if p["role"] == "http"]
        return len(http) == server.workers and all(p["activity"] for p in http) and [p["pid"] for p in http]

    pids = wait_until(all_recording, 60, interval=0.1)
    assert pids, f"not every HTTP worker records: {server.snapshot(session)['processes']}"
    return set(pids)


def points_after(server, session, moment, timeout=20):
    """The series once it has a point taken after ``moment`` (epoch seconds)."""
    deadline = time.monotonic() + timeout
    while True:
        points = history(server, session, kinds="series")["series"]["points"]
        if (points and points[-1]["t"] > moment) or time.monotonic() > deadline:
            return points
        time.sleep(0.3)


def test_the_master_does_not_sample_a_worker_does_and_the_series_outlive_it(server, admin):
    first = server.snapshot(admin)["served_by"]  # the worker that served this server's first API call
    recording = http_workers_recording(server, admin)
    assert first in recording
    lock = sampler_lock(server)
    holders = wait_until(lambda: os.path.exists(lock) and _flock_holders(lock), timeout=30)
    assert holders and holders <= recording and server.pid not in holders, (holders, recording, server.pid)
    before = points_after(server, admin, time.time() + 1)
    assert len(before) >= 2
    started = time.time()
    workers = set(workers_by_role(server))
    response = recycle(server, admin, csrf_token(server, admin), pid=first, force=1)
    assert response.status_code == 200, response.text
    wait_respawned(server, first, "http", workers)
    respawned = time.time()
    gone = wait_exit(server, admin, lambda e: e["pid"] == first, "recycled", since=started, pid=first)
    assert gone["reason"] == "recycled" and "admin" in gone["detail"], gone
    # Another worker samples now, and what was sampled before is all still there.
    after = points_after(server, admin, respawned + 1)
    assert after[-1]["t"] > respawned + 1, after[-3:]
    assert {p["t"] for p in before} <= {p["t"] for p in after}
    holders = _flock_holders(lock)
    assert holders and first not in holders and holders <= set(workers_by_role(server)), holders


def test_a_worker_that_reaches_limit_request_records_its_own_exit(server, admin):
    """Its loop ran before it imported the addon: the exit is still its own, with its cause."""
    http_workers_recording(server, admin)
    started = time.time()
    with requests.Session() as client:
        for _ in range(2 * LIMIT_REQUEST + 20):
            assert client.get(server.url + "/web/health", headers={"Connection": "close"}, timeout=60).ok
    gone = wait_exit(server, admin, lambda e: e["reason"] == "limit_request", "limit_request", since=started)
    assert gone["role"] == "http" and gone["requests"] == LIMIT_REQUEST, gone
    assert str(LIMIT_REQUEST) in gone["detail"] and gone["doing"]["url"] == "/web/health", gone
    assert not psutil.pid_exists(gone["pid"]) or gone["pid"] not in workers_by_role(server)


def test_a_worker_killed_for_limit_time_real_is_inferred_with_its_request(server, admin):
    """Only the master knows it killed the worker, and it did not import the addon: the cause
    is inferred from the record left behind, busy on one request for limit_time_real."""
    http_workers_recording(server, admin)
    gone = killed_for_limit_time_real(server, admin, LIMIT_TIME_REAL)
    assert gone["detail"].startswith("killed by the master: request busy"), gone
    assert f"limit_time_real {LIMIT_TIME_REAL} s" in gone["detail"], gone


def test_an_exception_that_escapes_the_loop_is_crashed_not_a_reload(server, admin):
    """Its loop was not wrapped: the worker still tells the exception (``alive`` still true,
    the text from Odoo's log) from a reload."""
    http_workers_recording(server, admin)
    gone = broken_loop_exit(server, admin)
    assert (gone["reason"], gone["detail"]) == ("crashed", f"RuntimeError: {LOOP_BROKEN}"), gone
    assert gone["doing"]["url"] == BREAK_LOOP_URL, gone
