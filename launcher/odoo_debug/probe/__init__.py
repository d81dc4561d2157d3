"""Code that runs under Odoo's own Python (see ``odoo_probe.py``).

It lives in a folder of its own because the probe runs as a script: Python
puts the script's folder first on ``sys.path``, and nothing here may shadow a
module Odoo imports.
"""
