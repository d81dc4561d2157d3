"""``odoo-debug --check``: the sizing and configuration advice for a config file,
without starting a server (README, "Checking a configuration")."""

import os

from worker_inspector.engine import advice, read_host

from .errors import PROG
from .prepare import about_odoo, locate, parse_with_odoo, read_arguments
from .probe_client import OdooProbe


def check_config(parser, argv, environ=None):
    """``(text, exit status)``: the advice for the configuration as Odoo reads
    it (no debug override), this host's CPUs and RAM, and PostgreSQL's limits."""
    environ = dict(os.environ if environ is None else environ)
    opts, passthrough, _debugpy = read_arguments(parser, argv)
    located = locate(opts, passthrough, environ)
    with OdooProbe(located.install, environ) as probe:
        about_odoo(probe, located.install, None)
        final = parse_with_odoo(probe, located.user_args, final=True)
        postgres = probe.ask(op="postgres")
    if not postgres.get("ok"):
        postgres = {"error": postgres.get("error")}
    host = read_host()
    facts = advice.Facts(
        config=final["options"],
        cpu_count=host["cpu_count"],
        memory_total=host["memory_total"],
        postgres=postgres,
        running=False,
    )
    items = advice.advise(facts)
    source = final["rcfile"] if final.get("rcfile_exists") else "no config file (Odoo's defaults)"
    header = f"{PROG} --check: {source}, on this host ({host['cpu_count']} CPUs)\n"
    return header + advice.format_advice(items), advice.exit_status(items)
