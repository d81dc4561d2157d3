"""The one exception odoo-debug shows to its user as a single line."""


class LauncherError(Exception):
    """A problem the user can fix: printed as one line, exit code ``exit_code``."""

    def __init__(self, message, exit_code=1, details=None):
        super().__init__(message)
        self.exit_code = exit_code
        # A traceback from Odoo's side, shown only with --traceback.
        self.details = details
