"""host-port: hostPort binds the node's address and limits scheduling."""

from __future__ import annotations

from readiness.checks._helpers import is_mapping, shown
from readiness.checks.base import ALL_ROLES, Category, Fail, NoParams, Severity, container_check, fail
from readiness.workload import Container, Workload


@container_check(
    id="host-port",
    category=Category.SECURITY,
    severity=Severity.WARNING,
    title="Container binds a host port",
    message="container {container} binds host port(s) {ports}",
    rationale="""
A `hostPort` exposes the container on the node's own address, bypassing Services and NetworkPolicies,
and limits each node to one such pod: replicas stay Pending once every node has one, and rollouts with
surge stall. Init containers and native sidecars are judged too.
""",
    remediation="""
Remove `hostPort` and expose the pod through a Service (a NodePort or LoadBalancer when it must be reached
from outside):

```yaml
ports:
  - name: http
    containerPort: 8080
```
""",
    roles=ALL_ROLES,
    references=("polaris:hostPortSet", "checkov:CKV_K8S_26", "psa:baseline/hostPorts"),
)
def host_port(container: Container, workload: Workload, params: NoParams) -> Fail | None:
    ports = container.spec.get("ports")
    if not ports or not isinstance(ports, list):
        return None
    for port in ports:
        if is_mapping(port) and port.get("hostPort"):
            bound = [shown(p["hostPort"]) for p in ports if is_mapping(p) and p.get("hostPort")]
            return fail(ports=", ".join(bound))
    return None
