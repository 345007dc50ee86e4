"""`readiness audit --cluster`: the live cluster as an audit's input, read only (GET and LIST, nothing else).

A *source*, not a second audit: it lists the workloads, the objects around them (Namespaces with their
labels, PodDisruptionBudgets, HorizontalPodAutoscalers, ServiceAccounts) and, unless `--policy` is
given, the ReadinessPolicies, and hands them to the same `readiness.report.model.audit` that judges
files. Each object becomes a `Document` whose source is `cluster:NAMESPACE/KIND/NAME` (no line), so an
audit of the cluster and an audit of the same objects exported to YAML cannot disagree.

Policies are read as the operator reads them: compiled per policy (`load_policy`, `Engine`), one that is
being deleted judges nothing, one that is invalid is reported (the operator marks it Valid=False and
judges nothing with it either). Namespace labels come from the cluster, so a namespaceSelector is
decided on the real labels, never assumed.

Lists are paginated (`limit`, `continue`; a continue token that expired, 410, restarts that list), and
the kubeconfig is read as kubectl reads it (KUBECONFIG's list of files, `--kubeconfig`, `--context`;
client certificates, tokens, CA data and exec plugins through kubernetes-asyncio), falling back to the
in-cluster service account when there is no kubeconfig and the process runs in a pod. It is never
written back (refreshed tokens are not persisted). Every failure is one `ClusterError` line.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import tempfile
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from readiness.loader import CLUSTER_SOURCE, Document, InputError
from readiness.workload import BUILTIN_RESOURCES

POLICY_RESOURCE = ("readiness.dev", "v1alpha1", "readinesspolicies")
CONTEXT_RESOURCES: tuple[tuple[str, str, str], ...] = (
    ("policy", "v1", "poddisruptionbudgets"),
    ("autoscaling", "v2", "horizontalpodautoscalers"),
    ("", "v1", "serviceaccounts"),
)
"""What the checks read besides the workload (readiness.context), as the operator's indexes watch it."""
OPTIONAL_KINDS = frozenset({"Rollout"})
"""Built-in kinds served by a CRD that a cluster may not have: not served means nothing to audit."""
LENDING_RESOURCES: Mapping[str, tuple[str, str, str]] = {"PodTemplate": ("", "v1", "podtemplates")}
"""What a Rollout's `spec.workloadRef` may name besides workload kinds."""
RBAC_HINT = "the audit needs get and list on it (see 'Auditing a live cluster' in docs/cli.md)"


class ClusterError(Exception):
    """The cluster could not be read: one line naming what and why."""


@dataclass(frozen=True, slots=True)
class ClusterTarget:
    """Which cluster and what of it `readiness audit --cluster` reads."""

    kubeconfig: str | None = None
    """--kubeconfig: a kubeconfig file (default: $KUBECONFIG, a list of files joined by `:`, else
    ~/.kube/config; with neither, the in-cluster service account when run in a pod)."""
    context: str | None = None
    """--context: the kubeconfig context (default: its current-context)."""
    namespace: str | None = None
    """-n/--namespace: audit one namespace (default: all namespaces). Policies are cluster-scoped and
    always read whole."""
    page_size: int = 500
    """Objects per list request (`limit`): the API server's memory per request and our round trips
    trade off; 500 is kubectl's chunk size."""
    request_timeout: float = 30.0
    """Seconds one request may take before the audit fails, naming the server."""
    concurrency: int = 4
    """Lists in flight at once: fast on a large cluster, and gentle on API priority and fairness."""


@dataclass(slots=True)
class ClusterInput:
    """What was read: the documents for `audit()`, the engines that judge them, and what to say."""

    engines: list[Any]
    documents: list[Document] = field(default_factory=list)
    errors: list[InputError] = field(default_factory=list)
    """The cluster's invalid ReadinessPolicies."""
    notices: list[str] = field(default_factory=list)


