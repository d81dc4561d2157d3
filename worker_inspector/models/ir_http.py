# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
from odoo import models
from odoo.http import _request_stack

from ..post_load import note_authenticated


class IrHttp(models.AbstractModel):
    _inherit = "ir.http"

    @classmethod
    def _authenticate(cls, endpoint):
        # The same hook on 17.0-19.0 (see compat): the request's database and user.
        result = super()._authenticate(endpoint)
        # The request itself, not the ``request`` proxy: one lookup instead of one per attribute.
        note_authenticated(_request_stack.top)
        return result
