"""Admission: the audit's verdict at `kubectl apply` time. A thin shell around the engine.

`review()` is pure: the same `Engine.matches`/`Engine.evaluate` (and so the same exemptions) as the
audit, turned into an admission answer:

- `audit` policies have no effect at admission;
- `warn` policies return admission warnings, which kubectl prints as `Warning: ...`;
- `deny` policies reject workloads with findings of severity `error`; their lesser findings are warnings.

On UPDATE, findings the old object already had are never grounds for rejection (they become warnings):
otherwise a deny policy created after a workload would block every later change to it, including the
operator's own annotation patches, scaling by label tools, and finalizer removal.

Findings of checks that read other objects (`Check.depends_on`: PodDisruptionBudgets, autoscalers,
ServiceAccounts) are never grounds for rejection either: those objects may come later in the same apply.
They are warnings marked "(not yet)", and the audit, which sees the objects once they exist, decides.
Likewise a policy whose namespaceSelector cannot be decided (a namespace created in the same apply, its
labels not known yet) does not judge at admission, and says "not yet judged".

`configure()` wires it into Kopf, called by the operator's startup handler when the webhook is enabled:
it registers `@kopf.on.validate` handlers, sets `settings.admission.server`, and (in development and
tests) keeps a ValidatingWebhookConfiguration in the cluster up to date. It does not use Kopf's
`settings.admission.managed`: Kopf writes `timeoutSeconds: 30` and no `namespaceSelector`, and both are
safety settings here. In a cluster, the Helm chart ships a static configuration instead.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import dataclasses
import json
import logging
import os
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Protocol

import aiohttp.web
import kopf

from readiness import flags
from readiness.checks import CATALOG
from readiness.checks.base import Severity
from readiness.context import AuditContext
from readiness.engine import Engine, Finding
from readiness.policy import API_GROUP, API_VERSION, PLURAL, Enforcement, ReadinessPolicy
from readiness.workload import (
    BUILTIN_RESOURCES,
    DEFAULT_KINDS,
    KindRegistry,
    MalformedWorkload,
    NotAWorkload,
    TemplateRef,
    WorkloadRef,
    project,
    template_ref,
    with_template,
)

logger = logging.getLogger(__name__)

HANDLER_ID = "readiness"
"""The Kopf handler id, and so the webhook URL path (`/readiness`) the chart's configuration uses."""
WEBHOOK_NAME_PREFIX = "workloads"
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
DEFAULT_CONFIG_NAME = "readiness-operator.readiness.dev"

RESOURCES = BUILTIN_RESOURCES
"""kind -> (group, version, plural) of the workload kinds the webhook can judge."""

_ADMISSION_CONTEXT = AuditContext(pdbs_known=False)
"""At admission the webhook does not see PodDisruptionBudgets: the PDB check stays silent rather than
flag every new workload (the audit, which does see them, still reports)."""


# -- settings --------------------------------------------------------------------------------------------


@dataclass(slots=True)
class WebhookSettings:
    """How the admission webhook is served and registered. Every field has a flag
    `--webhook-<field-with-dashes>` and a variable `READINESS_WEBHOOK_<FIELD>` (lists comma-separated)."""

    port: int = 9443
    """TCP port the HTTPS webhook server listens on. The Service targets it."""
    addr: str = "0.0.0.0"
    """Listening address. Tests use 127.0.0.1."""
    host: str | None = None
    """Host name or IP in the URL of a managed configuration; defaults to `addr`
    (127.0.0.1 for 0.0.0.0). Only used when `managed_config` is set."""
    certfile: Path | None = None
    """Serving certificate (PEM). Unset: a self-signed CA and certificate are generated
    into `cert_dir` (development only). Re-read every `cert_check_interval` seconds: on change the server
    restarts with the new files, so cert-manager renewals need no restart."""
    pkeyfile: Path | None = None
    """Private key of `certfile`."""
    cafile: Path | None = None
    """CA bundle written into a managed configuration's caBundle."""
    cert_dir: Path | None = None
    """Where generated development certificates go; a temporary directory if unset."""
    cert_check_interval: float = 60.0
    """Seconds between checks of the certificate files for rotation."""
    managed_config: str | None = None
    """Name of a ValidatingWebhookConfiguration the operator creates and keeps up to date, pointing at
    https://host:port/readiness (a domain of three or more segments, e.g. `dev.readiness.dev`). For
    development and tests; the chart ships a static configuration instead and leaves this unset (no
    create RBAC needed)."""
    failure_policy: Literal["Ignore", "Fail"] = "Ignore"
    """`Ignore` (default): an operator outage never blocks deployments, at the price that workloads
    created meanwhile are only caught by the audit. `Fail` makes deny airtight but couples every deploy
    to the operator's availability."""
    timeout_seconds: int = 5
    """How long the API server waits for a verdict (1-30). Short, so a slow
    operator delays a deploy by seconds, not half a minute; with Ignore, a timeout admits the object."""
    excluded_namespaces: tuple[str, ...] = ("kube-system",)
    """Namespaces never sent to the webhook, through a
    namespaceSelector on `kubernetes.io/metadata.name`. The operator's own namespace is always added,
    so the webhook can never block its own recovery."""
    operator_namespace: str | None = None
    """The operator's namespace, excluded too. Unset: the operator's --operator-namespace, else
    $POD_NAMESPACE."""
    kinds: tuple[str, ...] = ("Deployment", "StatefulSet", "DaemonSet", "ReplicationController", "Job",
                              "CronJob")
    """Workload kinds judged at admission. Pods and ReplicaSets are left
    out by default: controllers create them by the thousand, and their owners are judged instead."""
    policy_source: Literal["operator", "api"] = "operator"
    """Where the webhook reads policies and namespace labels. `operator`: the
    operator's in-memory state (one replica). `api`: its own cached reads from the API server, needed
    with Kopf peering, because a standby replica's watches are frozen and its state goes stale while its
    webhook still receives requests through the Service."""
    policy_refresh_seconds: float = 10.0
    """With `policy_source: api`, how old the cached policies and namespace labels may get."""
    max_warnings: int = 10
    """At most this many warnings per request; the rest are summarised as `... and N more`."""
    warning_width: int = 120
    """Longest warning, in characters (default 120: one terminal line beside kubectl's `Warning: `).
    Longer ones are cut after a whole word and marked `...`; `readiness audit` has the full text. Wider
    keeps more of each message, at the cost of lines that wrap."""
    max_body_bytes: int = 8 * 1024 * 1024
    """Largest AdmissionReview body judged (aiohttp's default is 1 MiB). The API server sends objects up
    to its request limit (3 MiB by default), and an UPDATE carries the old object too: anything larger is
    answered 413 and the failurePolicy decides (Ignore admits it, unjudged). The price of a higher value
    is memory: a request's parsed JSON takes several times its size, for each request in flight."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> WebhookSettings:
        """Settings from `READINESS_WEBHOOK_<FIELD>` variables (lists comma-separated), as the chart sets."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for item in dataclasses.fields(cls):
            key = ENV_PREFIX + item.name.upper()
            if key in environ:
                try:
                    values[item.name] = _convert(item.name, environ[key])
                except ValueError as error:
                    raise ValueError(f"{key}: {error}") from None
        settings = cls(**values)
        settings.validate()
        return settings

    def validate(self) -> None:
        """One-line errors for impossible values."""
        if self.failure_policy not in ("Ignore", "Fail"):
            raise ValueError(f"webhook failure policy must be Ignore or Fail, got {self.failure_policy!r}")
        if self.policy_source not in ("operator", "api"):
            raise ValueError(f"webhook policy source must be operator or api, got {self.policy_source!r}")
        if not 1 <= self.timeout_seconds <= 30:
            raise ValueError(f"webhook timeout must be 1-30 seconds, got {self.timeout_seconds}")
        if (self.certfile is None) != (self.pkeyfile is None):
            raise ValueError("webhook certificate and key must be given together")
        if self.max_body_bytes < 1024 * 1024:
            raise ValueError(f"webhook max body bytes must be at least 1 MiB, got {self.max_body_bytes}")
        webhook_rules(self.kinds)

    def excluded(self) -> list[str]:
        names = list(self.excluded_namespaces)
        own = self.operator_namespace or os.environ.get("POD_NAMESPACE")
        if own and own not in names:
            names.append(own)
        return names


