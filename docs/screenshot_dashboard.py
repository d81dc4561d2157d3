"""Take docs/dashboard.png: the dashboard of a real prefork Odoo 18 server.

    python3 docs/screenshot_dashboard.py [--db EXISTING_DB] [--output docs/dashboard.png]

docs/dashboard.png was taken with ``--workers 4 --activity --height 1280`` (two
workers held busy, one serving the dashboard, one idle); docs/requests.png, its
Requests tab, with ``--view requests --output docs/requests.png --height 1800``
(``--view requests`` serves a mix of requests first: CPU-burning, sleeping,
waiting in PostgreSQL, failing, JSON-RPC).

Starts ``--workers=2 --max-cron-threads=1`` on free ports (tests/odoo_harness.py),
logs in as admin/admin with ``requests``, then drives headless Chromium over
the DevTools protocol (websocket-client), as Odoo's own ChromeBrowser does:
Chromium has no command-line flag for a cookie, so the session cookie is set
with ``Network.setCookie`` before opening the client action. Without ``--db``
a database is created for the run and dropped afterwards.

With ``--activity`` (the database needs the test addon of tests/addons,
``worker_inspector_test``) the workers get something to do while the picture
is taken: a slow request, a request waiting in PostgreSQL and a running
scheduled action.
"""

import argparse
import base64
import contextlib
import itertools
import json
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import requests
import websocket

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

import odoo_harness

DASHBOARD_PATH = "/odoo/action-worker_inspector.action_worker_inspector_dashboard"
READY_JS = "!!document.querySelector('.o_worker_inspector[data-status=\"ready\"] tr.o_worker_inspector_process')"
REQUESTS_TAB_JS = "document.querySelector('.o_worker_inspector_view_requests').click()"
REQUESTS_READY_JS = (
    "!!document.querySelector('.o_worker_inspector_requests[data-status=\"ready\"] tr.o_worker_inspector_request')"
)
# The last 15 minutes: a server started for the picture is not idle over them.
REQUESTS_WINDOW_JS = (
    "(() => { const s = document.querySelector('.o_worker_inspector_requests_window');"
    " s.value = '0.25'; s.dispatchEvent(new Event('change')); })()"
)
REQUESTS_PROFILE_JS = "!!document.querySelector('.o_worker_inspector_load_profile:not([data-verdict=\"idle\"])')"
CHROME_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


