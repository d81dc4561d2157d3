"""How odoo-debug turns the user's command line into Odoo's (pure, but for finding ~/.odoorc).

The values that switch a limit off come from Odoo's own code, the same in 17.0, 18.0 and 19.0
(``odoo/service/server.py``, ``ThreadedServer``):

- ``workers=0`` selects ``ThreadedServer``: one process, one thread per request.
- ``max_cron_threads=0``: ``cron_spawn`` starts ``range(max_cron_threads)`` threads.
- ``limit_time_real=0``: ``process_limit`` checks ``if thread_limit_time_real and ...``.
- ``limit_memory_soft=0``: ``if config['limit_memory_soft'] and memory > ...``.
- ``limit_memory_hard=0``: ``set_limit_memory_hard`` sets ``RLIMIT_AS`` only ``if limit_memory_hard``.

Left alone because a threaded server without cron threads never applies
them: ``limit_time_cpu`` (``RLIMIT_CPU`` is set in prefork workers only),
``limit_time_real_cron`` (cron threads only), ``limit_request`` and the
``*_gevent`` limits (prefork workers and the gevent process only).
"""

import dataclasses
import os

MIB = 1024 * 1024
ADDON_ACTION = "worker_inspector.action_worker_inspector_dashboard"
DEFAULT_DEBUGPY_HOST = "127.0.0.1"
WILDCARD_HOSTS = ("", "0.0.0.0", "::")


@dataclasses.dataclass(frozen=True)
class Forced:
    key: str
    option: str
    value: int | bool
    why: str

    @property
    def argument(self):
        """The argument that forces it (a flag for a boolean)."""
        return self.option if isinstance(self.value, bool) else f"{self.option}={self.value}"


FORCED = (
    Forced("workers", "--workers", 0, "one process: a breakpoint is hit once, in the process you debug"),
    Forced("max_cron_threads", "--max-cron-threads", 0, "no scheduled action runs while you step through code"),
    Forced("limit_time_real", "--limit-time-real", 0, "a paused request is neither killed nor reloaded"),
    Forced("limit_memory_soft", "--limit-memory-soft", 0, "no reload when the debugger makes the process grow"),
    Forced("limit_memory_hard", "--limit-memory-hard", 0, "no address-space limit: allocations never fail"),
    # Odoo's database manager saves the config file when the master password
    # is set there (service/db.py exp_change_admin_password); without the
    # database list, Odoo refuses every database-management call.
    Forced("list_db", "--no-database-list", False, "the database manager would rewrite your config file"),
)
MEMORY_KEYS = ("limit_memory_soft", "limit_memory_hard")


@dataclasses.dataclass(frozen=True)
class Override:
    setting: str
    before: str
    after: str
    why: str


def parse_endpoint(text, default_host=DEFAULT_DEBUGPY_HOST):
    """``PORT``, ``HOST:PORT`` or ``[IPv6]:PORT`` -> ``(host, port)``; ValueError if invalid."""
    text = (text or "").strip()
    host, port_text = default_host, text
    if text.startswith("["):
        closing = text.find("]:")
        if closing < 0:
            raise ValueError(f"expected [HOST]:PORT, got {text!r}")
        host, port_text = text[1:closing], text[closing + 2 :]
    elif ":" in text:
        host, port_text = text.rsplit(":", 1)
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"expected [HOST:]PORT with PORT from 1 to 65535, got {text!r}")
    return host or default_host, int(port_text)


def format_endpoint(host, port):
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def dev_without_reload(dev_mode):
    """Odoo's parsed ``dev_mode`` list without ``reload`` (``all`` is reload,qweb,xml)."""
    kept = []
    for item in dev_mode or []:
        if item in ("reload", "all") or not item or item in kept:
            continue
        kept.append(item)
    return kept


def strip_separator(args):
    """Drop the first ``--``: it only ends odoo-debug's own options."""
    args = list(args)
    if "--" in args:
        args.remove("--")
    return args


def _show(key, value):
    if key == "list_db":
        return "off (no database manager)" if value is False else "on"
    if value is None or value is False:
        return "-"
    if key == "workers":
        return f"{value} ({'prefork' if value else 'threaded'})"
    if key in MEMORY_KEYS:
        return f"{value} ({value // MIB} MiB)" if value else "0 (off)"
    if key == "limit_time_real":
        return f"{value} s" if value else "0 (off)"
    if key == "dev_mode":
        return ",".join(value) if value else "-"
    return str(value)


