# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
from lxml import etree

from odoo.tests import TransactionCase, tagged
from odoo.tools.safe_eval import safe_eval


@tagged("post_install", "-at_install")
class TestAppsList(TransactionCase):
    def _default_filter_domain(self):
        """The domain Apps opens with: its action's search_default_* filters."""
        action = self.env.ref("base.open_module_tree")
        context = safe_eval(action.context or "{}")
        arch = etree.fromstring(action.search_view_id.arch)
        domain = []
        for key, value in context.items():
            if key.startswith("search_default_") and value:
                (node,) = arch.xpath(f"//filter[@name='{key[len('search_default_') :]}']")
                domain += safe_eval(node.get("domain"))
        return domain

    def test_found_in_apps_with_the_default_filter(self):
        """After Update Apps List, Apps as it opens lists the module in a visible category."""
        self.env["ir.module.module"].update_list()
        domain = self._default_filter_domain()
        self.assertTrue(domain, "Apps opens without a filter: this test checks nothing")
        found = self.env["ir.module.module"].search(domain + [("name", "=", "worker_inspector")])
        self.assertEqual(found.name, "worker_inspector")
        category = found.category_id
        self.assertTrue(category.visible, category.display_name)
        self.assertNotIn("Hidden", category.display_name)
