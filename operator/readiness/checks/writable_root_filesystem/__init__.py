"""writable-root-filesystem: an attacker should not be able to write into the image."""

from __future__ import annotations

from readiness.checks._helpers import security_context
from readiness.checks.base import ALL_ROLES, FAIL, Category, Fail, NoParams, Severity, container_check
from readiness.workload import Container, Workload


@container_check(
    id="writable-root-filesystem",
    category=Category.SECURITY,
    severity=Severity.WARNING,
    title="Container's root filesystem is writable",
    message="container {container} does not set readOnlyRootFilesystem: true",
    rationale="""
A writable root filesystem lets an intruder drop tools and binaries, alter the application's code or
configuration, and persist until the container restarts. It also hides state in the container layer,
which is lost on restart and fills the node's disk. A read-only root with explicit volumes for the paths
the application writes makes both visible. Init containers and native sidecars are judged too.
""",
    remediation="""
Make the root filesystem read-only and mount an emptyDir where the application needs to write:

```yaml
containers:
  - name: web
    securityContext:
      readOnlyRootFilesystem: true
    volumeMounts:
      - {name: tmp, mountPath: /tmp}
volumes:
  - {name: tmp, emptyDir: {}}
```
""",
    roles=ALL_ROLES,
    references=("polaris:notReadOnlyRootFilesystem",
                "kube-score:container-security-context-readonlyrootfilesystem",
                "kube-linter:no-read-only-root-fs", "checkov:CKV_K8S_22"),
)
def writable_root_filesystem(container: Container, workload: Workload, params: NoParams) -> Fail | None:
    return None if security_context(container).get("readOnlyRootFilesystem") is True else FAIL
