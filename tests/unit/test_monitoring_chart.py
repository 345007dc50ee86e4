"""The chart's monitoring files (issue 13, items 9 and 10) agree with the code: the PrometheusRule's rules
are the ones readiness.alerts generates, every alert has a runbook its `runbook_url` reaches, and every
series, label and variable the Grafana dashboard reads exists. Pure file checks; promtool and a real
Prometheus judge the same files in tests/prometheus and tests/cluster/test_operator_monitoring.py."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry

from readiness.alerts import (
    ALERT_NAME,
    OPERATOR_API_ERRORS_ALERT,
    OPERATOR_DOWN_ALERT,
    operator_rules_document,
    rules_yaml,
)
from readiness.checks import CATALOG
from readiness.metrics import ReadinessMetrics

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "readiness-operator"
RULES_FILE = CHART / "files" / "operator-rules.yaml"
DASHBOARD_FILE = CHART / "files" / "dashboards" / "readiness-operator.json"
RUNBOOKS = REPO / "docs" / "runbooks"
REPO_URL = "https://github.com/readiness-operator/readiness-operator/blob/main/"
ALERTS = (ALERT_NAME, OPERATOR_DOWN_ALERT, OPERATOR_API_ERRORS_ALERT)

GRAFANA_VARIABLES = {"__rate_interval", "__interval", "__range", "__range_s"}
SCRAPE_LABELS = {"job", "instance"}
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}
PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "or", "and", "unless",
                "offset", "bool"}


def operator_rules() -> list[dict[str, Any]]:
    return [rule for group in operator_rules_document()["groups"] for rule in group["rules"]]


# -- the PrometheusRule (item 9) ------------------------------------------------------------------------

def test_chart_operator_rules_are_generated_from_the_alerts_module() -> None:
    text = RULES_FILE.read_text()
    assert yaml.safe_load(text) == operator_rules_document(), "run hack/render-deploy.sh"
    assert text.endswith(rules_yaml(operator_rules_document())), "run hack/render-deploy.sh"


def test_the_chart_sets_the_for_of_every_operator_alert() -> None:
    """templates/prometheusrule.yaml maps each alert to its `for` value: a new operator alert needs one."""
    template = (CHART / "templates" / "prometheusrule.yaml").read_text()
    values = yaml.safe_load((CHART / "values.yaml").read_text())["prometheusRule"]
    table = dict(re.findall(r'"(Readiness\w+)" \$values\.(\w+)\.for', template))
    assert set(table) == {rule["alert"] for rule in operator_rules()}
    assert {name: values[key]["for"] for name, key in table.items()} == {
        rule["alert"]: rule["for"] for rule in operator_rules()}, "chart defaults differ from alerts.py"


def test_chart_monitoring_is_off_by_default() -> None:
    """Both need something the cluster may lack (the PrometheusRule CRD, Grafana's sidecar)."""
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert values["prometheusRule"]["enabled"] is False
    assert values["grafanaDashboard"] == {"enabled": False, "labels": {"grafana_dashboard": "1"},
                                          "namespace": "", "annotations": {}}


def readiness(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "readiness.cli", *args], capture_output=True, text=True,
                          timeout=60, check=False)


def test_the_cli_prints_the_operator_rules() -> None:
    plain = readiness("rules", "--operator")
    assert plain.returncode == 0, plain.stderr
    assert yaml.safe_load(plain.stdout) == operator_rules_document()
    wrapped = yaml.safe_load(readiness("rules", "--operator", "-o", "prometheusrule").stdout)
    assert wrapped["kind"] == "PrometheusRule" and wrapped["spec"] == operator_rules_document()
    assert wrapped["metadata"]["namespace"] == "readiness-system"


def test_the_cli_wants_a_policy_or_the_operator_not_both() -> None:
    for args in ((), ("--operator", "--policy", "examples/policies/production.yaml")):
        result = readiness("rules", *args)
        assert result.returncode == 2 and result.stdout == ""
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert "--operator" in result.stderr


@pytest.mark.parametrize("alert", ALERTS)
def test_every_alert_has_a_runbook(alert: str) -> None:
    page = RUNBOOKS / f"{alert}.md"
    assert page.is_file(), f"docs/runbooks/{alert}.md"
    text = page.read_text()
    assert text.startswith(f"# {alert}\n")
    assert f"[{alert}]({alert}.md)" in (RUNBOOKS / "README.md").read_text()
    for section in ("**Meaning.**", "**Impact.**", "```sh"):
        assert section in text, (alert, section)


@pytest.mark.parametrize("rule", operator_rules(), ids=lambda r: r["alert"])
def test_operator_runbook_urls_reach_their_page(rule: dict[str, Any]) -> None:
    url = rule["annotations"]["runbook_url"]
    assert url.startswith(REPO_URL)
    assert url.removeprefix(REPO_URL) == f"docs/runbooks/{rule['alert']}.md"


