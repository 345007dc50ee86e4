"""Policy-level outputs: status, PrometheusRule (or ConfigMap) and PolicyReports.

Status and reports are flushed by one background loop at most once per `status_interval`, so a storm of
workload changes costs one write per policy, and nothing at all when the content is unchanged.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from typing import Any

from readiness import alerts, policyreport
from readiness.controller import status as status_mod
from readiness.controller.auditor import Auditor
from readiness.controller.settings import OperatorSettings
from readiness.controller.state import PolicyEntry
from readiness.controller.writer import Writer, resource_path
from readiness.engine import Evaluation
from readiness.policy import API_GROUP, API_VERSION, PLURAL, ReadinessPolicy
from readiness.workload import WorkloadRef

log = logging.getLogger(__name__)
PROMETHEUS_RULE_CRD = "prometheusrules.monitoring.coreos.com"
POLICY_REPORT_CRD = "policyreports.wgpolicyk8s.io"
METADATA_LIST = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"
CRD_CACHE_SECONDS = 10.0
"""How long a CRD's presence is trusted: installing one later is noticed within this time."""


def policy_path(name: str) -> str:
    return resource_path(f"{API_GROUP}/{API_VERSION}", PLURAL, None, name)


def _rules_identity(obj: Mapping[str, Any]) -> Any:
    meta = obj.get("metadata") or {}
    return (meta.get("labels"), [(o.get("uid")) for o in meta.get("ownerReferences") or ()],
            obj.get("spec"), obj.get("data"))


