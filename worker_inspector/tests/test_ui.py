# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
import shutil
import unittest

from odoo.tests import HttpCase, tagged

from odoo.addons.web.tests import test_js
from odoo.addons.worker_inspector import compat

# The names Odoo's ChromeBrowser looks for on Linux.
CHROME_NAMES = ("google-chrome", "chromium", "chromium-browser", "google-chrome-stable")
# HOOT suite of static/tests/*.test.js (suites are named after the addon).
UNIT_TEST_SUITE = "@worker_inspector"
# QUnit module of static/tests/qunit/ (17.0).
QUNIT_MODULE = "worker_inspector"


class BrowserCase(HttpCase):
    def _chrome(self):
        chrome = next(filter(None, map(shutil.which, CHROME_NAMES)), None)
        if chrome is None:
            self.skipTest("no Chromium or Chrome executable on PATH: this test needs a browser")
        return chrome

    def run_in_browser(self, run, *args, **kwargs):
        chrome = self._chrome()
        try:
            return run(*args, **kwargs)
        except unittest.SkipTest as exc:
            # Odoo's browser helper skips on any Chrome start-up trouble; with
            # Chromium installed that is a failure, not a reason to skip.
            self.fail(f"Chromium is installed ({chrome}) but the browser test could not run: {exc}")


@tagged("post_install", "-at_install")
class TestDashboardTour(BrowserCase):
    def test_dashboard_shows_one_row_per_process(self):
        """Settings ▸ Technical ▸ Server Workers, in headless Chromium: one
        process row per process of the API (the tour compares the pids) and
        one scoreboard cell per worker; the History view; the Requests view
        with the routes the request log recorded for the tour's own requests,
        a route row showing that route's requests, the chip clearing it."""
        admin = self.env.ref("base.user_admin")
        snapshot = self.env["worker.inspector"].with_user(admin).get_snapshot()
        pids = {process["pid"] for process in snapshot["processes"]}
        self.assertTrue(pids, "the snapshot lists no process")
        self.assertIn(snapshot["served_by"], pids)
        # /web: the web client on 17.0 to 19.0 (/odoo since 18.0).
        self.run_in_browser(self.start_tour, "/web?debug=1", "worker_inspector_dashboard", login="admin")


@tagged("post_install", "-at_install")
class TestDashboardUnitTests(BrowserCase):
    def test_dashboard_helpers(self):
        """static/tests/*.test.js (formatting, memory gauge, sorting, scoreboard) in HOOT;
        on 17.0, which has no HOOT, static/tests/qunit/ in QUnit."""
        if not compat.HAS_HOOT:
            self.run_in_browser(
                self.browser_js,
                f"/web/tests?filter={QUNIT_MODULE}",
                "",
                "",
                login="admin",
                timeout=120,
                error_checker=test_js.qunit_error_checker,
            )
            return
        suite_hash = test_js.HOOTCommon._generate_hash(None, UNIT_TEST_SUITE)
        self.run_in_browser(
            self.browser_js,
            f"/web/tests?headless&loglevel=2&preset=desktop&timeout=15000&{compat.HOOT_FILTER_PARAM}={suite_hash}",
            "",
            "",
            login="admin",
            # A failed HOOT test does not stop the suite: failures end here.
            timeout=120,
            success_signal=compat.HOOT_SUCCESS_SIGNAL,
            error_checker=test_js.unit_test_error_checker,
        )