@pytest.mark.parametrize("check", sorted(CATALOG))
def test_the_violation_alert_reaches_its_runbook_through_the_check_page(check: str) -> None:
    """ReadinessPolicyViolation's runbook_url is the failing check's page; that page links the runbook."""
    page = (REPO / "docs" / "checks" / f"{check}.md").read_text()
    assert "](../runbooks/ReadinessPolicyViolation.md)" in page


def test_the_runbooks_name_what_the_operator_writes() -> None:
    """The commands to find offenders use the label and annotations of README's contract table."""
    text = (RUNBOOKS / "ReadinessPolicyViolation.md").read_text()
    for name in ("readiness.dev/compliant=false", "readiness\\.dev/violations", "readiness.dev/exempt=",
                 "readiness.dev/exempt-reason=", "allowWorkloadExemptions", "exemptions:"):
        assert name in text, name


# -- the Grafana dashboard (item 10) --------------------------------------------------------------------

def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD_FILE.read_text())
    return loaded


def panels() -> list[dict[str, Any]]:
    return [p for p in dashboard()["panels"] if p["type"] != "row"]


def dashboard_queries() -> list[str]:
    """Every PromQL expression the dashboard runs: panel targets and query variables."""
    queries = [t["expr"] for p in panels() for t in p["targets"]]
    for variable in dashboard()["templating"]["list"]:
        if variable["type"] == "query":
            match = re.fullmatch(r"label_values\((.*), (\w+)\)", variable["query"]["query"])
            assert match, variable["query"]
            queries.append(match.group(1))
    return queries


def exposed_series() -> dict[str, set[str]]:
    """Every series name the operator exposes -> its label names (from the metric definitions)."""
    metrics = ReadinessMetrics(CollectorRegistry())
    series: dict[str, set[str]] = {}
    for attribute in vars(metrics).values():
        kind = getattr(attribute, "_type", None)
        if kind not in SUFFIXES:
            continue
        labels = set(attribute._labelnames) | SCRAPE_LABELS
        for suffix in SUFFIXES[kind]:
            series[attribute._name + suffix] = labels | ({"le"} if suffix == "_bucket" else set())
    return series


def selectors(expr: str) -> list[tuple[str, set[str]]]:
    """(series name, label names matched) of every `readiness_*` selector in `expr`."""
    found = []
    for name, body in re.findall(r"\b(readiness_\w+)(?:\{([^}]*)\})?", expr):
        found.append((name, set(re.findall(r"(\w+)\s*(?:=~|!~|!=|=)", body or ""))))
    return found


def test_the_dashboard_has_the_panels_the_issue_asks_for() -> None:
    titles = " | ".join(p["title"] for p in panels()).lower()
    for wanted in ("policies over time", "by namespace", "by check", "audit duration", "api errors",
                   "events dropped"):
        assert wanted in titles, wanted


@pytest.mark.parametrize("expr", dashboard_queries())
def test_every_series_and_label_a_query_reads_exists(expr: str) -> None:
    exposed = exposed_series()
    found = selectors(expr)
    assert found, f"reads no readiness metric: {expr}"
    readable: set[str] = set()
    for name, matched in found:
        assert name in exposed, f"{name} is not a metric of readiness.metrics"
        assert matched <= exposed[name], f"{name} has no label {matched - exposed[name]}"
        readable |= exposed[name]
    for clause in re.findall(r"\b(?:by|without)\s*\(([^)]*)\)", expr):
        grouped = {label.strip() for label in clause.split(",") if label.strip()}
        assert grouped <= readable, f"grouped by unknown labels {grouped - readable}: {expr}"


def test_every_metric_the_operator_exposes_is_on_the_dashboard() -> None:
    """Not a must for every future metric, but today each one answers a question the dashboard asks."""
    read = {name for expr in dashboard_queries() for name, _ in selectors(expr)}
    families = {re.sub(r"_(total|bucket|sum|count)$", "", name) for name in read}
    assert {re.sub(r"_(total|bucket|sum|count)$", "", s) for s in exposed_series()} == families


def test_the_dashboard_variables_are_defined_and_queries_use_the_datasource_variable() -> None:
    defined = {v["name"] for v in dashboard()["templating"]["list"]} | GRAFANA_VARIABLES
    for panel in panels():
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        for target in panel["targets"]:
            used = set(re.findall(r"\$\{?(\w+)", target["expr"]))
            assert used <= defined, (panel["title"], used - defined)
            assert target["datasource"] == panel["datasource"]


def test_the_dashboard_is_well_formed() -> None:
    board = dashboard()
    assert board["uid"] == "readiness-operator" and board["title"]
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in panels():
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        assert panel["targets"] and all(t["refId"] for t in panel["targets"]), panel["title"]
        assert panel["description"], panel["title"]
    # Small enough for a ConfigMap applied client-side (kubectl's last-applied annotation: 256 KiB).
    assert len(DASHBOARD_FILE.read_bytes()) < 128 * 1024
