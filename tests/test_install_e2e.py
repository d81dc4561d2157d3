"""Install and upgrade (``-u``) of the addon on the Odoo under test (17.0, 18.0 or 19.0).

The manifest's version has no series prefix ("1.0.0"): each series records it
as its own ("17.0.1.0.0", ...), so one branch installs and upgrades on all.
"""

import ast
import subprocess

import pytest
from odoo_harness import REPO, odoo_available, update_modules

pytestmark = pytest.mark.odoo

MANIFEST_VERSION = ast.literal_eval((REPO / "worker_inspector" / "__manifest__.py").read_text())["version"]


def _module_row(db):
    out = subprocess.run(
        ["psql", "-d", db, "-tAc", "SELECT state, latest_version FROM ir_module_module WHERE name='worker_inspector'"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    return tuple(out.split("|"))


def _sql(db, query):
    subprocess.run(["psql", "-d", db, "-qtAc", query], capture_output=True, text=True, check=True)


def test_installed_with_the_series_version(odoo_db):
    series = odoo_available()[1]
    assert _module_row(odoo_db) == ("installed", f"{series}.{MANIFEST_VERSION}")


def test_upgrade_from_an_older_version(odoo_db):
    series = odoo_available()[1]
    # As if an older release of the addon were installed: -u must bring it to this one.
    _sql(odoo_db, f"UPDATE ir_module_module SET latest_version='{series}.0.9.0' WHERE name='worker_inspector'")
    update_modules(odoo_db, ["worker_inspector"])
    assert _module_row(odoo_db) == ("installed", f"{series}.{MANIFEST_VERSION}")
