"""``python -m launcher`` from a checkout: the same as the ``odoo-debug`` command.

``launcher/`` is the source folder of the ``odoo_debug`` package (what
``pip install`` puts in site-packages); it is not a package itself.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from odoo_debug.cli import main

sys.exit(main())
