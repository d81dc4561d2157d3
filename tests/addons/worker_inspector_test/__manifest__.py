# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
{
    "name": "Worker Inspector test routes",
    "summary": "Routes and a scheduled action that keep a worker busy, for worker_inspector's end-to-end tests",
    "version": "1.0.0",
    "category": "Hidden/Tests",
    "author": "Worker Inspector developers",
    "license": "LGPL-3",
    "depends": ["base"],
    "data": ["data/ir_cron.xml"],
    "installable": True,
}