ENV_PREFIX = "READINESS_WEBHOOK_"
_PATH_FIELDS = frozenset({"certfile", "pkeyfile", "cafile", "cert_dir"})


def _convert(name: str, text: str) -> Any:
    default = getattr(WebhookSettings(), name)
    if name in _PATH_FIELDS:
        return Path(text) if text else None
    if isinstance(default, tuple):
        return tuple(part.strip() for part in text.split(",") if part.strip())
    if isinstance(default, float):
        return float(text)
    if isinstance(default, int):
        return int(text)
    return text or None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """`--webhook-<field>` flags (dest `webhook_<field>`), for `python -m readiness.controller`, with each
    field's docstring and default (readiness.flags)."""
    group = parser.add_argument_group("admission webhook (with --webhook)")
    docs = flags.field_docs(WebhookSettings)
    defaults = flags.dataclass_defaults(WebhookSettings)
    names = {item.name: "--webhook-" + item.name.replace("_", "-")
             for item in dataclasses.fields(WebhookSettings)}
    for name, flag in names.items():
        text = flags.flag_text(f"{docs.get(name, '')} Env {ENV_PREFIX}{name.upper()}.", names)
        group.add_argument(flag, dest="webhook_" + name, metavar=name.upper(),
                           help=flags.with_default(text, flags.show_default(defaults[name])))


def from_args(args: argparse.Namespace | Mapping[str, Any], environ: Mapping[str, str] | None = None,
              ) -> WebhookSettings:
    """Defaults, overridden by `READINESS_WEBHOOK_*`, overridden by `--webhook-*` flags (an argparse
    namespace, or a mapping of `webhook_<field>` to the flag's text, as the controller's `extra`)."""
    values = args if isinstance(args, Mapping) else vars(args)
    settings = WebhookSettings.from_env(environ)
    for item in dataclasses.fields(WebhookSettings):
        value = values.get("webhook_" + item.name)
        if value is not None:
            setattr(settings, item.name, _convert(item.name, value) if isinstance(value, str) else value)
    settings.validate()
    return settings


# -- the pure part ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Review:
    """The webhook's answer to one admission request."""

    allowed: bool
    message: str = ""
    warnings: list[str] = field(default_factory=list)


def review(
    engines: Iterable[Engine],
    obj: Mapping[str, Any],
    namespace_labels: Mapping[str, str] | None,
    operation: str,
    now: datetime,
    *,
    old: Mapping[str, Any] | None = None,
    context: AuditContext = _ADMISSION_CONTEXT,
    kinds: KindRegistry = DEFAULT_KINDS,
    max_warnings: int = 10,
    width: int = 120,
    referenced: Mapping[str, Any] | None = None,
) -> Review:
    """Judge one CREATE or UPDATE with every policy in `warn` or `deny` mode that matches the object.
    `referenced`: the object an Argo Rollout's `spec.workloadRef` names, when admission could read it.
    Every warning names the object (`Kind/name`): `kubectl apply -f DIR` prints them apart from its lines."""
    if operation not in ("CREATE", "UPDATE"):
        return Review(True)
    subject = subject_of(obj)
    try:
        link = template_ref(obj)
        if link is not None:
            if referenced is None:
                return Review(True, warnings=[_reference_not_yet(link, width, subject)])
            obj, old = _through_reference(obj, old, link, referenced)
        workload = project(obj, kinds)
    except NotAWorkload:
        return Review(True)
    except MalformedWorkload as error:
        return Review(True, warnings=[_clip(f"{_lead('readiness', subject)}not judged: {error}", width)])
    previous = _previous_findings(engines, old, namespace_labels, context, now, kinds)
    denials: list[tuple[str, Finding]] = []
    warned: list[tuple[str, Finding]] = []
    notices: list[str] = []
    for engine in engines:
        mode = engine.policy.spec.enforcement
        if mode is Enforcement.AUDIT:
            continue
        if not engine.matches(workload, namespace_labels):
            if namespace_labels is None and engine.matches(workload, None, unknown_labels_match=True):
                notices.append(_labels_not_yet(engine.name, workload.ref.namespace, width, subject))
            continue
        evaluation = engine.evaluate(workload, context, now)
        notices += (_clip(f"{_lead(engine.name, subject)}{notice}", width) for notice in evaluation.notices)
        for finding in evaluation.findings:
            blocking = (mode is Enforcement.DENY and finding.severity is Severity.ERROR
                        and not not_yet(finding) and _key(engine.name, finding) not in previous)
            (denials if blocking else warned).append((engine.name, finding))
    # notices (an exemption annotation ignored, and why) come first: the findings they explain follow
    warnings = [*notices, *format_warnings(warned, max_warnings, width, subject)]
    if denials:
        return Review(False, deny_message(str(workload.ref), denials), warnings)
    return Review(True, "", warnings)


