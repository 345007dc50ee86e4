"""Pieces the renderers share: file URIs and the stable dictionary form of findings."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any

from readiness.engine import Exempted, ExpiredExemption, Finding
from readiness.report.model import WorkloadResult

STDIN_NAME = "-"


@lru_cache(maxsize=4096)  # one per input file, asked once per finding: resolving is a syscall each time
def relative_uri(source: str) -> str:
    """A forward-slash path relative to the working directory when the file is below it, as SARIF
    viewers and CI annotations expect; standard input is `stdin`."""
    if source == STDIN_NAME:
        return "stdin"
    path = Path(source)
    try:
        path = path.resolve().relative_to(Path.cwd().resolve())
    except ValueError:
        path = Path(os.path.abspath(source))
    return path.as_posix()


def finding_dict(result: WorkloadResult, policy: str, finding: Finding) -> dict[str, Any]:
    # category and severity are StrEnums: equal to, and serialised as, their values (no `.value`, a slow
    # enum property, twice per finding)
    return {
        "policy": policy, "check": finding.check, "category": finding.category,
        "severity": finding.severity, "container": finding.container, "message": finding.message,
        "file": result.document.source, "line": result.line_of(finding),
    }


def exempted_dict(result: WorkloadResult, policy: str, exempted: Exempted) -> dict[str, Any]:
    return {
        **finding_dict(result, policy, exempted.finding),
        "source": exempted.source, "reason": exempted.reason,
        "expires": exempted.expires.isoformat() if exempted.expires else None,
    }


def expired_dict(policy: str, expired: ExpiredExemption) -> dict[str, Any]:
    return {"policy": policy, "source": expired.source, "checks": list(expired.checks),
            "reason": expired.reason, "expiredAt": expired.expired_at.isoformat()}
