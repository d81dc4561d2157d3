"""The snapshot API against real Odoo 18 servers, checked with psutil from outside."""

import collections
import os
import tempfile

import psutil
import pytest
import requests
from odoo_harness import OdooServer, odoo_available

pytestmark = pytest.mark.odoo

DB_PASSWORD = "Db-S3cret-pw"
ADMIN_PASSWD = "Master-S3cret-pw"


def within(reported, measured, tolerance=0.10):
    return abs(reported - measured) <= tolerance * measured


@pytest.fixture(scope="module")
def threaded(odoo_db):
    # Secrets on the command line and in the config file must never come out.
    fd, conf = tempfile.mkstemp(suffix=".conf")
    with os.fdopen(fd, "w") as handle:
        handle.write(f"[options]\nadmin_passwd = {ADMIN_PASSWD}\n")
    args = ["-c", conf, "--db_password", DB_PASSWORD]
    try:
        with OdooServer(odoo_db, workers=0, max_cron_threads=2, extra_args=args) as server:
            yield server
    finally:
        os.unlink(conf)


def test_prefork_lists_exactly_the_real_process_tree(prefork):
    session = prefork.login_session()
    snap = prefork.snapshot(session)
    master = psutil.Process(prefork.pid)
    # Read from outside right after the answer, for the memory comparison.
    measured = {p.pid: p.memory_info() for p in [master] + master.children()}

    assert snap["server"]["mode"] == "prefork"
    assert snap["server"]["pid"] == prefork.pid
    assert snap["server"]["odoo_version"].startswith(odoo_available()[1])
    reported = {p["pid"]: p for p in snap["processes"]}
    assert set(reported) == set(measured)
    roles = collections.Counter(p["role"] for p in snap["processes"])
    assert roles == {"master": 1, "http": 2, "cron": 1, "gevent": 1}
    psutil.boot_time()  # this process's psutil dates processes from the boot time it read last
    assert reported[prefork.pid]["role"] == "master"
    for pid, proc in reported.items():
        real = psutil.Process(pid)
        if proc["role"] != "master":
            assert proc["ppid"] == prefork.pid
        assert proc["started_at"] == pytest.approx(real.create_time(), abs=0.01)
        assert within(proc["vms"], measured[pid].vms), (pid, proc["vms"], measured[pid].vms)
        assert within(proc["rss"], measured[pid].rss), (pid, proc["rss"], measured[pid].rss)
        assert proc["num_threads"] >= 1
        title = " ".join(real.cmdline())
        if proc["role"] in ("http", "cron"):
            worker_class = "WorkerHTTP" if proc["role"] == "http" else "WorkerCron"
            assert title.startswith(f"odoo: {worker_class} {pid}")
    # The answer came from one of the HTTP workers, whose threads are listed.
    assert reported[snap["served_by"]]["role"] == "http"
    assert any(t["kind"] == "worker" for t in snap["threads"])
    assert snap["config"]["workers"] == 2
    assert snap["config"]["max_cron_threads"] == 1
    assert snap["config"]["http_port"] == prefork.port
    assert snap["config"]["gevent_port"] == prefork.gevent_port
    assert snap["host"]["cpu_count"] == os.cpu_count()
    assert snap["host"]["memory_total"] == psutil.virtual_memory().total
    assert 0 < snap["host"]["memory_available"] <= snap["host"]["memory_total"]


def test_prefork_memory_limits_are_odoos_defaults(prefork):
    snap = prefork.snapshot(prefork.login_session())
    # Odoo 18 defaults: soft 2048 MiB, hard 2560 MiB, checked on virtual memory.
    assert snap["config"]["limit_memory_soft"] == 2048 * 1024 * 1024
    assert snap["config"]["limit_memory_hard"] == 2560 * 1024 * 1024
    for proc in snap["processes"]:
        assert proc["limit_memory_soft"] == 2048 * 1024 * 1024
        assert proc["limit_memory_hard"] == 2560 * 1024 * 1024


def test_threaded_server_is_one_process_with_two_cron_threads(threaded):
    session = threaded.login_session()
    snap = threaded.snapshot(session)
    assert snap["server"]["mode"] == "threaded"
    assert snap["server"]["pid"] == threaded.pid == snap["served_by"]
    assert [p["pid"] for p in snap["processes"]] == [threaded.pid]
    assert snap["processes"][0]["role"] == "server"
    cron = sorted(t["name"] for t in snap["threads"] if t["kind"] == "cron")
    assert cron == ["odoo.service.cron.cron0", "odoo.service.cron.cron1"]
    # The thread serving this very request is an HTTP request thread on our URL.
    http = [t for t in snap["threads"] if t["kind"] == "http" and t["url"] == "/worker_inspector/api/snapshot"]
    assert len(http) == 1
    assert http[0]["db"] == threaded.db
    assert http[0]["uid"] == 2
    assert http[0]["elapsed"] is not None and http[0]["elapsed"] >= 0
    assert sum(t["kind"] == "main" for t in snap["threads"]) == 1
    assert sum(t["kind"] == "httpd" for t in snap["threads"]) == 1
    # Threads reported are the real ones of that process (the request thread has ended by now).
    real_tids = {t.id for t in psutil.Process(threaded.pid).threads()}
    assert {t["native_id"] for t in snap["threads"] if t is not http[0]} <= real_tids
    assert snap["processes"][0]["num_threads"] == pytest.approx(len(real_tids), abs=2)


def test_threaded_snapshot_never_shows_secrets(threaded):
    session = threaded.login_session()
    response = session.get(threaded.url + "/worker_inspector/api/snapshot", timeout=60)
    assert response.status_code == 200
    assert DB_PASSWORD not in response.text
    assert ADMIN_PASSWD not in response.text
    assert "db_password" not in response.json()["config"]
    # The command line is shown, redacted.
    assert "--db_password ********" in response.json()["processes"][0]["cmdline"]


def test_access_admin_user_anonymous(threaded):
    admin = threaded.login_session()
    api = threaded.url + "/worker_inspector/api/snapshot"
    assert admin.get(api, timeout=60).status_code == 200

    login, password = threaded.create_internal_user(admin)
    user = threaded.login_session(login, password)
    denied = user.get(api, timeout=60)
    assert denied.status_code == 403
    assert "processes" not in denied.text
    assert denied.json()["error"]["reason"]

    anonymous = requests.get(api, timeout=60)
    assert anonymous.status_code == 401
    assert "processes" not in anonymous.text and "pid" not in anonymous.text

    bad = admin.get(api, params={"bogus": "1"}, timeout=60)
    assert bad.status_code == 400
    assert "bogus" in bad.json()["error"]["reason"]


def test_prefork_roles_without_setproctitle(odoo_db):
    with OdooServer(odoo_db, workers=2, max_cron_threads=1, setproctitle=False) as server:
        children = psutil.Process(server.pid).children()
        assert not any(" ".join(c.cmdline()).startswith("odoo:") for c in children)
        snap = server.snapshot(server.login_session())
        roles = collections.Counter(p["role"] for p in snap["processes"])
        assert roles == {"master": 1, "http": 2, "cron": 1, "gevent": 1}
        by_pid = {p["pid"]: p["role"] for p in snap["processes"]}
        for child in children:
            expected = "cron" if child.nice() == 10 else "gevent" if "gevent" in child.cmdline() else "http"
            assert by_pid[child.pid] == expected
