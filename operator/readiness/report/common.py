"""Pieces the renderers share: SARIF file uris, the stable dictionary form of findings, and JSON documents
written in pieces."""

from __future__ import annotations

import os
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson

from readiness.engine import Exempted, ExpiredExemption, Finding
from readiness.loader import from_cluster
from readiness.report.model import Piece, WorkloadResult

STDIN_NAME = "-"
SRCROOT = "%SRCROOT%"
"""The SARIF uriBaseId that relative uris are resolved against (`originalUriBaseIds`: --sarif-root)."""
_URI_SAFE = "/!$&'()*+,;=@"
"""Characters a path segment of a uri may hold as they are (RFC 3986 pchar, less `:`); the rest are
percent-encoded, so `my app.yaml` is `my%20app.yaml`."""


@lru_cache(maxsize=4096)  # one per input file, asked once per finding: resolving is a syscall each time
def artifact_uri(source: str, root: str) -> tuple[str, str | None] | None:
    """(uri, uriBaseId) of an input file as code scanning wants it: a forward-slash path relative to
    `root` (an absolute directory) with the base `%SRCROOT%` when the file is below it, else an absolute
    `file://` uri and no base; None for standard input and for a live cluster's object (`cluster:...`),
    which are no files to point at."""
    if source == STDIN_NAME or from_cluster(source):
        return None
    logical = Path(os.path.abspath(source))
    for path, base in ((logical, Path(root)), (logical.resolve(), Path(root).resolve())):
        try:  # the path as given first (a symlink in the repository stays where the user sees it)
            return quote(path.relative_to(base).as_posix(), safe=_URI_SAFE), SRCROOT
        except ValueError:
            continue
    return logical.as_uri(), None


def root_uri(root: str) -> str:
    """The `file://` uri of a directory, ending in `/` as SARIF requires of a uriBaseId's uri."""
    uri = Path(root).as_uri()
    return uri if uri.endswith("/") else uri + "/"


def finding_dict(result: WorkloadResult, policy: str, finding: Finding) -> dict[str, Any]:
    # category and severity are StrEnums: equal to, and serialised as, their values (no `.value`, a slow
    # enum property, twice per finding)
    return {
        "policy": policy, "check": finding.check, "category": finding.category,
        "severity": finding.severity, "container": finding.container, "message": finding.message,
        "file": result.document.source, "line": result.line_of(finding) or None,
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


# -- JSON documents in pieces ------------------------------------------------------------------------------
# A large report (30 MB for 10,000 workloads) is written as the document around one list plus that list's
# items, each rendered on its own (in the process that judged its workload, in a parallel audit) exactly
# as orjson's OPT_INDENT_2 writes it in place: the pieces concatenate to the whole document.


@lru_cache(maxsize=8)
def _nesting(depth: int) -> tuple[int, int]:
    """How many bytes `items_at_depth` cuts from the front and the back of its wrapped rendering."""
    head, tail = orjson.dumps(_wrapped([0], depth - 1), option=orjson.OPT_INDENT_2).split(b"0")
    return len(head), len(tail)


def _wrapped(value: Any, times: int) -> Any:
    for _ in range(times):
        value = [value]
    return value


def items_at_depth(items: list[Any], depth: int) -> bytes:
    """`items` as they sit in a list whose items are `depth` levels deep in a document (b"" for none),
    separated as orjson separates them: rendered inside `depth - 1` more lists, which orjson indents
    itself, then cut out."""
    if not items:
        return b""
    head, tail = _nesting(depth)
    return orjson.dumps(_wrapped(items, depth - 1), option=orjson.OPT_INDENT_2)[head:-tail]


_MARK = b"\x00"
"""Stands for a list's items in a rendered skeleton: orjson escapes every NUL inside a string, so a raw
one is found only where this fragment put it."""
PLACEHOLDER = orjson.Fragment(_MARK)
"""The one item of the list that `spliced` fills."""


def spliced(skeleton: bytes, parts: Iterable[Piece], depth: int) -> list[Piece]:
    """`skeleton` (a document whose list holds only PLACEHOLDER) in pieces, with the list's items from
    `parts` (each one's `items_at_depth`, empty ones skipped) in its place."""
    head, _, tail = skeleton.partition(_MARK)
    separator = b",\n" + b"  " * depth
    pieces: list[Piece] = [head]
    for part in parts:
        if part:
            if len(pieces) > 1:
                pieces.append(separator)
            pieces.append(part)
    pieces.append(tail)
    return pieces
