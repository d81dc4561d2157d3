"""``odoo-debug``: start Odoo in debug-safe mode (see ``odoo_debug.cli``)."""
