"""Renderers of an audit: text for people, json for scripts, sarif for code scanning, junit for CI.

Each renderer is `render(result: AuditResult, options: RenderOptions) -> str`; `RENDERERS` maps the
`-o` names of `readiness audit` to them, imported lazily so the CLI only loads the one it prints.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

from readiness.checks.base import Severity
from readiness.report.model import AuditResult

FORMATS = ("text", "json", "sarif", "junit")


@dataclass(frozen=True, slots=True)
class RenderOptions:
    color: bool = False
    """ANSI colours (text only): on when stdout is a terminal, unless --no-color or NO_COLOR is set."""
    fail_on: Severity | None = Severity.ERROR
    """The --fail-on threshold: JUnit marks findings at or above it as failures, the rest as passes."""
    allow_empty: bool = False
    """--allow-empty: "nothing was judged" is reported as a warning (SARIF, JUnit skipped) rather than as a
    failure, as the exit status (0, not 3) then has it."""
    sarif_root: str | None = None
    """--sarif-root: the absolute directory SARIF uris are relative to (`%SRCROOT%`); None: the working
    directory. Files outside it get absolute `file://` uris."""


Renderer = Callable[[AuditResult, RenderOptions], str]


def renderer(name: str) -> Renderer:
    if name not in FORMATS:
        raise ValueError(f"unknown output format {name!r} (expected {', '.join(FORMATS)})")
    module = importlib.import_module(f"readiness.report.{name}")
    render: Renderer = module.render
    return render


__all__ = ["FORMATS", "AuditResult", "RenderOptions", "Renderer", "renderer"]
