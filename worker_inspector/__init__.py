# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

# The engine (``worker_inspector.engine``) is importable without Odoo, by the
# launcher, the tests and the benchmarks; the Odoo parts load only when Odoo
# loads this folder as the ``worker_inspector`` addon.
if __name__.startswith("odoo.addons."):
    from . import controllers, dbselect, heartbeat, models
    from .post_load import post_load

    # At import rather than through the manifest's ``post_load``, which Odoo
    # skips when something imported the addon before its registry loaded it
    # (pytest-odoo importing the tests, another addon's import).
    post_load()
    heartbeat.start()

    def uninstall_hook(env):
        """The nodes' table is plain SQL (not a model's): it goes with the addon."""
        from .engine.nodes import NODE_TABLE

        env.cr.execute(f"DROP TABLE IF EXISTS {NODE_TABLE}")
