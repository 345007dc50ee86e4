"""privilege-escalation-allowed: setuid binaries must not be able to gain privileges."""

from __future__ import annotations

from readiness.checks._helpers import added_capabilities, normalize_capability, security_context
from readiness.checks.base import ALL_ROLES, Category, Fail, NoParams, Severity, container_check, fail
from readiness.workload import Container, Workload


@container_check(
    id="privilege-escalation-allowed",
    category=Category.SECURITY,
    severity=Severity.WARNING,
    title="Container allows privilege escalation",
    message="container {container} allows privilege escalation ({reason})",
    rationale="""
`allowPrivilegeEscalation` controls the `no_new_privs` flag: unless it is explicitly false, a process can
gain more privileges than its parent through setuid binaries or file capabilities, which is how many
container escapes start. The default is true, so the field must be set.

A privileged container or one that adds `CAP_SYS_ADMIN` always allows escalation, whatever the field says
(the API server rejects `allowPrivilegeEscalation: false` in that case). Init containers and native
sidecars are judged too.
""",
    remediation="""
```yaml
securityContext:
  allowPrivilegeEscalation: false
```
""",
    roles=ALL_ROLES,
    references=("polaris:privilegeEscalationAllowed", "kube-linter:privilege-escalation-container",
                "checkov:CKV_K8S_20", "psa:restricted/allowPrivilegeEscalation"),
)
def privilege_escalation_allowed(container: Container, workload: Workload, params: NoParams) -> Fail | None:
    sc = security_context(container)
    if sc.get("privileged") is True:
        return fail(reason="privileged implies it")
    if sc.get("allowPrivilegeEscalation") is not False:
        return fail(reason="allowPrivilegeEscalation is not false")
    if "capabilities" in sc:
        for capability in added_capabilities(container):
            if normalize_capability(capability) == "SYS_ADMIN":
                return fail(reason="CAP_SYS_ADMIN implies it")
    return None
