"""Talk to ``probe/odoo_probe.py`` running under Odoo's Python."""

import json
import subprocess
import tempfile
from pathlib import Path

from .errors import LauncherError

PROBE_SCRIPT = Path(__file__).resolve().parent / "probe" / "odoo_probe.py"
PROBE_TIMEOUT = 120


class OdooProbe:
    """One probe process: Odoo is imported once and answers several questions."""

    def __init__(self, install, environ=None):
        self.install = install
        # Odoo's import may log: keep it out of the answers and out of the way.
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - closed by close()
        argv = [install.python, str(PROBE_SCRIPT), install.odoo_bin or ""]
        try:
            self._proc = subprocess.Popen(
                argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=self._stderr,
                text=True,
                env=environ,
                # Not inside odoo/ (its http.py would shadow the standard library).
                cwd=tempfile.gettempdir(),
            )
        except OSError as exc:
            raise LauncherError(f"cannot run Odoo's Python {install.python}: {exc.strerror or exc}") from exc

    def ask(self, **request):
        try:
            self._proc.stdin.write(json.dumps(request) + "\n")
            self._proc.stdin.flush()
            line = self._proc.stdout.readline()
        except OSError:
            line = ""
        if not line:
            self._proc.wait(PROBE_TIMEOUT)
            details = self._stderr_text()
            raise LauncherError(
                f"cannot import Odoo with {self.install.python}: {_last_line(details) or 'no answer'}",
                details=details,
            )
        return json.loads(line)

    def _stderr_text(self):
        self._stderr.seek(0)
        return self._stderr.read().decode("utf-8", "replace")

    def close(self):
        if self._proc.poll() is None:
            try:
                self._proc.stdin.close()
                self._proc.wait(10)
            except (OSError, subprocess.TimeoutExpired):
                self._proc.kill()
                self._proc.wait()
        self._stderr.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _last_line(text):
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""
