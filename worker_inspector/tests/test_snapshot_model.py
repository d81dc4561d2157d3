# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
import json
import os

from odoo.exceptions import AccessError
from odoo.tests import HttpCase, TransactionCase, new_test_user, tagged
from odoo.tools import config

from odoo.addons.worker_inspector import compat

API = "/worker_inspector/api/snapshot"


@tagged("post_install", "-at_install")
class TestSnapshotModel(TransactionCase):
    def test_admin_gets_this_process(self):
        snap = self.env["worker.inspector"].get_snapshot()
        pids = [proc["pid"] for proc in snap["processes"]]
        self.assertEqual(snap["served_by"], os.getpid())
        self.assertIn(os.getpid(), pids)
        # The options Odoo runs with, as its config reads them.
        self.assertEqual(snap["config"]["workers"], config["workers"])
        self.assertEqual(snap["config"]["limit_memory_hard"], config["limit_memory_hard"])
        self.assertNotIn("db_password", snap["config"])
        self.assertNotIn("admin_passwd", snap["config"])
        kinds = {thread["kind"] for thread in snap["threads"]}
        self.assertIn("main", kinds)

    def test_user_without_settings_rights_is_refused(self):
        user = new_test_user(self.env, login="wi_no_settings", groups="base.group_user")
        with self.assertRaises(AccessError):
            self.env["worker.inspector"].with_user(user).get_snapshot()


@tagged("post_install", "-at_install")
class TestSnapshotApi(HttpCase):
    def test_admin_gets_json(self):
        self.authenticate("admin", "admin")
        response = self.url_open(API)
        self.assertEqual(response.status_code, 200)
        self.assertEqual(response.headers["Content-Type"], "application/json")
        snap = json.loads(response.content)
        self.assertEqual(snap["server"]["mode"], "threaded")
        self.assertEqual({proc["role"] for proc in snap["processes"]}, {"server"})

    def test_internal_user_gets_403(self):
        new_test_user(self.env, login="wi_plain", password="wi_plain_pw1", groups="base.group_user")
        self.authenticate("wi_plain", "wi_plain_pw1")
        response = self.url_open(API)
        self.assertEqual(response.status_code, 403)
        self.assertNotIn(b"processes", response.content)

    def test_anonymous_gets_401(self):
        response = self.url_open(API)
        self.assertEqual(response.status_code, 401)
        self.assertNotIn(b"processes", response.content)

    def test_unknown_parameter_gets_400(self):
        self.authenticate("admin", "admin")
        response = self.url_open(API + "?interval=3")
        self.assertEqual(response.status_code, 400)
        self.assertIn("interval", json.loads(response.content)["error"]["reason"])

    def test_api_key_authenticates_monitoring_tools(self):
        admin = self.env.ref("base.user_admin")
        key = compat.generate_api_key(self.env["res.users.apikeys"].with_user(admin), "monitoring")
        response = self.url_open(API, headers={"Authorization": f"Bearer {key}"})
        self.assertEqual(response.status_code, 200)
        self.assertIn("processes", json.loads(response.content))
        bad = self.url_open(API, headers={"Authorization": "Bearer not-a-key"})
        self.assertEqual(bad.status_code, 401)

    def test_metrics_for_prometheus(self):
        self.authenticate("admin", "admin")
        response = self.url_open("/worker_inspector/metrics")
        self.assertEqual(response.status_code, 200)
        self.assertTrue(response.headers["Content-Type"].startswith("text/plain; version=0.0.4"))
        text = response.text
        self.assertIn('odoo_server_info{mode="threaded"', text)
        self.assertIn('odoo_server_processes{role="server"} 1.0', text)
        self.assertIn('odoo_virtual_memory_bytes{role="server"}', text)
        self.assertIn('odoo_cpu_seconds_total{role="server"}', text)
        self.assertIn('odoo_worker_exits_total{reason="memory_soft"} 0.0', text)
        self.assertNotIn(f'pid="{os.getpid()}",', text)
        self.assertNotIn("admin_passwd", text)

    def test_metrics_refuse_anonymous_and_plain_users(self):
        self.assertEqual(self.url_open("/worker_inspector/metrics").status_code, 401)
        new_test_user(self.env, login="wi_plain_m", password="wi_plain_m_pw1", groups="base.group_user")
        self.authenticate("wi_plain_m", "wi_plain_m_pw1")
        self.assertEqual(self.url_open("/worker_inspector/metrics").status_code, 403)
