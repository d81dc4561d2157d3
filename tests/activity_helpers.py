"""Helpers for end-to-end tests that watch real workers being busy.

The routes and the scheduled action of ``tests/addons/worker_inspector_test``
hold a worker busy while the test keeps a token file, so each check releases
the worker as soon as it has seen what it expects: no fixed sleeps.
"""

import contextlib
import os
import re
import tempfile
import threading
import uuid

import requests
from odoo_harness import web_client_path
from waiting import wait_until

BUSY_URL = "/worker_inspector_test/busy"
PG_SLEEP_URL = "/worker_inspector_test/pg_sleep"
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
    last = {}

    def seen():
        last["snap"] = server.snapshot(session)
        return find(last["snap"])

    found = wait_until(seen, timeout, interval=0.1)
    if not found:
        raise AssertionError(f"{what}: not seen in {timeout}s; last activity: {_activities(last['snap'])}")
    return last["snap"], found


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


def csrf_token(server, session):
    """The token the web client's page gives its scripts (``odoo.csrf_token``)."""
    page = session.get(server.url + web_client_path(), timeout=120)
    page.raise_for_status()
    return re.search(r'csrf_token: "([^"]+)"', page.text).group(1)
