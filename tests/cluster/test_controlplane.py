"""The local control plane behaves like a real cluster, and never leaks a process."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path

import pytest

from readiness.envtest import ControlPlane, Kubectl, KubectlError
from readiness.envtest.binaries import KUBERNETES_VERSION
from readiness.envtest.processes import group_alive, wait_for

pytestmark = pytest.mark.cluster

GONE_TIMEOUT = 60.0


@pytest.fixture
def local_only(control_plane: ControlPlane) -> None:
    if control_plane.settings.use_existing_cluster:
        pytest.skip("needs the local control plane")


def _exists(kubectl: Kubectl, *args: str) -> bool:
    return kubectl("get", *args, "--ignore-not-found", "-o", "name").stdout.strip() != ""


def _bind_view(kubectl: Kubectl, namespace: str, subject: str) -> None:
    kubectl("create", "rolebinding", "viewers", "--clusterrole=view", subject, "-n", namespace)


def _assert_view_only(kubectl: Kubectl, namespace: str, user_kubeconfig: Path) -> None:
    kubectl("create", "configmap", "visible", "-n", namespace)
    got = kubectl("get", "configmap", "visible", "-n", namespace, "-o", "name", kubeconfig=user_kubeconfig)
    assert got.stdout.strip() == "configmap/visible"
    with pytest.raises(KubectlError, match="forbidden"):
        kubectl("create", "configmap", "denied", "-n", namespace, kubeconfig=user_kubeconfig)


def test_server_reports_the_release(kubectl: Kubectl, local_only: None) -> None:
    versions = json.loads(kubectl("version", "-o", "json").stdout)
    assert versions["serverVersion"]["gitVersion"] == KUBERNETES_VERSION
    assert versions["clientVersion"]["gitVersion"] == KUBERNETES_VERSION


def test_deleted_namespace_goes_away(kubectl: Kubectl, namespace: str) -> None:
    kubectl("create", "configmap", "content", "-n", namespace)
    kubectl("delete", "namespace", namespace, f"--timeout={GONE_TIMEOUT:.0f}s")
    assert not _exists(kubectl, "namespace", namespace)


def test_garbage_collector_removes_dependents(kubectl: Kubectl, namespace: str) -> None:
    kubectl("create", "configmap", "owner", "-n", namespace)
    uid = kubectl("get", "configmap", "owner", "-n", namespace, "-o", "jsonpath={.metadata.uid}").stdout
    dependent = {
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "dependent", "namespace": namespace, "ownerReferences": [
            {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": uid}]},
    }
    kubectl("create", "-f", "-", input=json.dumps(dependent))
    kubectl("delete", "configmap", "owner", "-n", namespace, "--cascade=background")
    assert wait_for(lambda: not _exists(kubectl, "configmap", "dependent", "-n", namespace), GONE_TIMEOUT)


def test_rbac_limits_a_certificate_user(
    control_plane: ControlPlane, kubectl: Kubectl, namespace: str, local_only: None
) -> None:
    _bind_view(kubectl, namespace, "--user=alice")
    alice = control_plane.kubeconfig_for_user("alice", ["readers"])
    whoami = json.loads(kubectl("auth", "whoami", "-o", "json", kubeconfig=alice).stdout)
    assert whoami["status"]["userInfo"]["username"] == "alice"
    assert "readers" in whoami["status"]["userInfo"]["groups"]
    _assert_view_only(kubectl, namespace, alice)


def test_token_request_authenticates_a_service_account(
    control_plane: ControlPlane, kubectl: Kubectl, namespace: str
) -> None:
    kubectl("create", "serviceaccount", "robot", "-n", namespace)
    _bind_view(kubectl, namespace, f"--serviceaccount={namespace}:robot")
    token = kubectl("create", "token", "robot", "-n", namespace, "--duration=10m").stdout.strip()
    robot = control_plane.kubeconfig_for_token(token)
    whoami = json.loads(kubectl("auth", "whoami", "-o", "json", kubeconfig=robot).stdout)
    assert whoami["status"]["userInfo"]["username"] == f"system:serviceaccount:{namespace}:robot"
    _assert_view_only(kubectl, namespace, robot)


def _assert_gone(pids: dict[str, int]) -> None:
    """Each pid (a process-group leader) has exited, and so has everything in its group."""
    assert pids, "no process was started"
    for name, pid in pids.items():
        assert wait_for(lambda: not group_alive(pid), 10.0), f"{name} (pid {pid}) survived"  # noqa: B023


def test_stop_leaves_no_process(control_plane: ControlPlane, local_only: None) -> None:
    plane = ControlPlane(replace(control_plane.settings, run_dir=None))
    with plane:
        pids, run_dir = plane.pids, plane.run_dir
        assert set(pids) == {"etcd", "kube-apiserver", "kube-controller-manager"}
    assert plane.pids == {}
    _assert_gone(pids)
    assert not run_dir.exists()


_CHILD_SCRIPT = textwrap.dedent("""
    import json, sys, time
    from readiness.envtest import ControlPlane
    plane = ControlPlane().start()
    print(json.dumps({"pids": plane.pids, "run_dir": str(plane.run_dir)}), flush=True)
    time.sleep(600)
""")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGKILL], ids=lambda s: s.name)
def test_children_never_outlive_python(
    control_plane: ControlPlane, sig: signal.Signals, local_only: None
) -> None:
    """SIGTERM/SIGINT: our handlers stop the children and clean up. SIGKILL: PR_SET_PDEATHSIG kills them."""
    env = {**os.environ, "READINESS_USE_EXISTING_CLUSTER": "0"}
    command = [sys.executable, "-c", _CHILD_SCRIPT]
    # A shell's background job inherits SIGINT as ignored, and Python then keeps it so: give the child the
    # default disposition, whatever ours is, so that it is our handler being tested.
    python = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                              preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    assert python.stdout is not None
    started = json.loads(python.stdout.readline() or "{}")
    try:
        assert started, f"the child Python failed to start a control plane: {python.communicate()[1]}"
        python.send_signal(sig)
        _, stderr = python.communicate(timeout=60)
        _assert_gone(started["pids"])
        if sig != signal.SIGKILL:
            assert python.returncode != 0, stderr
            assert not Path(started["run_dir"]).exists()
    finally:
        python.kill()
        python.wait()
        if started:
            shutil.rmtree(started["run_dir"], ignore_errors=True)
