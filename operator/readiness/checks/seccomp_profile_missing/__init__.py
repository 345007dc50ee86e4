"""seccomp-profile-missing: confine system calls with the runtime's default profile at least."""

from __future__ import annotations

from readiness.checks._helpers import effective, mapping
from readiness.checks.base import ALL_ROLES, Category, Fail, NoParams, Severity, container_check, fail
from readiness.workload import Container, Workload, describe

CONFINED = frozenset({"RuntimeDefault", "Localhost"})


@container_check(
    id="seccomp-profile-missing",
    category=Category.SECURITY,
    severity=Severity.WARNING,
    title="Container runs without a seccomp profile",
    message="container {container} {problem}",
    rationale="""
Without a seccomp profile a container runs `Unconfined` (the kubelet's default) and may call every
system call the kernel offers, including the rarely used ones behind most kernel privilege escalations.
The runtime's default profile blocks those at no cost to ordinary applications.

The effective profile is judged: the container's `securityContext.seccompProfile` overrides the pod's.
`RuntimeDefault` and `Localhost` pass; `Unconfined` or none fails. The legacy
`seccomp.security.alpha.kubernetes.io` annotations are not counted: the kubelet stopped honouring them in
Kubernetes 1.27. Init containers and native sidecars are judged too.
""",
    remediation="""
Set the runtime's default profile once at pod level:

```yaml
spec:
  securityContext:
    seccompProfile:
      type: RuntimeDefault
```
""",
    roles=ALL_ROLES,
    references=("polaris:linuxHardening", "kube-score:container-seccomp-profile", "checkov:CKV_K8S_31",
                "psa:restricted/seccompProfile"),
)
def seccomp_profile_missing(container: Container, workload: Workload, params: NoParams) -> Fail | None:
    profile = effective(container, workload, "seccompProfile")
    kind = mapping(profile).get("type") if profile else None
    if kind is not None and not isinstance(kind, str):  # the API server rejects it: no profile applies
        return fail(problem=f"has an invalid seccompProfile.type ({describe(kind)}): "
                            "expected RuntimeDefault, Localhost or Unconfined")
    if kind in CONFINED:
        return None
    if kind == "Unconfined":
        return fail(problem="runs with seccompProfile Unconfined")
    return fail(problem="has no seccompProfile (RuntimeDefault or Localhost)")