def overrides(user_options, dropping_reload=False):
    """The table of what odoo-debug changes: setting, config/args value, debug value, why."""
    rows = []
    for forced in FORCED:
        before = user_options.get(forced.key)
        rows.append(Override(forced.key, _show(forced.key, before), _show(forced.key, forced.value), forced.why))
    if dropping_reload:
        dev_mode = user_options.get("dev_mode")
        rows.append(
            Override(
                "dev_mode",
                _show("dev_mode", dev_mode),
                _show("dev_mode", dev_without_reload(dev_mode)),
                "reload re-executes the process and ends the debugpy session",
            )
        )
    return rows


def user_arguments(passthrough, config_file=None, database=None):
    """The user's Odoo arguments, as Odoo would get them without odoo-debug."""
    args = []
    if config_file:
        args += ["-c", config_file]
    if database:
        args += ["-d", database]
    return args + strip_separator(passthrough)


def debug_arguments(user_args, addons_path=None, dev_mode=None):
    """The user's arguments, then what odoo-debug forces: Odoo keeps the last value given."""
    args = list(user_args)
    if addons_path:
        args.append("--addons-path=" + ",".join(addons_path))
    args += [forced.argument for forced in FORCED]
    if dev_mode is not None:
        # An empty --dev= clears a --dev=reload given earlier.
        args.append("--dev=" + ",".join(dev_mode))
    return args


def server_command(python, entry, odoo_args, debugpy=None, wait_for_client=False):
    """The full command line: ``python [-X frozen_modules=off -m debugpy --listen H:P] odoo-bin ARGS``."""
    command = [python]
    if debugpy:
        # Python 3.11+ freezes some standard modules, and debugpy warns it may miss breakpoints in them.
        command += ["-X", "frozen_modules=off", "-m", "debugpy", "--listen", format_endpoint(*debugpy)]
        if wait_for_client:
            command.append("--wait-for-client")
    return command + list(entry) + list(odoo_args)


def browse_host(interface):
    host = "localhost" if interface in WILDCARD_HOSTS else interface
    return f"[{host}]" if ":" in host else host


# The web client's address and an action's in it, by Odoo series: ``/odoo``
# and ``/odoo/action-<xmlid>`` since 18.0, ``/web`` and ``/web#action=`` before.
WEB_CLIENT = {17: ("/web", "/web#action={action}")}
WEB_CLIENT_DEFAULT = ("/odoo", "/odoo/action-{action}")


def web_client(odoo_version):
    """``(path, action URL template)`` of the web client of Odoo ``odoo_version`` (e.g. ``17.0-20240709``)."""
    major = str(odoo_version or "").split(".", 1)[0]
    return WEB_CLIENT.get(int(major) if major.isdigit() else None, WEB_CLIENT_DEFAULT)


def _base_url(options):
    if not options.get("http_enable", True):
        return None
    return f"http://{browse_host(options.get('http_interface') or '')}:{options.get('http_port')}"


def server_url(options, odoo_version=None):
    base = _base_url(options)
    return base and base + web_client(odoo_version)[0]


def action_url(options, odoo_version, action=ADDON_ACTION):
    base = _base_url(options)
    return base and base + web_client(odoo_version)[1].format(action=action)


def health_address(options):
    """``(host, port)`` to ask whether the server answers, or None when it serves no HTTP."""
    if not options.get("http_enable", True) or options.get("stop_after_init"):
        return None
    interface = options.get("http_interface") or ""
    host = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(interface, interface)
    return host, options.get("http_port")


def resolve_config(option, environ, home=None):
    """The config file Odoo will read, and who chose it: ``(path or None, source)``.

    Odoo's order: ``-c``, ``ODOO_RC``, ``OPENERP_SERVER``, ``~/.odoorc``
    (``~/.openerp_serverrc`` when only that one exists). Returns ``None`` when
    the default file does not exist: Odoo then runs on defaults.
    """
    home = home or os.path.expanduser("~")
    for path, source in (
        (option, "-c/--config"),
        (environ.get("ODOO_RC"), "ODOO_RC"),
        (environ.get("OPENERP_SERVER"), "OPENERP_SERVER"),
    ):
        if path:
            return os.path.abspath(os.path.expanduser(path)), source
    for name in (".odoorc", ".openerp_serverrc"):
        path = os.path.join(home, name)
        if os.path.isfile(path):
            return path, f"~/{name}"
    return None, "none"