def source_of(obj: Mapping[str, Any]) -> str:
    """`cluster:NAMESPACE/KIND/NAME` (`cluster:KIND/NAME` for a cluster-scoped object): where a finding's
    object is, in place of a file and line."""
    meta = obj.get("metadata") or {}
    namespace, name = str(meta.get("namespace") or ""), str(meta.get("name") or "")
    kind = str(obj.get("kind") or "")
    return f"{CLUSTER_SOURCE}{namespace}/{kind}/{name}" if namespace else f"{CLUSTER_SOURCE}{kind}/{name}"


def documents_of(objects: Iterable[Mapping[str, Any]]) -> list[Document]:
    """The listed objects as the loader's documents: no text, and line 0 (none)."""
    return [Document(source_of(obj), 0, obj, "", 0) for obj in objects]


def compile_policies(objects: Iterable[Mapping[str, Any]]) -> tuple[list[Any], list[InputError]]:
    """(engines, errors) of the cluster's ReadinessPolicies, as the operator's policy index compiles them
    (readiness.controller.handlers.index_policy): by name, each one that is being deleted left out, each
    invalid one an error naming it."""
    from readiness.engine import Engine
    from readiness.policy import PolicyError, load_policy

    engines, errors = [], []
    for obj in sorted(objects, key=lambda o: str((o.get("metadata") or {}).get("name"))):
        meta = obj.get("metadata") or {}
        if meta.get("deletionTimestamp"):
            continue
        name = str(meta.get("name"))
        data = {key: obj[key] for key in ("apiVersion", "kind", "metadata", "spec") if key in obj}
        try:
            engines.append(Engine(load_policy(data, f"ReadinessPolicy {name}")))
        except (PolicyError, ValueError) as error:
            message = str(error).splitlines()[0] if str(error) else type(error).__name__
            errors.append(InputError(f"{CLUSTER_SOURCE}ReadinessPolicy/{name}", None,
                                     f"invalid policy, the operator does not enforce it either: {message}"))
    return engines, errors


# -- the audit --------------------------------------------------------------------------------------------

def audit_cluster(target: ClusterTarget, engines: list[Any] | None, kinds: Any,
                  custom_groups: Mapping[str, str], now: Any,
                  namespace_labels: Mapping[str, Mapping[str, str]] | None = None) -> Any:
    """Read the cluster and judge it with the offline audit's own `audit()`. `engines`: the --policy
    files' (None: the cluster's ReadinessPolicies); `kinds`: the KindRegistry; `custom_groups`: each
    custom kind's API group (its version and plural are discovered)."""
    from readiness.report.model import audit

    read = asyncio.run(_read(target, engines, custom_groups))
    result = audit(read.documents, read.engines, kinds, now, namespace_labels=namespace_labels)
    result.errors[:0] = read.errors
    result.source_notices = read.notices
    return result


def judged_kinds(engines: Iterable[Any]) -> list[str]:
    """The workload kinds some policy judges, in a stable order: only those are listed."""
    return sorted({kind for engine in engines for kind in engine.kinds})


# -- reading the cluster ------------------------------------------------------------------------------------

Resource = tuple[str, str, str]
"""(API group, version, plural)."""


async def _read(target: ClusterTarget, engines: list[Any] | None,
                custom_groups: Mapping[str, str]) -> ClusterInput:
    async with api_client(target, "readiness-cli") as (api, context):
        reader = _Reader(api, str(api.configuration.host), context, target)
        read = ClusterInput(engines) if engines is not None else await reader.policies(custom_groups)
        await reader.objects(read, custom_groups)
        return read


@contextlib.asynccontextmanager
async def api_client(target: ClusterTarget, agent: str) -> AsyncIterator[tuple[Any, str]]:
    """A kubernetes-asyncio ApiClient for the target's kubeconfig (read as kubectl reads it) or the pod's
    service account, and the context's name; raises ClusterError. Shared by every command that talks to a
    cluster (`audit --cluster`, `cleanup`), so they find and trust the same credentials."""
    with tempfile.TemporaryDirectory(prefix="readiness-kubeconfig-") as secrets:
        # kubernetes-asyncio writes a kubeconfig's inline certificates and keys to files: into this
        # directory, gone when the command is, even when the process ends without running atexit handlers.
        try:
            configuration, context = await _configuration(target, secrets)
            from kubernetes_asyncio import client as k8s

            from readiness import __version__

            async with k8s.ApiClient(configuration) as api:
                api.user_agent = f"{agent}/{__version__}"
                yield api, context
        finally:
            _forget_kubeconfig_files()


