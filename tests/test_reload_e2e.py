"""A SIGHUP reload of a prefork server: up to 18.0 the master stops its
workers and re-executes itself; 19.0 forks first, re-executes keeping the
listening socket, and the fork stops the old workers. Either way the server
keeps its pid and start time, so the API reports the same server, and after
the reload only the new workers, reporting their activity.
"""

import os
import signal

import psutil
import pytest
import requests
from odoo_harness import OdooServer
from waiting import wait_until

pytestmark = pytest.mark.odoo


def _http_workers(snap):
    return {p["pid"] for p in snap["processes"] if p["role"] == "http"}


def test_sighup_reload_keeps_the_server_and_shows_only_the_new_workers(odoo_db):
    with OdooServer(odoo_db, workers=2, max_cron_threads=0) as server:
        session = server.login_session()
        before = server.snapshot(session)
        old_workers = _http_workers(before)
        assert len(old_workers) == 2
        os.kill(server.pid, signal.SIGHUP)

        last = {"snap": None, "children": set()}

        def reloaded():
            try:
                snap = server.snapshot(session)
            except requests.RequestException:
                snap = None
            children = {c.pid for c in psutil.Process(server.pid).children()}
            last.update(snap=snap, children=children)
            return (
                snap
                and len(_http_workers(snap)) == 2
                and not _http_workers(snap) & old_workers
                and not children & old_workers
                and len(children) == server.expected_children()
            )

        if not wait_until(reloaded, 120, interval=0.5):
            pytest.fail(f"no reloaded server in 120 s; last snapshot: {last['snap'] and last['snap']['processes']}")
        snap, children = last["snap"], last["children"]

        assert snap["server"]["pid"] == before["server"]["pid"] == server.pid
        assert {p["pid"] for p in snap["processes"]} == children | {server.pid}
        serving = next(p for p in snap["processes"] if p["pid"] == snap["served_by"])
        assert serving["activity"]["state"] == "busy"
        assert serving["activity"]["url"] == "/worker_inspector/api/snapshot"
