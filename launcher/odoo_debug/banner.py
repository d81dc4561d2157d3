"""What odoo-debug prints: the banner before Odoo starts, and the line once it answers.

Pure text rendering: the caller passes the command and database already
redacted (``worker_inspector.engine.redact_cmdline``).
"""

import dataclasses
import json
import shlex

from .plan import WILDCARD_HOSTS, format_endpoint

LABEL = "  %-11s %s"
NEW_DATABASE_LOGIN = "admin / admin"


@dataclasses.dataclass
class BannerInfo:
    odoo_version: str
    odoo_source: str
    python_version: str
    config_file: str | None
    database: str | None
    addons_path: list
    addon_note: str
    url: str | None
    rows: list
    command: list
    dashboard: str | None = None
    pid: int | None = None
    debugpy: tuple | None = None
    wait_for_client: bool = False
    # Databases Odoo initialises on this start (created, or empty): their login is admin/admin.
    new_database: bool = False
    notes: list = dataclasses.field(default_factory=list)


def vscode_attach(host, port, name="Attach to odoo-debug"):
    """A launch.json configuration that attaches VS Code to debugpy."""
    connect_host = "localhost" if host in WILDCARD_HOSTS else host
    return {
        "name": name,
        "type": "debugpy",
        "request": "attach",
        "connect": {"host": connect_host, "port": port},
        "justMyCode": False,
    }


def _table(rows, indent):
    headers = ("setting", "config/args", "debug", "why")
    cells = [headers] + [(r.setting, r.before, r.after, r.why) for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(3)]
    lines = []
    for row in cells:
        lines.append(indent + "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:3])) + "  " + row[3])
    return lines


def _login(info):
    return f"{NEW_DATABASE_LOGIN} (a new database)" if info.new_database else None


def render(info):
    """The text printed before Odoo starts."""
    lines = [f"odoo-debug: Odoo {info.odoo_version}, {info.odoo_source}, Python {info.python_version}"]
    lines.append(LABEL % ("config", f"{info.config_file} (read, never written)" if info.config_file else "none"))
    lines.append(LABEL % ("database", info.database or "none given: pick one in the browser"))
    lines.append(LABEL % ("addons path", ",".join(info.addons_path)))
    lines.append(LABEL % ("", info.addon_note))
    lines.append(LABEL % ("open", info.url or "HTTP is off (--no-http)"))
    if info.dashboard:
        lines.append(LABEL % ("dashboard", info.dashboard))
    if _login(info):
        lines.append(LABEL % ("login", _login(info)))
    if info.pid:
        lines.append(LABEL % ("pid", f"{info.pid} (odoo-debug becomes Odoo: attach a debugger to this pid)"))
    lines.append("  overrides:")
    lines += _table(info.rows, "    ")
    if info.debugpy:
        endpoint = format_endpoint(*info.debugpy)
        waiting = ", Odoo starts when VS Code attaches" if info.wait_for_client else ""
        lines.append(LABEL % ("debugpy", f"listening on {endpoint}{waiting}"))
        lines.append("  VS Code launch.json configuration:")
        attach = json.dumps(vscode_attach(*info.debugpy), indent=4)
        lines += ["    " + line for line in attach.splitlines()]
    for note in info.notes:
        lines.append(f"  note: {note}")
    lines.append(LABEL % ("command", shlex.join(info.command)))
    return "\n".join(lines) + "\n"


def render_ready(info):
    """Printed once the server answers HTTP: the banner has scrolled away under Odoo's log by then."""
    lines = [f"odoo-debug: Odoo is ready: open {info.url}"]
    if info.dashboard and info.dashboard.startswith("http"):
        lines.append(LABEL % ("dashboard", info.dashboard))
    if _login(info):
        lines.append(LABEL % ("login", _login(info)))
    return "\n".join(lines) + "\n"


def render_command(info):
    """``--quiet --dry-run``: the command alone, for a script or an IDE's run configuration."""
    return shlex.join(info.command) + "\n"
