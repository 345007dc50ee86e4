"""Property: projection and evaluation never raise anything but NotAWorkload / MalformedWorkload, whatever
shape the pod spec has (checks see user input before the API server validated it: the CLI, webhooks)."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from readiness.checks import all_checks
from readiness.context import AuditContext
from readiness.engine import Engine, default_policy
from readiness.policy import ReadinessPolicy
from readiness.workload import MalformedWorkload, NotAWorkload, project

scalars = st.one_of(st.none(), st.booleans(), st.integers(-5, 10**6), st.floats(allow_nan=False),
                    st.sampled_from(["", "0", "100m", "1Gi", "latest", "Always", "RuntimeDefault", "ALL",
                                     "25%"]),
                    st.text(max_size=5))
anything = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8) | st.sampled_from(
        ["name", "image", "port", "httpGet", "periodSeconds", "cpu", "memory", "drop", "add", "type"]),
        inner, max_size=3)), max_leaves=8)
FIELDS = ["securityContext", "resources", "readinessProbe", "livenessProbe", "startupProbe", "env", "ports",
          "lifecycle", "image", "restartPolicy", "name", "volumeMounts"]
containers = st.lists(st.one_of(anything, st.dictionaries(st.sampled_from(FIELDS), anything, max_size=5)),
                      max_size=3)
POD_FIELDS = ["securityContext", "volumes", "hostNetwork", "terminationGracePeriodSeconds", "affinity",
              "topologySpreadConstraints", "automountServiceAccountToken", "hostPID"]
pod_specs = st.fixed_dictionaries(
    {}, optional={"containers": containers | anything, "initContainers": containers | anything,
                  **{f: anything for f in POD_FIELDS}})
objects = st.fixed_dictionaries({
    "kind": st.sampled_from(["Deployment", "StatefulSet", "DaemonSet", "CronJob", "Pod", "Rollout"]),
    "metadata": st.one_of(st.fixed_dictionaries({"name": st.text(max_size=5)}), anything),
    "spec": st.one_of(anything, st.fixed_dictionaries({
        "template": st.one_of(anything, st.fixed_dictionaries({"spec": pod_specs | anything})),
        "jobTemplate": st.fixed_dictionaries({"spec": st.fixed_dictionaries({
            "template": st.fixed_dictionaries({"spec": pod_specs})})}),
    }, optional={"replicas": anything, "strategy": anything, "updateStrategy": anything})),
})


def _strict() -> ReadinessPolicy:
    return ReadinessPolicy.model_validate({"metadata": {"name": "strict"}, "spec": {
        "match": {"kinds": ["Deployment", "StatefulSet", "DaemonSet", "CronJob", "Pod", "Rollout"]},
        "checks": {c.id: {"enabled": True} for c in all_checks()},
    }})


ENGINES = [Engine(default_policy()), Engine(_strict())]
CONTEXT = AuditContext.from_objects([
    {"kind": "PodDisruptionBudget", "metadata": {"name": "p"}, "spec": {"selector": {}}},
    {"kind": "HorizontalPodAutoscaler", "metadata": {"name": "h"},
     "spec": {"minReplicas": 1, "scaleTargetRef": {"kind": "Deployment", "name": ""}}},
])


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(objects)
def test_projection_and_evaluation_never_crash(obj: dict[str, Any]) -> None:
    try:
        workload = project(obj)
    except (NotAWorkload, MalformedWorkload):
        return
    for engine in ENGINES:
        result = engine.evaluate(workload, CONTEXT)
        assert not result.errors, result.errors  # a check that raised is a check bug
