"""The request path of a real prefork worker, counted call by call (``call_counting``).

With the addon installed, a request runs its WSGI hook and no other function of
the addon: not even a ``start_response`` of its own (the status is read from
werkzeug's), no override of Odoo's request handling, no write. Counts, not times: exact on a shared machine. On a
threaded server, each request's thread reads its CPU clock once.
"""

import collections
import os
import time
import xmlrpc.client
from pathlib import Path

import pytest
import requests
from call_counting import counting, counting_env, from_files
from odoo_harness import ADMIN_LOGIN, ADMIN_PASSWORD, OdooServer

from worker_inspector.engine.classify import HTTP_REQUEST_THREAD

pytestmark = pytest.mark.odoo

ADDON = f"{os.sep}worker_inspector{os.sep}"  # not worker_inspector_test
REQUESTS = 30
HOOK = ("recorder.py", "__call__")
RECORD_STATUS = ("board.py", "record_status")
# The first request after the writer went to rest wakes it (``Inspector.wake``).
WAKE = ("stacks.py", "wake")
# What the hook itself calls per request: clocks, the thread's Odoo counters, its record.
HOOK_BUILTINS = {"time", "thread_time", "dict.get", "deque.append"}
HOOK_BUILTINS_PER_REQUEST = 10  # 9, and a CPU clock read after an idle second


@pytest.fixture(scope="module")
def counted(odoo_db, tmp_path_factory):
    """A prefork server (one HTTP worker) whose processes count their calls on a signal."""
    directory = tmp_path_factory.mktemp("calls")
    with OdooServer(odoo_db, workers=1, max_cron_threads=0, env=counting_env(directory)) as server:
        (worker,) = [p.pid for p in server.http_workers()]
        yield server, worker, directory


def addon_calls(counts):
    """The serving thread's calls made by the addon's functions: ``({(file, function): calls},
    {builtin called from the hook: calls})``."""
    calls = from_files(counts.thread("workthread"), ADDON)
    functions = collections.Counter()
    from_hook = collections.Counter()
    for call, n in calls.items():
        where = (Path(call.file).name, call.function)
        if not call.called:
            functions[where] += n
        elif where == HOOK:
            from_hook[call.called] += n
    return functions, from_hook


def assert_only_the_hook(functions, from_hook, requests, extra=()):
    functions = collections.Counter(functions)
    # Nothing else: not Odoo's check_limits, which its loop calls after each request (the exit
    # cause is decided as the loop ends, ``models/history.py``).
    wakes = functions.pop(WAKE, 0)
    # The status is in werkzeug's own ``start_response``: the record's is never called.
    assert RECORD_STATUS not in functions, functions
    expected = {HOOK: requests, **{name: requests for name in extra}}
    assert dict(functions) == expected, f"the addon's functions on the request path: {dict(functions)}"
    assert wakes <= 2, wakes
    assert set(from_hook) <= HOOK_BUILTINS, dict(from_hook)
    assert sum(from_hook.values()) <= HOOK_BUILTINS_PER_REQUEST * requests, dict(from_hook)


@pytest.mark.parametrize("route", ["health", "call_kw"])
def test_a_request_runs_the_hook_and_nothing_else_of_the_addon(counted, route):
    server, worker, directory = counted
    session = server.login_session()

    def serve():
        if route == "health":
            response = session.get(server.url + "/web/health", timeout=60)
        else:
            payload = {"jsonrpc": "2.0", "method": "call", "params": {
                "model": "res.users", "method": "read", "args": [[2], ["login"]], "kwargs": {}}}  # fmt: skip
            response = session.post(server.url + "/web/dataset/call_kw/res.users/read", json=payload, timeout=60)
        assert response.status_code == 200, response.text

    for _ in range(5):  # warm: the registry, the routing map, the worker's record
        serve()
    with counting(worker, directory) as counts:
        for _ in range(REQUESTS):
            serve()
    functions, from_hook = addon_calls(counts)
    assert_only_the_hook(functions, from_hook, REQUESTS)
    # Odoo's own work ran meanwhile: the counts are the serving thread's.
    assert sum(counts.thread("workthread").values()) > 100 * REQUESTS


def test_an_rpc_call_adds_the_dispatch_hook_that_names_its_method(counted):
    server, worker, directory = counted
    uid = xmlrpc.client.ServerProxy(server.url + "/xmlrpc/2/common").authenticate(
        server.db, ADMIN_LOGIN, ADMIN_PASSWORD, {}
    )
    models = xmlrpc.client.ServerProxy(server.url + "/xmlrpc/2/object")

    def serve():
        return models.execute_kw(server.db, uid, ADMIN_PASSWORD, "res.users", "read", [[uid]], {"fields": ["login"]})

    serve()
    with counting(worker, directory) as counts:
        for _ in range(REQUESTS):
            assert serve()[0]["login"] == ADMIN_LOGIN
    functions, from_hook = addon_calls(counts)
    dispatch_hook = [("post_load.py", "wrapped"), ("recorder.py", "set_rpc")]
    assert_only_the_hook(functions, from_hook, REQUESTS, extra=dispatch_hook)


def test_the_writer_keeps_no_connection_of_odoos_pool(odoo_db):
    """A busy request makes its worker's writer read the database's slow-request threshold
    (``post_load.slow_after_db``): on a connection of its own, closed after. Odoo's pool
    would keep it: one more PostgreSQL backend per worker, walked past by every borrow."""
    with OdooServer(odoo_db, workers=1, max_cron_threads=0) as server:
        (worker,) = server.http_workers()
        session = server.login_session()  # the pool's connection for the requests
        time.sleep(1.5)  # the login's records written

        def sockets():
            connections = getattr(worker, "net_connections", None) or worker.connections  # psutil < 6
            return sorted((c.fd, c.type) for c in connections(kind="unix"))

        before = sockets()
        # Busy for more than a turn of the writer (``stacks.WATCH_INTERVAL``), with a cursor.
        response = session.get(server.url + "/worker_inspector_test/sleep", params={"seconds": "2.5"}, timeout=60)
        assert response.status_code == 200, response.text
        time.sleep(1.5)
        assert sockets() == before


def test_a_threaded_servers_request_thread_reads_its_cpu_clock_once_and_writes_nothing(odoo_db, tmp_path):
    # Odoo's threaded server starts a thread for each connection (Werkzeug closes each after
    # its request): the thread's CPU clock starts at 0 with it, so its request reads the clock
    # only as it ends. Its record is claimed and, as the thread ends, given back for the writer
    # to write: no system call and no lock on the request's thread.
    with OdooServer(odoo_db, workers=0, max_cron_threads=0, env=counting_env(tmp_path)) as server:
        url = server.url + "/web/health"
        for _ in range(5):  # warm: the registry, the routing map
            assert requests.get(url, timeout=60).status_code == 200
        with counting(server.pid, tmp_path) as counts:
            for _ in range(REQUESTS):
                assert requests.get(url, timeout=60).status_code == 200
    request_threads = [calls for name, calls in counts.items() if name.startswith(HTTP_REQUEST_THREAD)]
    assert request_threads, sorted(counts)
    reads = collections.Counter()
    for calls in request_threads:
        for call, n in from_files(calls, ADDON).items():
            reads[call.called] += n
    assert reads["thread_time"] == REQUESTS, dict(reads)
    for call in ("pwrite", "get_native_id", "RLock.__enter__", "RLock.__exit__"):
        assert not reads[call], dict(reads)