def _forget_kubeconfig_files() -> None:
    """kubernetes-asyncio caches the temporary files it wrote by content, for the process: forget them,
    so that a later audit in the same process writes its own instead of naming deleted ones."""
    from kubernetes_asyncio.config import kube_config

    cleanup = getattr(kube_config, "_cleanup_temp_files", None)
    if cleanup is not None:
        cleanup()


async def _configuration(target: ClusterTarget, secrets: str) -> tuple[Any, str]:
    """The client configuration and the context's name ("in-cluster" for the service account)."""
    from kubernetes_asyncio import client as k8s
    from kubernetes_asyncio import config as k8s_config

    configuration = k8s.Configuration()
    files = target.kubeconfig or os.environ.get("KUBECONFIG") or str(Path.home() / ".kube" / "config")
    existing = [path for path in files.split(os.pathsep) if path and Path(path).expanduser().is_file()]
    if not existing:
        if target.kubeconfig is None and os.environ.get("KUBERNETES_SERVICE_HOST") and not target.context:
            try:
                k8s_config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
            except k8s_config.ConfigException as error:
                raise ClusterError(f"in-cluster configuration: {error}") from None
            return configuration, "in-cluster"
        where = f"--kubeconfig {target.kubeconfig}" if target.kubeconfig else (
            f"KUBECONFIG={files}" if os.environ.get("KUBECONFIG") else files)
        raise ClusterError(f"no kubeconfig: {where} does not exist (pass --kubeconfig FILE, set KUBECONFIG, "
                           f"or run in a pod with a service account)")
    try:
        loader = await k8s_config.load_kube_config(
            config_file=os.pathsep.join(existing), context=target.context, client_configuration=configuration,
            persist_config=False, temp_file_path=secrets)
    except Exception as error:  # a broken kubeconfig or a failing exec plugin: say which, in one line
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        if target.context and "contexts list" in message:  # kubernetes-asyncio's words for it
            message = f"no context {target.context!r}"
        raise ClusterError(f"kubeconfig {os.pathsep.join(existing)}: {message}") from None
    context = target.context or str((loader.current_context or {}).get("name") or "")
    return configuration, context


