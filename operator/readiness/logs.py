"""The operator's (and its webhook's) log lines: text for people, or one JSON object per line for log
pipelines. Kopf's per-object context (the `k8s_ref` its object loggers attach) is kept in both.

HTTP access lines (aiohttp's `aiohttp.access`: one per admission request and per liveness probe) are
logged at DEBUG, so they show only with `--verbose`: at INFO they drowned what the operator did.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

LOG_FORMATS = ("text", "json")
ACCESS_LOGGER = "aiohttp.access"
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def object_context(record: logging.LogRecord) -> dict[str, str]:
    """The Kubernetes object Kopf logs about (kind, namespace, name), or {} for other records."""
    ref = getattr(record, "k8s_ref", None)
    if not isinstance(ref, dict):
        return {}
    return {key: str(ref[key]) for key in ("apiVersion", "kind", "namespace", "name", "uid") if ref.get(key)}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: `time` (RFC 3339, UTC), `level`, `logger`, `message`, `object` when
    Kopf logs about one, `exception` with the traceback when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        context = object_context(record)
        if context:
            entry["object"] = context
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.stack_info:
            entry["exception"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """`time LEVEL logger: [namespace/name] message`: the object prefix Kopf's own formatter adds."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        context = object_context(record)
        if not context.get("name"):
            return super().format(record)
        where = "/".join(part for part in (context.get("namespace"), context["name"]) if part)
        original = record.msg, record.args
        record.msg, record.args = f"[{where}] {record.getMessage()}", None
        try:
            return super().format(record)
        finally:
            record.msg, record.args = original


class _AccessAtDebug(logging.Filter):
    """aiohttp logs each request at INFO: re-level it to DEBUG (the logger only lets it through when
    DEBUG is on, see `configure`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return True


def configure(log_format: str = "text", *, verbose: bool = False, stream: TextIO | None = None) -> None:
    """Log to `stream` (stderr) in `log_format`, at DEBUG when `verbose`, else INFO. Replaces the root
    logger's handlers, so that calling it twice (tests) does not log every line twice."""
    if log_format not in LOG_FORMATS:
        raise ValueError(f"log format must be one of {', '.join(LOG_FORMATS)}, got {log_format!r}")
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    access = logging.getLogger(ACCESS_LOGGER)
    access.setLevel(logging.DEBUG if verbose else logging.WARNING)
    if not any(isinstance(f, _AccessAtDebug) for f in access.filters):
        access.addFilter(_AccessAtDebug())
    # Kopf logs every index and event handler call at INFO: one line per workload event.
    logging.getLogger("kopf.objects").setLevel(logging.NOTSET if verbose else logging.WARNING)
