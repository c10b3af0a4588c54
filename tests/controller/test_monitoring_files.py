"""ops/monitoring's files, checked without running nicpool: promtool and their shape.

promtool checks the rules, runs the rule unit tests and checks the example
scrape config; every alert has a severity, summary, description and a
runbook section naming only real ``nicpoolctl`` commands; every metric of
the contract is on the dashboard. The live half, a real Prometheus scraping
real controllers and an agent, is ``test_monitoring``.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.support.components import missing
from tests.support.prometheus import (
    CONTRACT,
    MONITORING,
    REPO,
    alerts,
    dashboard_expressions,
    family_of,
    load_dashboard,
    load_rules,
    metric_names,
    promtool_binary,
    run_promtool,
    variable_queries,
)

pytestmark = pytest.mark.controller

DASHBOARD = load_dashboard()
ALERTS = alerts(load_rules())


@pytest.fixture(scope="module")
def promtool() -> Path:
    binary = promtool_binary()
    if binary is None:
        missing("promtool", "install the Debian prometheus package (make deps)")
        raise AssertionError("unreachable")
    return binary


def test_promtool_accepts_every_rule(promtool: Path) -> None:
    done = run_promtool("check", "rules", "alerts.yaml")
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(ALERTS)} rules found" in done.stdout


def test_promtool_unit_tests_fire_each_alert_and_keep_healthy_pools_quiet(
    promtool: Path,
) -> None:
    done = run_promtool("test", "rules", "alerts_test.yaml")
    assert done.returncode == 0, done.stdout + done.stderr
    cases = [
        case
        for test in yaml.safe_load((MONITORING / "alerts_test.yaml").read_text())["tests"]
        for case in test.get("alert_rule_test", [])
    ]
    for alert in ALERTS:
        name = alert["alert"]
        mine = [case for case in cases if case["alertname"] == name]
        assert any(case.get("exp_alerts") for case in mine), f"{name}: no test makes it fire"
        assert any(not case.get("exp_alerts") for case in mine), f"{name}: no quiet case"


def test_example_scrape_config_is_valid(promtool: Path) -> None:
    done = run_promtool("check", "config", "prometheus.yml")
    assert done.returncode == 0, done.stdout + done.stderr
    config = yaml.safe_load((MONITORING / "prometheus.yml").read_text())
    jobs = {job["job_name"] for job in config["scrape_configs"]}
    assert jobs == {"nicpool-controller", "nicpool-agent"}


def test_every_alert_tells_the_operator_what_and_what_next() -> None:
    runbook = (MONITORING / "README.md").read_text()
    for alert in ALERTS:
        name = alert["alert"]
        assert alert["labels"]["severity"] in {"warning", "critical"}, name
        assert {"summary", "description", "runbook"} <= set(alert["annotations"]), name
        assert f"README.md#{name.lower()}" in alert["annotations"]["runbook"], name
        assert re.search(rf"^### {name}$", runbook, re.MULTILINE), f"{name}: no runbook section"


def test_runbooks_name_only_real_nicpoolctl_commands_and_flags() -> None:
    texts = [(MONITORING / "README.md").read_text()]
    texts += [str(alert["annotations"]) for alert in ALERTS]
    mentions = set(re.findall(r"nicpoolctl ([a-z]+)((?: --[a-z-]+)*)", "\n".join(texts)))
    assert mentions, "the runbooks name no nicpoolctl command"
    for command, flags in mentions:
        done = subprocess.run(
            [sys.executable, "-m", "reconciler.ctl.main", command, "--help"],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, f"nicpoolctl {command}: {done.stderr}"
        for flag in flags.split():
            assert flag in done.stdout, f"nicpoolctl {command} has no {flag}"


def test_dashboard_shows_every_metric_of_the_contract_through_variables() -> None:
    assert DASHBOARD["schemaVersion"] >= 36
    variables = {var["name"]: var for var in DASHBOARD["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    assert [q.label for q in variable_queries(DASHBOARD)] == ["subnet"]
    used = set()
    for expression in dashboard_expressions(DASHBOARD):
        used |= {family_of(name, CONTRACT) for name in metric_names(expression.promql)}
    assert used - {None, "up"} == CONTRACT
    ids = [panel["id"] for panel in DASHBOARD["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in DASHBOARD["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
