"""Auditing one large YAML stream on two cores: the same result as `audit()`, about twice as fast.

Parsing dominates an audit and yaml-rs holds the GIL, so threads cannot help: a forked worker (which
inherits the imported modules and the compiled engines) parses and judges the second half of the
documents while this process does the first. The context of a workload (PodDisruptionBudgets,
HorizontalPodAutoscalers, Namespace labels) may sit anywhere in the stream, so after parsing, the two
processes exchange their few context objects, then each judges its own half. The worker sends back
compact results (evaluations, the input errors, and for each document only its file, lines and the
container lines the reports need), never the parsed objects, then its workloads' parts of the report,
already rendered. Both go through shared memory (the pipes carry only where), so that neither process
waits for the other to empty a pipe. The halves are merged in input order, so
every report is byte for byte the one of the serial path; any failure of the worker falls back to it.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import pickle
import signal
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

from readiness.checks.base import Category, Severity
from readiness.engine import Engine, Evaluation, Finding
from readiness.loader import Document, InputError, load_text, normalise, separator_after
from readiness.report.model import AuditResult, WorkloadResult, audit, context_objects_of
from readiness.workload import KindRegistry, Workload, WorkloadClass, WorkloadRef

PARALLEL_MIN_BYTES = 2_000_000
"""Below this (about 2,000 typical Deployments) forking and exchanging results costs more than it saves."""
WORKER_SHARE = 0.5
"""The worker's share of the stream's bytes."""
SHARED_BYTES_PER_INPUT_BYTE = 4
"""Room in shared memory for the worker's JSON entries, per byte of input; when they need more, they go
through the pipe."""
SHARED_MIN_BYTES = 1 << 20
PIPE_BYTES = 1 << 20
"""The pipes' buffer: the worker's results are ~10 MB on 10,000 Deployments, and each 64 KiB the default
buffer holds is a round trip between the two processes (1 MiB is the unprivileged maximum on Linux)."""
SERIAL_ENV = "READINESS_SERIAL"
"""Set (to anything) to disable the parallel path."""
PARALLEL_ENV = "READINESS_PARALLEL"
"""Set (to anything) to take the parallel path whatever the machine's load (tests, benchmarks)."""
FREE_CPU_LOAD = 0.5
"""The parallel path runs only when the 1-minute load average leaves a CPU free (load below the CPUs
less this): it pays only with a free core. Measured on 2 CPUs (benchmarks/cli_bench.py
--parallel-vs-serial): 1.6x faster than serial at load 0.8, 0.76-0.98x (slower) at load 2-4, where the
worker only takes turns with the other jobs on the same cores and adds its hand-over on top."""


def worth_parallel(size: int) -> bool:
    """Whether a stream of `size` characters is worth two processes on this machine, now."""
    if size < PARALLEL_MIN_BYTES or not hasattr(os, "fork") or os.environ.get(SERIAL_ENV):
        return False
    cpus = _cpus()
    return cpus >= 2 and (bool(os.environ.get(PARALLEL_ENV)) or _load() < cpus - FREE_CPU_LOAD)


def _load() -> float:
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):  # pragma: no cover - no load average: assume a free core
        return 0.0


