"""Security and robustness of the API and the board, against real Odoo 18 servers.

Each test is the regression test of an attack or failure reproduced on a
real server: other local users (simulated with ``chown`` to ``nobody``), a
full filesystem (a small tmpfs), PostgreSQL going away, hostile requests,
several databases on one server.
"""

import glob
import os
import pwd
import signal
import subprocess
import time

import psutil
import pytest
import requests
from activity_helpers import BUSY_URL, PG_SLEEP_URL, Background, Hold, busy_on, poll
from odoo_harness import ADMIN_LOGIN, ADMIN_PASSWORD, OdooServer, create_database, drop_database, unique_name
from waiting import wait_until

from worker_inspector.engine.board import read_board
from worker_inspector.engine.identity import process_key

pytestmark = pytest.mark.odoo

SNAPSHOT = "/worker_inspector/api/snapshot"
METRICS = "/worker_inspector/metrics"
HISTORY = "/worker_inspector/api/history"
RECYCLE = "/worker_inspector/api/recycle"

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="simulating another user needs root (chown, mount)")


def api_key(server, session):
    response = session.post(server.url + "/worker_inspector_test/apikey", timeout=60)
    response.raise_for_status()
    return response.json()["key"]


def envelope(response, status):
    """The JSON error envelope with ``status``; returns its reason."""
    assert response.status_code == status, response.text[:500]
    assert response.headers["Content-Type"].startswith("application/json")
    error = response.json()["error"]
    assert error["status"] == status and error["reason"]
    return error["reason"]


# --- Requests (prefork: a worker that must not be recycled) -----------------


@pytest.fixture(scope="module")
def admin(prefork):
    return prefork.login_session()


@pytest.fixture(scope="module")
def bearer(prefork, admin):
    return {"Authorization": f"Bearer {api_key(prefork, admin)}"}


def http_worker(server, session):
    snap = server.snapshot(session)
    return next(p["pid"] for p in snap["processes"] if p["role"] == "http")


def test_options_never_acts(prefork, admin, bearer):
    pid = http_worker(prefork, admin)
    key = process_key(pid)
    for method in ("OPTIONS", "GET", "PUT", "DELETE"):
        response = requests.request(method, prefork.url + RECYCLE, params={"pid": pid}, headers=bearer, timeout=60)
        assert "POST" in envelope(response, 405)
        assert response.headers["Allow"] == "POST"
    assert process_key(pid) == key  # the same process, still there
    assert "GET" in envelope(requests.post(prefork.url + SNAPSHOT, headers=bearer, timeout=60), 405)


def test_anonymous_callers_are_refused_before_their_parameters_are_read(prefork):
    for path, method in ((SNAPSHOT, "GET"), (METRICS, "GET"), (RECYCLE, "POST")):
        response = requests.request(method, prefork.url + path, params={"bogus": "1"}, timeout=60)
        assert "Authentication required" in envelope(response, 401)


def test_file_parts_are_refused(prefork, admin, bearer):
    pid = http_worker(prefork, admin)
    key = process_key(pid)
    for files in ({"force": ("f", b"1")}, {"pid": ("p", str(pid).encode())}, {"csrf_token": ("t", b"x")}):
        data = {"pid": str(pid)} if "pid" not in files else {}
        response = requests.post(prefork.url + RECYCLE, data=data, files=files, headers=bearer, timeout=60)
        assert "not a file" in envelope(response, 400)
    # A session caller's CSRF token as a file part too.
    response = admin.post(prefork.url + RECYCLE, data={"pid": str(pid)}, files={"csrf_token": ("t", b"x")}, timeout=60)
    assert "not a file" in envelope(response, 400)
    assert process_key(pid) == key


def test_a_db_parameter_naming_another_database_is_refused(prefork, bearer):
    assert requests.get(prefork.url + SNAPSHOT, params={"db": prefork.db}, headers=bearer, timeout=60).ok
    response = requests.get(prefork.url + SNAPSHOT, params={"db": "other"}, headers=bearer, timeout=60)
    assert "'other'" in envelope(response, 400)


# --- The board: other users, a full filesystem --------------------------------


@pytest.fixture
def shared_base(tmp_path):
    base = tmp_path / "shm"
    base.mkdir()
    base.chmod(0o1777)
    return base


