# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
from odoo import models

from .. import compat
from ..post_load import RECORDER, backend_pid, slow_after


class IrCron(models.Model):
    _inherit = "ir.cron"

    def _callback(self, cron_name, server_action_id, *args):
        """Publish the scheduled action being run, by a cron worker or thread (and,
        on 19.0, by "Run Manually"), on the activity board."""
        job_id = compat.cron_job_id(self, args)
        slot = RECORDER.begin_cron(
            job_id, cron_name, self.env.cr.dbname, self.env.uid, backend_pid(self.env.cr), slow_after(self.env)
        )
        try:
            return super()._callback(cron_name, server_action_id, *args)
        finally:
            if slot is not None:
                RECORDER.end_cron(slot)

    def method_direct_trigger(self):
        # "Run Manually" before 19.0 runs the action in the request, not through _callback.
        slot = None
        if len(self) == 1 and not compat.DIRECT_TRIGGER_CALLS_CALLBACK:
            slot = RECORDER.begin_cron(
                self.id,
                self.cron_name,
                self.env.cr.dbname,
                self.env.uid,
                backend_pid(self.env.cr),
                slow_after(self.env),
            )
        try:
            return super().method_direct_trigger()
        finally:
            if slot is not None:
                RECORDER.end_cron(slot)
