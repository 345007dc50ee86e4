"""limit-request-ratio: limits far above requests overcommit nodes and hide real usage."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from annotated_types import Ge

from readiness.checks._helpers import mapping, parse_quantity, requests
from readiness.checks.base import ALL_ROLES, Category, CheckParams, Fail, Severity, container_check, fail
from readiness.workload import Container, Workload


class Params(CheckParams):
    """The largest acceptable limit / request ratio."""

    max_ratio: Annotated[float, Ge(1.0)] = 4.0
    """Fail when a CPU or memory limit exceeds its request by more than this factor. 1.0 demands
    Guaranteed-style limits equal to requests; larger values tolerate bursting."""


def _ratio(requested: Mapping[str, Any], limits: Mapping[str, Any], name: str) -> float | None:
    request = requested.get(name)
    limit = limits.get(name)
    if request is None or limit is None:
        return None  # the *-missing checks judge absent values
    try:
        amount = parse_quantity(request)
        return parse_quantity(limit) / amount if amount > 0 else None
    except ValueError:
        return None  # the API server rejects unparsable quantities; nothing to add here


@container_check(
    id="limit-request-ratio",
    category=Category.RESOURCES,
    severity=Severity.WARNING,
    title="Resource limit is far above the request",
    message="container {container}: {resource} limit is {ratio:.1f}x the request, above maxRatio {max_ratio}",
    rationale="""
The scheduler reserves requests; the limit is what a container may actually use. When limits are many
times the requests, a node's pods can together use far more than the node has: memory runs out (OOM kills
and evictions of innocent neighbours) and CPU is contended exactly when every replica gets busy at once.
A large ratio also hides the real footprint of the workload from capacity planning.

CPU and memory are both judged, only when a limit is set (the `*-missing` checks judge absence). A limit
without a request is a ratio of 1: the API server copies the limit into the request of every pod. Every
container role is judged, plain init containers included: their requests and limits count towards the
pod's effective reservation, and the check cannot fire on fields they leave unset.
Quantities are parsed as Kubernetes does (`500m`, `1.5`, `512Mi`, `1G`, `1e9`).
""",
    remediation="""
Bring the limit closer to the request, or raise the request to what the container really uses:

```yaml
resources:
  requests: {cpu: 500m, memory: 512Mi}
  limits: {cpu: "1", memory: 1Gi}
```
""",
    params=Params,
    roles=ALL_ROLES,
    references=("kubernetes:LimitRange maxLimitRequestRatio",
                "kube-score:container-resource-requests-equal-limits",
                "kube-score:container-cpu-requests-equal-limits",
                "kube-score:container-memory-requests-equal-limits"),
)
def limit_request_ratio(container: Container, workload: Workload, params: Params) -> Fail | None:
    resources = container.spec.get("resources")
    if not resources:
        return None
    limits = mapping(mapping(resources).get("limits"))
    if not limits:
        return None
    requested = requests(container)  # a limit without a request requests the limit: ratio 1
    for name in ("memory", "cpu"):
        ratio = _ratio(requested, limits, name)
        if ratio is not None and ratio > params.max_ratio:
            return fail(resource=name, ratio=ratio)
    return None