class _Reader:
    """Lists, paginated, bounded in flight, every failure made one ClusterError line."""

    def __init__(self, api: Any, server: str, context: str, target: ClusterTarget) -> None:
        self.api = api
        self.server = server
        self.context = context
        self.target = target
        self.slots = asyncio.Semaphore(target.concurrency)

    async def policies(self, custom_groups: Mapping[str, str]) -> ClusterInput:
        """The cluster's ReadinessPolicies compiled; the built-in policy, said so, when it has none."""
        from readiness.engine import Engine

        objects = await self.list_optional(POLICY_RESOURCE, namespaced=False)
        engines, errors = compile_policies(objects or ())
        if engines or errors:
            return ClusterInput(engines, errors=errors)
        why = ("no ReadinessPolicy" if objects is not None
               else "no ReadinessPolicy CRD (the operator is not installed)")
        notice = (f"the cluster at {self.server} has {why}: audited with the built-in policy "
                  f"(pass --policy FILE for another)")
        return ClusterInput([Engine.builtin(list(custom_groups))], notices=[notice])

    async def objects(self, read: ClusterInput, custom_groups: Mapping[str, str]) -> None:
        """The workloads of the kinds the policies judge, and their context, in the target namespace (or
        all), as `read.documents`. A kind no --custom-kind declares is left out, and `read` says so."""
        kinds = judged_kinds(read.engines)
        unknown = [kind for kind in kinds if kind not in BUILTIN_RESOURCES and kind not in custom_groups]
        read.notices += [f"kind {kind}: a policy judges it, but its pod template is unknown: pass "
                         f"--custom-kind GROUP/{kind}=PATH to audit it" for kind in unknown]
        workloads = [(kind, await self.workload_resource(kind, custom_groups))
                     for kind in kinds if kind not in unknown]
        lists = [self.list_optional(resource) if kind in OPTIONAL_KINDS else self.list_all(resource)
                 for kind, resource in workloads]
        lists += [self.list_all(resource) for resource in CONTEXT_RESOURCES]
        namespace = self.target.namespace
        namespaces = (self.get_namespace(namespace) if namespace else
                      self.list_all(("", "v1", "namespaces"), namespaced=False))
        found = await asyncio.gather(namespaces, *lists)
        objects = [obj for listed in found for obj in listed or ()]
        objects += await self.lent_templates(objects)
        read.documents = documents_of(objects)

    async def lent_templates(self, objects: list[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
        """The objects whose pod template a listed Rollout runs (`spec.workloadRef`) that were not listed
        themselves (their kind judged by no policy): one GET each, as the operator reads them."""
        from readiness.workload import MalformedWorkload, template_ref

        listed = {(str(o.get("kind")), str((o.get("metadata") or {}).get("namespace") or ""),
                   str((o.get("metadata") or {}).get("name") or "")) for o in objects}
        wanted = set()
        for obj in objects:
            try:
                ref = template_ref(obj)
            except MalformedWorkload:
                continue  # the audit names the problem
            if ref is not None and (ref.target.kind, ref.target.namespace, ref.target.name) not in listed:
                wanted.add(ref.target)
        lent: list[Mapping[str, Any]] = []
        for target in sorted(wanted, key=str):
            group, version, plural = {**BUILTIN_RESOURCES, **LENDING_RESOURCES}[target.kind]
            base = f"/apis/{group}/{version}" if group else f"/api/{version}"
            found = await self.get(f"{base}/namespaces/{target.namespace}/{plural}/{target.name}",
                                   f"{target} (a Rollout's workloadRef)", missing_ok=True)
            if found is not None:  # absent: the audit says the Rollout's template is not there
                lent.append({"apiVersion": f"{group}/{version}" if group else version, "kind": target.kind,
                             **found})
        return lent

    async def workload_resource(self, kind: str, custom_groups: Mapping[str, str]) -> Resource:
        """Where the API serves `kind`: built in, or discovered (a custom kind's version and plural)."""
        if kind in BUILTIN_RESOURCES:
            return BUILTIN_RESOURCES[kind]
        group = custom_groups.get(kind, "")
        base = f"/apis/{group}" if group else "/api"
        group_doc = await self.get(base, f"the API group {group or 'core'}", missing_ok=True)
        if group_doc is None:
            raise ClusterError(f"custom kind {group + '/' if group else ''}{kind}: the API server at "
                               f"{self.server} serves no API group {group or 'core'!r}")
        version = (group_doc.get("preferredVersion") or {}).get("version") if group else "v1"
        served = await self.get(f"{base}/{version}", f"the API group {group or 'core'}")
        for resource in (served or {}).get("resources") or ():
            if resource.get("kind") == kind and "/" not in str(resource.get("name")):
                return group, str(version), str(resource["name"])
        raise ClusterError(f"custom kind {group + '/' if group else ''}{kind}: not served by the API server "
                           f"at {self.server} (group {group or 'core'}, version {version})")

    async def get_namespace(self, name: str) -> list[Mapping[str, Any]]:
        found = await self.get(f"/api/v1/namespaces/{name}", f"namespace {name}", missing_ok=True)
        if found is None:
            raise ClusterError(f"namespace {name} not found in the cluster at {self.server}")
        return [{**found, "kind": "Namespace", "apiVersion": "v1"}]

    async def list_optional(self, resource: Resource, namespaced: bool = True,
                            ) -> list[Mapping[str, Any]] | None:
        """The objects; None when the cluster does not serve the resource (its CRD is not installed)."""
        try:
            return await self.list_all(resource, namespaced)
        except _NotServed:
            return None

    async def list_all(self, resource: Resource, namespaced: bool = True) -> list[Mapping[str, Any]]:
        """Every object of `resource` in the target's namespace (or all), page by page."""
        group, version, plural = resource
        base = f"/apis/{group}/{version}" if group else f"/api/{version}"
        namespace = self.target.namespace if namespaced else None
        path = f"{base}/namespaces/{namespace}/{plural}" if namespace else f"{base}/{plural}"
        what = f"{plural}.{group}" if group else plural
        items: list[Mapping[str, Any]] = []
        token, restarts = "", 0
        while True:
            query = [("limit", str(self.target.page_size)), *([("continue", token)] if token else [])]
            status, body = await self.request(path, query, what, namespace)
            if status == 410 and token and restarts < 3:  # the continue token expired: list again
                items, token, restarts = [], "", restarts + 1
                continue
            if status == 404:
                raise _NotServed(what)
            page = self.check(status, body, f"list {what}", namespace)
            kind = str(page.get("kind") or "").removesuffix("List")
            api_version = str(page.get("apiVersion") or (f"{group}/{version}" if group else version))
            for item in page.get("items") or ():
                items.append({"apiVersion": api_version, "kind": kind, **item})
            token = str((page.get("metadata") or {}).get("continue") or "")
            if not token:
                return items

    async def get(self, path: str, what: str, missing_ok: bool = False) -> Any:
        status, body = await self.request(path, [], what, None)
        if status == 404 and missing_ok:
            return None
        return self.check(status, body, f"get {what}", None)

    async def request(self, path: str, query: list[tuple[str, str]], what: str, namespace: str | None,
                      ) -> tuple[int, bytes]:
        import aiohttp

        async with self.slots:
            try:
                response = await self.api.call_api(
                    path, "GET", query_params=query, header_params={"Accept": "application/json"},
                    auth_settings=["BearerToken"], _preload_content=False,
                    _request_timeout=self.target.request_timeout)
                return int(response.status), await response.read()
            except aiohttp.ClientConnectorCertificateError as error:
                raise ClusterError(f"cannot verify the certificate of the API server at {self.server} "
                                   f"(context {self.context}): {error.certificate_error}") from None
            except aiohttp.ClientConnectorError as error:
                reason = _os_reason(error.os_error)
                raise ClusterError(f"cannot reach the API server at {self.server} (context {self.context}): "
                                   f"{reason}") from None
            except TimeoutError:
                raise ClusterError(f"the API server at {self.server} did not answer within "
                                   f"{self.target.request_timeout:g}s (reading {what})") from None
            except aiohttp.ClientError as error:
                raise ClusterError(f"reading {what} from the API server at {self.server}: "
                                   f"{type(error).__name__}: {error}") from None

    def check(self, status: int, body: bytes, action: str, namespace: str | None) -> Any:
        """The decoded body of a 200; else the ClusterError that says what failed and what to do."""
        import orjson

        message = ""
        try:
            decoded = orjson.loads(body) if body else {}
        except orjson.JSONDecodeError:
            decoded = None
        if isinstance(decoded, dict):
            message = str(decoded.get("message") or "")
        if status == 200 and isinstance(decoded, dict):
            return decoded
        scope = f"in namespace {namespace}" if namespace else "in all namespaces"
        if status == 401:
            raise ClusterError(f"the API server at {self.server} rejected the credentials of context "
                               f"{self.context} (401 Unauthorized): log in again, or fix the kubeconfig")
        if status == 403:
            said = f": {message}" if message else ""
            raise ClusterError(f"cannot {action} {scope if action.startswith('list') else ''}".rstrip()
                               + f" (403 Forbidden{said}); {RBAC_HINT}")
        said = f": {message}" if message else ""
        raise ClusterError(f"cannot {action} from the API server at {self.server}: HTTP {status}{said}")


def _os_reason(error: OSError) -> str:
    """`Connection refused`, `Name or service not known`: the system's words, not asyncio's."""
    if isinstance(error, socket.gaierror) or not error.errno or error.errno < 0:
        return error.strerror or str(error) or type(error).__name__
    return os.strerror(error.errno)


class _NotServed(Exception):
    """The API server does not serve the resource (404 on its list)."""
