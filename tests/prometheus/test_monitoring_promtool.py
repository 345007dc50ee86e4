"""promtool judges the chart's monitoring files: the PrometheusRule's rules file, and every query of the
Grafana dashboard (as recording rules: `promtool check rules` parses their PromQL without a server)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from support.grafana import queries
from support.prometheus import check_rules, require

pytestmark = pytest.mark.prometheus

CHART = Path(__file__).resolve().parents[2] / "charts" / "readiness-operator"


def test_promtool_accepts_the_charts_operator_rules() -> None:
    require("promtool")
    result = check_rules(CHART / "files" / "operator-rules.yaml")
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    assert "SUCCESS: 2 rules found" in result.stdout


def test_every_dashboard_query_is_valid_promql(tmp_path: Path) -> None:
    require("promtool")
    found = queries()
    rules = [{"record": f"dashboard:query_{i}", "expr": q.expr} for i, q in enumerate(found)]
    path = tmp_path / "dashboard.rules.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}, sort_keys=False))
    result = check_rules(path)
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    assert f"SUCCESS: {len(found)} rules found" in result.stdout
