"""The operator's settings: every field documents its default and the trade-off behind it.

Each field can be set by a command-line flag (`--metrics-port 8080`) or an environment variable
(`READINESS_METRICS_PORT=8080`); the flag wins. Lists are comma-separated, mappings `k=v,k2=v2`.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
from collections.abc import Mapping, Sequence
from typing import Any

from readiness import flags
from readiness.logs import LOG_FORMATS
from readiness.peering import identity_from_environ, priority_from_environ
from readiness.workload import parse_custom_kind

ENV_PREFIX = "READINESS_"
VIOLATIONS_MIN_BYTES = 64
VIOLATIONS_MAX_BYTES = 64 * 1024
"""A quarter of Kubernetes' 256 KiB bound on an object's annotations together."""


@dataclasses.dataclass
class OperatorSettings:
    """How the operator runs. Defaults suit a production cluster of up to tens of thousands of workloads."""

    metrics_port: int = 8080
    """Port of the Prometheus `/metrics` endpoint. 0 disables it (tests that do not scrape)."""
    metrics_address: str = "0.0.0.0"
    """Address the metrics endpoint binds to. `0.0.0.0` lets Prometheus scrape the pod; use `127.0.0.1`
    when a sidecar proxy (kube-rbac-proxy) fronts it."""
    operator_namespace: str = "readiness-system"
    """Namespace holding the generated PrometheusRules (or their ConfigMap fallbacks). It must exist."""
    standalone: bool = True
    """Run without peering: suits one replica and the tests. `--peering NAME` turns it off, for HA."""
    peering: str | None = None
    """Name of the (cluster-wide) KopfPeering object. With two replicas, give each a distinct `priority`:
    replicas with equal priority all pause."""
    priority: int = 0
    """Peering priority of this replica; only the highest-priority replica handles events."""
    identity: str = ""
    """This replica's name in the peering object. Empty: ``$POD_NAME`` (the chart sets it from the
    downward API), else ``hostname/pid``. Never the user name: Kopf's own fallback, ``getpass.getuser()``,
    crashes under a uid without a passwd entry, as in any image run with an arbitrary ``runAsUser``."""
    liveness: str | None = None
    """Kopf liveness endpoint URL (`http://0.0.0.0:8081/healthz`); unset disables it."""
    kubeconfig: str | None = None
    """Kubeconfig file; unset: the in-cluster service account, then `$KUBECONFIG` / `~/.kube/config`."""
    kinds: tuple[str, ...] = ("Deployment", "StatefulSet", "DaemonSet", "ReplicationController")
    """Built-in workload kinds to watch. Every watched kind costs one watch stream and its index's memory:
    add ReplicaSet, Job, CronJob or Pod only if a policy judges them (Pods are numerous and short-lived).
    ReplicationControllers are few, and policies that judge Deployments judge them too."""
    custom_kinds: tuple[str, ...] = ()
    """A custom workload kind to watch, as `[group/]Kind=template.path[,replicas=path][,strategy=path]
    [,class=service|daemon|batch][,plural=name]` (the syntax of `readiness audit --custom-kind`), e.g.
    `example.com/Widget=spec.template,replicas=spec.replicas`. Repeat the flag for each kind (in
    `READINESS_CUSTOM_KINDS`, separate them with `;`). Unset plural: Kopf finds the kind in the API's
    discovery. The old `group/Kind:plural=...` still works, with a deprecation warning."""
    annotations: bool = True
    """Write the annotations `readiness.dev/verdict|violations|policies` on workloads. Without them only
    metrics, the policy status and Events report verdicts."""
    labels: bool = True
    """Write the label `readiness.dev/compliant` on workloads (for `kubectl get -l
    readiness.dev/compliant=false`)."""
    events: bool = True
    """Post `ReadinessViolation` / `ReadinessRestored` Events (at most one per change of a workload's
    findings)."""
    policy_reports: bool = True
    """Write wgpolicyk8s.io/v1alpha2 PolicyReports (when that CRD is installed): one per judged workload,
    written only when it changed. Off saves one object per workload in etcd."""
    prometheus_rules: bool = True
    """Write a PrometheusRule per policy (a ConfigMap when that CRD is absent)."""
    rule_labels: Mapping[str, str] = dataclasses.field(default_factory=dict)
    """Labels on generated PrometheusRules, e.g. `release=kube-prometheus-stack` so that the stack's rule
    selector picks them up. Empty: the stack must be configured to select all rules."""
    violations_max_bytes: int = 4096
    """Bound on the `readiness.dev/violations` annotation (64 to 65,536 bytes); beyond it the list is cut,
    worst findings first, and ends with `{"truncated": N}`. Larger lists more findings on the object, but
    every client listing or watching workloads pays for it, and Kubernetes bounds all of an object's
    annotations together to 256 KiB: at most 64 KiB (plus our few small annotations) leaves three
    quarters of it to everyone else (`kubectl apply`'s last-applied copy can be as big as the object).
    When even that does not fit, the label and verdict are written first and the list shortened (see
    `readiness_writes_truncated_total`)."""
    write_concurrency: int = 10
    """API writes in flight at once. Higher converges a big cluster faster but competes with other
    clients for the API server's priority-and-fairness seats."""
    worker_limit: int = 0
    """Kopf's per-object worker limit; 0 leaves it unbounded. Keep 0 with indexes: on start-up each
    worker indexes its object and then waits until every object is indexed, so a limit below the number
    of watched objects deadlocks (measured: 100 workers, 1,000 Deployments, nothing ever audited). API
    concurrency is bounded by `write_concurrency` instead; idle workers exit after Kopf's idle timeout."""
    list_chunk_size: int = 500
    """Objects per page of Kopf's initial listings (its `watching.chunk_size`, whose default lists every
    object in one response). Unpaged, the listing of 10,000 Deployments arrives as one response: its
    bytes, its text and its parsed objects are all in memory at once, the largest part of the operator's
    start-up peak. Smaller pages cost more list requests (20 for 10,000 at 500); every page must be read
    within the API server's continue-token lifetime (about 5 minutes), which 500 leaves far behind. 0:
    no paging."""
    worker_idle_timeout: float = 0.5
    """Seconds an idle Kopf per-object worker lingers before it exits (Kopf's `queueing.idle_timeout`,
    whose own default is 5). A worker holds its object's last raw body: at start-up every workload of the
    cluster has one, so 5 s kept thousands of bodies alive at once. Our handlers return at once (audits are
    queued), so a worker that exits early only costs a new task on the object's next event."""
    gc_freeze_every: int = 2000
    """Audits between two freezes of the heap's survivors (readiness.controller.heap): the garbage
    collector then never rescans projections that live as long as their workloads (a sixth of the CPU of
    a start-up on 10,000 Deployments). Each freeze first collects what is not frozen yet, which costs
    milliseconds per thousand audits. 0 leaves Python's collector as it is."""
    gc_full_interval: float = 600.0
    """Seconds between full collections that rescan the frozen heap too (at a freeze), so that reference
    cycles that became garbage after their freeze are freed. Shorter frees them sooner, at the cost of
    one full scan (tenths of a second at 10,000 workloads) each time."""
    retry_attempts: int = 6
    """Attempts for a write that fails with 409, 429 or 5xx before giving up (until the next change)."""
    retry_base_delay: float = 0.2
    """First backoff delay (s); doubled each attempt, with full jitter, capped by `retry_max_delay`."""
    retry_max_delay: float = 10.0
    """Longest backoff delay (s), unless the server's Retry-After asks for more."""
    rewrite_base_delay: float = 1.0
    """A workload write that still failed after `retry_attempts` (API server down, a 403 while RBAC is
    being replaced) is tried again after this delay (s), doubled each time, with jitter, until it lands:
    the workload is not counted as audited until then, so no verdict stays wrong until the next periodic
    audit."""
    rewrite_max_delay: float = 60.0
    """Longest delay (s) between two such tries: a write that keeps failing costs one request per
    workload per this many seconds."""
    event_rate: float = 5.0
    """Events posted per second at most, across all workloads (token bucket). Excess Events wait in a
    queue (`event_queue_max`): a mass violation must not flood etcd, and no announcement is lost."""
    event_burst: int = 20
    """Token bucket size: Events that may be posted at once after a quiet period."""
    event_queue_max: int = 1000
    """Announcements waiting for the rate limit, at most (one per workload: a newer verdict replaces a
    waiting one). When a sweep (a new policy, a restart) would queue more, the rest are announced by one
    summary Event on the policy instead, and counted in `readiness_events_total{outcome="summarized"}`.
    Bigger delivers more per-workload Events, later."""
    event_settle_seconds: float = 5.0
    """How long new findings must last before a `ReadinessViolation` Event announces them. `kubectl apply`
    of a Deployment with its PodDisruptionBudget or HPA lands the workload a moment before its companions:
    without this delay every such apply would post a violation and then a restoration. Annotations,
    labels, metrics and status are written at once regardless; 0 posts at once."""
    status_interval: float = 1.0
    """At most one status (and PolicyReport) write per policy per this many seconds: a storm of workload
    changes costs one write per policy, not one per change."""
    watch_server_timeout: float = 300.0
    """Server-side watch timeout (s). Set so that a silently dead watch is re-established (Kopf #847)."""
    watch_client_timeout: float = 330.0
    """Client-side watch timeout (s); a little above the server's so that the server closes first."""
    connect_timeout: float = 30.0
    """TCP/TLS connect timeout (s) for watches and requests."""
    request_timeout: float = 60.0
    """Whole-request timeout (s) of short API calls."""
    user_agent: str = "readiness-operator/0.1.0"
    """User-Agent of our own API client, to tell our requests apart in audit logs."""
    webhook_enabled: bool = False
    """Serve the admission webhook (readiness.webhook) from this process."""
    log_format: str = "text"
    """`text`: one human-readable line per record, prefixed with the object Kopf logs about. `json`:
    one JSON object per line (`time`, `level`, `logger`, `message`, and `object` when Kopf logs about
    one), for log pipelines (Loki, Elasticsearch) that parse fields instead of text. Both cover the
    webhook too."""
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)
    """Settings other components register (the webhook's flags); read by them, ignored here."""

    @property
    def field_docs(self) -> dict[str, str]:
        return field_docs()


