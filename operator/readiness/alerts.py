"""Prometheus alert rules for a ReadinessPolicy, as a rules file, a PrometheusRule or a ConfigMap.

Design (monitoring-mixins conventions):

- One alert name, `ReadinessPolicyViolation`, with one rule per severity of ours that reaches
  `spec.alerting.minSeverity`, in a group `readiness-policy-<policy>`. Each alert instance is one
  (workload, check): `max by (policy, namespace, kind, workload, check)` over
  `readiness_workload_violations`, so the number of alerts grows with the open problems, never with the
  containers, and Alertmanager can group them by policy, namespace or check. An alert per check would
  multiply rules by the catalog's size for no routing gain: the `check` label already routes.
- `severity` maps ours onto the mixins' scale: error -> critical, warning -> warning, info -> info. Our
  own severity stays in the `readiness_severity` label. A policy that must not page can set
  `spec.alerting.labels: {severity: warning}`; labels from the policy win over the mapping, and over the
  operator-wide `extra_labels`.
- `for` is `spec.alerting.for` (default 15m, so a rollout that fixes itself does not alert).
- Annotations: `summary`, `description` (templated with `$labels` and `$value`, the failing containers)
  and `runbook_url` = `spec.alerting.runbookUrl` + `{{ $labels.check }}.md` (the check is known only per
  series, so the URL is a template).
- `spec.alerting.enabled: false` gives a document with no groups; the operator then deletes the rules.

The operator's own health is a separate document (`operator_rules_document`), written once, not per
policy: `ReadinessOperatorDown` (`absent(readiness_build_info)`: nothing scrapes the operator) and
`ReadinessOperatorAPIErrors` (failed API calls keep coming).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import yaml

from readiness.checks.base import Severity
from readiness.policy import API_GROUP, API_VERSION, KIND, ReadinessPolicy

ALERT_NAME = "ReadinessPolicyViolation"
OPERATOR_DOWN_ALERT = "ReadinessOperatorDown"
OPERATOR_API_ERRORS_ALERT = "ReadinessOperatorAPIErrors"
OPERATOR_GROUP = "readiness-operator"
OPERATOR_RULES_NAME = "readiness-operator"

SEVERITY_LABELS: Mapping[Severity, str] = {
    Severity.ERROR: "critical",
    Severity.WARNING: "warning",
    Severity.INFO: "info",
}
"""Our severities on the monitoring-mixins scale."""

MANAGED_BY = {"app.kubernetes.io/managed-by": "readiness-operator"}
POLICY_LABEL = f"{API_GROUP}/policy"

_GROUPING = "policy, namespace, kind, workload, check"
_WORKLOAD = "{{ $labels.kind }} {{ $labels.namespace }}/{{ $labels.workload }}"


def rules_name(policy: ReadinessPolicy) -> str:
    """Name of the PrometheusRule or ConfigMap holding a policy's rules."""
    return f"readiness-{policy.name}"


def group_name(policy: ReadinessPolicy) -> str:
    return f"readiness-policy-{policy.name}"


def _promql_string(value: str) -> str:
    """A PromQL double-quoted string literal."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _runbook(base: str) -> str:
    # The documented contract is "the check id and .md are appended"; a base without a separator would
    # glue the id onto the last path segment, which is never what was meant.
    separator = "" if base.endswith(("/", "#", "=", "?", "&")) else "/"
    return f"{base}{separator}{{{{ $labels.check }}}}.md"


def severities(policy: ReadinessPolicy) -> list[Severity]:
    """Our severities that alert under this policy, highest first."""
    floor = policy.spec.alerting.min_severity.rank
    return sorted((s for s in Severity if s.rank >= floor), key=lambda s: -s.rank)


def violation_rule(policy: ReadinessPolicy, severity: Severity,
                   extra_labels: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The alerting rule for one severity of ours."""
    alerting = policy.spec.alerting
    selector = f"policy={_promql_string(policy.name)}, severity={_promql_string(str(severity))}"
    labels = {"severity": SEVERITY_LABELS[severity], "readiness_severity": str(severity),
              **(extra_labels or {}), **alerting.labels}
    return {
        "alert": ALERT_NAME,
        "expr": f"max by ({_GROUPING}) (readiness_workload_violations{{{selector}}}) > 0",
        "for": alerting.for_,
        "labels": labels,
        "annotations": {
            "summary": f"{_WORKLOAD} fails the readiness check {{{{ $labels.check }}}}.",
            "description": (
                f"{_WORKLOAD} has failed the {severity} readiness check {{{{ $labels.check }}}} of "
                f"ReadinessPolicy {{{{ $labels.policy }}}} for more than {alerting.for_} "
                "({{ $value }} finding(s), one per failing container). "
                "Run `kubectl readiness explain {{ $labels.check }}` for the fix."
            ),
            "runbook_url": _runbook(alerting.runbook_url),
        },
    }


def rules_document(policy: ReadinessPolicy, *, extra_labels: Mapping[str, str] | None = None,
                   ) -> dict[str, Any]:
    """The policy's Prometheus rules file: `{"groups": [...]}` (no groups when alerting is disabled)."""
    if not policy.spec.alerting.enabled:
        return {"groups": []}
    rules = [violation_rule(policy, s, extra_labels) for s in severities(policy)]
    return {"groups": [{"name": group_name(policy), "rules": rules}]}


