"""proc-mount: /proc must stay masked."""

from __future__ import annotations

from readiness.checks._helpers import security_context
from readiness.checks.base import ALL_ROLES, Category, Fail, NoParams, Severity, container_check, fail
from readiness.workload import Container, Workload


@container_check(
    id="proc-mount",
    category=Category.SECURITY,
    severity=Severity.ERROR,
    title="Container unmasks /proc",
    message="container {container} sets procMount: {proc_mount}",
    rationale="""
The runtime masks sensitive parts of `/proc` (kcore, timer lists, sysrq-trigger...) and makes others
read-only. `procMount: Unmasked` removes that protection and exposes kernel internals to the container;
it only makes sense for nested container runtimes in user-namespaced pods. Init containers and native
sidecars are judged too.
""",
    remediation="""
Remove `procMount` or set it to `Default`:

```yaml
securityContext:
  procMount: Default
```
""",
    roles=ALL_ROLES,
    references=("polaris:procMount", "kube-linter:unsafe-proc-mount", "psa:baseline/procMount"),
)
def proc_mount(container: Container, workload: Workload, params: NoParams) -> Fail | None:
    value = security_context(container).get("procMount")
    return None if value is None or value == "Default" else fail(proc_mount=value)
