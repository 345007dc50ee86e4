"""`python -m readiness.envtest node up|down`: the interface other tools rely on, and the host left as found.

These start their own node in a subprocess (before the session's node: pytest runs this file first), so
they can kill the harness the hard way and see what is left.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from readiness.envtest import hoststate

pytestmark = [pytest.mark.cluster, pytest.mark.node]


def _node_processes(trace: hoststate.NodeTrace) -> set[int]:
    return hoststate._node_pids(trace)


def _holders() -> list[str]:
    """Nodes that hold the saved tunables right now (another test run's node may, on a shared machine)."""
    holders: list[str] = hoststate._read_saved(hoststate.saved_tunables_file()).get("holders", [])
    return holders


def _start_node_up(run_dir: Path) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        # No images: these tests judge the harness, not pods (the session's node imports them).
        [sys.executable, "-m", "readiness.envtest", "node", "up", "--dir", str(run_dir), "--no-images"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()  # blocks until the node is Ready (or the harness failed)
    if not line.startswith("export KUBECONFIG="):
        process.kill()
        raise AssertionError(f"node up printed {line!r}:\n{process.communicate(timeout=30)[1][-3000:]}")
    return process, line


def _kubectl_nodes(kubeconfig: str) -> str:
    from readiness.envtest import binaries
    return subprocess.run([str(binaries.kubectl()), f"--kubeconfig={kubeconfig}", "get", "nodes",
                           "--no-headers"], capture_output=True, text=True, timeout=60).stdout


def _wait(predicate: object, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.2)
    return False


def test_node_up_then_down_restores_the_host(tmp_path: Path) -> None:
    original = hoststate.read_tunables()
    process, line = _start_node_up(tmp_path)
    try:
        kubeconfig = line.strip().split("=", 1)[1]
        assert " Ready " in _kubectl_nodes(kubeconfig)
        trace = hoststate.NodeTrace.read(tmp_path / "node" / "trace.json")
        assert trace.net_ns != os.stat("/proc/self/ns/net").st_ino  # its own network namespace
        assert _node_processes(trace)
    finally:
        down = subprocess.run([sys.executable, "-m", "readiness.envtest", "node", "down", "--dir",
                               str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert down.returncode == 0, down.stderr
    assert process.wait(timeout=60) is not None
    assert not _node_processes(trace)
    assert not hoststate._cgroup_dirs(trace.cgroup_root)
    assert hoststate.read_tunables() == original
    assert trace.holder not in _holders()
    assert str(tmp_path) not in Path("/proc/self/mountinfo").read_text()  # its mounts were never ours
    host_rules = subprocess.run(["iptables-save"], capture_output=True, text=True, timeout=30).stdout
    assert "KUBE-" not in host_rules  # kube-proxy's chains lived in the node's network namespace


def test_a_killed_harness_leaves_nothing_behind(tmp_path: Path) -> None:
    """SIGKILL: no atexit, no signal handler. The guard process restores the host."""
    original = hoststate.read_tunables()
    process, _ = _start_node_up(tmp_path)
    trace = hoststate.NodeTrace.read(tmp_path / "node" / "trace.json")
    changed = hoststate.read_tunables()
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert _wait(lambda: not _node_processes(trace), 60), _node_processes(trace)
    assert _wait(lambda: hoststate.read_tunables() == original, 60), (original, changed)
    assert _wait(lambda: not hoststate._cgroup_dirs(trace.cgroup_root), 30)
    assert trace.holder not in _holders()
