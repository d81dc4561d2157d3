# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
from odoo.exceptions import AccessError, UserError
from odoo.tests import TransactionCase, new_test_user, tagged


@tagged("post_install", "-at_install")
class TestAudit(TransactionCase):
    def test_refused_controls_are_audited_and_only_admins_read_the_audit(self):
        inspector = self.env["worker.inspector"]
        # The test server is threaded: adding a worker to it is refused, and recorded.
        with self.assertRaisesRegex(UserError, "threaded"):
            inspector.change_workers(inspector._this_node(), 1)
        with self.assertRaisesRegex(UserError, "No node"):
            inspector.change_workers("elsewhere:1", -1)
        entries = inspector.get_audit()
        self.assertEqual([e["action"] for e in entries[:2]], ["worker_remove", "worker_add"])
        self.assertEqual({e["state"] for e in entries[:2]}, {"refused"})
        self.assertEqual(entries[0]["node"], "elsewhere:1")
        self.assertEqual(entries[1]["who"], self.env.user.login)
        self.assertIn("threaded", entries[1]["result"]["reason"])

        user = new_test_user(self.env, login="wi_audit_plain", groups="base.group_user")
        with self.assertRaises(AccessError):
            self.env["worker.inspector.audit"].with_user(user).search([])
        with self.assertRaises(AccessError):
            inspector.with_user(user).get_audit()
        with self.assertRaises(AccessError):
            inspector.with_user(user).change_workers(inspector._this_node(), 1)
        admin = self.env.ref("base.user_admin")
        self.assertTrue(self.env["worker.inspector.audit"].with_user(admin).search([]))
        # Nobody writes the audit through the ORM, not even an administrator.
        with self.assertRaises(AccessError):
            self.env["worker.inspector.audit"].with_user(admin).create({"action": "recycle", "state": "done"})
