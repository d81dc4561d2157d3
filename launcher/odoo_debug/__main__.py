"""``python -m odoo_debug``: the same as the ``odoo-debug`` console script."""

import sys

from .cli import main

sys.exit(main())
