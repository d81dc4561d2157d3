# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
import json
import os

from odoo.exceptions import AccessError, UserError
from odoo.tests import HttpCase, new_test_user, tagged

from odoo.addons.worker_inspector import compat

API = "/worker_inspector/api/recycle"


@tagged("post_install", "-at_install")
class TestRecycleThreaded(HttpCase):
    """The test server is threaded: it has no worker process to recycle."""

    def test_model_refuses_on_a_threaded_server(self):
        with self.assertRaisesRegex(UserError, "threaded"):
            self.env["worker.inspector"].recycle_worker(os.getpid())
        user = new_test_user(self.env, login="wi_recycle_model", groups="base.group_user")
        with self.assertRaises(AccessError):
            self.env["worker.inspector"].with_user(user).recycle_worker(os.getpid())

    def test_api_key_caller_gets_400_on_a_threaded_server(self):
        admin = self.env.ref("base.user_admin")
        key = compat.generate_api_key(self.env["res.users.apikeys"].with_user(admin), "ops")
        response = self.url_open(API, data={"pid": str(os.getpid())}, headers={"Authorization": f"Bearer {key}"})
        self.assertEqual(response.status_code, 400)
        self.assertIn("threaded", json.loads(response.content)["error"]["reason"])

    def test_session_caller_needs_the_csrf_token(self):
        self.authenticate("admin", "admin")
        response = self.url_open(API, data={"pid": str(os.getpid())})
        self.assertEqual(response.status_code, 400)
        self.assertIn("csrf_token", json.loads(response.content)["error"]["reason"])

    def test_anonymous_and_plain_users_are_refused(self):
        self.assertEqual(self.url_open(API, data={"pid": str(os.getpid())}).status_code, 401)
        new_test_user(self.env, login="wi_recycle_plain", password="wi_recycle_pw1", groups="base.group_user")
        self.authenticate("wi_recycle_plain", "wi_recycle_pw1")
        self.assertEqual(self.url_open(API, data={"pid": str(os.getpid())}).status_code, 403)
