"""service-account-token-automount: off by default; most pods never call the API server."""

from __future__ import annotations

from readiness.checks.base import Category, Fail, NoParams, Severity, fail, workload_check
from readiness.context import AuditContext
from readiness.workload import Workload


@workload_check(
    id="service-account-token-automount",
    category=Category.SECURITY,
    severity=Severity.INFO,
    title="Pod mounts a service account token it may not need",
    message="pod mounts the token of ServiceAccount {account}: {why}",
    rationale="""
By default every pod gets a token for its service account, mounted where any process in it (or an
intruder) can read it and call the Kubernetes API with that account's rights. Most applications never
talk to the API server; for them the token is pure exposure.

Judged as the kubelet decides: the pod's own `automountServiceAccountToken` wins; when the pod leaves it
unset, its ServiceAccount's (`spec.serviceAccountName`, else `default`) applies. The CLI reads
ServiceAccounts from its input, the operator from the cluster; a ServiceAccount it cannot see counts as
mounting the token, as Kubernetes' default does. At admission the ServiceAccount may not exist yet (later
in the same apply): the webhook warns "not yet" and the audit decides.

Off by default: controllers, operators and anything using the API legitimately need the token.
""",
    remediation="""
```yaml
spec:
  automountServiceAccountToken: false
```

or on the workload's ServiceAccount, for every pod that uses it:

```yaml
apiVersion: v1
kind: ServiceAccount
metadata: {name: web}
automountServiceAccountToken: false
```
""",
    enabled_by_default=False,
    references=("polaris:automountServiceAccountToken", "checkov:CKV_K8S_38"),
    depends_on=("ServiceAccount",),
)
def service_account_token_automount(workload: Workload, params: NoParams, context: AuditContext,
                                    ) -> Fail | None:
    spec = workload.pod_spec
    account = spec.get("serviceAccountName") or spec.get("serviceAccount") or "default"
    own = spec.get("automountServiceAccountToken")
    if own is True:
        return fail(account=account, why="the pod sets automountServiceAccountToken: true")
    if own is False or context.account_automounts(workload.ref.namespace, str(account)) is False:
        return None
    return fail(account=account, why="neither the pod nor the ServiceAccount sets it to false")
