# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
from odoo import models
from odoo.http import request

from ..post_load import RECORDER, backend_pid, slow_after


class IrHttp(models.AbstractModel):
    _inherit = "ir.http"

    @classmethod
    def _authenticate(cls, endpoint):
        # The same hook on 17.0-19.0 (see compat): the request's database and user.
        result = super()._authenticate(endpoint)
        env = request.env
        uid = env.uid
        session = request.session
        login = session.login if uid and session.uid == uid else None
        RECORDER.set_user(request.db, uid, login, backend_pid(env.cr), slow_after(env))
        return result
