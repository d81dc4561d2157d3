# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
import json
import time

from odoo.tests import HttpCase, new_test_user, tagged

from ..models import history

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

    def test_what_a_worker_did_on_another_database_is_hidden(self):
        self.authenticate("admin", "admin")
        self.assertEqual(self.url_open(HISTORY + "?kinds=exits").status_code, 200)
        store = history.history_store()
        mine, other = 2_000_000_001, 2_000_000_002
        for pid, db in ((mine, self.env.cr.dbname), (other, "wi_another_database")):
            doing = {"url": f"/secret/{pid}", "cron_job": None, "elapsed": 1.0, "db": db}
            store.add_exit({"pid": pid, "role": "http", "reason": "crashed", "ended_at": time.time(), "doing": doing})
        exits = {e["pid"]: e for e in json.loads(self.url_open(HISTORY + "?kinds=exits").content)["exits"]}
        self.assertEqual(exits[mine]["doing"]["url"], f"/secret/{mine}")
        self.assertNotIn("db", exits[mine])
        if self.env["worker.inspector"]._serves_several_databases():
            self.assertIsNone(exits[other]["doing"])