def field_docs() -> dict[str, str]:
    """Field name -> docstring, read from the source (dataclasses do not keep attribute docstrings)."""
    return flags.field_docs(OperatorSettings)


def _parse_mapping(text: str) -> dict[str, str]:
    result: dict[str, str] = {}
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"expected key=value, got {item!r}")
        result[key.strip()] = value.strip()
    return result


def _parse_list(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"expected true or false, got {text!r}")


def _convert(name: str, text: str) -> Any:
    default = getattr(OperatorSettings(), name)
    if isinstance(default, bool):
        return _parse_bool(text)
    if isinstance(default, int):
        return int(text)
    if isinstance(default, float):
        return float(text)
    if name == "custom_kinds":  # a declaration has commas of its own
        return tuple(part.strip() for part in re.split(r"[;\n]", text) if part.strip())
    if isinstance(default, tuple):
        return _parse_list(text)
    if isinstance(default, Mapping):
        return _parse_mapping(text)
    return text or None


def from_env(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Settings given as `READINESS_<FIELD>` environment variables."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for field in dataclasses.fields(OperatorSettings):
        key = ENV_PREFIX + field.name.upper()
        if key in environ and field.name != "extra":
            try:
                values[field.name] = _convert(field.name, environ[key])
            except ValueError as error:
                raise ValueError(f"{key}: {error}") from None
    return values


NEGATED = ("annotations", "labels", "events", "policy_reports", "prometheus_rules")
"""Settings that default to on: their flag is `--no-<name>`, and its help the docstring negated."""
METAVARS = {"peering": "NAME", "liveness": "URL", "kubeconfig": "FILE", "kinds": "KIND,...",
            "custom_kinds": "[GROUP/]KIND=PATH[,...]", "rule_labels": "K=V,..."}


def flag_name(name: str) -> str:
    """The command-line flag of a setting."""
    if name in NEGATED:
        return "--no-" + name.replace("_", "-")
    return {"custom_kinds": "--custom-kind", "webhook_enabled": "--webhook"}.get(
        name, "--" + name.replace("_", "-"))


def setting_help(name: str) -> str:
    """A setting's `--help` text: its docstring in flag language, with its default."""
    doc = flags.flag_text(field_docs()[name], {n: flag_name(n) for n in _flag_fields()})
    default = flags.dataclass_defaults(OperatorSettings)[name]
    if name in NEGATED:
        words = name.replace("_", " ")
        return f"{flags.negated(doc)} (default: {words} on; {ENV_PREFIX}{name.upper()}=false does the same)"
    if name == "standalone":
        return flags.with_default(doc, "on, unless --peering is given")
    return flags.with_default(doc, flags.show_default(default))


def _flag_fields() -> list[str]:
    return [f.name for f in dataclasses.fields(OperatorSettings) if f.name != "extra"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of `python -m readiness.controller`, one per setting, with the setting's docstring and
    default. Flag defaults stay None, so that `READINESS_*` variables apply when a flag is absent."""
    mode = parser.add_mutually_exclusive_group()
    for name in _flag_fields():
        default = flags.dataclass_defaults(OperatorSettings)[name]
        options: dict[str, Any] = {"dest": name, "help": setting_help(name)}
        if name in METAVARS:
            options["metavar"] = METAVARS[name]
        if name in NEGATED:
            options.update(action="store_false", default=None)
        elif isinstance(default, bool):
            options.update(action="store_true", default=None)
        elif name == "custom_kinds":
            options["action"] = "append"
        elif name == "log_format":
            options["choices"] = LOG_FORMATS
        elif isinstance(default, int | float | tuple | Mapping):
            options["type"] = _argument_type(default)
        (mode if name in ("peering", "standalone") else parser).add_argument(flag_name(name), **options)


def _argument_type(default: Any) -> Any:
    if isinstance(default, tuple):
        return _parse_list
    if isinstance(default, Mapping):
        return _parse_mapping
    return type(default)


def from_args(args: argparse.Namespace, environ: Mapping[str, str] | None = None,
              extra: Mapping[str, Any] | None = None) -> OperatorSettings:
    """Defaults, overridden by the environment, overridden by flags."""
    values = from_env(environ)
    names = {f.name for f in dataclasses.fields(OperatorSettings)}
    for name, value in vars(args).items():
        if name in names and value is not None:
            values[name] = tuple(value) if name == "custom_kinds" else value
    # Deployment replicas have no ordinal: derive a distinct peering priority from the pod's identity
    # (READINESS_PRIORITY_FROM=POD_UID), unless --priority / READINESS_PRIORITY says otherwise.
    values.setdefault("priority", priority_from_environ(environ) or 0)
    if not values.get("identity"):
        values["identity"] = identity_from_environ(environ)
    if values.get("peering"):
        values["standalone"] = False
    settings = OperatorSettings(**values)
    settings.extra.update(extra or {})
    validate(settings)
    return settings


def deprecations(settings: OperatorSettings) -> list[str]:
    """One line per setting given in a deprecated form (logged at start-up)."""
    return [notice for text in settings.custom_kinds
            if (notice := parse_custom_kind(text).deprecation) is not None]


def validate(settings: OperatorSettings) -> None:
    """One-line errors for impossible combinations."""
    for text in settings.custom_kinds:
        parse_custom_kind(text)  # a bad declaration is a usage error, not a failure at start-up
    positive: Sequence[str] = ("write_concurrency", "retry_attempts", "event_burst", "violations_max_bytes",
                               "event_queue_max")
    for name in positive:
        if getattr(settings, name) < 1:
            raise ValueError(f"{name} must be at least 1, got {getattr(settings, name)}")
    if not VIOLATIONS_MIN_BYTES <= settings.violations_max_bytes <= VIOLATIONS_MAX_BYTES:
        raise ValueError(f"violations_max_bytes must be between {VIOLATIONS_MIN_BYTES} and "
                         f"{VIOLATIONS_MAX_BYTES} (64 KiB), got {settings.violations_max_bytes}")
    if settings.worker_limit < 0:
        raise ValueError(f"worker_limit must be 0 (unbounded) or more, got {settings.worker_limit}")
    if settings.gc_freeze_every < 0:
        raise ValueError(f"gc_freeze_every must be 0 (off) or more, got {settings.gc_freeze_every}")
    if settings.gc_full_interval <= 0:
        raise ValueError(f"gc_full_interval must be positive, got {settings.gc_full_interval}")
    if settings.list_chunk_size < 0:
        raise ValueError(f"list_chunk_size must be 0 (no paging) or more, got {settings.list_chunk_size}")
    if settings.worker_idle_timeout <= 0:
        raise ValueError(f"worker_idle_timeout must be positive, got {settings.worker_idle_timeout}")
    if settings.event_rate <= 0:
        raise ValueError("event_rate must be positive")
    if settings.rewrite_base_delay <= 0 or settings.rewrite_max_delay < settings.rewrite_base_delay:
        raise ValueError("rewrite_base_delay must be positive and at most rewrite_max_delay")
    if settings.log_format not in LOG_FORMATS:
        raise ValueError(f"log_format must be one of {', '.join(LOG_FORMATS)}, got {settings.log_format!r}")
    if not 0 <= settings.metrics_port <= 65535:
        raise ValueError(f"metrics_port out of range: {settings.metrics_port}")