def _cpus() -> int:
    """CPUs this process may use: its affinity, capped by a cgroup v2 CPU quota (containers in CI)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS
        cpus = os.cpu_count() or 1
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            cpus = min(cpus, int(quota) // int(period))
    except (OSError, ValueError):
        pass
    return cpus


Outcome = tuple[AuditResult, list[InputError], int]
"""(the audit, the loader's input errors, how many documents were read)."""


@dataclass(frozen=True, slots=True)
class Prerender:
    """A report format whose per-workload parts each process renders for the workloads it judged."""

    output: str
    """The format's name (`json`, `text`): what `WorkloadResult.prerendered_as` is asked for."""
    render: Callable[[WorkloadResult], bytes]
    """One workload's part of the report, as the renderer would write it in place."""


def audit_stream(text: str, source: str, engines: Sequence[Engine], kinds: KindRegistry, now: datetime,
                 prerender: Prerender | None = None,
                 namespace_labels: Mapping[str, Mapping[str, str]] | None = None) -> Outcome | None:
    """Audit one multi-document stream in two processes; None when that could not be done (the caller
    then audits serially: a broken worker never changes a result). With `prerender`, each process also
    renders its workloads' parts of the report (`WorkloadResult.prerendered`), so that most of the
    rendering is done on two cores too. `namespace_labels`: as `audit()` takes them."""
    text = normalise(text)
    if "workloadRef" in text:  # a Rollout runs another document's template: one process sees both
        return None
    cut = separator_after(text, int(len(text) * (1 - WORKER_SHARE)))
    if cut is None:
        return None
    shared = _shared_memory(len(text)) if prerender is not None else None
    to_parent, from_child = _pipe()
    to_child, from_parent = _pipe()
    pid = os.fork()
    if pid == 0:  # the worker: never returns, never runs the parent's exit handlers or flushes its buffers
        code = 1
        try:
            os.close(from_child)
            os.close(to_child)
            _worker(text, cut, source, engines, kinds, now, os.fdopen(from_parent, "rb"),
                    os.fdopen(to_parent, "wb"), prerender, shared, namespace_labels)
            code = 0
        finally:
            os._exit(code)
    os.close(to_parent)
    os.close(from_parent)
    try:
        with os.fdopen(from_child, "rb") as inbox, os.fdopen(to_child, "wb") as outbox:
            outcome = _parent(text, cut, source, engines, kinds, now, inbox, outbox, prerender, shared,
                              namespace_labels)
    except Exception:  # the worker died or sent garbage: the serial path decides
        _kill(pid)
        os.waitpid(pid, 0)
        return None
    # The worker has sent everything; its exit (the kernel freeing its heap) takes 20 ms that the report
    # need not wait for: a thread reaps it while the report is written, and `wait_for_workers` waits
    # for that before the command returns (a CI runner that kills the process group when the CLI exits
    # would kill a worker still running, and no process may outlive the command).
    reaper = threading.Thread(target=os.waitpid, args=(pid, 0), name="readiness-reap-worker", daemon=True)
    reaper.start()
    _reapers.append(reaper)
    return outcome


_reapers: list[threading.Thread] = []


def wait_for_workers() -> None:
    """Return once every worker this process forked has exited and been reaped."""
    while _reapers:
        _reapers.pop().join()


def _shared_memory(size: int) -> mmap.mmap | None:
    """Memory both processes see, for the worker's JSON entries (about 1.5 bytes per byte of YAML): sent
    through a pipe, 13 MB of them took 25 ms of the parent's time. Pages cost nothing until written."""
    try:
        return mmap.mmap(-1, max(SHARED_MIN_BYTES, SHARED_BYTES_PER_INPUT_BYTE * size))
    except (OSError, ValueError):  # no room for the mapping: the entries go through the pipe
        return None


def _pipe() -> tuple[int, int]:
    import fcntl  # POSIX, like fork: only reached where the parallel path runs

    read, write = os.pipe()
    with contextlib.suppress(AttributeError, OSError):  # Linux: a 1 MiB buffer (the default is 64 KiB)
        fcntl.fcntl(write, fcntl.F_SETPIPE_SZ, PIPE_BYTES)
    return write, read


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # already gone
        os.kill(pid, signal.SIGKILL)


def _parent(text: str, cut: int, source: str, engines: Sequence[Engine], kinds: KindRegistry,
            now: datetime, inbox: BinaryIO, outbox: BinaryIO, prerender: Prerender | None,
            shared: mmap.mmap | None, namespace_labels: Mapping[str, Mapping[str, str]] | None) -> Outcome:
    loaded = load_text(text[:cut], source)
    mine = context_objects_of(loaded.documents)
    theirs = pickle.load(inbox)  # read first, then write: neither side blocks on a full pipe
    pickle.dump(mine, outbox, protocol=pickle.HIGHEST_PROTOCOL)
    outbox.flush()
    result = audit(loaded.documents, engines, kinds, now, [*mine, *theirs], namespace_labels)
    if prerender is not None:  # while the worker encodes its results
        _prerender(result.workloads, prerender)
    received = _receive(inbox, shared)
    errors, documents, skipped, unmatched, findings, workloads, audit_errors, assumed = received
    decoded = _decode(findings, workloads)
    if prerender is not None:
        sizes, start = pickle.load(inbox)
        # Shared memory is sliced without copying: the parts are only written out, never changed.
        entries = memoryview(shared) if start >= 0 and shared is not None else inbox.read(sum(sizes))
        start = max(start, 0)
        for workload, size in zip(decoded, sizes, strict=True):
            workload.prerendered = (prerender.output, entries[start:start + size])
            start += size
    result.workloads.extend(decoded)
    result.skipped.update(skipped)
    result.unmatched += unmatched
    result.errors.extend(audit_errors)
    result.assumed.update(assumed)  # after the first half's: in input order
    return result, [*loaded.errors, *errors], len(loaded.documents) + documents


def _worker(text: str, cut: int, source: str, engines: Sequence[Engine], kinds: KindRegistry,
            now: datetime, inbox: BinaryIO, outbox: BinaryIO, prerender: Prerender | None,
            shared: mmap.mmap | None, namespace_labels: Mapping[str, Mapping[str, str]] | None) -> None:
    # Each process cuts and scans its own part: the worker's starts on a separator line, so its first
    # document is the one after it, at the line the whole stream puts it on.
    loaded = load_text(text[cut:], source, first_line=text.count("\n", 0, cut) + 1)
    mine = context_objects_of(loaded.documents)
    pickle.dump(mine, outbox, protocol=pickle.HIGHEST_PROTOCOL)
    outbox.flush()
    theirs = pickle.load(inbox)
    result = audit(loaded.documents, engines, kinds, now, [*theirs, *mine], namespace_labels)
    # The verdicts first, so that the parent decodes them while this process renders its part of the
    # report; then the parts and their sizes. Both go through shared memory when they fit, so that this
    # process never waits for the parent to empty a pipe.
    findings, workloads = _encode(result.workloads, lines=prerender is None)
    payload = (loaded.errors, len(loaded.documents), result.skipped, result.unmatched, findings, workloads,
               result.errors, result.assumed)
    used = _send(outbox, shared, 0, payload)
    if prerender is None:
        return
    entries = _prerender(result.workloads, prerender)
    start = used if shared is not None and used + sum(map(len, entries)) <= len(shared) else -1
    if start >= 0 and shared is not None:
        shared.seek(start)
        for entry in entries:
            shared.write(entry)
    pickle.dump(([len(entry) for entry in entries], start), outbox, protocol=pickle.HIGHEST_PROTOCOL)
    if start < 0:  # raw, after the pickle: not pickled item by item
        outbox.writelines(entries)
    outbox.flush()


def _send(outbox: BinaryIO, shared: mmap.mmap | None, start: int, message: Any) -> int:
    """Pickle `message` into shared memory at `start` and say where through the pipe, or send it through
    the pipe when it does not fit. Returns where shared memory is free again."""
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    end = start + len(data)
    if shared is not None and end <= len(shared):
        shared[start:end] = data
        pickle.dump((start, end), outbox, protocol=pickle.HIGHEST_PROTOCOL)
    else:
        pickle.dump(None, outbox, protocol=pickle.HIGHEST_PROTOCOL)
        outbox.write(data)
        end = start
    outbox.flush()
    return end


def _receive(inbox: BinaryIO, shared: mmap.mmap | None) -> Any:
    """What `_send` sent."""
    where = pickle.load(inbox)
    if where is None or shared is None:
        return pickle.load(inbox)
    start, end = where
    return pickle.loads(memoryview(shared)[start:end])


def _prerender(results: Sequence[WorkloadResult], prerender: Prerender) -> list[bytes]:
    """Each workload's part of the report, rendered here: the worker passes bytes (through shared memory,
    not object by object) and the parent only splices them."""
    entries = []
    for result in results:
        entry = prerender.render(result)
        result.prerendered = (prerender.output, entry)
        entries.append(entry)
    return entries


# -- the worker's results as plain tuples ------------------------------------------------------------------
# Pickling dataclasses with slots runs Python code per object (__getstate__ / __setstate__); tuples of
# strings and ints are pickled in C. Findings repeat (shared instances): each is sent once, then by index.

_NOTHING: Mapping[str, Any] = {}
_SEVERITIES = {s.value: s for s in Severity}
_CATEGORIES = {c.value: c for c in Category}
_CLASSES = {c.value: c for c in WorkloadClass}


def _encode(results: Sequence[WorkloadResult], lines: bool = True,
            ) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """(the distinct findings, one tuple per workload result), dropping the parsed object and the
    document's text: the container lines the reports need are looked up now, while the text is here
    (`lines`; not needed when the report's parts, which hold them, were rendered here)."""
    index: dict[Finding, int] = {}
    findings: list[tuple[Any, ...]] = []
    encoded: list[tuple[Any, ...]] = []
    for result in results:
        evaluations = []
        for e in result.evaluations:
            numbers = []
            for finding in e.findings:
                number = index.get(finding)
                if number is None:
                    number = index[finding] = len(findings)
                    findings.append((finding.check, finding.category.value, finding.severity.value,
                                     finding.message, finding.container, finding.field))
                numbers.append(number)
                if lines:
                    result.line_of(finding)
            if lines:
                for exempted in e.exempted:
                    result.line_of(exempted.finding)
            evaluations.append((e.policy, numbers, e.exempted, e.expired_exemptions, e.checks_run, e.results,
                                e.notices, e.errors))
        document, workload = result.document, result.workload
        ref = workload.ref
        encoded.append((document.source, document.line, document.text_line, ref.kind, ref.namespace,
                        ref.name, workload.workload_class.value, workload.replicas, workload.controlled,
                        workload.api_version, result._lines, evaluations))
    return findings, encoded


def _decode(findings: list[tuple[Any, ...]], encoded: list[tuple[Any, ...]]) -> list[WorkloadResult]:
    shared = [Finding(check, _CATEGORIES[category], _SEVERITIES[severity], message, container, at)
              for check, category, severity, message, container, at in findings]
    results = []
    for (source, line, text_line, kind, namespace, name, wclass, replicas, controlled, api_version, lines,
         evaluations) in encoded:
        ref = WorkloadRef(kind, namespace, name)
        workload = Workload(ref, _CLASSES[wclass], _NOTHING, _NOTHING, _NOTHING, _NOTHING, (), replicas, None,
                            controlled, api_version)
        judged = [Evaluation(policy, ref, [shared[n] for n in numbers], exempted, expired, checks_run, count,
                             notices, errors)
                  for policy, numbers, exempted, expired, checks_run, count, notices, errors in evaluations]
        results.append(WorkloadResult(Document(source, line, None, "", text_line), workload, judged, lines))
    return results