@needs_root
def test_a_board_directory_planted_by_another_user_is_neither_used_nor_deleted(odoo_db, shared_base, tmp_path):
    nobody = pwd.getpwnam("nobody")
    victim = tmp_path / "victim"
    for name in ("123-456", "1-2"):
        (victim / name).mkdir(parents=True)
    link = shared_base / f"worker_inspector-{os.geteuid()}"
    link.symlink_to(victim)
    os.lchown(link, nobody.pw_uid, nobody.pw_gid)
    env = {"WORKER_INSPECTOR_BOARD_DIR": str(shared_base)}
    with OdooServer(odoo_db, workers=2, max_cron_threads=1, env=env) as server:
        session = server.login_session()
        for _ in range(4):
            snap = server.snapshot(session)
        assert snap["activity_board"]["available"] is False
        assert "symlink" in snap["activity_board"]["reason"]
        assert all(p["activity"] is None for p in snap["processes"])
        assert requests.get(server.url + "/web/health", timeout=60).ok
    assert sorted(p.name for p in victim.iterdir()) == ["1-2", "123-456"]
    assert link.is_symlink()


@pytest.fixture
def full_fs(tmp_path):
    """A tmpfs too small for a threaded server's board."""
    mount = tmp_path / "small"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)], check=False).returncode:
        pytest.skip("cannot mount a small tmpfs here")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


@needs_root
def test_a_full_filesystem_leaves_the_server_serving_and_the_api_says_why(odoo_db, full_fs):
    with OdooServer(odoo_db, env={"WORKER_INSPECTOR_BOARD_DIR": str(full_fs)}) as server:
        session = server.login_session()
        for _ in range(3):
            snap = server.snapshot(session)
        assert psutil.pid_exists(server.pid) and server.proc.poll() is None
        assert snap["activity_board"]["available"] is False
        assert "No space left" in snap["activity_board"]["reason"]


SLEEP_URL = "/worker_inspector_test/sleep"


def _board_files(base, pid):
    """The board file and the request log of process ``pid`` under ``base``."""
    found = sorted(glob.glob(os.path.join(base, "worker_inspector-*", "*", f"{pid}-*.*")))
    return [path for path in found if path.endswith((".board", ".requests"))]


