"""What ``pip install`` puts in site-packages: ``odoo_debug`` and ``worker_inspector``, nothing else.

A real wheel is built from a copy of the checkout's files (setuptools, no
network; the copy keeps build/ out of the checkout) and run from where it is
unpacked, away from the checkout.
"""

import configparser
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SOURCE_FOLDERS = {"odoo_debug": REPO / "launcher" / "odoo_debug", "worker_inspector": REPO / "worker_inspector"}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheel")
    files = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=REPO, capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    source = out / "source"
    for name in files:
        if (REPO / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, source / name)
    build = [sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "--no-build-isolation", "-q", "-w", out]
    result = subprocess.run(build, capture_output=True, text=True, check=False, cwd=out)
    if result.returncode != 0 and "No module named" in result.stderr:
        pytest.skip(f"cannot build a wheel with {sys.executable}: {result.stderr.strip().splitlines()[-1]}")
    assert result.returncode == 0, result.stderr
    (path,) = out.glob("*.whl")
    return path


def test_the_wheel_installs_odoo_debug_and_the_addon_and_no_launcher_package(wheel):
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        top_level = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")}
        entry_points = next(archive.read(n).decode() for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert top_level == {"odoo_debug", "worker_inspector"}
    assert "odoo_debug/probe/odoo_probe.py" in names
    assert "worker_inspector/static/src/dashboard_action/dashboard_action.xml" in names
    assert "odoo-debug = odoo_debug.cli:main" in entry_points


def test_every_package_folder_is_listed_in_setup_cfg():
    cfg = configparser.ConfigParser()
    cfg.read(REPO / "setup.cfg")
    listed = {line.strip() for line in cfg["options"]["packages"].splitlines() if line.strip()}
    found = set()
    for name, folder in SOURCE_FOLDERS.items():
        for init in folder.rglob("__init__.py"):
            found.add(".".join([name, *init.parent.relative_to(folder).parts]))
    assert listed == found


def test_the_installed_command_runs_away_from_the_checkout(wheel, tmp_path):
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(tmp_path / "site-packages")
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]);"
        "from odoo_debug import addons, cli;"
        "print(addons.addon_dir()); cli.main(['--help'])"
    )
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    result = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "site-packages")],
        capture_output=True, text=True, check=False, cwd=tmp_path, env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    addon, _, usage = result.stdout.partition("\n")
    assert addon == str(tmp_path / "site-packages" / "worker_inspector")
    assert usage.startswith("usage: odoo-debug ")
