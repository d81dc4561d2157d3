# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
from odoo import models

from .ir_http import RECORDER, backend_pid


class IrCron(models.Model):
    _inherit = "ir.cron"

    def _callback(self, cron_name, server_action_id):
        """Publish the scheduled action being run, by a cron worker or thread, or
        inside a request ("Run Manually"), on the activity board."""
        slot = RECORDER.begin_cron(self.id, cron_name, self.env.cr.dbname, self.env.uid, backend_pid(self.env.cr))
        try:
            return super()._callback(cron_name, server_action_id)
        finally:
            if slot is not None:
                RECORDER.end_cron(slot)

    def method_direct_trigger(self):
        # "Run Manually" runs the action in the request itself, not through _callback.
        slot = None
        if len(self) == 1:
            slot = RECORDER.begin_cron(
                self.id, self.cron_name, self.env.cr.dbname, self.env.uid, backend_pid(self.env.cr)
            )
        try:
            return super().method_direct_trigger()
        finally:
            if slot is not None:
                RECORDER.end_cron(slot)
