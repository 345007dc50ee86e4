"""host-path-volume: hostPath volumes reach into the node's filesystem."""

from __future__ import annotations

from readiness.checks._helpers import is_mapping, shown
from readiness.checks.base import Category, Fail, NoParams, Severity, fail, workload_check
from readiness.context import AuditContext
from readiness.workload import Workload


@workload_check(
    id="host-path-volume",
    category=Category.SECURITY,
    severity=Severity.WARNING,
    title="Pod mounts hostPath volumes",
    message="pod mounts hostPath volumes: {volumes}",
    rationale="""
A hostPath volume mounts a directory of the node into the pod. Writable, it can plant binaries, alter
kubelet or runtime configuration, or reach the container runtime's socket (`/var/run/docker.sock`,
`containerd.sock`), which is root on the node. Read-only, it still leaks other pods' logs and secrets.
It also ties the pod's data to one node. The message names the volumes.
""",
    remediation="""
Use an emptyDir for scratch space, a PersistentVolumeClaim for data, a ConfigMap or Secret for
configuration. Node agents that must read the host belong in a dedicated namespace with an exemption,
and mount read-only:

```yaml
volumes:
  - name: scratch
    emptyDir: {}
```
""",
    references=("polaris:hostPathSet", "kube-linter:sensitive-host-mounts", "kube-linter:docker-sock",
                "checkov:CKV_K8S_27", "psa:baseline/hostPathVolumes"),
)
def host_path_volume(workload: Workload, params: NoParams, context: AuditContext) -> Fail | None:
    volumes = workload.pod_spec.get("volumes")
    if not volumes or not isinstance(volumes, list):
        return None
    names = [shown(v.get("name")) for v in volumes if is_mapping(v) and v.get("hostPath") is not None]
    return fail(volumes=", ".join(names)) if names else None
