# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
import json
import os

from odoo.exceptions import AccessError
from odoo.tests import HttpCase, TransactionCase, new_test_user, tagged

STACK = "/worker_inspector/api/stack"
PROFILE = "/worker_inspector/api/profile"


def _thread(db, frames):
    activity = {
        "state": "busy",
        "kind": "http",
        "db": db,
        "uid": 2,
        "login": "admin",
        "url": "/secret/path",
        "cron_job": None,
        "hidden": False,
    }
    return {"native_id": 1, "name": "t", "activity": activity, "sql": [], "frames": frames}


@tagged("post_install", "-at_install")
class TestStackModel(TransactionCase):
    def test_only_settings_admins(self):
        user = new_test_user(self.env, login="wi_no_settings_stack", groups="base.group_user")
        inspector = self.env["worker.inspector"].with_user(user)
        with self.assertRaises(AccessError):
            inspector.get_stack(os.getpid())
        with self.assertRaises(AccessError):
            inspector.take_profile(os.getpid(), 1)
        with self.assertRaises(AccessError):
            inspector.get_slow_requests()

    def test_frames_of_another_databases_thread_are_hidden_with_its_activity(self):
        frame = {"file": "x.py", "line": 1, "function": "f", "code": "", "origin": "addon"}
        mine, other = _thread(self.env.cr.dbname, [frame]), _thread("another_database", [frame])
        self.env["worker.inspector"]._hide_foreign_stacks([mine, other])
        self.assertEqual(mine["frames"], [frame])
        self.assertEqual(mine["activity"]["url"], "/secret/path")
        self.assertEqual(other["frames"], [])
        self.assertTrue(other["activity"]["hidden"])
        self.assertIsNone(other["activity"]["url"])


@tagged("post_install", "-at_install")
class TestStackApi(HttpCase):
    def test_stack_of_this_server_process(self):
        self.authenticate("admin", "admin")
        response = self.url_open(f"{STACK}?pid={os.getpid()}")
        self.assertEqual(response.status_code, 200, response.text)
        answer = json.loads(response.content)
        self.assertEqual(answer["pid"], os.getpid())
        functions = {frame["function"] for thread in answer["threads"] for frame in thread["frames"]}
        # The request asking is among the threads, waiting for the answer.
        self.assertIn("get_stack", functions)

    def test_bad_requests_get_json_errors(self):
        user = new_test_user(self.env, login="wi_plain_stack", password="wi_plain_stack", groups="base.group_user")
        self.authenticate(user.login, "wi_plain_stack")
        self.assertEqual(self.url_open(f"{STACK}?pid={os.getpid()}").status_code, 403)
        self.authenticate("admin", "admin")
        self.assertEqual(self.url_open(f"{STACK}?pid=abc").status_code, 400)
        self.assertEqual(self.url_open(STACK).status_code, 400)
        self.assertEqual(self.url_open(f"{STACK}?pid=1").status_code, 400)
        self.assertEqual(self.url_open(PROFILE).status_code, 405)
        no_csrf = self.url_open(PROFILE, data={"pid": os.getpid(), "seconds": 1})
        self.assertEqual(no_csrf.status_code, 400)
        self.assertIn("csrf", no_csrf.json()["error"]["reason"])
        too_long = self.url_open(PROFILE, data={"pid": os.getpid(), "seconds": 61})
        self.assertEqual(too_long.status_code, 400)
        self.assertEqual(self.url_open("/worker_inspector/api/profile/0").status_code, 404)
