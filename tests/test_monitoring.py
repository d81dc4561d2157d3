"""The Prometheus alerting rules (``promtool test rules``) and the Grafana dashboard,
checked against the metrics a real Odoo server exports."""

import json
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
RULES = REPO / "monitoring" / "prometheus" / "worker_inspector.rules.yml"
RULE_TESTS = REPO / "monitoring" / "prometheus" / "worker_inspector.rules.test.yml"
DASHBOARD = REPO / "monitoring" / "grafana" / "worker_inspector.json"
METRIC_RE = re.compile(r"\bodoo_[a-z0-9_]+\b")

promtool = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    promtool is None, reason="promtool is not installed (Debian package prometheus; .ci/run installs it)"
)


def _promtool(*args, cwd):
    return subprocess.run([promtool, *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False)


@needs_promtool
def test_rules_are_valid_and_their_unit_tests_pass():
    check = _promtool("check", "rules", RULES.name, cwd=RULES.parent)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "SUCCESS: 6 rules found" in check.stdout
    run = _promtool("test", "rules", RULE_TESTS.name, cwd=RULES.parent)
    assert run.returncode == 0, run.stdout + run.stderr


@needs_promtool
def test_rule_unit_tests_catch_a_wrong_threshold(tmp_path):
    # The same unit tests against rules with one threshold changed: they must fail.
    (tmp_path / RULES.name).write_text(RULES.read_text().replace("> 0.9", "> 0.95"))
    (tmp_path / RULE_TESTS.name).write_text(RULE_TESTS.read_text())
    run = _promtool("test", "rules", RULE_TESTS.name, cwd=tmp_path)
    assert run.returncode != 0
    assert "OdooWorkerNearMemoryHardLimit" in run.stdout + run.stderr


def dashboard_exprs():
    panels = json.loads(DASHBOARD.read_text())["panels"]
    exprs = [target["expr"] for panel in panels for target in panel["targets"]]
    assert len(exprs) == len(panels) >= 10
    return exprs


def rule_exprs():
    return re.findall(r"^\s+expr: (.+)$", RULES.read_text(), re.MULTILINE)


def exported_names(text):
    """Sample names of a Prometheus text exposition."""
    return {line.split("{")[0].split(" ")[0] for line in text.splitlines() if line and not line.startswith("#")}


@pytest.mark.odoo
def test_rules_and_dashboard_use_exported_metrics(prefork):
    session = prefork.login_session()
    # Node metrics have samples once a node published its first heartbeat (within 10 s).
    deadline = time.monotonic() + 30
    while not session.get(prefork.url + "/worker_inspector/api/nodes", timeout=60).json():
        assert time.monotonic() < deadline, "no heartbeat in 30 s"
        time.sleep(0.5)
    response = session.get(prefork.url + "/worker_inspector/metrics", timeout=60)
    assert response.status_code == 200, response.text
    exported = exported_names(response.text)
    assert "odoo_server_info" in exported and "odoo_cron_overdue_jobs" in exported
    used = {name for expr in dashboard_exprs() for name in METRIC_RE.findall(expr)}
    assert used and used <= exported, sorted(used - exported)
    in_rules = {name for expr in rule_exprs() for name in METRIC_RE.findall(expr)}
    assert len(rule_exprs()) == 6
    assert in_rules <= exported, sorted(in_rules - exported)