def subject_of(obj: Mapping[str, Any]) -> str:
    """`Kind/name` of the object under review, as warnings name it (`generateName*` before it has one)."""
    kind = obj.get("kind") if isinstance(obj.get("kind"), str) else "object"
    meta = obj.get("metadata")
    meta = meta if isinstance(meta, Mapping) else {}
    name, generated = meta.get("name"), meta.get("generateName")
    if isinstance(name, str) and name:
        return f"{kind}/{name}"
    return f"{kind}/{generated}*" if isinstance(generated, str) and generated else str(kind)


def _lead(tag: str, subject: str) -> str:
    """`[tag] Kind/name: `, the start of every warning (`[tag] ` without a subject)."""
    return f"[{tag}] {subject}: " if subject else f"[{tag}] "


def _reference_not_yet(link: TemplateRef, width: int, subject: str = "") -> str:
    """The object a Rollout's workloadRef names may come later in the same apply: never denied on."""
    return _clip(f"{_lead('readiness', subject)}not yet judged: spec.workloadRef {link.target} not readable "
                 "yet (the audit judges it)", width)


def _through_reference(obj: Mapping[str, Any], old: Mapping[str, Any] | None, link: TemplateRef,
                       referenced: Mapping[str, Any]) -> tuple[dict[str, Any], Mapping[str, Any] | None]:
    """The Rollout (and its previous version, when it named the same object) as Argo runs it: with the
    referenced object's pod template. Raises MalformedWorkload when that object has none."""
    try:
        old_link = template_ref(old) if old is not None else None
    except MalformedWorkload:
        old_link = None
    if old is not None and old_link is not None:
        old = with_template(old, referenced) if old_link.target == link.target else None
    return with_template(obj, referenced), old


def _labels_not_yet(policy: str, namespace: str, width: int, subject: str = "") -> str:
    """A namespace created in the same apply may not be known yet (the operator's index, the webhook's
    cache): its labels decide a namespaceSelector, so admission does not judge, and says so."""
    return _clip(f"{_lead(policy, subject)}not yet judged: labels of namespace {namespace} not known yet "
                 "(namespaceSelector); the audit decides", width)


def _key(policy: str, finding: Finding) -> tuple[str, str, str | None]:
    return policy, finding.check, finding.container


def _previous_findings(
    engines: Iterable[Engine], old: Mapping[str, Any] | None, namespace_labels: Mapping[str, str] | None,
    context: AuditContext, now: datetime, kinds: KindRegistry,
) -> set[tuple[str, str, str | None]]:
    if old is None:
        return set()
    try:
        workload = project(old, kinds)
    except ValueError:
        return set()
    return {
        _key(engine.name, finding)
        for engine in engines
        if engine.policy.spec.enforcement is Enforcement.DENY and engine.matches(workload, namespace_labels)
        for finding in engine.evaluate(workload, context, now).findings
    }


def not_yet(finding: Finding) -> tuple[str, ...]:
    """The kinds of other objects the finding's check reads (`Check.depends_on`). At admission they may
    not exist yet: later in the same `kubectl apply -f`, or installed after the workload (Helm applies
    HorizontalPodAutoscalers after Deployments). Such a finding is never grounds for denial; it is a
    warning marked "not yet", and the audit, which sees them once they exist, gives the verdict."""
    check = CATALOG.get(finding.check)
    return check.depends_on if check is not None else ()


def format_warning(policy: str, finding: Finding, width: int = 120, subject: str = "") -> str:
    """`[policy] Kind/name: check: message (container)`, cut at a word to `width` characters; `check (not
    yet)` when the finding depends on objects that may not exist yet."""
    where = f" ({finding.container})" if finding.container else ""
    pending = " (not yet)" if not_yet(finding) else ""
    return _clip(f"{_lead(policy, subject)}{finding.check}{pending}: {finding.message}{where}", width)


def not_yet_notice(findings: Iterable[Finding], width: int = 120, subject: str = "") -> str | None:
    """The one line explaining the "(not yet)" marks, naming the kinds involved; None without any."""
    kinds = dict.fromkeys(kind for finding in findings for kind in not_yet(finding))
    if not kinds:
        return None
    needs = ", ".join(kinds)
    return _clip(f"{_lead('readiness', subject)}not yet: needs {needs} (may follow in this apply); the audit "
                 "decides", width)


def format_warnings(items: Sequence[tuple[str, Finding]], limit: int = 10, width: int = 120,
                    subject: str = "") -> list[str]:
    """Errors first, then warnings, then infos, and the line explaining "(not yet)" marks: at most `limit`
    lines, plus one counting the rest; each names `subject` (the object's `Kind/name`)."""
    ordered = sorted(items, key=lambda item: -item[1].severity.rank)
    notice = not_yet_notice((finding for _policy, finding in ordered), width, subject)
    room = limit - 1 if notice is not None and limit > 1 else limit
    lines = [format_warning(policy, finding, width, subject) for policy, finding in ordered[:room]]
    if notice is not None:
        lines.append(notice)
    if len(ordered) > room:
        lines.append(_clip(f"{_lead('readiness', subject)}... and {len(ordered) - room} more: run "
                           "`readiness audit` for the rest", width))
    return lines


