import os

import pytest

# Odoo addons used by the end-to-end servers, not test modules of this suite.
collect_ignore = ["addons"]

from odoo_harness import OdooServer, create_database, drop_database, odoo_available, unique_name


def pytest_collection_modifyitems(config, items):
    available, reason = odoo_available() if any(i.get_closest_marker("odoo") for i in items) else (True, "")
    if available:
        return
    skip = pytest.mark.skip(reason=f"Odoo tests skipped: {reason}")
    for item in items:
        if item.get_closest_marker("odoo"):
            item.add_marker(skip)


@pytest.fixture(scope="session")
def odoo_db():
    """A database with worker_inspector (and the test addons) installed.

    ``WI_TEST_DB`` names one prepared by the test command; otherwise one is
    created here and dropped at the end.
    """
    prepared = os.environ.get("WI_TEST_DB")
    if prepared:
        yield prepared
        return
    name = unique_name("wi_e2e")
    create_database(name)
    try:
        yield name
    finally:
        drop_database(name)


@pytest.fixture(scope="module")
def prefork(odoo_db):
    """A real prefork server (2 HTTP workers, 1 cron worker, gevent), one per test module."""
    with OdooServer(odoo_db, workers=2, max_cron_threads=1) as server:
        yield server
