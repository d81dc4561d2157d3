"""Find the Odoo to run: which script, with which Python, found how."""

import dataclasses
import importlib.util
import os
import shlex
import shutil
import sys
from pathlib import Path

from .errors import LauncherError

# ``python -m odoo`` is Odoo's own entry point when there is no odoo-bin; the
# probe and the server then run with this Python, which imported it.
ODOO_MODULE = "odoo"


@dataclasses.dataclass(frozen=True)
class OdooInstall:
    """How to start Odoo: ``python odoo_bin ...`` or ``python -m odoo ...``."""

    python: str
    odoo_bin: str | None
    found_by: str

    def entry(self):
        """The arguments after the interpreter that start Odoo."""
        return [self.odoo_bin] if self.odoo_bin else ["-m", ODOO_MODULE]

    def describe(self):
        return f"{self.odoo_bin or 'python -m odoo'} ({self.found_by})"


def _python(interpreter, script, first_line):
    if not Path(interpreter).name.startswith(("python", "pypy")):
        raise LauncherError(f"{script} is not a Python script ({first_line}): give --odoo-bin Odoo's odoo-bin")
    return interpreter


def script_python(script, environ=None, fallback=sys.executable):
    """The interpreter a ``#!`` script names, e.g. ``#!/usr/bin/env python3``."""
    try:
        with open(script, "rb") as handle:
            first_line = handle.readline(512).decode("utf-8", "replace").strip()
    except OSError as exc:
        raise LauncherError(f"cannot read Odoo script {script}: {exc.strerror or exc}") from exc
    if not first_line.startswith("#!"):
        return fallback
    words = shlex.split(first_line[2:])
    if not words:
        return fallback
    if Path(words[0]).name == "env":
        names = [w for w in words[1:] if not w.startswith("-") and "=" not in w]
        if not names:
            return fallback
        path = (environ or os.environ).get("PATH")
        found = shutil.which(names[0], path=path)
        if not found:
            raise LauncherError(f"{script} needs {names[0]!r}, which is not on PATH")
        return _python(found, script, first_line)
    return _python(words[0], script, first_line)


def _checked_script(path, given_by):
    expanded = os.path.abspath(os.path.expanduser(path))
    if not os.path.isfile(expanded):
        raise LauncherError(f"Odoo not found: {path} (from {given_by}) does not exist or is not a file")
    if not os.access(expanded, os.R_OK):
        raise LauncherError(f"Odoo not found: {path} (from {given_by}) is not readable")
    return expanded


def find_odoo(odoo_bin_option=None, environ=None, python=sys.executable):
    """Find Odoo, in order: ``--odoo-bin``, ``ODOO_BIN``, PATH, importable package."""
    environ = os.environ if environ is None else environ
    if odoo_bin_option:
        script = _checked_script(odoo_bin_option, "--odoo-bin")
        return OdooInstall(script_python(script, environ, python), script, "--odoo-bin")
    if environ.get("ODOO_BIN"):
        script = _checked_script(environ["ODOO_BIN"], "ODOO_BIN")
        return OdooInstall(script_python(script, environ, python), script, "ODOO_BIN")
    for name in ("odoo", "odoo-bin"):
        found = shutil.which(name, path=environ.get("PATH"))
        if found:
            script = os.path.abspath(found)
            return OdooInstall(script_python(script, environ, python), script, f"{name} on PATH")
    spec = importlib.util.find_spec(ODOO_MODULE)
    # Odoo 19's ``odoo`` is a namespace package: no origin, a search location.
    locations = list(spec.submodule_search_locations or []) if spec else []
    if not locations:
        raise LauncherError(
            f"Odoo not found: give --odoo-bin PATH, set ODOO_BIN, put odoo-bin on PATH or install Odoo for {python}"
        )
    beside = Path(locations[0]).parent / "odoo-bin"
    if beside.is_file():
        return OdooInstall(python, str(beside), "beside the importable odoo package")
    return OdooInstall(python, None, "importable odoo package")