def deny_message(workload: str, denials: Sequence[tuple[str, Finding]], limit: int = 20) -> str:
    """One line per finding, each with its fix; the API server prefixes the webhook's name."""
    lines = [f"{workload} violates {_plural(len(denials), 'error-severity readiness check')}:"]
    for policy, finding in denials[:limit]:
        where = f" ({finding.container})" if finding.container else ""
        hint = fix_hint(finding.check)
        lines.append(f"- [{policy}] {finding.check}{where}: {finding.message}. Fix: {hint}")
    if len(denials) > limit:
        lines.append(f"- ... and {len(denials) - limit} more")
    lines.append("Details: `readiness explain CHECK`; a policy exemption with a reason waives a check.")
    return "\n".join(lines)


_CLIP_MARK = "..."
_TRAILING = " ,;:-(/"
"""Stripped before the ellipsis: a cut that ends on them reads as a broken phrase."""


def fix_hint(check_id: str, width: int = 200) -> str:
    """The first prose sentence of the check's remediation (its paragraph's lines joined), or its first
    YAML snippet, compacted. `width` is a safety bound: the longest first sentence of the catalogue is
    about 180 characters, so none is cut today; a longer one is cut at a word, with an ellipsis."""
    check = CATALOG.get(check_id)
    if check is None:
        return f"see `readiness explain {check_id}`"
    paragraph, snippet = _first_paragraph_or_snippet(check.remediation)
    if paragraph:
        return _clip(_first_sentence(" ".join(paragraph)).replace("`", ""), width)
    if snippet:
        return _clip("set " + " ".join(snippet), width)
    return f"see `readiness explain {check_id}`"


def _first_sentence(text: str) -> str:
    """Up to the first `.`, `:` or `;` that ends a clause outside parentheses (and is followed by a space
    or the end), without it."""
    depth = 0
    for index, char in enumerate(text):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char in ".:;" and depth <= 0 and (index + 1 == len(text) or text[index + 1].isspace()):
            return text[:index].rstrip()
    return text.rstrip(" .")


def _first_paragraph_or_snippet(markdown: str) -> tuple[list[str], list[str]]:
    """The lines of the first prose paragraph, or, when a code block comes first, that block's lines
    (comments dropped). The other is empty."""
    paragraph: list[str] = []
    snippet: list[str] = []
    fenced = False
    for line in markdown.splitlines():
        text = line.strip()
        if text.startswith("```"):
            if paragraph or (fenced and snippet):
                break
            fenced = not fenced
        elif fenced:
            code = text.split(" #", 1)[0].strip()
            if code and not code.startswith("#"):
                snippet.append(code)
        elif text:
            paragraph.append(text)
        elif paragraph:
            break
    return paragraph, snippet


def _clip(text: str, width: int) -> str:
    """`text` on one line, at most `width` characters: cut after the last word that fits, marked `...`.
    When that would drop over a third of the room (a long token: a path, an image reference), cut inside
    the token instead: the line keeps its content."""
    text = " ".join(text.split())
    if len(text) <= width:
        return text
    room = max(width - len(_CLIP_MARK), 1)
    head = text[: room + 1]  # one more: a space right after the room means the last word fits whole
    at_word = head.rsplit(" ", 1)[0].rstrip(_TRAILING) if " " in head else ""
    cut = at_word if len(at_word) * 3 >= room * 2 else head[:room].rstrip(_TRAILING)
    return cut + _CLIP_MARK


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


# -- bodies the API server would never send --------------------------------------------------------------


class MalformedReview(ValueError):
    """An AdmissionReview that cannot be judged, with what could be read of it (for the answer)."""

    def __init__(self, reason: str, uid: str = "", namespace: str | None = None) -> None:
        super().__init__(reason)
        self.uid = uid
        self.namespace = namespace


def parse_review(raw: bytes) -> dict[str, Any]:
    """The AdmissionReview in `raw`, checked for everything Kopf and the handler read; MalformedReview
    otherwise. The API server never sends such a body: it is a bug, or a client probing the webhook."""
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as error:
        raise MalformedReview(f"not UTF-8 (byte {error.start})") from None
    except RecursionError:
        raise MalformedReview("JSON nested too deeply") from None
    except ValueError as error:  # invalid JSON, or an integer over Python's 4,300-digit limit
        raise MalformedReview(f"not JSON: {_clip(str(error), 80)}") from None
    request = data.get("request") if isinstance(data, dict) else None
    if not isinstance(request, dict):
        raise MalformedReview("no request object")
    uid = request.get("uid")
    problem = _envelope_problem(request)
    if problem is not None or not isinstance(uid, str):
        raise MalformedReview(problem or "request.uid is not a string", uid if isinstance(uid, str) else "",
                              _namespace_of(request))
    checked: dict[str, Any] = data
    return checked


def _envelope_problem(request: Mapping[str, Any]) -> str | None:
    if not isinstance(request.get("operation"), str):
        return "request.operation is not a string"
    resource = request.get("resource")
    if not (isinstance(resource, dict) and all(isinstance(resource.get(key), str)
                                               for key in ("group", "version", "resource"))):
        return "request.resource needs group, version and resource strings"
    if not isinstance(request.get("userInfo"), dict):
        return "request.userInfo is not an object"
    if request.get("object") is None and request.get("oldObject") is None:
        return "neither request.object nor request.oldObject"
    for key in ("object", "oldObject"):
        value = request.get(key)
        if value is not None and not isinstance(value, dict):
            return f"request.{key} is not an object"
        if value is not None and not isinstance(value.get("metadata"), dict):
            return f"request.{key}.metadata is not an object"
    return None


def _namespace_of(request: Mapping[str, Any]) -> str | None:
    namespace = request.get("namespace")
    if isinstance(namespace, str) and namespace:
        return namespace
    obj = request.get("object")
    meta = obj.get("metadata") if isinstance(obj, dict) else None
    namespace = meta.get("namespace") if isinstance(meta, dict) else None
    return namespace if isinstance(namespace, str) and namespace else None


def malformed_verdict(engines: Iterable[Engine], error: MalformedReview,
                      namespace_labels: Mapping[str, str] | None = None, width: int = 120) -> Review:
    """Denied when a deny policy may apply (every deny policy, when the namespace cannot be read), else
    allowed with a warning. Unreadable must not mean admitted where deny is asked for; and as the API
    server never sends such bodies, denying them blocks no real deploy."""
    return unjudged_verdict(engines, f"malformed AdmissionReview: {error}", error.namespace,
                            namespace_labels, width)


