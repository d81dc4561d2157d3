# Put this folder first on PYTHONPATH to run Odoo as if setproctitle were not
# installed: Odoo then leaves its workers' titles as the master's command line.
raise ImportError("setproctitle is hidden for this test")
