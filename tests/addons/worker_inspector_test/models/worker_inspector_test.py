# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
import os
import re
import tempfile
import time

from odoo import api, models

TOKEN_PARAM = "worker_inspector_test.cron_token"
MAX_HOLD = 60.0
_TOKEN_RE = re.compile(r"^[0-9a-f]{8,64}$")


def hold_file(token):
    """The file a test creates to hold a worker busy, and deletes to release it."""
    if not token or not _TOKEN_RE.match(token):
        raise ValueError("token must be 8 to 64 lowercase hex digits")
    return os.path.join(tempfile.gettempdir(), f"worker_inspector_test-{token}")


def held(token, started, max_hold=MAX_HOLD):
    return os.path.exists(hold_file(token)) and time.monotonic() - started < max_hold


class WorkerInspectorTest(models.AbstractModel):
    _name = "worker.inspector.test"
    _description = "Worker Inspector test helpers"

    @api.model
    def _cron_sleep(self):
        """The scheduled action: sleep while the test holds its token file."""
        token = self.env["ir.config_parameter"].sudo().get_param(TOKEN_PARAM)
        # Commit as batch jobs do (mass mailing, mail queue): a "Run Manually"
        # then no longer holds the job's lock, and a cron worker can run it too
        # (odoo/odoo#154763).
        self.env.cr.commit()  # pylint: disable=invalid-commit
        started = time.monotonic()
        while token and held(token, started):
            time.sleep(0.05)
