"""termination-grace-period: long enough to drain connections, short enough for rollouts."""

from __future__ import annotations

from typing import Annotated

from annotated_types import Ge

from readiness.checks.base import LONG_RUNNING, Category, CheckParams, Fail, Severity, fail, workload_check
from readiness.context import AuditContext
from readiness.workload import Workload

DEFAULT_GRACE_SECONDS = 30  # what the API server fills in when the field is unset


class Params(CheckParams):
    """Bounds on terminationGracePeriodSeconds."""

    min_seconds: Annotated[int, Ge(0)] = 10
    """Below this, in-flight requests and connection draining are cut off by SIGKILL."""
    max_seconds: Annotated[int, Ge(0)] = 300
    """Above this, rollouts and node drains wait too long on each pod."""

    def __post_init__(self) -> None:
        if self.min_seconds > self.max_seconds:
            raise ValueError("minSeconds must not exceed maxSeconds")


@workload_check(
    id="termination-grace-period",
    category=Category.LIFECYCLE,
    severity=Severity.WARNING,
    title="Termination grace period is too short or too long",
    message="terminationGracePeriodSeconds is {seconds}s, {problem}",
    rationale="""
When a pod is deleted (rollout, scale-down, node drain), the kubelet sends SIGTERM, waits
terminationGracePeriodSeconds, then sends SIGKILL. Too short a period kills in-flight requests and
open connections before the application has drained them: users see resets on every deploy. Too long a
period makes every rollout and node drain crawl, and hides applications that ignore SIGTERM altogether.
""",
    remediation="""
Set terminationGracePeriodSeconds deliberately: longer than the preStop delay plus the slowest request
your application serves, and within the policy's bounds:

```yaml
spec:
  terminationGracePeriodSeconds: 45
```
""",
    params=Params,
    classes=LONG_RUNNING,
)
def termination_grace_period(workload: Workload, params: Params, context: AuditContext) -> Fail | None:
    seconds = workload.pod_spec.get("terminationGracePeriodSeconds", DEFAULT_GRACE_SECONDS)
    if isinstance(seconds, bool) or not isinstance(seconds, int):
        return fail(seconds=seconds, problem="not an integer")
    if seconds < params.min_seconds:
        return fail(seconds=seconds,
                    problem=f"below the minimum of {params.min_seconds}s for a clean shutdown")
    if seconds > params.max_seconds:
        return fail(seconds=seconds,
                    problem=f"above the maximum of {params.max_seconds}s for timely rollouts")
    return None