def unjudged_verdict(engines: Iterable[Engine], what: str, namespace: str | None,
                     namespace_labels: Mapping[str, str] | None = None, width: int = 120) -> Review:
    """An object that could not be judged (`what` says why): denied when a deny policy may apply to its
    namespace (any deny policy when the namespace is unknown), else allowed with a warning. Whatever makes
    the review fail must never be a way past a deny policy."""
    deny = [engine.name for engine in engines if engine.policy.spec.enforcement is Enforcement.DENY
            and (namespace is None or engine.matches_namespace(namespace, namespace_labels, True))]
    if deny:
        return Review(False, _clip(f"not judged ({what}), so denied by {', '.join(deny)}", 400))
    return Review(True, warnings=[_clip(f"[readiness] not judged: {what}", width)])


def admission_response(uid: str, verdict: Review) -> dict[str, Any]:
    """The AdmissionReview (v1) answering request `uid` with `verdict`."""
    response: dict[str, Any] = {"uid": uid, "allowed": verdict.allowed}
    if verdict.warnings:
        response["warnings"] = list(verdict.warnings)
    if not verdict.allowed:
        response["status"] = {"code": 403, "message": verdict.message}
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response}


# -- the webhook configuration ---------------------------------------------------------------------------


def webhook_rules(kinds: Iterable[str]) -> list[dict[str, Any]]:
    """One admission rule per judged kind: CREATE and UPDATE of the object itself (not its status)."""
    rules: list[dict[str, Any]] = []
    for kind in kinds:
        if kind not in RESOURCES:
            raise ValueError(f"webhook kind {kind!r}: expected one of {', '.join(sorted(RESOURCES))}")
        group, version, plural = RESOURCES[kind]
        rules.append({"apiGroups": [group], "apiVersions": [version], "resources": [plural],
                      "operations": ["CREATE", "UPDATE"], "scope": "Namespaced"})
    return rules


def validating_webhook(settings: WebhookSettings, client_config: Mapping[str, Any], name: str,
                       ) -> dict[str, Any]:
    """The single webhook entry; the chart's static configuration renders the same fields."""
    return {
        "name": f"{WEBHOOK_NAME_PREFIX}.{name}",
        "clientConfig": with_handler_path(client_config),
        "rules": webhook_rules(settings.kinds),
        "failurePolicy": settings.failure_policy,
        "sideEffects": "None",  # the handler writes nothing, so dry-run requests are judged too
        "timeoutSeconds": settings.timeout_seconds,
        "matchPolicy": "Equivalent",
        "namespaceSelector": {"matchExpressions": [
            {"key": NAMESPACE_NAME_LABEL, "operator": "NotIn", "values": settings.excluded()},
        ]},
        "admissionReviewVersions": ["v1"],
    }


def with_handler_path(client_config: Mapping[str, Any]) -> dict[str, Any]:
    """The client config pointing at our handler: Kopf's server yields its bare URL
    (`https://host:port`) and routes requests by path, so the API server must call `/readiness`.
    Without it every request reaches no handler and is silently allowed. Idempotent."""
    config = copy.deepcopy(dict(client_config))
    suffix = "/" + HANDLER_ID
    url = config.get("url")
    if isinstance(url, str) and not url.rstrip("/").endswith(suffix):
        config["url"] = url.rstrip("/") + suffix
    service = config.get("service")
    if isinstance(service, dict):
        path = str(service.get("path") or "").rstrip("/")
        service["path"] = path if path.endswith(suffix) else path + suffix
    return config


def webhook_configuration(settings: WebhookSettings, client_config: Mapping[str, Any]) -> dict[str, Any]:
    name = settings.managed_config or DEFAULT_CONFIG_NAME
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/managed-by": "readiness-operator"}},
        "webhooks": [validating_webhook(settings, client_config, name)],
    }


# -- wiring into Kopf --------------------------------------------------------------------------------------


class PolicySource(Protocol):
    """What the webhook needs from the operator's state."""

    def engines(self) -> list[Engine]: ...

    def namespace_labels(self, name: str) -> Mapping[str, str] | None: ...


@dataclass(slots=True)
class _Runtime:
    settings: WebhookSettings
    source: PolicySource
    api: _ApiSource | None
    registry: kopf.OperatorRegistry
    context: Callable[[str], AuditContext]
    kubeconfig: str | None


def configure(kopf_settings: kopf.OperatorSettings, operator_settings: Any, state: PolicySource, *,
              registry: kopf.OperatorRegistry | None = None) -> WebhookSettings:
    """Enable admission: call from an `@kopf.on.startup` handler (handlers registered there take effect,
    because Kopf starts its webhook server and resource scanning only after the startup handlers).

    Webhook settings: `operator_settings.extra["webhook"]` when it is a WebhookSettings (tests), else the
    `webhook_<field>` flag values in `operator_settings.extra` over `READINESS_WEBHOOK_*` variables.
    """
    extra: Mapping[str, Any] = getattr(operator_settings, "extra", None) or {}
    given = extra.get("webhook")
    settings = given if isinstance(given, WebhookSettings) else from_args(extra)
    settings.validate()
    if settings.operator_namespace is None:
        settings.operator_namespace = getattr(operator_settings, "operator_namespace", None) or None
    kubeconfig = getattr(operator_settings, "kubeconfig", None)
    api = _ApiSource(settings.policy_refresh_seconds, kubeconfig) if settings.policy_source == "api" else None
    state_context = getattr(state, "context", None)
    context = api.context if api is not None else state_context if callable(state_context) else _no_context
    registry = registry or kopf.get_default_registry()
    runtime = _Runtime(settings, api or state, api, registry, context, kubeconfig)
    _register_handlers(runtime)
    access = logging.getLogger("aiohttp.access")
    if access.level == logging.NOTSET:  # a line per admission request (and probe): not worth an INFO
        access.setLevel(logging.WARNING)
    kopf_settings.admission.server = _server(runtime)
    kopf_settings.admission.managed = None  # we manage the configuration ourselves, see the module doc
    logger.info("Admission webhook on %s:%d for %s; excluded namespaces: %s", settings.addr, settings.port,
                ", ".join(settings.kinds), ", ".join(settings.excluded()))
    return settings


