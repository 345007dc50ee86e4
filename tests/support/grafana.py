"""The chart's Grafana dashboard, read as a Prometheus client would run it: every panel's queries with the
dashboard's variables and Grafana's built-ins substituted (the "All" choice of each variable)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DASHBOARD = (Path(__file__).resolve().parents[2] / "charts" / "readiness-operator" / "files" / "dashboards"
             / "readiness-operator.json")

BUILT_INS = {"__rate_interval": "1m", "__interval": "15s", "__range": "5m", "__range_s": "300"}
"""Grafana's built-in variables, at values that make sense for a short test."""


@dataclass(frozen=True)
class Query:
    panel: str
    ref: str
    expr: str
    """PromQL, variables substituted."""


def load(path: Path = DASHBOARD) -> dict[str, Any]:
    board: dict[str, Any] = json.loads(path.read_text())
    return board


def all_values(board: dict[str, Any]) -> dict[str, str]:
    """Each query variable at its "All" value (the regex Grafana sends), plus the built-ins."""
    values = dict(BUILT_INS)
    for variable in board["templating"]["list"]:
        if variable["type"] == "query":
            values[variable["name"]] = variable.get("allValue") or ".*"
    return values


def substitute(expr: str, values: dict[str, str]) -> str:
    """`$name` and `${name}` replaced; an unknown variable raises KeyError (the dashboard would break)."""
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: values[m.group(1) or m.group(2)], expr)


def queries(board: dict[str, Any] | None = None) -> list[Query]:
    """Every panel target's query, in panel order, ready to send to Prometheus."""
    board = board if board is not None else load()
    values = all_values(board)
    return [Query(panel["title"], target["refId"], substitute(target["expr"], values))
            for panel in board["panels"] if panel["type"] != "row" for target in panel["targets"]]
