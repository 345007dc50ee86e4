"""Locate, or build from the Go module proxy, the control-plane binaries.

Each binary is looked up, in order, in its ``TEST_ASSET_*`` variable, in ``KUBEBUILDER_ASSETS`` (the
directory setup-envtest fills), in our cache ``${XDG_CACHE_HOME:-~/.cache}/readiness-operator/bin/
<name>-<version>/<name>``, and only then built with ``go build`` from a wrapper module under
``hack/controlplane/``. A build writes into the cache, so fresh clones of the repository reuse it.
The Go module and build caches keep their defaults (they persist per user).
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

KUBERNETES_VERSION = "v1.37.2"
ETCD_VERSION = "v3.6.16"
HELM_VERSION = "v3.22.0"
# Upstream CRDs (readiness.envtest.upstream_crds), each from the Go module that publishes it: the newest
# version the module proxy serves here whose go.mod our Go accepts (argo-rollouts v1.10.2 needs Go 1.26.10).
PROMETHEUS_OPERATOR_VERSION = "v0.85.0"
KYVERNO_VERSION = "v1.19.1"
ARGO_ROLLOUTS_VERSION = "v1.10.1"

REPO_ROOT = Path(__file__).resolve().parents[3]
MODULES_DIR = REPO_ROOT / "hack" / "controlplane"

_PROGRESS_EVERY_SECONDS = 30.0
_ERROR_TAIL_LINES = 60


class BinaryError(RuntimeError):
    """A binary could not be found or built; the message says which and why."""


def _kubernetes_ldflags() -> tuple[str, ...]:
    major, minor = KUBERNETES_VERSION.lstrip("v").split(".")[:2]
    flags: list[str] = []
    for package in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        flags += [
            f"-X {package}.gitVersion={KUBERNETES_VERSION}",
            f"-X {package}.gitMajor={major}",
            f"-X {package}.gitMinor={minor}",
            f"-X {package}.gitTreeState=clean",
            f"-X {package}.gitCommit=",  # unknown from the module proxy; better empty than "$Format:%H$"
        ]
    return tuple(flags)


def client_go_version(go_mod: Path) -> tuple[int, int] | None:
    """(major, minor) of the k8s.io/client-go a wrapper module pins, as helm's Makefile reads it
    (`go list -m k8s.io/client-go`): v0.37.0 is Kubernetes 1.37. None without a checkout."""
    try:
        text = go_mod.read_text()
    except OSError:
        return None
    found = re.search(r"^\s*k8s\.io/client-go v0\.(\d+)\.", text, re.M)
    return (1, int(found.group(1))) if found else None


def _helm_ldflags() -> tuple[str, ...]:
    """helm's release ldflags (its Makefile's LDFLAGS): without the k8sVersion ones helm assumes
    Kubernetes v1.20, so `helm template` and `helm lint` fail the chart's kubeVersion unless given
    --kube-version."""
    flags = [f"-X helm.sh/helm/v3/internal/version.version={HELM_VERSION}",
             "-X helm.sh/helm/v3/internal/version.gitTreeState=clean"]
    version = client_go_version(MODULES_DIR / "helm" / "go.mod")
    if version is not None:
        for package in ("helm.sh/helm/v3/pkg/lint/rules", "helm.sh/helm/v3/pkg/chartutil"):
            flags += [f"-X {package}.k8sVersionMajor={version[0]}",
                      f"-X {package}.k8sVersionMinor={version[1]}"]
    return tuple(flags)


@dataclass(frozen=True)
class GoTool:
    """One binary: where it is built from and how it may be provided instead."""

    name: str
    version: str
    module: str
    """Directory under ``hack/controlplane/`` holding the wrapper Go module."""
    package: str
    """Go package path of the ``main`` package, built from inside the wrapper module."""
    env_var: str
    """Variable naming a ready-made binary, which skips the cache and the build."""
    ldflags: tuple[str, ...] = ()
    build: str = ""
    """A build revision, bumped when `ldflags` change: it is part of the cache path, so a binary cached
    with the old flags is rebuilt (the path is otherwise only name and version)."""

    @property
    def cached_path(self) -> Path:
        suffix = f"-{self.build}" if self.build else ""
        return cache_dir() / f"{self.name}-{self.version}{suffix}" / self.name


KUBE_APISERVER = GoTool(
    "kube-apiserver", KUBERNETES_VERSION, "kubernetes", "k8s.io/kubernetes/cmd/kube-apiserver",
    "TEST_ASSET_KUBE_APISERVER", _kubernetes_ldflags(),
)
KUBE_CONTROLLER_MANAGER = GoTool(
    "kube-controller-manager", KUBERNETES_VERSION, "kubernetes",
    "k8s.io/kubernetes/cmd/kube-controller-manager", "TEST_ASSET_KUBE_CONTROLLER_MANAGER",
    _kubernetes_ldflags(),
)
KUBECTL = GoTool(
    "kubectl", KUBERNETES_VERSION, "kubernetes", "k8s.io/kubernetes/cmd/kubectl", "TEST_ASSET_KUBECTL",
    _kubernetes_ldflags(),
)
KUBELET = GoTool(
    "kubelet", KUBERNETES_VERSION, "kubernetes", "k8s.io/kubernetes/cmd/kubelet", "TEST_ASSET_KUBELET",
    _kubernetes_ldflags(),
)
KUBE_SCHEDULER = GoTool(
    "kube-scheduler", KUBERNETES_VERSION, "kubernetes", "k8s.io/kubernetes/cmd/kube-scheduler",
    "TEST_ASSET_KUBE_SCHEDULER", _kubernetes_ldflags(),
)
KUBE_PROXY = GoTool(
    "kube-proxy", KUBERNETES_VERSION, "kubernetes", "k8s.io/kubernetes/cmd/kube-proxy",
    "TEST_ASSET_KUBE_PROXY", _kubernetes_ldflags(),
)
ETCD = GoTool("etcd", ETCD_VERSION, "etcd", ".", "TEST_ASSET_ETCD")
HELM = GoTool(
    "helm", HELM_VERSION, "helm", "helm.sh/helm/v3/cmd/helm", "TEST_ASSET_HELM", _helm_ldflags(),
    build="k8s",  # with the k8sVersion ldflags
)
CONTROL_PLANE_TOOLS = (ETCD, KUBE_APISERVER, KUBE_CONTROLLER_MANAGER, KUBECTL)
"""What ControlPlane runs; helm is only for the chart tests and the demo."""
NODE_TOOLS = (KUBE_SCHEDULER, KUBELET, KUBE_PROXY)
"""What a node adds to the control plane (``python -m readiness.envtest node up``)."""
ALL_TOOLS = (*CONTROL_PLANE_TOOLS, *NODE_TOOLS, HELM)


def cache_root() -> Path:
    """``${XDG_CACHE_HOME:-~/.cache}/readiness-operator``: binaries, images and the node's saved state."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "readiness-operator"