def _no_context(_namespace: str) -> AuditContext:
    return _ADMISSION_CONTEXT


def _register_handlers(runtime: _Runtime) -> None:
    """One handler per judged kind, all with the id `readiness` (the URL path), bound to this runtime.
    Re-configuring the same registry (tests restart operators in one process) replaces them."""
    _unregister_handlers(runtime.registry)

    async def handler(**kwargs: Any) -> None:
        await _judge(runtime, kwargs)

    for kind in runtime.settings.kinds:
        group, version, plural = RESOURCES[kind]
        kopf.on.validate(group, version, plural, id=HANDLER_ID, operations=["CREATE", "UPDATE"],
                         side_effects=False, ignore_failures=True, registry=runtime.registry)(handler)


async def _judge(runtime: _Runtime, kwargs: Mapping[str, Any]) -> None:
    """`_validate`, failing open on errors (as failurePolicy Ignore would): Kopf turns them into denials."""
    try:
        await _validate(runtime, kwargs)
    except kopf.AdmissionError:
        raise
    except Exception as error:
        logger.exception("Admission: could not judge the request; allowing it")
        kwargs["warnings"].append(_clip(f"[readiness] not judged (webhook error): {error}",
                                        runtime.settings.warning_width))


def _unregister_handlers(registry: kopf.OperatorRegistry) -> None:
    """Kopf 1.45 has no public way to unregister. Needed because a later operator run in the same process
    without the webhook would otherwise fail on "admission handlers exist, but no server"."""
    handlers = registry._webhooks._handlers
    handlers[:] = [h for h in handlers if h.id != HANDLER_ID]


async def _validate(runtime: _Runtime, kwargs: Mapping[str, Any]) -> None:
    """The Kopf handler's body: `warnings` is Kopf's list for the response; AdmissionError denies.
    Kopf's keyword arguments are passed as one mapping: they include a `runtime` of their own."""
    body: kopf.Body = kwargs["body"]
    old: kopf.Body | None = kwargs.get("old")
    operation: str | None = kwargs.get("operation")
    warnings: list[str] = kwargs["warnings"]
    if operation not in ("CREATE", "UPDATE"):
        return
    namespace = str(body.get("metadata", {}).get("namespace") or "")
    if namespace in runtime.settings.excluded():
        return
    if runtime.api is not None:
        await runtime.api.refresh(namespace)
    engines = runtime.source.engines()
    referenced = await _referenced_object(runtime, body, engines)
    labels = runtime.source.namespace_labels(namespace)
    try:
        verdict = review(
            engines, dict(body), labels, operation,
            datetime.now(UTC), old=dict(old) if old is not None else None, context=runtime.context(namespace),
            max_warnings=runtime.settings.max_warnings, width=runtime.settings.warning_width,
            referenced=referenced,
        )
    except Exception as error:  # a bug, or an object crafted to make the engine raise: not a way past deny
        logger.exception("Admission: could not judge %s of %s/%s", operation, namespace,
                         body.get("metadata", {}).get("name"))
        verdict = unjudged_verdict(engines, f"webhook error: {type(error).__name__}: {error}", namespace,
                                   labels, runtime.settings.warning_width)
    warnings.extend(verdict.warnings)
    if not verdict.allowed:
        logger.info("Admission denied %s: %s", operation, _clip(verdict.message.split("\n", 1)[0], 200))
        raise kopf.AdmissionError(verdict.message, code=403)


REFERENCE_RESOURCES: Mapping[str, tuple[str, str, str]] = {
    "Deployment": ("apps", "v1", "deployments"), "ReplicaSet": ("apps", "v1", "replicasets"),
    "PodTemplate": ("", "v1", "podtemplates"),
}
"""Where the objects a Rollout's `spec.workloadRef` may name are read from."""
REFERENCE_TIMEOUT_SECONDS = 2.0
"""At most this long (and half the webhook's timeout) to read a Rollout's referenced object: past it,
admission says "not yet" rather than letting the API server's timeout decide."""


def reference_path(target: WorkloadRef) -> str:
    group, version, plural = REFERENCE_RESOURCES[target.kind]
    prefix = f"/apis/{group}/{version}" if group else f"/api/{version}"
    return f"{prefix}/namespaces/{target.namespace}/{plural}/{target.name}"


async def _referenced_object(runtime: _Runtime, body: Mapping[str, Any], engines: Sequence[Engine],
                             ) -> Mapping[str, Any] | None:
    """The object a Rollout's workloadRef names, read from the API server (one GET, never cached: it may
    have changed earlier in the same apply); None when absent, unreadable or not needed."""
    try:
        link = template_ref(body)
    except MalformedWorkload:
        return None  # review() names the problem
    if link is None or all(engine.policy.spec.enforcement is Enforcement.AUDIT for engine in engines):
        return None
    timeout = min(REFERENCE_TIMEOUT_SECONDS, runtime.settings.timeout_seconds / 2)
    try:
        return await asyncio.wait_for(_read_object(runtime.kubeconfig, reference_path(link.target)), timeout)
    except Exception as error:  # not found, forbidden, too slow: "not yet", never a denial
        if getattr(error, "status", None) != 404:
            logger.warning("Admission: could not read %s for %s: %s", link.target, link.rollout,
                           str(error) or type(error).__name__)
        return None


async def _read_object(kubeconfig: str | None, path: str) -> Mapping[str, Any] | None:
    async with await _api_client(kubeconfig) as api_client:
        found = await api_client.call_api(
            path, "GET", header_params={"Accept": "application/json"}, response_types_map={200: "object"},
            auth_settings=["BearerToken"], _return_http_data_only=True)
    return found if isinstance(found, Mapping) else None


