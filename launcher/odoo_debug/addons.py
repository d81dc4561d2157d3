"""Put the worker_inspector addon on Odoo's addons path, and nothing else.

Odoo's addons path takes folders that *contain* modules. When the addon's
parent folder holds only this module (a git checkout of this project), that
folder goes on the path as it is: breakpoints set in the files you edit bind,
because Odoo imports those very files. When the parent holds other things
(``site-packages`` after ``pip install``, or a folder of other modules that
the user did not ask for), a private folder holding a single symlink
``worker_inspector`` goes on the path instead, so no unrelated module appears
in the Apps list or shadows one of the user's.
"""

import hashlib
import importlib.util
import os
import site
from pathlib import Path

from .errors import LauncherError

ADDON_NAME = "worker_inspector"
MANIFEST = "__manifest__.py"


def addon_dir():
    """The real folder of the worker_inspector addon that ships with odoo-debug."""
    spec = importlib.util.find_spec(ADDON_NAME)
    if spec is None or not spec.origin:
        raise LauncherError(f"the {ADDON_NAME} addon is not installed next to odoo-debug")
    return os.path.realpath(os.path.dirname(spec.origin))


def _site_dirs():
    dirs = set()
    try:
        dirs.update(site.getsitepackages())
    except AttributeError:  # virtualenvs of old Pythons lack it
        pass
    user_site = site.getusersitepackages()
    if user_site:
        dirs.add(user_site)
    return {os.path.realpath(d) for d in dirs}


def other_modules(parent, name=ADDON_NAME):
    """Odoo modules in ``parent`` other than ``name``."""
    try:
        entries = sorted(os.listdir(parent))
    except OSError:
        return []
    return [e for e in entries if e != name and os.path.isfile(os.path.join(parent, e, MANIFEST))]


def parent_is_private(parent):
    """Whether ``parent`` can go on the addons path without bringing anything else."""
    if Path(parent).name in ("site-packages", "dist-packages") or os.path.realpath(parent) in _site_dirs():
        return False
    return not other_modules(parent)


def cache_root(environ=None):
    environ = os.environ if environ is None else environ
    base = environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "odoo-debug")


def private_addons_dir(addon, environ=None):
    """``<cache>/odoo-debug/addons-<hash>/worker_inspector -> addon``, created if needed.

    The hash of the addon's folder keeps two installations (two virtualenvs)
    from pointing one shared symlink back and forth.
    """
    key = hashlib.sha256(addon.encode()).hexdigest()[:12]
    folder = os.path.join(cache_root(environ), f"addons-{key}")
    link = os.path.join(folder, ADDON_NAME)
    try:
        os.makedirs(folder, mode=0o700, exist_ok=True)
        if not (os.path.islink(link) and os.readlink(link) == addon):
            # Replace atomically: a concurrent odoo-debug never sees no link.
            temporary = f"{link}.{os.getpid()}.tmp"
            os.symlink(addon, temporary)
            os.replace(temporary, link)
    except OSError as exc:
        raise LauncherError(
            f"cannot create {link} for the {ADDON_NAME} addon: {exc.strerror or exc}"
            " (set XDG_CACHE_HOME to a writable folder)"
        ) from exc
    return folder


def provides_addon(path, name=ADDON_NAME):
    return os.path.isfile(os.path.join(path, name, MANIFEST))


def addons_path_entry(addon, environ=None):
    """The folder to add to the addons path so Odoo finds ``addon``."""
    parent = os.path.dirname(addon)
    if parent_is_private(parent):
        return parent
    return private_addons_dir(addon, environ)


def merge_addons_path(odoo_paths, entry):
    """Odoo's addons path with ``entry`` appended, unless a path already provides the addon.

    The user's folders come first so that, for any module both provide,
    Odoo keeps loading the user's copy. Returns ``(paths, added, provider)``.
    """
    paths = [p for p in odoo_paths if p]
    for path in paths:
        if provides_addon(path):
            return paths, False, path
    return paths + [entry], True, entry
