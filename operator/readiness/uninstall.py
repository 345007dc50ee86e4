"""`readiness cleanup`: remove what the operator wrote on the cluster's objects, after an uninstall.

The operator's verdicts live on the workloads themselves (the `readiness.dev/*` annotations of
readiness.controller.output and the `readiness.dev/compliant` label): neither `helm uninstall` nor
deleting the CRD removes them, and nothing else is left that can (a Helm hook would need the operator's
write RBAC on every workload kind, and runs before the policies are gone). This command strips exactly
those keys, never the user's own (`readiness.dev/exempt*`), deletes the operator's PolicyReports (one per
workload, owned by the workload: they would stay as long as it does), and frees ReadinessPolicies stuck
on the finalizer older releases put on them (`kopf.zalando.org/KopfFinalizerMarker`). A policy's
PrometheusRule (or ConfigMap fallback) carries an ownerReference to the policy: the garbage collector
deletes it with the policy.

A dry run unless `--apply`: it lists what it would change. Reads and patches with the current kubeconfig
context (metadata only: lists ask for PartialObjectMetadata, patches are JSON merge patches of
metadata). Every failure is one `CleanupError` line.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

import aiohttp

from readiness.cluster import ClusterError, ClusterTarget, api_client
from readiness.controller.output import OUR_ANNOTATIONS, OUR_LABELS
from readiness.workload import BUILTIN_RESOURCES

KOPF_FINALIZER = "kopf.zalando.org/KopfFinalizerMarker"
"""Kopf's default finalizer, which the operator's policy timer used to require (nolar/kopf#1074)."""
POLICIES = ("readiness.dev", "v1alpha1", "readinesspolicies")
POLICY_REPORTS = ("wgpolicyk8s.io", "v1alpha2", "policyreports")
MANAGED_BY_SELECTOR = "app.kubernetes.io/managed-by=readiness-operator"
"""The label on every PolicyReport the operator writes (readiness.alerts.MANAGED_BY)."""
METADATA_LIST = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json"
MERGE_PATCH = "application/merge-patch+json"
PAGE = 500


class CleanupError(Exception):
    """The cluster could not be read or written: one line naming what and why."""


@dataclass(frozen=True, slots=True)
class CleanupTarget:
    """What `readiness cleanup` reads and, with `apply`, patches."""

    kubeconfig: str | None = None
    """--kubeconfig: the kubeconfig file (default: $KUBECONFIG, else ~/.kube/config; with neither, the
    in-cluster service account when run in a pod), found as `audit --cluster` finds it."""
    context: str | None = None
    """--context: the kubeconfig context (default: its current-context)."""
    namespace: str | None = None
    """-n/--namespace: clean one namespace (default: all). Policies are cluster-scoped: always checked."""
    resources: tuple[tuple[str, str, str], ...] = ()
    """--resource GROUP/VERSION/PLURAL: custom workload kinds the operator watched (--custom-kind)."""
    apply: bool = False
    """--apply: patch the objects. Default: a dry run that only lists them."""


@dataclass
class Change:
    """One object and the keys of ours on it."""

    kind: str
    namespace: str
    name: str
    path: str
    annotations: tuple[str, ...] = ()
    labels: tuple[str, ...] = ()
    finalizers: list[str] | None = None
    """The finalizers to keep, when ours is to go (policies); None: leave them."""
    delete: bool = False
    """Delete the object (our PolicyReports: owned by their workload, they would outlive the operator)."""

    def describe(self) -> str:
        where = f"{self.namespace}/{self.name}" if self.namespace else self.name
        if self.delete:
            return f"{self.kind} {where} (the object)"
        keys = [*self.annotations, *(f"{label} (label)" for label in self.labels)]
        if self.finalizers is not None:
            keys.append(f"{KOPF_FINALIZER} (finalizer)")
        return f"{self.kind} {where}: {', '.join(keys)}"

    def patch(self) -> dict[str, Any]:
        meta: dict[str, Any] = {}
        if self.annotations:
            meta["annotations"] = dict.fromkeys(self.annotations)
        if self.labels:
            meta["labels"] = dict.fromkeys(self.labels)
        if self.finalizers is not None:
            meta["finalizers"] = self.finalizers or None
        return {"metadata": meta}


@dataclass
class Outcome:
    changes: list[Change] = field(default_factory=list)
    policies_left: int = 0
    skipped: list[str] = field(default_factory=list)
    """Resources the cluster does not serve (e.g. Rollouts without Argo)."""


def parse_resource(text: str) -> tuple[str, str, str]:
    """`GROUP/VERSION/PLURAL` (`v1/PLURAL` for the core group)."""
    parts = text.split("/")
    if len(parts) == 2:
        parts = ["", *parts]
    if len(parts) != 3 or not all(parts[1:]):
        raise CleanupError(f"--resource {text!r}: expected GROUP/VERSION/PLURAL, e.g. example.com/v1/widgets")
    return parts[0], parts[1], parts[2]


def collection_path(group: str, version: str, plural: str, namespace: str | None = None) -> str:
    base = f"/api/{version}" if not group else f"/apis/{group}/{version}"
    return f"{base}/namespaces/{namespace}/{plural}" if namespace else f"{base}/{plural}"


def workload_change(kind: str, path: str, meta: Mapping[str, Any]) -> Change | None:
    """Our keys on one workload's metadata; None when it carries none."""
    annotations = tuple(k for k in OUR_ANNOTATIONS if k in (meta.get("annotations") or {}))
    labels = tuple(k for k in OUR_LABELS if k in (meta.get("labels") or {}))
    if not annotations and not labels:
        return None
    return Change(kind, str(meta.get("namespace") or ""), str(meta.get("name")), path, annotations, labels)


def policy_change(path: str, meta: Mapping[str, Any]) -> Change | None:
    finalizers = list(meta.get("finalizers") or ())
    if KOPF_FINALIZER not in finalizers:
        return None
    kept = [f for f in finalizers if f != KOPF_FINALIZER]
    return Change("ReadinessPolicy", "", str(meta.get("name")), path, finalizers=kept)


def _workload_resources(target: CleanupTarget) -> Iterator[tuple[str, tuple[str, str, str]]]:
    yield from BUILTIN_RESOURCES.items()
    for group, version, plural in target.resources:
        yield f"{plural}.{group}" if group else plural, (group, version, plural)


class _Api:
    """The few calls the cleanup makes, through kubernetes-asyncio with the kubeconfig's credentials."""

    def __init__(self, client: Any) -> None:
        self.client = client

    async def list_metadata(self, path: str, selector: str = "") -> list[Mapping[str, Any]] | None:
        """Every object's metadata under `path`, page by page; None when the resource is not served."""
        items: list[Mapping[str, Any]] = []
        token = ""
        while True:
            query = [("limit", PAGE), *([("continue", token)] if token else []),
                     *([("labelSelector", selector)] if selector else [])]
            body = await self._call("GET", path, query=query, accept=METADATA_LIST)
            if body is None:
                return None
            items.extend(item.get("metadata") or {} for item in body.get("items") or ())
            token = (body.get("metadata") or {}).get("continue") or ""
            if not token:
                return items

    async def patch(self, path: str, body: Mapping[str, Any]) -> None:
        await self._call("PATCH", path, body=body, content_type=MERGE_PATCH)

    async def delete(self, path: str) -> None:
        await self._call("DELETE", path)

    async def _call(self, method: str, path: str, query: Sequence[tuple[str, Any]] = (), body: Any = None,
                    accept: str = "application/json", content_type: str | None = None) -> Any:
        from kubernetes_asyncio.client.exceptions import ApiException
        headers = {"Accept": accept, **({"Content-Type": content_type} if content_type else {})}
        try:
            return await self.client.call_api(
                path, method, query_params=list(query), header_params=headers, body=body,
                response_types_map={200: "object"}, auth_settings=["BearerToken"],
                _return_http_data_only=True, _request_timeout=30)
        except ApiException as error:
            if error.status == 404:
                return None  # the kind is not served, or the object was deleted meanwhile
            raise CleanupError(f"{method} {path}: {error.status} {error.reason}: "
                               f"{_api_message(error)}") from None
        except (OSError, TimeoutError, aiohttp.ClientError) as error:
            host = self.client.configuration.host
            raise CleanupError(f"cannot reach the API server at {host}: "
                               f"{_first_line(error) or type(error).__name__}") from None


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [""])[0]