@pytest.mark.parametrize("workers", [0, 1], ids=["threaded", "prefork"])
def test_board_files_shrunk_during_a_request_never_kill_the_server(odoo_db, tmp_path, workers):
    """While a request sleeps, its process's board file and request log are cut (to
    nothing, then mid-record): the request still answers 200, the same process
    serves the next ones, and once it has written its files back whole, the API
    shows its activity and the request that ran meanwhile."""
    base = str(tmp_path)
    with OdooServer(odoo_db, workers=workers, env={"WORKER_INSPECTOR_BOARD_DIR": base}) as server:
        session = server.login_session()
        snap = server.snapshot(session)
        pid = server.pid if not workers else next(p["pid"] for p in snap["processes"] if p["role"] == "http")
        key = process_key(pid)
        for cut in (lambda size: 0, lambda size: size // 2 + 3):  # emptied, then cut mid-record
            since = time.time()
            slow = Background(server, session, f"{SLEEP_URL}?seconds=2")
            wait_until(
                lambda: any(
                    r["state"] == "busy" and r["url"] == SLEEP_URL
                    for r in read_board(server.pid, base=base).get(pid, (0, []))[1]
                ),
                timeout=30,
                interval=0.02,
            )
            paths = _board_files(base, pid)
            assert len(paths) == 2, paths
            sizes = {path: cut(os.path.getsize(path)) for path in paths}
            for path, size in sizes.items():
                os.truncate(path, size)
            assert slow.result().status_code == 200
            assert process_key(pid) == key, "the process that served it was replaced"
            # The snapshot asks each process's writer to write, after checking its files whole.
            for _ in range(3):
                snap = server.snapshot(session)
            assert process_key(pid) == key and server.proc.poll() is None
            assert snap["activity_board"]["available"] is True
            if workers:
                worker = next(p for p in snap["processes"] if p["pid"] == pid)
                assert worker["activity"] is not None and worker["activity"]["requests"] >= 3
            for path, size in sizes.items():
                info = os.stat(path)
                assert info.st_blocks * 512 >= info.st_size > size, f"{path} was not written back whole"
            history = session.get(
                server.url + "/worker_inspector/api/history", params={"kinds": "requests", "since": since}, timeout=60
            ).json()
            assert any(r["url"] == SLEEP_URL and r["status"] == 200 for r in history["requests"]), history


# --- PostgreSQL going away --------------------------------------------------


def test_a_database_outage_while_reading_sessions_gives_a_snapshot_without_sql(odoo_db):
    with OdooServer(odoo_db, env={"WI_TEST_PG_OUTAGE": "1"}) as server:
        session = server.login_session()
        response = session.get(server.url + SNAPSHOT, timeout=60)
        assert response.status_code == 200, response.text[:500]
        snap = response.json()
        assert "PostgreSQL could not be read" in snap["sql_unavailable"]
        assert all(p["sql"] == [] for p in snap["processes"])
        assert snap["processes"][0]["pid"] == server.pid
        # The next one too: the dead connection left the pool.
        assert session.get(server.url + SNAPSHOT, timeout=60).json()["sql_unavailable"]


# --- Several databases on one server ------------------------------------------


@pytest.fixture(scope="module")
def second_db():
    name = unique_name("wi_e2e_b")
    create_database(name)
    yield name
    drop_database(name)


class MultiDatabaseServer(OdooServer):
    """No ``-d``, no dbfilter: every database of the cluster; the addon loaded server-wide."""

    def command(self):
        cmd = super().command()
        for option in ("-d", "--db-filter"):
            index = cmd.index(option)
            del cmd[index : index + 2]
        return cmd


def login(server, db):
    session = requests.Session()
    body = session.post(
        server.url + "/web/session/authenticate",
        json={
            "jsonrpc": "2.0",
            "method": "call",
            "params": {"db": db, "login": ADMIN_LOGIN, "password": ADMIN_PASSWORD},
        },
        timeout=60,
    ).json()
    assert body.get("result", {}).get("uid"), body
    return session


@pytest.fixture(scope="module")
def multi_conf(tmp_path_factory):
    return tmp_path_factory.mktemp("conf")


def _multi_server(odoo_db, conf_dir, server_wide, workers=0):
    conf = conf_dir / f"odoo-{server_wide}.conf"
    conf.write_text(f"[options]\nworker_inspector_server_wide = {server_wide}\n")
    args = ["-c", str(conf), "--load", "base,web,worker_inspector"]
    return MultiDatabaseServer(odoo_db, workers=workers, extra_args=args)


def _other_database_busy(server, mine, theirs, their_db):
    """Hold a request and a SQL query busy on ``their_db``; the snapshot ``mine`` sees meanwhile."""
    with Hold() as busy, Hold() as sql:
        calls = [Background(server, theirs, BUSY_URL, busy.token), Background(server, theirs, PG_SLEEP_URL, sql.token)]
        # Seen from the other database's own admin first: the requests are running.
        poll(server, theirs, lambda s: busy_on(s, BUSY_URL) and busy_on(s, PG_SLEEP_URL), "requests of the other db")
        snap = server.snapshot(mine)
        busy.release()
        sql.release()
        for call in calls:
            call.result()
    return snap


def logged_requests(server, session, **params):
    """The request log as ``session`` reads it (the API's ``kinds=requests``)."""
    response = session.get(server.url + HISTORY, params={"kinds": "requests", **params}, timeout=60)
    assert response.status_code == 200, response.text
    return response.json()["requests"]


def test_an_admin_sees_only_their_databases_activity_and_sql(odoo_db, second_db, multi_conf):
    with _multi_server(odoo_db, multi_conf, server_wide=False) as server:
        mine, theirs = login(server, odoo_db), login(server, second_db)
        snap = _other_database_busy(server, mine, theirs, second_db)
        assert snap["scope"] == {"db": odoo_db}
        busy = [t["activity"] for t in snap["threads"] if (t["activity"] or {}).get("state") == "busy"]
        hidden = [a for a in busy if a.get("hidden")]
        assert len(hidden) >= 2  # the two requests of the other database
        for activity in hidden:
            assert activity["db"] is activity["url"] is activity["login"] is None
        text = str(snap)
        assert second_db not in text and BUSY_URL not in text and "pg_sleep" not in text
        assert snap["http_busy"] >= 2  # the server is shared: its load is not hidden
        # The request log, too: the other database's requests are not listed.
        logged = logged_requests(server, mine)
        assert logged and {r["db"] for r in logged} <= {odoo_db, None}, logged
        assert BUSY_URL not in {r["url"] for r in logged}


def test_the_server_wide_view_is_an_opt_in_of_the_config_file(odoo_db, second_db, multi_conf):
    with _multi_server(odoo_db, multi_conf, server_wide=True) as server:
        mine, theirs = login(server, odoo_db), login(server, second_db)
        snap = _other_database_busy(server, mine, theirs, second_db)
        assert snap["scope"] == {"db": None}
        assert busy_on(snap, BUSY_URL)[1]["activity"]["db"] == second_db
        assert "pg_sleep" in str([t["sql"] for t in snap["threads"]])
        # The request log lists every database's requests; ``db`` keeps one database's.
        every = logged_requests(server, mine)
        assert {(r["db"], r["url"]) for r in every} >= {(second_db, BUSY_URL), (second_db, PG_SLEEP_URL)}, every
        assert {r["db"] for r in every} >= {odoo_db, second_db}
        only = logged_requests(server, mine, db=odoo_db)
        assert only and {r["db"] for r in only} == {odoo_db}, only


def test_what_an_exited_worker_was_doing_on_another_database_is_hidden(odoo_db, second_db, multi_conf):
    """A prefork worker killed while it served the other database: its exit is listed to both
    admins (the server's load is shared), what it was doing only to that database's."""
    with _multi_server(odoo_db, multi_conf, server_wide=False, workers=2) as server:
        mine, theirs = login(server, odoo_db), login(server, second_db)
        with Hold() as hold:
            call = Background(server, theirs, BUSY_URL, hold.token)
            _snap, (_place, entry) = poll(server, theirs, lambda s: busy_on(s, BUSY_URL), "the other db's request")
            os.kill(entry["pid"], signal.SIGKILL)
            call.join(60)

        def exit_of(session):
            response = session.get(server.url + HISTORY, params={"kinds": "exits"}, timeout=60)
            assert response.status_code == 200, response.text
            return next((e for e in response.json()["exits"] if e["pid"] == entry["pid"]), None)

        theirs_view = wait_until(lambda: exit_of(theirs), timeout=30)
        assert theirs_view and theirs_view["reason"] == "crashed" and theirs_view["doing"]["url"] == BUSY_URL
        mine_view = exit_of(mine)
        assert mine_view["reason"] == "crashed" and mine_view["detail"] == theirs_view["detail"]
        assert mine_view["doing"] is None and second_db not in str(mine_view), mine_view


def test_api_keys_name_their_database_on_a_multi_database_server(odoo_db, second_db, multi_conf):
    with _multi_server(odoo_db, multi_conf, server_wide=False) as server:
        key = api_key(server, login(server, odoo_db))
        headers = {"Authorization": f"Bearer {key}"}
        get = lambda path, **kw: requests.get(server.url + path, timeout=60, **kw)

        # Without a name, Odoo cannot pick a database: the envelope says how to name one.
        assert "X-Odoo-Database" in envelope(get(SNAPSHOT, headers=headers), 400)
        assert get(SNAPSHOT, headers=headers, params={"db": odoo_db}).json()["scope"] == {"db": odoo_db}
        assert get(SNAPSHOT, headers={**headers, "X-Odoo-Database": odoo_db}).ok
        metrics = get(METRICS, headers=headers, params={"db": odoo_db})
        assert metrics.status_code == 200 and "odoo_server_info" in metrics.text
        assert "'nosuchdb'" in envelope(get(SNAPSHOT, headers=headers, params={"db": "nosuchdb"}), 400)
        # The key belongs to the first database's admin only.
        envelope(get(SNAPSHOT, headers=headers, params={"db": second_db}), 401)
        envelope(get(SNAPSHOT, params={"db": odoo_db}), 401)


# --- Secrets on the command line ----------------------------------------------


def test_abbreviated_secret_options_never_show(odoo_db):
    db_password, smtp_password = "Abbrev-Db-Pw-1", "Abbrev-Smtp-Pw-2"
    args = [f"--db_passw={db_password}", "--smtp-pass", smtp_password]
    with OdooServer(odoo_db, extra_args=args) as server:
        session = server.login_session()
        text = session.get(server.url + SNAPSHOT, timeout=60).text
        assert "--db_passw=********" in text and "--smtp-pass ********" in text
        metrics = session.get(server.url + METRICS, timeout=60).text
        for secret in (db_password, smtp_password):
            assert secret not in text and secret not in metrics