def _server(runtime: _Runtime) -> kopf.WebhookServer:
    settings = runtime.settings
    certfile, pkeyfile, cafile = settings.certfile, settings.pkeyfile, settings.cafile
    if certfile is None or pkeyfile is None:
        from readiness.tls import write_serving_certificate

        directory = settings.cert_dir or Path(tempfile.mkdtemp(prefix="readiness-webhook-"))
        host = settings.host or ("127.0.0.1" if settings.addr in ("0.0.0.0", "::") else settings.addr)
        paths = write_serving_certificate(directory, dict.fromkeys([host, "127.0.0.1", "localhost"]))
        certfile, pkeyfile, cafile = paths.certfile, paths.pkeyfile, paths.cafile
        logger.warning("Admission webhook uses a generated self-signed certificate in %s "
                       "(development only).", directory)
    return _ConfiguringServer(
        runtime, addr=settings.addr, port=settings.port, host=settings.host, certfile=certfile,
        pkeyfile=pkeyfile, cafile=cafile, file_check_interval=settings.cert_check_interval,
    )


class _ConfiguringServer(kopf.WebhookServer):
    """Kopf's HTTPS server (which restarts itself when the certificate files change), plus our own
    management of the ValidatingWebhookConfiguration whenever the client config (URL, caBundle) changes."""

    def __init__(self, runtime: _Runtime, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.runtime = runtime
        self.judged = frozenset(RESOURCES[kind] for kind in runtime.settings.kinds)

    async def __call__(self, fn: Any) -> AsyncIterator[Any]:
        settings = self.runtime.settings
        try:
            async for client_config in super().__call__(fn):
                if settings.managed_config:
                    try:
                        body = webhook_configuration(settings, client_config)
                        await apply_configuration(body, self.runtime.kubeconfig)
                    except Exception:  # keep serving: a configuration applied by someone else still works
                        logger.exception("Could not apply the ValidatingWebhookConfiguration %s",
                                         settings.managed_config)
                yield client_config
        finally:
            _unregister_handlers(self.runtime.registry)

    async def _serve(self, fn: Any, request: aiohttp.web.Request) -> aiohttp.web.Response:  # type: ignore[override]
        """Kopf's `_serve` with two changes: bodies up to `max_body_bytes` (aiohttp's default 1 MiB is less
        than the API server sends, and a 413 lets failurePolicy Ignore admit the object unjudged), and a
        malformed review answered with an AdmissionReview (and a WARNING), not an HTTP 500."""
        from kopf._core.engines import admission as kopf_admission

        limit = self.runtime.settings.max_body_bytes
        try:
            raw = await request.clone(client_max_size=limit).read()
        except aiohttp.web.HTTPRequestEntityTooLarge:
            logger.warning("Admission: a request body over %d bytes (max_body_bytes) answered 413: "
                           "the failurePolicy decides", limit)
            raise
        try:
            data = parse_review(raw)
            answer = await self._answer(data) if request.match_info.get("id") == HANDLER_ID else None
            if answer is not None:
                return aiohttp.web.json_response(answer)
            sslpeer = request.transport.get_extra_info("peercert") if request.transport else None
            return aiohttp.web.json_response(await fn(
                data, webhook=request.match_info.get("id"), sslpeer=sslpeer, headers=dict(request.headers)))
        except MalformedReview as error:
            return aiohttp.web.json_response(await self._malformed(error))
        except RecursionError:  # parsed, but too deep for Kopf's diff and copies
            return aiohttp.web.json_response(await self._malformed(MalformedReview(
                "nested too deeply", *_salvage(data))))
        except kopf_admission.AmbiguousResourceError as error:
            raise aiohttp.web.HTTPConflict(reason=str(error) or None) from None
        except kopf_admission.UnknownResourceError as error:
            raise aiohttp.web.HTTPNotFound(reason=str(error) or None) from None
        except kopf_admission.WebhookError as error:
            raise aiohttp.web.HTTPBadRequest(reason=str(error) or None) from None

    async def _answer(self, data: Mapping[str, Any]) -> dict[str, Any] | None:
        """Our kinds, judged by the handler directly: Kopf's request function around it (memo, diff,
        handler bookkeeping, two log records) doubled the time per request. None for anything else,
        which Kopf's function answers as before."""
        request = data["request"]
        resource = request["resource"]
        if (resource["group"], resource["version"], resource["resource"]) not in self.judged:
            return None
        obj, old = request.get("object"), request.get("oldObject")
        warnings: list[str] = []
        try:
            await _judge(self.runtime, {"body": obj if obj is not None else old, "old": old,
                                        "operation": request["operation"], "warnings": warnings})
        except kopf.AdmissionError as error:
            return admission_response(request["uid"], Review(False, str(error), warnings))
        return admission_response(request["uid"], Review(True, "", warnings))

    async def _malformed(self, error: MalformedReview) -> dict[str, Any]:
        runtime = self.runtime
        if error.namespace in runtime.settings.excluded():
            verdict = Review(True)
        else:
            if runtime.api is not None:
                await runtime.api.refresh(error.namespace or "")
            labels = runtime.source.namespace_labels(error.namespace) if error.namespace else None
            verdict = malformed_verdict(runtime.source.engines(), error, labels,
                                        runtime.settings.warning_width)
        outcome = "allowed" if verdict.allowed else "denied"
        logger.warning("Admission: malformed AdmissionReview: %s (uid %r, namespace %s): %s", error,
                       error.uid[:64], error.namespace or "unknown", outcome)
        return admission_response(error.uid, verdict)


def _salvage(data: Mapping[str, Any]) -> tuple[str, str | None]:
    """The uid and namespace of a parsed review, for answering it when judging it failed."""
    request = data["request"]
    return str(request["uid"]), _namespace_of(request)


# -- API access (kubernetes-asyncio): the managed configuration and the `api` policy source ----------------


async def _api_client(kubeconfig: str | None) -> Any:
    """The operator's credentials: in-cluster service account, else the kubeconfig (as the controller)."""
    from kubernetes_asyncio import client, config

    configuration = client.Configuration()
    if kubeconfig is None:
        try:
            config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
            return client.ApiClient(configuration)
        except config.ConfigException:
            pass
    await config.load_kube_config(config_file=kubeconfig, client_configuration=configuration,
                                  persist_config=False)
    return client.ApiClient(configuration)


async def apply_configuration(body: dict[str, Any], kubeconfig: str | None = None) -> None:
    """Create the ValidatingWebhookConfiguration, or replace its webhooks; retried on conflicts."""
    from kubernetes_asyncio import client
    from kubernetes_asyncio.client.exceptions import ApiException

    name = body["metadata"]["name"]
    async with await _api_client(kubeconfig) as api_client:
        api = client.AdmissionregistrationV1Api(api_client)
        for _attempt in range(5):
            try:
                existing = await api.read_validating_webhook_configuration(name)
            except ApiException as error:
                if error.status != 404:
                    raise
                try:
                    await api.create_validating_webhook_configuration(body)  # type: ignore[arg-type]
                    logger.info("Created ValidatingWebhookConfiguration %s", name)
                    return
                except ApiException as create_error:
                    if create_error.status != 409:
                        raise
                    continue
            replacement = {**body, "metadata": {**body["metadata"],
                                                 "resourceVersion": existing.metadata.resource_version}}
            try:
                await api.replace_validating_webhook_configuration(name, replacement)  # type: ignore[arg-type]
                logger.info("Updated ValidatingWebhookConfiguration %s", name)
                return
            except ApiException as error:
                if error.status != 409:
                    raise
        raise RuntimeError(f"ValidatingWebhookConfiguration {name}: conflicts on every attempt")


class _ApiSource:
    """Policies and namespace labels read from the API server, cached for `max_age` seconds.

    Used by replicas whose Kopf watches may be frozen by peering. A failed refresh keeps serving the last
    good data (and the webhook fails open anyway when it cannot answer in time).
    """

    def __init__(self, max_age: float, kubeconfig: str | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.max_age = max_age
        self.kubeconfig = kubeconfig
        self._clock = clock
        self._engines: list[Engine] = []
        self._compiled: dict[tuple[str, str], Engine] = {}
        self._policies_at = float("-inf")
        self._namespaces: dict[str, tuple[float, Mapping[str, str] | None]] = {}
        self._contexts: dict[str, AuditContext] = {}
        self._fetching: dict[str, asyncio.Task[None]] = {}

    def engines(self) -> list[Engine]:
        return list(self._engines)

    def namespace_labels(self, name: str) -> Mapping[str, str] | None:
        cached = self._namespaces.get(name)
        return cached[1] if cached else None

    async def refresh(self, namespace: str) -> None:
        """Single flight: one fetch of the policies, and one per namespace, however many requests find the
        copy stale. A copy up to twice `max_age` old is served while the fetch replaces it in the
        background (no request waits on the API server); an older one, or none, is waited for."""
        now = self._clock()
        waits: list[asyncio.Task[None]] = []
        ages = [("", now - self._policies_at)]
        if namespace:
            cached = self._namespaces.get(namespace)
            ages.append((namespace, now - cached[0] if cached else float("inf")))
        for key, age in ages:
            if age > self.max_age:
                task = self._fetching.get(key) or self._start_fetch(key)
                if age > 2 * self.max_age:
                    waits.append(task)
        if waits:
            await asyncio.wait(waits)  # not gather: a cancelled request must not cancel the shared fetch

    def _start_fetch(self, key: str) -> asyncio.Task[None]:
        """The fetch of the policies (key "") or of one namespace, remembered until it is done."""
        task = asyncio.create_task(self._fetch_logged(key), name=f"readiness admission refresh {key}")
        self._fetching[key] = task
        task.add_done_callback(lambda _task: self._fetching.pop(key, None))
        return task

    async def _fetch_logged(self, key: str) -> None:
        try:
            await self._fetch(key or None, not key)
        except Exception as error:  # serve the last good data; the audit still catches everything
            logger.warning("Admission: could not refresh policies or namespace labels: %s", error)

    async def _fetch(self, namespace: str | None, policies: bool) -> None:
        from kubernetes_asyncio import client
        from kubernetes_asyncio.client.exceptions import ApiException

        async with await _api_client(self.kubeconfig) as api_client:
            if policies:
                listing = await client.CustomObjectsApi(api_client).list_cluster_custom_object(
                    API_GROUP, API_VERSION, PLURAL)
                self._engines = self._compile(listing.get("items", []))
                self._policies_at = self._clock()
            if namespace:
                try:
                    found = await client.CoreV1Api(api_client).read_namespace(namespace)
                    labels: Mapping[str, str] | None = dict(found.metadata.labels or {})
                except ApiException as error:
                    if error.status != 404:
                        raise
                    labels = None
                self._namespaces[namespace] = (self._clock(), labels)
                self._contexts[namespace] = await self._context(api_client, namespace)

    def context(self, namespace: str) -> AuditContext:
        """The namespace's PodDisruptionBudgets, autoscalers and ServiceAccount flags as last read, refreshed
        with its labels; unknown (no PDB check) until read."""
        return self._contexts.get(namespace, _ADMISSION_CONTEXT)

    @staticmethod
    async def _context(api_client: Any, namespace: str) -> AuditContext:
        """Three lists per namespace and refresh: what the operator's indexes hold, for a standby replica."""
        from kubernetes_asyncio import client

        listings = (
            ("PodDisruptionBudget", client.PolicyV1Api(api_client).list_namespaced_pod_disruption_budget),
            ("HorizontalPodAutoscaler",
             client.AutoscalingV2Api(api_client).list_namespaced_horizontal_pod_autoscaler),
            ("ServiceAccount", client.CoreV1Api(api_client).list_namespaced_service_account),
        )
        objects: list[dict[str, Any]] = []
        for kind, list_namespaced in listings:
            listing = await list_namespaced(namespace)
            for item in listing.items:
                objects.append({**api_client.sanitize_for_serialization(item), "kind": kind})
        return AuditContext.from_objects(objects)

    def _compile(self, items: Iterable[Mapping[str, Any]]) -> list[Engine]:
        compiled: dict[tuple[str, str], Engine] = {}
        for item in items:
            meta = item.get("metadata") or {}
            key = (str(meta.get("name")), str(meta.get("resourceVersion")))
            engine = self._compiled.get(key)
            if engine is None:
                try:
                    engine = Engine(ReadinessPolicy.model_validate(item))
                except ValueError as error:
                    logger.warning("Admission ignores the invalid policy %s: %s", key[0], error)
                    continue
            compiled[key] = engine
        self._compiled = compiled
        return list(compiled.values())