def _api_message(error: Any) -> str:
    import json
    try:
        return str(json.loads(error.body).get("message") or "").splitlines()[0]
    except (ValueError, TypeError, AttributeError, IndexError):
        return _first_line(error)


async def _find(api: _Api, target: CleanupTarget) -> Outcome:
    outcome = Outcome()
    for kind, (group, version, plural) in _workload_resources(target):
        path = collection_path(group, version, plural, target.namespace)
        found = await api.list_metadata(path)
        if found is None:
            outcome.skipped.append(kind)
            continue
        for meta in found:
            item = f"{collection_path(group, version, plural, meta.get('namespace'))}/{meta.get('name')}"
            change = workload_change(kind, item, meta)
            if change is not None:
                outcome.changes.append(change)
    reports = await api.list_metadata(collection_path(*POLICY_REPORTS, target.namespace), MANAGED_BY_SELECTOR)
    for meta in reports or ():
        namespace = str(meta.get("namespace") or "")
        path = f"{collection_path(*POLICY_REPORTS, namespace)}/{meta.get('name')}"
        outcome.changes.append(Change("PolicyReport", namespace, str(meta.get("name")), path, delete=True))
    policies = await api.list_metadata(collection_path(*POLICIES)) or []
    outcome.policies_left = sum(not meta.get("deletionTimestamp") for meta in policies)
    for meta in policies:
        change = policy_change(f"{collection_path(*POLICIES)}/{meta.get('name')}", meta)
        if change is not None:
            outcome.changes.append(change)
    return outcome