class Publisher:
    def __init__(self, settings: OperatorSettings, auditor: Auditor, writer: Writer) -> None:
        self.settings = settings
        self.auditor = auditor
        self.writer = writer
        self.statuses: dict[str, Mapping[str, Any]] = {}
        """Last status seen on (or written to) each policy: conditions keep their transition times."""
        self.audit_times: dict[str, str] = {}
        self.force_time: set[str] = set()
        self.rules: dict[str, dict[str, str]] = {}
        self.report_fingerprints: dict[tuple[str, str], str] = {}
        """(namespace, name) of each PolicyReport we wrote or found, with its fingerprint."""
        self.report_keys: dict[WorkloadRef, tuple[str, str]] = {}
        self.reports_seeded = False
        self._crds: dict[str, tuple[float, bool]] = {}

    async def crd_installed(self, name: str) -> bool:
        cached = self._crds.get(name)
        if cached is not None and time.monotonic() - cached[0] < CRD_CACHE_SECONDS:
            return cached[1]
        present = await self.writer.crd_installed(name)
        self._crds[name] = (time.monotonic(), present)
        return present

    # -- rules -----------------------------------------------------------------------------------------

    async def sync_rules(self, entry: PolicyEntry) -> dict[str, str]:
        """Write the policy's alert rules where Prometheus can find them; returns status.rules. A failure
        (no operator namespace, no RBAC) is logged and leaves status.rules empty: auditing goes on."""
        try:
            return await self._sync_rules(entry)
        except Exception as error:
            log.warning("alert rules of policy %s not written: %s", entry.name, error)
            target = {"kind": "", "namespace": "", "name": ""}
            self.rules[entry.name] = target
            return target

    async def _sync_rules(self, entry: PolicyEntry) -> dict[str, str]:
        assert entry.engine is not None
        policy = entry.engine.policy
        namespace = self.settings.operator_namespace
        name = alerts.rules_name(policy)
        if not (self.settings.prometheus_rules and policy.spec.alerting.enabled):
            await self.delete_rules(entry.name)
            target = {"kind": "Disabled", "namespace": "", "name": ""}
        elif await self.crd_installed(PROMETHEUS_RULE_CRD):
            body = alerts.prometheus_rule(policy, namespace, self.settings.rule_labels, entry.owner)
            await self.writer.apply("apply_rules", "monitoring.coreos.com/v1", "prometheusrules", namespace,
                                    body, _rules_identity)
            await self.delete_if_exists(resource_path("v1", "configmaps", namespace, name))
            target = {"kind": "PrometheusRule", "namespace": namespace, "name": name}
        else:
            body = alerts.rules_configmap(policy, namespace, self.settings.rule_labels, entry.owner)
            await self.writer.apply("apply_rules", "v1", "configmaps", namespace, body, _rules_identity)
            target = {"kind": "ConfigMap", "namespace": namespace, "name": name}
        self.rules[entry.name] = target
        return target

    async def delete_rules(self, policy: str) -> None:
        """Owner references let the garbage collector do this too; deleting at once is tidier."""
        namespace = self.settings.operator_namespace
        name = f"readiness-{policy}"
        target = self.rules.pop(policy, None)
        kinds = [target["kind"]] if target and target.get("name") else ["PrometheusRule", "ConfigMap"]
        for kind in kinds:
            if kind == "PrometheusRule" and await self.crd_installed(PROMETHEUS_RULE_CRD):
                await self.delete_if_exists(resource_path(
                    "monitoring.coreos.com/v1", "prometheusrules", namespace, name))
            elif kind == "ConfigMap":
                await self.delete_if_exists(resource_path("v1", "configmaps", namespace, name))

    async def delete_if_exists(self, path: str) -> None:
        """A read first: a DELETE of nothing still counts as a write request on the API server."""
        if await self.writer.read("read_rules", path) is not None:
            await self.writer.delete("delete_rules", path)

    # -- status ----------------------------------------------------------------------------------------

    def seed(self, name: str, status: Mapping[str, Any] | None) -> None:
        """Start from the status already on the object, so a restart rewrites nothing that is unchanged."""
        if status and name not in self.statuses:
            self.statuses[name] = status
            if status.get("lastAuditTime"):
                self.audit_times.setdefault(name, str(status["lastAuditTime"]))

    def mark_audited(self, policy: str, force: bool = True) -> None:
        """A full audit ran: with `force` (periodic audit, spec change) the next flush writes
        lastAuditTime even if nothing else changed."""
        if force or policy not in self.audit_times:
            self.audit_times[policy] = status_mod.now_rfc3339()
            self.force_time.add(policy)
        self.auditor.dirty.add(policy)

    async def write_invalid(self, name: str, error: str, generation: int) -> None:
        previous = self.statuses.get(name)
        status = status_mod.invalid_status(error, generation, previous)
        if status_mod.comparable(status) != status_mod.comparable(previous):
            await self.writer.patch_status(policy_path(name), status_mod.merge_patch(previous, status))
        self.statuses[name] = status

    def forget(self, name: str) -> None:
        for mapping in (self.statuses, self.audit_times, self.rules):
            mapping.pop(name, None)
        self.force_time.discard(name)

    async def flush(self) -> None:
        """Write the status (and reports) of every dirty policy whose content changed."""
        dirty, self.auditor.dirty = self.auditor.dirty, set()
        for name in sorted(dirty):
            entry = self.auditor.state.policy(name)
            if entry is None or entry.engine is None:
                continue
            try:
                await self._flush_one(entry)
            except Exception as error:
                log.warning("status of policy %s not written: %s", name, error)
                self.auditor.dirty.add(name)
        await self.flush_reports()

    async def _flush_one(self, entry: PolicyEntry) -> None:
        name = entry.name
        previous = self.statuses.get(name)
        results = self.auditor.summary_inputs(name)
        summary = status_mod.summarize(results)
        counts = summary["summary"]
        self.auditor.metrics.set_policy_workloads(name, counts["compliant"], counts["violating"])
        self.auditor.metrics.set_exemptions(name, summary["exemptions"]["active"],
                                            summary["exemptions"]["expired"])
        rules = self.rules.get(name, {"kind": "", "namespace": "", "name": ""})
        status = status_mod.valid_status(summary, rules, entry.generation, self.audit_times.get(name),
                                         previous)
        if status_mod.comparable(status) != status_mod.comparable(previous) or name in self.force_time:
            await self.writer.patch_status(policy_path(name), status_mod.merge_patch(previous, status))
            self.statuses[name] = status
        self.force_time.discard(name)

    # -- PolicyReports ---------------------------------------------------------------------------------

    async def flush_reports(self) -> None:
        """Write the PolicyReport of every workload whose results changed: one per workload, written only
        when its fingerprint changed (in steady state: no writes)."""
        refs, self.auditor.dirty_workloads = self.auditor.dirty_workloads, set()
        if not (refs and self.settings.policy_reports and await self.crd_installed(POLICY_REPORT_CRD)):
            return
        try:
            await self._seed_reports()
        except Exception as error:
            log.warning("PolicyReports not listed: %s", error)
            self.auditor.dirty_workloads.update(refs)
            return
        for ref in sorted(refs, key=str):
            try:
                await self._sync_report(ref)
            except Exception as error:
                log.warning("PolicyReport of %s not written: %s", ref, error)
                self.auditor.dirty_workloads.add(ref)

    def _judged(self, ref: WorkloadRef) -> list[tuple[ReadinessPolicy, Evaluation]]:
        judged = []
        for name in sorted(self.auditor.state.policies):
            entry = self.auditor.state.policy(name)
            evaluation = self.auditor.summary_inputs(name).get(ref)
            if entry is None or entry.engine is None or evaluation is None:
                continue
            if entry.engine.policy.spec.reporting.policy_reports:
                judged.append((entry.engine.policy, evaluation))
        return judged

    async def _sync_report(self, ref: WorkloadRef) -> None:
        item = self.auditor.state.workload(ref)
        old_key = self.report_keys.get(ref)
        if item is None:  # the workload is gone: the garbage collector deletes its report (owner)
            if old_key is not None:
                self.report_fingerprints.pop(self.report_keys.pop(ref), None)
            return
        report = policyreport.workload_report(ref, item.workload, self._judged(ref))
        if report is None:  # no policy reports on it any more
            if old_key is not None and self.report_fingerprints.get(old_key) is not None:
                await self.writer.delete("delete_report", _report_path(*old_key))
                self.report_fingerprints.pop(old_key, None)
            self.report_keys.pop(ref, None)
            return
        meta = report["metadata"]
        key = (meta["namespace"], meta["name"])
        fingerprint = meta["annotations"][policyreport.FINGERPRINT_ANNOTATION]
        self.report_keys[ref] = key
        if self.report_fingerprints.get(key) == fingerprint:
            return
        await self.writer.apply("apply_report", policyreport.API_VERSION, "policyreports", key[0], report,
                                _report_identity)
        self.report_fingerprints[key] = fingerprint

    async def _seed_reports(self) -> None:
        """Once: the fingerprints of the reports already there (one paged LIST of their metadata, so a
        restart rewrites nothing unchanged), and delete the per-namespace reports of older versions."""
        if self.reports_seeded:
            return
        selector = ",".join(f"{k}={v}" for k, v in alerts.MANAGED_BY.items())
        path = f"{resource_path(policyreport.API_VERSION, 'policyreports', None)}?labelSelector={selector}"
        token = ""
        while True:
            page = await self.writer.read("list_reports", f"{path}&limit=500{token}", METADATA_LIST)
            for item in (page or {}).get("items") or ():
                await self._seed_report(item.get("metadata") or {})
            more = ((page or {}).get("metadata") or {}).get("continue")
            if not more:
                break
            token = f"&continue={more}"
        self.reports_seeded = True

    async def _seed_report(self, meta: Mapping[str, Any]) -> None:
        key = (str(meta.get("namespace")), str(meta.get("name")))
        owners = meta.get("ownerReferences") or ()
        if (meta.get("labels") or {}).get(alerts.POLICY_LABEL):  # one per namespace and policy: obsolete
            await self.writer.delete("delete_report", _report_path(*key))
            return
        annotations = meta.get("annotations") or {}
        self.report_fingerprints[key] = str(annotations.get(policyreport.FINGERPRINT_ANNOTATION, ""))
        for owner in owners:
            self.report_keys[WorkloadRef(str(owner.get("kind")), key[0], str(owner.get("name")))] = key

    async def run(self, interval: float) -> None:
        """The flush loop, until cancelled."""
        while True:
            await asyncio.sleep(interval)
            await self.flush()


def _report_path(namespace: str, name: str) -> str:
    return resource_path(policyreport.API_VERSION, "policyreports", namespace, name)


def _report_identity(obj: Mapping[str, Any]) -> Any:
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    return annotations.get(policyreport.FINGERPRINT_ANNOTATION)
