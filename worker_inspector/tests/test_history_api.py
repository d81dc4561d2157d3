# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
import json

from odoo.tests import HttpCase, new_test_user, tagged

HISTORY = "/worker_inspector/api/history"


@tagged("post_install", "-at_install")
class TestHistoryApi(HttpCase):
    def test_threaded_server_history(self):
        self.authenticate("admin", "admin")
        response = self.url_open(HISTORY + "?kinds=series,exits&since=0")
        self.assertEqual(response.status_code, 200, response.text)
        body = json.loads(response.content)
        self.assertEqual(set(body), {"taken_at", "since", "exits", "series"})
        self.assertGreaterEqual(body["series"]["interval"], 1)
        self.assertIsInstance(body["series"]["points"], list)
        only = json.loads(self.url_open(HISTORY + "?kinds=exits").content)
        self.assertNotIn("series", only)

    def test_bad_parameters_and_access(self):
        self.assertEqual(self.url_open(HISTORY).status_code, 401)
        new_test_user(self.env, login="wi_plain_h", password="wi_plain_h_pw1", groups="base.group_user")
        self.authenticate("wi_plain_h", "wi_plain_h_pw1")
        self.assertEqual(self.url_open(HISTORY).status_code, 403)
        self.authenticate("admin", "admin")
        for query in ("since=soon", "since=-1", "kinds=exits,cats", "kinds=", "limit=5"):
            response = self.url_open(f"{HISTORY}?{query}")
            self.assertEqual(response.status_code, 400, query)
            self.assertTrue(json.loads(response.content)["error"]["reason"])
