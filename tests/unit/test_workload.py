"""The workload projection: what every check sees, whatever the source of the manifest."""

from __future__ import annotations

import re
from typing import Any

import pytest

from readiness.workload import (
    ContainerRole,
    KindRegistry,
    MalformedWorkload,
    NotAWorkload,
    WorkloadClass,
    project,
)


def deployment(**spec: Any) -> dict[str, Any]:
    pod_spec = spec.pop("pod_spec", {"containers": [{"name": "web", "image": "web:1"}]})
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "shop", "labels": {"app": "web"}},
        "spec": {"template": {"metadata": {"labels": {"app": "web", "tier": "front"}}, "spec": pod_spec},
                 **spec},
    }


def test_deployment_projection() -> None:
    workload = project(deployment(replicas=3, strategy={"type": "Recreate"}))
    assert str(workload.ref) == "Deployment shop/web"
    assert workload.workload_class is WorkloadClass.SERVICE
    assert workload.replicas == 3
    assert workload.strategy == {"type": "Recreate"}
    assert workload.labels == {"app": "web"}
    assert workload.pod_labels == {"app": "web", "tier": "front"}
    assert not workload.controlled


def test_replicas_default_to_one_and_daemonsets_have_none() -> None:
    assert project(deployment()).replicas == 1
    daemonset = deployment()
    daemonset["kind"] = "DaemonSet"
    assert project(daemonset).replicas is None
    assert project(daemonset).workload_class is WorkloadClass.DAEMON


def test_container_roles() -> None:
    workload = project(deployment(pod_spec={
        "initContainers": [{"name": "migrate", "image": "m:1"},
                           {"name": "proxy", "image": "p:1", "restartPolicy": "Always"},
                           {"name": "once", "image": "o:1", "restartPolicy": "OnFailure"}],
        "containers": [{"name": "web", "image": "w:1"}],
        "ephemeralContainers": [{"name": "debug", "image": "busybox"}],
    }))
    roles = {c.name: c.role for c in workload.containers}
    assert roles == {"migrate": ContainerRole.INIT, "proxy": ContainerRole.SIDECAR,
                     "once": ContainerRole.INIT, "web": ContainerRole.APP}  # ephemeral containers ignored


def test_unnamed_containers_get_a_positional_name() -> None:
    workload = project(deployment(pod_spec={"containers": [{"image": "w:1"}]}))
    assert workload.containers[0].name == "containers[0]"


def test_controlled_objects_are_marked() -> None:
    replicaset = deployment()
    replicaset["kind"] = "ReplicaSet"
    replicaset["metadata"]["ownerReferences"] = [{"kind": "Deployment", "name": "web", "controller": True}]
    assert project(replicaset).controlled
    replicaset["metadata"]["ownerReferences"] = [{"kind": "Deployment", "name": "web"}]
    assert not project(replicaset).controlled


def test_cronjob_template_path() -> None:
    cronjob = {
        "kind": "CronJob", "metadata": {"name": "nightly", "namespace": "ops"},
        "spec": {"schedule": "0 3 * * *", "jobTemplate": {"spec": {"template": {
            "metadata": {"labels": {"job": "nightly"}},
            "spec": {"restartPolicy": "OnFailure", "containers": [{"name": "run", "image": "r:1"}]}}}}},
    }
    workload = project(cronjob)
    assert workload.workload_class is WorkloadClass.BATCH
    assert workload.replicas is None
    assert workload.pod_labels == {"job": "nightly"}
    assert [c.name for c in workload.containers] == ["run"]


def test_bare_pod_is_its_own_template() -> None:
    pod = {"kind": "Pod", "metadata": {"name": "debug", "labels": {"app": "debug"}},
           "spec": {"containers": [{"name": "sh", "image": "busybox"}]}}
    workload = project(pod)
    assert workload.workload_class is WorkloadClass.POD
    assert workload.pod_labels == {"app": "debug"}
    assert str(workload.ref) == "Pod debug"


def test_custom_kind() -> None:
    spec = KindRegistry.parse_custom("example.com/WebApp=spec.podTemplate,replicas=spec.size,class=service")
    assert (spec.group, spec.kind, spec.template_path, spec.replicas_path) == (
        "example.com", "WebApp", ("spec", "podTemplate"), ("spec", "size"))
    registry = KindRegistry()
    registry.register(spec)
    obj = {"kind": "WebApp", "metadata": {"name": "shop"},
           "spec": {"size": 4, "podTemplate": {"spec": {"containers": [{"name": "web", "image": "w:1"}]}}}}
    workload = project(obj, registry)
    assert workload.replicas == 4 and workload.workload_class is WorkloadClass.SERVICE
    with pytest.raises(NotAWorkload):
        project(obj)  # not registered in the default registry


@pytest.mark.parametrize("text", ["WebApp", "=spec.template", "WebApp=spec.template,colour=red",
                                  "WebApp=spec.template,class=cluster"])
def test_custom_kind_errors(text: str) -> None:
    with pytest.raises(ValueError, match="custom kind"):
        KindRegistry.parse_custom(text)


def test_argo_rollout_is_built_in() -> None:
    rollout = deployment(replicas=5)
    rollout["kind"] = "Rollout"
    assert project(rollout).replicas == 5


@pytest.mark.parametrize(("mutate", "where"), [
    (lambda d: d["spec"].update(replicas="3"), "spec.replicas"),
    (lambda d: d["spec"].update(replicas=True), "spec.replicas"),
    (lambda d: d["spec"].pop("template"), "spec.template"),
    (lambda d: d["spec"]["template"].pop("spec"), "spec.template.spec"),
    (lambda d: d["spec"]["template"]["spec"].update(containers={"name": "web"}), "spec.containers"),
    (lambda d: d["spec"]["template"]["spec"].update(initContainers=["web"]), "spec.initContainers[0]"),
    (lambda d: d["metadata"].update(labels=["app"]), "metadata.labels"),
    (lambda d: d.update(metadata="web"), "metadata"),
])
def test_malformed_inputs_name_the_field(mutate: Any, where: str) -> None:
    obj = deployment()
    mutate(obj)
    with pytest.raises(MalformedWorkload, match=f"^{re.escape(where)}:"):
        project(obj)


def test_not_a_workload() -> None:
    with pytest.raises(NotAWorkload):
        project({"kind": "Service", "metadata": {"name": "web"}})
    with pytest.raises(MalformedWorkload):
        project(["not", "a", "mapping"])  # type: ignore[arg-type]
