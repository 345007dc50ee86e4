"""What the operator writes on a workload, computed purely from verdicts: annotations, label, events.

Kept free of I/O so that the contract (README) is tested by unit tests, and so that a restart computes
exactly what is already on the object, and therefore writes nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import orjson

from readiness.engine import Finding

GROUP = "readiness.dev"
VIOLATIONS = f"{GROUP}/violations"
VERDICT = f"{GROUP}/verdict"
POLICIES = f"{GROUP}/policies"
NOTICES = f"{GROUP}/notices"
"""What the audit wants the owner to know besides findings (an exemption annotation it ignored, and why),
as the CLI and the webhook say it: a JSON list of {"policy", "notice"}; absent when there is none."""
ANNOUNCED = f"{GROUP}/announced"
"""A digest of the findings an Event last announced, written after that Event was posted: a restart
compares it with the findings it computes and announces again what the previous run could not."""
COMPLIANT_LABEL = f"{GROUP}/compliant"
OUR_ANNOTATIONS = (VIOLATIONS, VERDICT, POLICIES, NOTICES, ANNOUNCED)
OUR_LABELS = (COMPLIANT_LABEL,)
NOTICES_MAX = 10
"""At most this many notices in the annotation (a workload has one or two: its annotations' problems)."""
MESSAGE_MAX_CHARS = 200
"""One finding's message is cut here: the annotation is for triage, `readiness explain` has the rest."""
TRUNCATION_RESERVE = len(b',{"truncated":1000000}')
EVENT_LISTED_FINDINGS = 3
"""An Event names this many findings and counts the rest: Events are read in `kubectl describe`."""

FindingKey = tuple[str, str, str]
"""(policy, check, container or "") identifies a finding across audits and restarts."""


@dataclass(frozen=True, slots=True)
class PolicyVerdict:
    """One matching policy's findings on a workload, with where the policy wants them reported."""

    policy: str
    findings: tuple[Finding, ...]
    notices: tuple[str, ...] = ()
    """The evaluation's notices (Evaluation.notices)."""
    annotations: bool = True
    labels: bool = True
    events: bool = True


@dataclass(frozen=True, slots=True)
class Outputs:
    """Our keys on a workload. A key absent from the mapping (or None label) means "not there"."""

    annotations: Mapping[str, str]
    label: str | None

    @classmethod
    def observed(cls, annotations: Mapping[str, str], labels: Mapping[str, str]) -> Outputs:
        return cls({k: annotations[k] for k in OUR_ANNOTATIONS if k in annotations},
                   labels.get(COMPLIANT_LABEL))


NOTHING = Outputs({}, None)


def finding_key(policy: str, finding: Finding) -> FindingKey:
    return (policy, finding.check, finding.container or "")


def _entry(policy: str, finding: Finding) -> dict[str, str]:
    entry = {"policy": policy, "check": finding.check}
    if finding.container:
        entry["container"] = finding.container
    entry["severity"] = str(finding.severity)
    message = finding.message
    if len(message) > MESSAGE_MAX_CHARS:
        message = message[: MESSAGE_MAX_CHARS - 1] + "…"
    entry["message"] = message
    return entry


def _ordered(verdicts: Iterable[PolicyVerdict]) -> list[tuple[str, Finding]]:
    """Worst first, so that truncation drops the least severe findings."""
    pairs = [(v.policy, f) for v in verdicts for f in v.findings]
    pairs.sort(key=lambda p: (-p[1].severity.rank, p[0], p[1].check, p[1].container or ""))
    return pairs


def violations_json(verdicts: Sequence[PolicyVerdict], max_bytes: int) -> str:
    """Compact JSON list of findings, at most `max_bytes` long; a cut list ends with {"truncated": N}."""
    pairs = _ordered(verdicts)
    parts: list[bytes] = []
    size = 2  # the brackets
    for index, (policy, finding) in enumerate(pairs):
        encoded = orjson.dumps(_entry(policy, finding))
        remaining = len(pairs) - index - 1
        budget = max_bytes - (TRUNCATION_RESERVE if remaining else 0)
        if size + len(encoded) + (1 if parts else 0) > budget:
            parts.append(orjson.dumps({"truncated": len(pairs) - index}))
            break
        parts.append(encoded)
        size += len(encoded) + (1 if len(parts) > 1 else 0)
    return "[" + b",".join(parts).decode() + "]"


def parse_violations(text: str | None) -> tuple[frozenset[FindingKey], int]:
    """The findings named in a previous annotation, and how many it left out (truncated). Unreadable
    input counts as nothing named: at worst one Event too many, never a crash."""
    if not text:
        return frozenset(), 0
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError:
        return frozenset(), 0
    keys: set[FindingKey] = set()
    omitted = 0
    for item in data if isinstance(data, list) else ():
        if not isinstance(item, dict):
            continue
        if "truncated" in item and isinstance(item["truncated"], int):
            omitted += item["truncated"]
        elif "policy" in item and "check" in item:
            keys.add((str(item["policy"]), str(item["check"]), str(item.get("container") or "")))
    return frozenset(keys), omitted


UNKNOWN: FindingKey = ("*", "*", "*")
"""Stands for "something else was announced, we do not know what" among previously announced keys."""


def announced_digest(keys: Iterable[FindingKey]) -> str:
    """The `readiness.dev/announced` value for these findings: short, and the same across restarts."""
    return hashlib.blake2b(orjson.dumps(sorted(keys)), digest_size=8).hexdigest()


def announced_before(annotations: Mapping[str, str], current: frozenset[FindingKey],
                     ) -> tuple[frozenset[FindingKey], int]:
    """What was announced before this operator started, from our annotations. With the announced digest:
    exactly `current` when it matches, else UNKNOWN (announce again: at least once, never lost). Without
    it (written by an operator version before it): the violations annotation, as that version did."""
    digest = annotations.get(ANNOUNCED)
    if digest is None:
        return parse_violations(annotations.get(VIOLATIONS))
    return (current, 0) if digest == announced_digest(current) else (frozenset({UNKNOWN}), 0)


def desired_outputs(verdicts: Sequence[PolicyVerdict], max_bytes: int, announced: str | None = None,
                    ) -> Outputs:
    """What our keys should be. Policies reporting neither way leave no trace; no policy, no keys.
    `announced`: the announced digest to keep, written only next to the verdict and when some policy
    posts Events."""
    annotated = [v for v in verdicts if v.annotations]
    labelled = [v for v in verdicts if v.labels]
    annotations: dict[str, str] = {}
    if annotated:
        violating = any(v.findings for v in annotated)
        annotations[VERDICT] = "violating" if violating else "compliant"
        annotations[POLICIES] = ",".join(sorted(v.policy for v in annotated))
        annotations[VIOLATIONS] = violations_json(annotated, max_bytes)
        notices = [{"policy": v.policy, "notice": notice[:MESSAGE_MAX_CHARS]}
                   for v in annotated for notice in v.notices]
        if notices:
            annotations[NOTICES] = orjson.dumps(notices[:NOTICES_MAX]).decode()
        if announced is not None and any(v.events for v in verdicts):
            annotations[ANNOUNCED] = announced
    label = None
    if labelled:
        label = "false" if any(v.findings for v in labelled) else "true"
    return Outputs(annotations, label)


def merge_patch(current: Outputs, desired: Outputs) -> dict[str, object] | None:
    """A JSON merge patch of metadata only, touching only keys that differ; None when nothing does."""
    annotations: dict[str, str | None] = {}
    for key in OUR_ANNOTATIONS:
        if current.annotations.get(key) != desired.annotations.get(key):
            annotations[key] = desired.annotations.get(key)
    metadata: dict[str, object] = {}
    if annotations:
        metadata["annotations"] = annotations
    if current.label != desired.label:
        metadata["labels"] = {COMPLIANT_LABEL: desired.label}
    return {"metadata": metadata} if metadata else None


# -- writing what fits: the API server's bound on annotations ---------------------------------------------

ANNOTATIONS_LIMIT_BYTES = 256 * 1024
"""Kubernetes' bound on all of an object's annotations together (keys plus values, in bytes). A write past
it is rejected whole (422), the label with it."""
FIT_FIRST = (VERDICT, POLICIES)
FIT_LAST = (VIOLATIONS, NOTICES)
"""When our annotations do not all fit, the label is written (labels have no such total), then FIT_FIRST,
then our other (small) keys, then FIT_LAST: the violations list, shortened, and the notices."""
TRUNCATED_REASON = "ReadinessOutputTruncated"


def annotation_bytes(annotations: Mapping[str, str], exclude: Iterable[str] = ()) -> int:
    """The size the API server counts toward ANNOTATIONS_LIMIT_BYTES, without the `exclude` keys."""
    skipped = frozenset(exclude)
    return sum(len(k.encode()) + len(str(v).encode()) for k, v in annotations.items() if k not in skipped)


def fit_order() -> tuple[str, ...]:
    middle = tuple(key for key in OUR_ANNOTATIONS if key not in FIT_FIRST + FIT_LAST)
    return FIT_FIRST + middle + FIT_LAST


def fit_outputs(desired: Outputs, budget: int) -> Outputs:
    """`desired` with our annotations within `budget` bytes (what the workload's other annotations leave),
    in `fit_order()`, the violations list shortened rather than dropped. A key that does not fit is absent
    (removed if present), never stale."""
    fitted: dict[str, str] = {}
    left = budget
    for key in fit_order():
        value = desired.annotations.get(key)
        room = left - len(key.encode())
        if value is not None and key == VIOLATIONS and len(value.encode()) > room:
            value = shortened_violations(value, room)
        if value is not None and len(value.encode()) <= room:
            fitted[key] = value
            left = room - len(value.encode())
    return Outputs(fitted, desired.label)


def _violation_items(text: str | None) -> tuple[list[bytes], int]:
    """A violations annotation's entries (encoded, in order) and its `truncated` count."""
    try:
        data = orjson.loads(text or "[]")
    except orjson.JSONDecodeError:
        return [], 0
    items = [item for item in (data if isinstance(data, list) else ()) if isinstance(item, dict)]
    entries = [orjson.dumps(item) for item in items if "truncated" not in item]
    omitted = sum(item["truncated"] for item in items if isinstance(item.get("truncated"), int))
    return entries, omitted


def shortened_violations(text: str, max_bytes: int) -> str | None:
    """A violations annotation cut to `max_bytes`: its first (worst) entries, the rest counted in a closing
    {"truncated": N}, as `violations_json` cuts. None when not even that fits."""
    entries, omitted = _violation_items(text)
    size = 2 + sum(len(entry) for entry in entries) + max(len(entries) - 1, 0)
    for kept in range(len(entries), -1, -1):
        hidden = omitted + len(entries) - kept
        marker = [orjson.dumps({"truncated": hidden})] if hidden else []
        total = size + sum(len(m) + (1 if kept else 0) for m in marker)
        if total <= max_bytes:
            return "[" + b",".join(entries[:kept] + marker).decode() + "]"
        if kept:
            size -= len(entries[kept - 1]) + (1 if kept > 1 else 0)
    return None


def truncation_state(desired: Outputs) -> tuple[object, ...]:
    """What a truncation Event is about, coarsely: the verdict and its number of findings. Not what was
    kept, which moves with every byte of the other annotations (and with our own small keys)."""
    entries, omitted = _violation_items(desired.annotations.get(VIOLATIONS))
    return desired.annotations.get(VERDICT), len(entries) + omitted


def truncation_intent(desired: Outputs, fitted: Outputs) -> EventIntent | None:
    """The Event that says what `fitted` leaves out of `desired`; None when nothing."""
    order = fit_order()
    left_out = [key for key in order if key in desired.annotations and key not in fitted.annotations]
    parts = [f"{', '.join(left_out)} left out"] if left_out else []
    if VIOLATIONS in fitted.annotations and fitted.annotations[VIOLATIONS] != desired.annotations[VIOLATIONS]:
        kept = len(_violation_items(fitted.annotations[VIOLATIONS])[0])
        entries, omitted = _violation_items(desired.annotations[VIOLATIONS])
        parts.append(f"{VIOLATIONS} cut to {kept} of {len(entries) + omitted} findings")
    if not parts:
        return None
    written = [COMPLIANT_LABEL] if fitted.label is not None else []
    written += [key for key in order if key in fitted.annotations]
    limit = f"{ANNOTATIONS_LIMIT_BYTES // 1024} KiB"
    return EventIntent("Warning", TRUNCATED_REASON,
                       f"The workload's annotations are near Kubernetes' {limit} limit: {'; '.join(parts)}. "
                       f"Written: {', '.join(written) or 'nothing'}. `readiness audit` shows every finding.")


@dataclass(frozen=True, slots=True)
class EventIntent:
    """An Event to post: type Warning or Normal, reason, one-line message."""

    type: str
    reason: str
    message: str


def finding_keys(verdicts: Sequence[PolicyVerdict]) -> frozenset[FindingKey]:
    return frozenset(finding_key(v.policy, f) for v in verdicts if v.events for f in v.findings)


def event_intent(verdicts: Sequence[PolicyVerdict], previous: frozenset[FindingKey], previous_omitted: int,
                 ) -> EventIntent | None:
    """The Event this change deserves, if any.

    `previous` is what we last reported (from memory, or from the annotation after a restart), so an
    unchanged state never posts twice. A previous annotation that was truncated hides some findings: then
    only a grown total counts as new, so a restart does not re-announce the hidden ones.
    """
    reporting = [v for v in verdicts if v.events]
    if not reporting:
        return None
    names = {v.policy for v in reporting}
    if UNKNOWN in previous:  # a previous run announced something else: say where we stand now
        previous, previous_omitted = frozenset(), (0 if finding_keys(reporting) else 1)
    # Findings of policies that no longer report (deleted, events off) neither count as fixed nor as new.
    previous = frozenset(k for k in previous if k[0] in names)
    current = finding_keys(reporting)
    new = current - previous
    if previous_omitted and len(current) <= len(previous) + previous_omitted:
        new = frozenset()
    if new:
        return EventIntent("Warning", "ReadinessViolation", _violation_message(reporting, new))
    if not current and (previous or previous_omitted):
        listed = ", ".join(sorted(names))
        return EventIntent("Normal", "ReadinessRestored", f"Compliant with readiness policy {listed}")
    return None


def _violation_message(verdicts: Sequence[PolicyVerdict], new: frozenset[FindingKey]) -> str:
    listed: list[str] = []
    for policy, finding in _ordered(verdicts):
        if finding_key(policy, finding) in new:
            where = f" ({finding.container})" if finding.container else ""
            listed.append(f"{policy}/{finding.check}{where} [{finding.severity}]")
    head = ", ".join(listed[:EVENT_LISTED_FINDINGS])
    more = len(listed) - EVENT_LISTED_FINDINGS
    suffix = f" and {more} more" if more > 0 else ""
    return f"New readiness findings: {head}{suffix}"
