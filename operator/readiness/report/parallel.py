"""Auditing one large YAML stream on two cores: the same result as `audit()`, about twice as fast.

Parsing dominates an audit and yaml-rs holds the GIL, so threads cannot help: a forked worker (which
inherits the imported modules and the compiled engines) parses and judges the second half of the
documents while this process does the first. The context of a workload (PodDisruptionBudgets,
HorizontalPodAutoscalers, Namespace labels) may sit anywhere in the stream, so after parsing, the two
processes exchange their few context objects, then each judges its own half. The worker sends back
compact results (evaluations, the input errors, and for each document only its file, lines and the
container lines the reports need), never the parsed objects. The halves are merged in input order, so
every report is byte for byte the one of the serial path; any failure of the worker falls back to it.
"""

from __future__ import annotations

import os
import pickle
import signal
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, BinaryIO

from readiness.engine import Engine
from readiness.loader import Document, InputError, PreparedText, load_prepared, prepare_text
from readiness.report.model import AuditResult, WorkloadResult, audit, context_objects_of
from readiness.workload import KindRegistry, Workload

PARALLEL_MIN_BYTES = 2_000_000
"""Below this (about 2,000 typical Deployments) forking and exchanging results costs more than it saves."""
WORKER_SHARE = 0.5
"""The worker's share of the stream's bytes."""
SERIAL_ENV = "READINESS_SERIAL"
"""Set (to anything) to disable the parallel path."""


def worth_parallel(size: int) -> bool:
    """Whether a stream of `size` characters is worth two processes on this machine."""
    return size >= PARALLEL_MIN_BYTES and hasattr(os, "fork") and _cpus() >= 2 and not os.environ.get(SERIAL_ENV)


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS
        return os.cpu_count() or 1


Outcome = tuple[AuditResult, list[InputError], int]
"""(the audit, the loader's input errors, how many documents were read)."""


def audit_stream(text: str, source: str, engines: Sequence[Engine], kinds: KindRegistry, now: datetime,
                 ) -> Outcome | None:
    """Audit one multi-document stream in two processes; None when that could not be done (the caller
    then audits serially: a broken worker never changes a result)."""
    prepared = prepare_text(text, source)
    middle = _middle(prepared)
    if middle <= 0 or middle >= len(prepared.segments):
        return None
    to_parent, from_child = _pipe()
    to_child, from_parent = _pipe()
    pid = os.fork()
    if pid == 0:  # the worker: never returns, never runs the parent's exit handlers or flushes its buffers
        code = 1
        try:
            os.close(from_child)
            os.close(to_child)
            _worker(prepared, middle, engines, kinds, now, os.fdopen(from_parent, "rb"),
                    os.fdopen(to_parent, "wb"))
            code = 0
        finally:
            os._exit(code)
    os.close(to_parent)
    os.close(from_parent)
    done = False
    try:
        with os.fdopen(from_child, "rb") as inbox, os.fdopen(to_child, "wb") as outbox:
            outcome = _parent(prepared, middle, engines, kinds, now, inbox, outbox)
        done = True
        return outcome
    except Exception:  # the worker died or sent garbage: the serial path decides
        return None
    finally:
        if not done:
            _kill(pid)
        os.waitpid(pid, 0)


def _pipe() -> tuple[int, int]:
    read, write = os.pipe()
    return write, read


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:  # pragma: no cover - already gone
        pass


def _middle(prepared: PreparedText) -> int:
    """The first segment of the worker's share (segments are in text order)."""
    target = len(prepared.text) * (1 - WORKER_SHARE)
    for index, segment in enumerate(prepared.segments):
        if segment.start >= target:
            return index
    return len(prepared.segments)


def _parent(prepared: PreparedText, middle: int, engines: Sequence[Engine], kinds: KindRegistry,
            now: datetime, inbox: BinaryIO, outbox: BinaryIO) -> Outcome:
    loaded = load_prepared(prepared, 0, middle)
    mine = context_objects_of(loaded.documents)
    theirs = pickle.load(inbox)  # read first, then write: neither side blocks on a full pipe
    pickle.dump(mine, outbox, protocol=pickle.HIGHEST_PROTOCOL)
    outbox.flush()
    result = audit(loaded.documents, engines, kinds, now, [*mine, *theirs])
    errors, documents, skipped, unmatched, workloads, audit_errors = pickle.load(inbox)
    result.workloads.extend(workloads)
    result.skipped.update(skipped)
    result.unmatched += unmatched
    result.errors.extend(audit_errors)
    return result, [*loaded.errors, *errors], len(loaded.documents) + documents


def _worker(prepared: PreparedText, middle: int, engines: Sequence[Engine], kinds: KindRegistry,
            now: datetime, inbox: BinaryIO, outbox: BinaryIO) -> None:
    loaded = load_prepared(prepared, middle)
    mine = context_objects_of(loaded.documents)
    pickle.dump(mine, outbox, protocol=pickle.HIGHEST_PROTOCOL)
    outbox.flush()
    theirs = pickle.load(inbox)
    result = audit(loaded.documents, engines, kinds, now, [*theirs, *mine])
    payload = (loaded.errors, len(loaded.documents), result.skipped, result.unmatched,
               [_compact(w) for w in result.workloads], result.errors)
    pickle.dump(payload, outbox, protocol=pickle.HIGHEST_PROTOCOL)
    outbox.flush()


_NOTHING: Mapping[str, Any] = {}


def _compact(result: WorkloadResult) -> WorkloadResult:
    """What the reports read of a workload result, without the parsed object and the document's text:
    the container lines of its findings are looked up now, while the text is at hand."""
    for evaluation in result.evaluations:
        for finding in evaluation.findings:
            result.line_of(finding)
        for exempted in evaluation.exempted:
            result.line_of(exempted.finding)
    document, workload = result.document, result.workload
    light = Document(document.source, document.line, None, "", document.text_line)
    ref_only = Workload(workload.ref, workload.workload_class, _NOTHING, _NOTHING, _NOTHING, _NOTHING, (),
                        workload.replicas, None, workload.controlled, workload.api_version)
    return WorkloadResult(light, ref_only, result.evaluations, result._lines)
