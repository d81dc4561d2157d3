"""``odoo-debug``: start Odoo in debug-safe mode (see ``launcher.cli``)."""
