"""Start Odoo in debug-safe mode.

odoo-debug runs your Odoo with everything you pass it (-c, -d, -u, -i, --dev,
--http-port, ...) and forces, whatever the config file or the arguments say:
one process (--workers=0) so a breakpoint is hit once, no cron thread
(--max-cron-threads=0) so no scheduled action fires while you step, and no
time or memory limit (--limit-time-real, --limit-memory-soft/-hard = 0) so a
paused request is neither killed nor reloaded. It adds the worker_inspector
dashboard to the addons path, prints what it changed, then becomes Odoo
(same pid, signals and exit code). It never writes your config file.

Odoo is found with --odoo-bin, then $ODOO_BIN, then odoo or odoo-bin on PATH,
then the importable odoo package. The config file is -c, else $ODOO_RC, else
~/.odoorc, as Odoo reads it. A database that does not exist is created by
Odoo (log in as admin / admin); odoo-debug warns first. Every option not listed here goes to Odoo
unchanged (see odoo-bin --help); put Odoo's options after -- if one of them
clashes with an odoo-debug option.
"""

import argparse
import os
import sys
import traceback

from . import banner, ready
from .advice_check import check_config
from .errors import PROG, ExitStatus, LauncherError, say
from .prepare import OdooExited, prepare

EXAMPLES = """\
examples:
  odoo-debug -c ~/odoo.conf -d mydb -u my_module
  odoo-debug -d mydb --http-port=8070   # any Odoo option passes through
  odoo-debug -d mydb --dev=xml --debugpy 5678 --wait-for-client
  odoo-debug -d mydb --dry-run          # show the command, start nothing
  odoo-debug -c /etc/odoo.conf --check  # sizing advice for that config, exit 0/1/2
"""


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise LauncherError(f"{message} (see {PROG} --help)", exit_code=ExitStatus.USAGE)


def build_parser():
    summary, _, details = __doc__.partition("\n\n")
    parser = _Parser(
        prog=PROG,
        usage="%(prog)s [-c CONFIG] [-d DATABASE] [options] [ODOO OPTIONS...]",
        description=summary + "\n\n" + details,
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        # Odoo's options pass through: never read "--de" as "--debugpy".
        allow_abbrev=False,
    )
    parser.add_argument("-c", "--config", metavar="CONFIG", help="Odoo config file, read and never written")
    parser.add_argument("-d", "--database", metavar="DATABASE", help="database(s) to load, as Odoo's -d")
    parser.add_argument("--odoo-bin", metavar="PATH", help="the odoo-bin (or odoo) script to run")
    parser.add_argument(
        "--debugpy",
        metavar="[HOST:]PORT",
        help="run Odoo under debugpy listening on HOST:PORT (HOST defaults to 127.0.0.1)",
    )
    parser.add_argument(
        "--wait-for-client", action="store_true", help="with --debugpy: start Odoo only once the IDE has attached"
    )
    parser.add_argument(
        "--quiet",
        action="store_true",
        help="print no banner (warnings and errors still show); with --dry-run, only the command",
    )
    parser.add_argument("--dry-run", action="store_true", help="run the checks, print the banner and command, exit")
    parser.add_argument(
        "--check",
        action="store_true",
        help="start nothing: print the sizing and configuration advice for the config as it is"
        " (exit 0 ok, 1 warning, 2 critical)",
    )
    parser.add_argument("--traceback", action="store_true", help="show the full traceback of an error")
    return parser


def run(argv):
    if "--check" in (argv[: argv.index("--")] if "--" in argv else argv):
        text, status = check_config(build_parser(), argv)
        sys.stdout.write(text)
        return status
    opts, launch = prepare(build_parser(), argv)
    if opts.dry_run:
        sys.stdout.write(banner.render_command(launch.info) if opts.quiet else banner.render(launch.info))
        return ExitStatus.SUCCESS
    if not opts.quiet:
        sys.stdout.write(banner.render(launch.info))
        if launch.health:
            ready.start_watcher(launch.health, banner.render_ready(launch.info))
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        # Become Odoo: the IDE sees Odoo's pid, Ctrl-C reaches Odoo, its exit status is ours.
        os.execve(launch.command[0], launch.command, launch.env)
    except OSError as exc:
        raise LauncherError(f"cannot start {launch.command[0]}: {exc.strerror or exc}") from exc
    return ExitStatus.ERROR  # not reached


def main(argv=None):
    """Console script ``odoo-debug``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    show_traceback = "--traceback" in argv[: argv.index("--")] if "--" in argv else "--traceback" in argv
    try:
        return run(argv)
    except OdooExited as exc:
        sys.stdout.write(exc.output)
        return exc.code
    except LauncherError as exc:
        if show_traceback:
            traceback.print_exc()
            if exc.details:
                print(exc.details, file=sys.stderr)
        say("error", str(exc))
        return exc.exit_code
    except KeyboardInterrupt:
        return ExitStatus.INTERRUPTED
    except Exception as exc:  # noqa: BLE001 - one readable line unless --traceback
        if show_traceback:
            traceback.print_exc()
        hint = "" if show_traceback else " (run with --traceback for details)"
        say("error", f"{type(exc).__name__}: {exc}{hint}")
        return ExitStatus.ERROR
