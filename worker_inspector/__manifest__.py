# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
{
    "name": "Worker Inspector",
    "summary": "Live dashboard and JSON API of the server's workers, threads, "
    "cron threads and memory against Odoo's limits",
    "version": "1.0.0",
    # Listed under Apps as it opens (its default filter shows applications only).
    "category": "Technical",
    "application": True,
    "website": "https://github.com/worker-inspector/worker_inspector",
    "author": "Worker Inspector developers",
    "license": "LGPL-3",
    "depends": ["base", "web"],
    "external_dependencies": {"python": ["psutil"]},
    "data": [
        "security/ir.model.access.csv",
        "views/worker_inspector_menus.xml",
    ],
    "uninstall_hook": "uninstall_hook",
    "assets": {
        "web.assets_backend": [
            "worker_inspector/static/src/**/*",
        ],
        "web.assets_tests": [
            "worker_inspector/static/tests/tours/*",
        ],
        # HOOT (18.0+) and QUnit (17.0): each series loads the bundle it has.
        "web.assets_unit_tests": [
            "worker_inspector/static/tests/**/*.test.js",
        ],
        "web.qunit_suite_tests": [
            "worker_inspector/static/tests/qunit/*.js",
        ],
    },
}