def cache_dir() -> Path:
    """``${XDG_CACHE_HOME:-~/.cache}/readiness-operator/bin``."""
    return cache_root() / "bin"


def provided_path(tool: GoTool) -> Path | None:
    """The binary the user provided through ``TEST_ASSET_*`` or ``KUBEBUILDER_ASSETS``, if any."""
    explicit = os.environ.get(tool.env_var)
    if explicit:
        path = Path(explicit)
        if not _is_executable(path):
            raise BinaryError(f"{tool.env_var}={explicit}: not an executable file")
        return path
    assets = os.environ.get("KUBEBUILDER_ASSETS")
    if assets and _is_executable(Path(assets) / tool.name):
        return Path(assets) / tool.name
    return None


def locate(tool: GoTool, *, build: bool = True, progress: TextIO | None = None) -> Path:
    """The path of ``tool``, building it (and its module siblings) into the cache when missing."""
    found = provided_path(tool)
    if found is not None:
        return found
    if not _is_executable(tool.cached_path):
        if not build:
            raise BinaryError(f"{tool.name} {tool.version} missing: run python -m readiness.envtest build")
        siblings = [t for t in ALL_TOOLS if t.module == tool.module and provided_path(t) is None]
        build_tools(siblings, progress=progress)
    return tool.cached_path


def kube_apiserver() -> Path:
    return locate(KUBE_APISERVER)


def kube_controller_manager() -> Path:
    return locate(KUBE_CONTROLLER_MANAGER)


