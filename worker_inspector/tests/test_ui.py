# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
import shutil
import unittest

from odoo.tests import HttpCase, tagged

# The names Odoo's ChromeBrowser looks for on Linux.
CHROME_NAMES = ("google-chrome", "chromium", "chromium-browser", "google-chrome-stable")


@tagged("post_install", "-at_install")
class TestDashboardTour(HttpCase):
    def test_dashboard_shows_one_row_per_process(self):
        """Settings ▸ Technical ▸ Server Workers, in headless Chromium: one
        process row per process of the API (the tour compares the pids)."""
        admin = self.env.ref("base.user_admin")
        snapshot = self.env["worker.inspector"].with_user(admin).get_snapshot()
        pids = {process["pid"] for process in snapshot["processes"]}
        self.assertTrue(pids, "the snapshot lists no process")
        self.assertIn(snapshot["served_by"], pids)

        chrome = next(filter(None, map(shutil.which, CHROME_NAMES)), None)
        if chrome is None:
            self.skipTest("no Chromium or Chrome executable on PATH: the dashboard tour needs a browser")
        try:
            self.start_tour("/odoo?debug=1", "worker_inspector_dashboard", login="admin")
        except unittest.SkipTest as exc:
            # Odoo's browser helper skips on any Chrome start-up trouble; with
            # Chromium installed that is a failure, not a reason to skip.
            self.fail(f"Chromium is installed ({chrome}) but the browser tour could not run: {exc}")