def operator_rules_document(*, extra_labels: Mapping[str, str] | None = None, down_for: str = "10m",
                            errors_for: str = "15m", errors_per_second: float = 0.05) -> dict[str, Any]:
    """Rules about the operator itself, written once per operator (not per policy)."""
    labels = {"severity": "warning", **(extra_labels or {})}
    return {"groups": [{"name": OPERATOR_GROUP, "rules": [
        {
            "alert": OPERATOR_DOWN_ALERT,
            "expr": "absent(readiness_build_info)",
            "for": down_for,
            "labels": labels,
            "annotations": {
                "summary": "The readiness operator is not scraped.",
                # No `for` in the text: the chart may override it, and the text must stay true.
                "description": "Prometheus has no readiness_build_info series: the operator is down, or "
                               "Prometheus no longer scrapes it, so readiness violations go unreported.",
                "runbook_url": "https://github.com/readiness-operator/readiness-operator/blob/main/docs/"
                               "runbooks/ReadinessOperatorDown.md",
            },
        },
        {
            "alert": OPERATOR_API_ERRORS_ALERT,
            "expr": "sum by (job, operation, code) (rate(readiness_api_errors_total[5m])) > "
                    + repr(errors_per_second),
            "for": errors_for,
            "labels": dict(labels),
            "annotations": {
                "summary": "The readiness operator's Kubernetes API calls keep failing.",
                "description": "{{ $labels.operation }} calls fail with {{ $labels.code }} at "
                               "{{ $value | humanize }}/s: annotations, reports and rules may be stale.",
                "runbook_url": "https://github.com/readiness-operator/readiness-operator/blob/main/docs/"
                               "runbooks/ReadinessOperatorAPIErrors.md",
            },
        },
    ]}]}


# -- Kubernetes objects ----------------------------------------------------------------------------------

def owner_reference(policy: ReadinessPolicy, owner: Mapping[str, str]) -> dict[str, Any]:
    """An ownerReference to the cluster-scoped policy, so garbage collection deletes what it owns.

    `owner` needs `uid`; `name`, `apiVersion` and `kind` default to the policy's (a reference built by
    `kopf.build_owner_reference` fits as it is). `blockOwnerDeletion` is false: true would need the
    `update` permission on the policies' finalizers and would hold up deleting a policy for nothing.
    """
    return {
        "apiVersion": owner.get("apiVersion", f"{API_GROUP}/{API_VERSION}"),
        "kind": owner.get("kind", KIND),
        "name": owner.get("name", policy.name),
        "uid": owner["uid"],
        "controller": True,
        "blockOwnerDeletion": False,
    }


def _metadata(policy: ReadinessPolicy, namespace: str, labels: Mapping[str, str],
              owner: Mapping[str, str]) -> dict[str, Any]:
    return {
        "name": rules_name(policy),
        "namespace": namespace,
        "labels": {**labels, **MANAGED_BY, POLICY_LABEL: policy.name},
        "ownerReferences": [owner_reference(policy, owner)],
    }


def prometheus_rule(policy: ReadinessPolicy, namespace: str, labels: Mapping[str, str],
                    owner: Mapping[str, str], *, extra_labels: Mapping[str, str] | None = None,
                    ) -> dict[str, Any]:
    """A monitoring.coreos.com/v1 PrometheusRule holding the policy's rules. `labels` go on the object
    (kube-prometheus-stack's ruleSelector wants e.g. `release: kube-prometheus-stack`)."""
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": _metadata(policy, namespace, labels, owner),
        "spec": rules_document(policy, extra_labels=extra_labels),
    }


class _PlainDumper(yaml.SafeDumper):
    """Never writes YAML anchors and aliases: people read these files, and some tools mishandle them."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def rules_yaml(document: Mapping[str, Any]) -> str:
    """A rules document as the YAML Prometheus reads (stable key order, so unchanged rules compare equal)."""
    return yaml.dump(dict(document), Dumper=_PlainDumper, sort_keys=False, width=1000)


def rules_configmap(policy: ReadinessPolicy, namespace: str, labels: Mapping[str, str],
                    owner: Mapping[str, str], *, extra_labels: Mapping[str, str] | None = None,
                    ) -> dict[str, Any]:
    """A ConfigMap with the same rules under `<name>.rules.yaml`, for clusters without the CRD."""
    name = rules_name(policy)
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _metadata(policy, namespace, labels, owner),
        "data": {f"{name}.rules.yaml": rules_yaml(rules_document(policy, extra_labels=extra_labels))},
    }


def operator_prometheus_rule(namespace: str, labels: Mapping[str, str],
                             owner: Mapping[str, str] | None = None, *,
                             extra_labels: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The operator's own health rules as a PrometheusRule; `owner` (e.g. the operator's Deployment, as a
    full ownerReference) is optional."""
    metadata: dict[str, Any] = {"name": OPERATOR_RULES_NAME, "namespace": namespace,
                                "labels": {**labels, **MANAGED_BY}}
    if owner is not None:
        metadata["ownerReferences"] = [dict(owner)]
    return {"apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule", "metadata": metadata,
            "spec": operator_rules_document(extra_labels=extra_labels)}
