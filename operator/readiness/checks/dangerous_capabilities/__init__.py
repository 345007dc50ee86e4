"""dangerous-capabilities: capabilities that amount to root on the node."""

from __future__ import annotations

from functools import cached_property

from readiness.checks._helpers import mapping, normalize_capability, security_context, shown
from readiness.checks.base import ALL_ROLES, Category, CheckParams, Fail, Severity, container_check, fail
from readiness.workload import Container, Workload


class Params(CheckParams):
    """Which added capabilities are refused."""

    capabilities: tuple[str, ...] = ("SYS_ADMIN", "NET_ADMIN", "SYS_PTRACE", "SYS_MODULE", "NET_RAW",
                                     "DAC_READ_SEARCH", "BPF", "PERFMON", "SYS_RAWIO", "ALL")
    """Capabilities that must not be added, with or without the `CAP_` prefix, in any case. NET_RAW is in
    the list because it allows packet spoofing; remove it for ping-style diagnostics tools."""

    @cached_property
    def refused(self) -> frozenset[str]:
        return frozenset(normalize_capability(c) for c in self.capabilities)


@container_check(
    id="dangerous-capabilities",
    category=Category.SECURITY,
    severity=Severity.ERROR,
    title="Container adds dangerous capabilities",
    message="container {container} adds dangerous capabilities: {capabilities}",
    rationale="""
Some capabilities are root in all but name: SYS_ADMIN (mounts, namespaces, most of the kernel), SYS_MODULE
(load kernel modules), SYS_PTRACE (read other processes' memory), NET_ADMIN (reconfigure the node's
network when host-networked), BPF and PERFMON (observe and alter the kernel), SYS_RAWIO and
DAC_READ_SEARCH (read any file, the "shocker" escape). A container that adds one is as dangerous as a
privileged one. Names are compared case-insensitively, with or without the `CAP_` prefix. Init containers
and native sidecars are judged too.
""",
    remediation="""
Remove the capability from `securityContext.capabilities.add`. If a component truly needs it (a CNI
plugin, a node agent), run it in a dedicated namespace and exempt it explicitly with a reason:

```yaml
securityContext:
  capabilities:
    drop: [ALL]
```
""",
    params=Params,
    roles=ALL_ROLES,
    references=("polaris:dangerousCapabilities", "checkov:CKV_K8S_39", "psa:baseline/capabilities"),
)
def dangerous_capabilities(container: Container, workload: Workload, params: Params) -> Fail | None:
    added = mapping(security_context(container).get("capabilities")).get("add")
    if not added or added.__class__ is not list:
        return None
    refused = params.refused
    found = [shown(c) for c in added if normalize_capability(c) in refused]
    return fail(capabilities=", ".join(found)) if found else None