class DevTools:
    """The few DevTools calls this script needs, on one page target."""

    def __init__(self, ws_url):
        self.ws = websocket.create_connection(ws_url, timeout=60, suppress_origin=True)
        self.ids = itertools.count(1)

    def call(self, method, **params):
        call_id = next(self.ids)
        self.ws.send(json.dumps({"id": call_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv())
            if message.get("id") == call_id:
                if "error" in message:
                    raise RuntimeError(f"{method} failed: {message['error']}")
                return message.get("result", {})

    def evaluate(self, expression):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result.get("result", {}).get("value")

    def close(self):
        self.ws.close()


@contextlib.contextmanager
def headless_chromium(width, height):
    chrome = next(filter(None, map(shutil.which, CHROME_NAMES)), None)
    if not chrome:
        raise SystemExit("Chromium is not installed")
    port = odoo_harness.free_port()
    profile = tempfile.mkdtemp(prefix="wi-chromium-")
    proc = subprocess.Popen(
        [
            chrome,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--hide-scrollbars",
            "--remote-debugging-address=127.0.0.1",
            f"--remote-debugging-port={port}",
            f"--user-data-dir={profile}",
            f"--window-size={width},{height}",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                targets = requests.get(f"http://127.0.0.1:{port}/json", timeout=2).json()
                page = next(t for t in targets if t["type"] == "page")
                break
            except (requests.RequestException, StopIteration, ValueError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        devtools = DevTools(page["webSocketDebuggerUrl"])
        try:
            devtools.call(
                "Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=False
            )
            yield devtools
        finally:
            devtools.close()
    finally:
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(10)
        if proc.poll() is None:
            proc.kill()
        shutil.rmtree(profile, ignore_errors=True)


def capture(server, output, width, height, settle, session=None, ready_js=READY_JS, then=()):
    """Screenshot of the dashboard once ``ready_js`` holds; ``then``: pairs
    (script to run, condition to wait for) before the picture."""
    session = session or server.login_session()
    with headless_chromium(width, height) as devtools:
        devtools.call("Network.enable")
        devtools.call(
            "Network.setCookie",
            name="session_id",
            value=session.cookies["session_id"],
            url=server.url,
            path="/",
            httpOnly=True,
        )
        devtools.call("Page.navigate", url=server.url + DASHBOARD_PATH)
        deadline = time.monotonic() + 60
        while not devtools.evaluate(ready_js):
            if time.monotonic() > deadline:
                raise TimeoutError("the dashboard did not show its processes within 60 s")
            time.sleep(0.3)
        for script, condition in then:
            devtools.evaluate(script)
            deadline = time.monotonic() + 60
            while not devtools.evaluate(condition):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{condition} did not hold within 60 s")
                time.sleep(0.3)
        # A second poll gives CPU percents over an interval, not lifetime averages.
        time.sleep(settle)
        png = devtools.call("Page.captureScreenshot", format="png")["data"]
    Path(output).write_bytes(base64.b64decode(png))


def serve_request_mix(server):
    """Requests of several kinds for the Requests tab (needs worker_inspector_test)."""
    session = server.login_session()
    calls = [("/worker_inspector_test/burn", {"seconds": "0.4"})] * 3
    calls += [("/worker_inspector_test/sleep", {"seconds": "0.6"})] * 2
    calls += [("/worker_inspector_test/pg_sleep_once", {"seconds": "0.5"})] * 2
    calls += [("/worker_inspector_test/fail", {})]
    for path, params in calls:
        session.get(server.url + path, params=params, timeout=60)
    for _ in range(5):
        session.post(
            server.url + "/web/dataset/call_kw/res.partner/search_read",
            json={
                "jsonrpc": "2.0",
                "method": "call",
                "params": {"model": "res.partner", "method": "search_read", "args": [], "kwargs": {"limit": 80}},
            },
            timeout=60,
        )


@contextlib.contextmanager
def staged_activity(server):
    """Keep workers busy through the test addon's routes while the token file exists."""
    token = uuid.uuid4().hex
    hold = Path(tempfile.gettempdir()) / f"worker_inspector_test-{token}"
    hold.touch()
    requests_held = [
        threading.Thread(
            target=server.login_session().get,
            args=(server.url + path,),
            kwargs={"params": {"token": token}, "timeout": 120},
            daemon=True,
        )
        for path in ("/worker_inspector_test/busy", "/worker_inspector_test/pg_sleep")
    ]
    session = server.login_session()
    try:
        for thread in requests_held:
            thread.start()
        session.post(server.url + "/worker_inspector_test/cron/trigger", data={"token": token}, timeout=60)
        yield
    finally:
        hold.unlink(missing_ok=True)
        for thread in requests_held:
            thread.join(30)
        session.post(server.url + "/worker_inspector_test/cron/cancel", timeout=60)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", help="existing database with worker_inspector installed (admin/admin)")
    parser.add_argument("--output", default=str(REPO / "docs" / "dashboard.png"))
    parser.add_argument("--width", type=int, default=1400)
    parser.add_argument("--height", type=int, default=900)
    parser.add_argument("--settle", type=float, default=6.0, help="seconds to wait after the first render")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--activity", action="store_true", help="stage busy workers (needs worker_inspector_test)")
    parser.add_argument(
        "--view",
        choices=("live", "requests"),
        default="live",
        help="the tab to take; requests serves a mix of requests first (needs worker_inspector_test)",
    )
    args = parser.parse_args()

    available, reason = odoo_harness.odoo_available()
    if not available:
        raise SystemExit(reason)
    db = args.db or odoo_harness.create_database(odoo_harness.unique_name("wi_screenshot"))
    try:
        server = odoo_harness.OdooServer(db, workers=args.workers, max_cron_threads=1)
        with server, staged_activity(server) if args.activity else contextlib.nullcontext():
            then = ()
            if args.view == "requests":
                serve_request_mix(server)
                then = ((REQUESTS_TAB_JS, REQUESTS_READY_JS), (REQUESTS_WINDOW_JS, REQUESTS_PROFILE_JS))
            capture(server, args.output, args.width, args.height, args.settle, then=then)
    finally:
        if not args.db:
            odoo_harness.drop_database(db)
    print("wrote", args.output)


if __name__ == "__main__":
    main()
