"""odoo-debug's exit statuses, and the one exception it shows its user as a single line."""

import enum
import signal
import sys

PROG = "odoo-debug"


class ExitStatus(enum.IntEnum):
    """What odoo-debug exits with when it does not become Odoo (then Odoo's status is ours)."""

    SUCCESS = 0
    ERROR = 1  # a problem the user can fix: Odoo not found, port in use, ...
    USAGE = 2  # a wrong command line, as argparse and optparse exit
    INTERRUPTED = 128 + signal.SIGINT  # Ctrl-C before Odoo started, as a shell reports it


class LauncherError(Exception):
    """A problem the user can fix: printed as one line, exit status ``exit_code``."""

    def __init__(self, message, exit_code=ExitStatus.ERROR, details=None):
        super().__init__(message)
        self.exit_code = exit_code
        # A traceback from Odoo's side, shown only with --traceback.
        self.details = details


def say(kind, message):
    """One line on stderr: ``odoo-debug: warning: ...``."""
    print(f"{PROG}: {kind}: {message}", file=sys.stderr)
