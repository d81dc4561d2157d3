# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
import json

from odoo import fields, models

from ..engine import nodes


class WorkerInspectorAudit(models.Model):
    """Every control action: when, who, what, on which node and pid, and the result.

    A control aimed at another node is also its command: a ``pending`` row
    that the node carries out with its next heartbeat (``engine.nodes``).
    Only Settings administrators read it; it is written by the addon (sudo).
    """

    _name = "worker.inspector.audit"
    _description = "Server workers: control audit"
    _table = nodes.AUDIT_TABLE
    _order = "id desc"
    _log_access = True

    user_id = fields.Many2one("res.users", string="Who", readonly=True, index=True)
    action = fields.Selection(
        [
            (nodes.ACTION_ADD, "Add an HTTP worker"),
            (nodes.ACTION_REMOVE, "Remove an HTTP worker"),
            (nodes.ACTION_RECYCLE, "Recycle a worker"),
            (nodes.ACTION_CANCEL, "Cancel a PostgreSQL query"),
            (nodes.ACTION_TERMINATE, "Terminate a PostgreSQL session"),
        ],
        required=True,
        readonly=True,
    )
    node = fields.Char(readonly=True, index=True)
    pid = fields.Integer(readonly=True, help="Worker pid, or PostgreSQL backend pid for SQL actions.")
    state = fields.Selection(
        [
            ("pending", "Pending"),
            ("done", "Done"),
            ("refused", "Refused"),
            ("failed", "Failed"),
            (nodes.STATE_EXPIRED, "Expired"),
        ],
        required=True,
        readonly=True,
        index=True,
    )
    result = fields.Text(readonly=True, help="JSON: what was signalled, or why not.")
    done_at = fields.Datetime(readonly=True)

    def init(self):
        # The nodes' heartbeat table: plain SQL (UNLOGGED, one row per node),
        # written by heartbeats on connections of their own, not by the ORM.
        self.env.cr.execute(nodes.CREATE_NODE_TABLE)

    def public(self):
        """The API's audit entries."""
        return [
            {
                "id": rec.id,
                "when": fields.Datetime.to_string(rec.create_date),
                "who": rec.user_id.login,
                "action": rec.action,
                "node": rec.node,
                "pid": rec.pid,
                "state": rec.state,
                "result": json.loads(rec.result) if rec.result else None,
                "done_at": fields.Datetime.to_string(rec.done_at) if rec.done_at else None,
            }
            for rec in self
        ]
