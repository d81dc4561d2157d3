# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
from odoo import http
from odoo.tests import tagged
from odoo.tests.common import BaseCase
from odoo.tools import config

from ..dbselect import one_database_by_config


@tagged("post_install", "-at_install")
class TestDatabaseSelection(BaseCase):
    def test_one_database_exposed_by_the_configuration(self):
        for options, one in (
            ({"dbfilter": "", "db_name": "prod"}, True),
            ({"dbfilter": "", "db_name": ["prod"]}, True),  # 19.0 keeps a list
            ({"dbfilter": "", "db_name": "prod, prod"}, True),
            ({"dbfilter": "^prod$", "db_name": False}, True),
            ({"dbfilter": r"^my\.db$", "db_name": "a,b"}, True),  # the filter wins over -d
            ({"dbfilter": "", "db_name": "a,b"}, False),
            ({"dbfilter": "", "db_name": ["a", "b"]}, False),
            ({"dbfilter": "", "db_name": False}, False),
            ({"dbfilter": "^%d$", "db_name": "prod"}, False),  # by host
            ({"dbfilter": "^prod.*$", "db_name": "prod"}, False),
            ({"dbfilter": "^a|b$", "db_name": False}, False),
        ):
            with self.subTest(options=options):
                self.assertEqual(one_database_by_config(options), one)

    def test_the_override_runs_only_where_it_can_change_the_choice(self):
        # It runs on every request Odoo serves: not where one database is exposed anyway.
        installed = getattr(http.Request._get_session_and_dbname, "_worker_inspector", False)
        self.assertEqual(installed, not one_database_by_config(config))
        self.assertTrue(getattr(http.Request._serve_nodb, "_worker_inspector", False))