def kubectl() -> Path:
    return locate(KUBECTL)


def etcd() -> Path:
    return locate(ETCD)


def helm() -> Path:
    return locate(HELM)


def ensure_all(progress: TextIO | None = None) -> dict[str, Path]:
    """Every binary, by name, building whatever is missing (one ``go build`` per wrapper module)."""
    return {tool.name: locate(tool, progress=progress) for tool in ALL_TOOLS}


def build_tools(tools: list[GoTool], progress: TextIO | None = None) -> None:
    """Build the missing ``tools`` of one wrapper module in a single ``go build`` (they share packages)."""
    modules = {tool.module for tool in tools}
    if len(modules) != 1:
        raise ValueError(f"build_tools takes tools of one module, got {sorted(modules)}")
    out = progress or sys.stderr
    with _build_lock(modules.pop()):
        missing = [tool for tool in tools if not _is_executable(tool.cached_path)]
        if missing:
            _go_build(missing, out)


@contextmanager
def _build_lock(module: str) -> Iterator[None]:
    """Serialise builds of one module across processes (two test runs starting at once)."""
    cache_dir().mkdir(parents=True, exist_ok=True)
    with open(cache_dir() / f".build-{module}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _go_build(tools: list[GoTool], out: TextIO) -> None:
    module_dir = MODULES_DIR / tools[0].module
    if not (module_dir / "go.mod").is_file():
        raise BinaryError(f"{module_dir}/go.mod not found: building needs a checkout of the repository")
    go = shutil.which("go")
    if go is None:
        raise BinaryError("`go` is not on PATH: install Go >= 1.26 or set KUBEBUILDER_ASSETS / TEST_ASSET_*")
    names = ", ".join(f"{tool.name} {tool.version}" for tool in tools)
    # A fixed staging directory (we hold the module's lock) so an interrupted build leaves no litter.
    staging = cache_dir() / f".staging-{tools[0].module}"
    shutil.rmtree(staging, ignore_errors=True)
    command = _go_build_command(go, tools, staging)
    print(f"==> building {names} from the Go module proxy (slow when cold)", file=out, flush=True)
    elapsed = _run_with_progress(command, module_dir, out)
    for tool in tools:
        tool.cached_path.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staging / tool.name, tool.cached_path)
    shutil.rmtree(staging, ignore_errors=True)
    print(f"==> built {names} in {elapsed:.0f}s into {cache_dir()}", file=out, flush=True)


def _go_build_command(go: str, tools: list[GoTool], staging: Path) -> list[str]:
    ldflags = " ".join(("-s", "-w", *tools[0].ldflags))
    # -buildvcs=false: the wrapper modules live in this repository, whose VCS state is irrelevant
    # (and `go build` fails outright in a repository without commits).
    return [go, "build", "-v", "-trimpath", "-buildvcs=false", "-ldflags", ldflags,
            "-o", f"{staging}/", *(tool.package for tool in tools)]


class _Output:
    """What ``go build -v`` printed: a line count (one per compiled package) and the last lines."""

    def __init__(self) -> None:
        self.count = 0
        self.tail: deque[str] = deque(maxlen=_ERROR_TAIL_LINES)

    def collect(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            self.count += 1
            self.tail.append(line.rstrip("\n"))


def _run_with_progress(command: list[str], cwd: Path, out: TextIO) -> float:
    """Run ``go build -v``, printing a heartbeat every 30 s; raise with the output's tail on failure."""
    started = time.monotonic()
    output = _Output()
    process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    reader = threading.Thread(target=output.collect, args=(process,), daemon=True)
    reader.start()
    while True:
        try:
            process.wait(timeout=_PROGRESS_EVERY_SECONDS)
            break
        except subprocess.TimeoutExpired:
            elapsed = time.monotonic() - started
            print(f"    ... {elapsed:.0f}s, {output.count} packages compiled (linking comes last)",
                  file=out, flush=True)
    reader.join()
    if process.returncode != 0:
        details = "\n".join(output.tail)
        raise BinaryError(f"`{' '.join(command)}` in {cwd} failed (exit {process.returncode}):\n{details}")
    return time.monotonic() - started


def _is_executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)
