"""service-account-token-automount: off by default; most pods never call the API server."""

from __future__ import annotations

from readiness.checks.base import FAIL, Category, Fail, NoParams, Severity, workload_check
from readiness.context import AuditContext
from readiness.workload import Workload


@workload_check(
    id="service-account-token-automount",
    category=Category.SECURITY,
    severity=Severity.INFO,
    title="Pod mounts a service account token it may not need",
    message="pod does not set automountServiceAccountToken: false",
    rationale="""
By default every pod gets a token for its service account, mounted where any process in it (or an
intruder) can read it and call the Kubernetes API with that account's rights. Most applications never
talk to the API server; for them the token is pure exposure.

Off by default: only `automountServiceAccountToken: false` on the pod spec passes, and controllers,
operators and anything using the API legitimately need the token. Setting the field on the ServiceAccount
instead is equally effective, but the check cannot see ServiceAccounts; exempt such workloads.
""",
    remediation="""
```yaml
spec:
  automountServiceAccountToken: false
```
""",
    enabled_by_default=False,
    references=("polaris:automountServiceAccountToken", "checkov:CKV_K8S_38"),
)
def service_account_token_automount(workload: Workload, params: NoParams, context: AuditContext,
                                    ) -> Fail | None:
    return None if workload.pod_spec.get("automountServiceAccountToken") is False else FAIL