async def _cleanup(target: CleanupTarget) -> Outcome:
    cluster = ClusterTarget(kubeconfig=target.kubeconfig, context=target.context)
    try:
        async with api_client(cluster, "readiness-cleanup") as (client, _context):
            api = _Api(client)
            outcome = await _find(api, target)
            if target.apply:
                for change in outcome.changes:
                    await (api.delete(change.path) if change.delete
                           else api.patch(change.path, change.patch()))
            return outcome
    except ClusterError as error:  # no kubeconfig, a broken one, an unknown context
        raise CleanupError(str(error)) from None


def cleanup(target: CleanupTarget) -> Outcome:
    """Find (and with `target.apply`, remove) our keys. Raises CleanupError."""
    return asyncio.run(_cleanup(target))


def report(outcome: Outcome, applied: bool, out: TextIO) -> None:
    verb = "removed" if applied else "would remove"
    for change in outcome.changes:
        print(f"{verb}: {change.describe()}", file=out)
    if outcome.skipped:
        print(f"not served by this cluster (skipped): {', '.join(outcome.skipped)}", file=out)
    if outcome.policies_left:
        print(f"note: {outcome.policies_left} ReadinessPolicies still exist: a running operator writes its "
              "verdicts again (delete them first: kubectl delete readinesspolicies --all)", file=out)
    if not outcome.changes:
        print("nothing to clean up", file=out)
    elif applied:
        print(f"cleaned {len(outcome.changes)} object(s)", file=out)
    else:
        print(f"{len(outcome.changes)} object(s) to clean up (dry run: nothing changed; run again with "
              "--apply)", file=out)
