"""A one-node Kubernetes cluster from local processes: the control plane plus a real node.

Everything runs inside one network namespace and one mount namespace of its own (``unshare``), entered by
each component through ``nsenter``:
- etcd, kube-apiserver, kube-controller-manager (all controllers) and kube-scheduler;
- containerd and runc (Debian's), the CNI bridge and host-local plugins, kubelet and kube-proxy (iptables).

So kube-proxy's iptables rules, the ``cni0`` bridge, the pods' network namespaces and kubelet's fixed paths
(``/var/lib/kubelet``, ``/var/log/pods``, ``/run/containerd``...) never touch the host's: ``/var`` and
``/run``
are overlays inside the mount namespace, and containerd's and kubelet's state are bind mounts of the run
directory. The API server listens on 127.0.0.1:PORT inside the namespace and is forwarded from the same
address on the host (`readiness.envtest.forward`), so one kubeconfig works on both sides; pods reach it
through the ``kubernetes`` Service at the node's address on ``cni0``. What kubelet changes on the host
(kernel tunables, cgroups) is saved and put back by `readiness.envtest.hoststate`, also after a crash.

The facts behind the settings are in ``shared/notes/real-node.md`` (cgroup v1, no CAP_SYS_RESOURCE).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, Any

from readiness.envtest import binaries, hoststate
from readiness.envtest.controlplane import LOOPBACK, MASTERS_GROUP, ControlPlane, ControlPlaneError, _Pki
from readiness.envtest.forward import Forwarder, ForwardError
from readiness.envtest.settings import ControlPlaneSettings

INSTALL_SCRIPT = "hack/install-node-packages.sh"
_REQUIRED_COMMANDS = ("unshare", "nsenter", "ip", "iptables", "containerd", "containerd-shim-runc-v2",
                      "runc", "ctr", "mount")
_CGROUP_V1_HIERARCHIES = ("cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids",
                          "systemd", "net_cls", "net_prio", "hugetlb", "perf_event")


@dataclass(frozen=True)
class NodeSettings:
    """The node's side of the cluster; every field documents its default and the trade-off."""

    name: str = "readiness-node"
    """The Node object's name (kubelet's ``--hostname-override``)."""

    pod_cidr: str = "10.88.0.0/16"
    """Pod addresses (host-local IPAM on ``cni0``). Private and inside the node's own network namespace,
    so it cannot collide with the host's routes."""

    node_ip: str = "10.88.0.1"
    """The node's address: ``cni0``'s gateway, the kubelet's InternalIP and the API server's advertised
    address (the ``kubernetes`` Service's endpoint). Must lie in ``pod_cidr``."""

    service_cidr: str = "10.96.0.0/16"
    """ClusterIP range; the first address (10.96.0.1) is the ``kubernetes`` Service, in the serving
    certificate's SANs."""

    cni_bin_dir: Path = Path("/usr/lib/cni")
    """Where Debian's containernetworking-plugins put bridge, host-local, loopback and portmap."""

    sandbox_image: str = "localhost/readiness-pause:3.10"
    """The pause image containerd starts each pod with; built locally (`readiness.envtest.images`), never
    pulled."""

    image_archives: tuple[Path, ...] = ()
    """docker-archive tarballs imported into containerd's ``k8s.io`` namespace before kubelet starts, so
    pods with ``imagePullPolicy: Never``/``IfNotPresent`` find them (there is no registry here)."""

    ready_timeout: float = 180.0
    """Seconds to wait for the Node to report Ready after kubelet starts (6-16 s warm on 2 cores)."""

    max_pods: int = 60
    """kubelet's ``maxPods``: the e2e suite needs a few dozen; fewer keeps a runaway test from filling the
    machine."""

    kubelet_flags: tuple[str, ...] = ()
    """Extra kubelet flags, appended last (e.g. ``--v=4``)."""


class NodeCluster(ControlPlane):
    """`ControlPlane` plus a real node: pods are scheduled, pulled from local images, and run."""

    def __init__(
        self, settings: ControlPlaneSettings | None = None, node: NodeSettings | None = None
    ) -> None:
        base = settings or ControlPlaneSettings.from_env()
        node = node or NodeSettings()
        if not base.use_existing_cluster:
            base = replace(base, controllers=("*",), service_cluster_ip_range=node.service_cidr)
        super().__init__(base)
        self.node = node
        self._holder_pid = 0
        self._forwarder: Forwarder | None = None
        self._guard: subprocess.Popen[bytes] | None = None
        self._guard_pipe: IO[bytes] | None = None
        self._trace = hoststate.NodeTrace()

    # -- lifecycle -------------------------------------------------------------------------------

    def _start_local(self) -> None:
        _check_prerequisites(self.node)
        began = time.monotonic()
        self._enter_namespaces()
        self._phase("namespaces", began)
        super()._start_local()
        self._start_node(began)

    def _stop_children(self) -> None:
        super()._stop_children()  # kube-proxy, kubelet, ..., etcd, then the namespace holder
        if self._forwarder is not None:
            self._forwarder.close()
            self._forwarder = None
        if self._trace.net_ns:
            hoststate.restore(self._trace)
            self._trace = hoststate.NodeTrace()
        if self._guard_pipe is not None:
            self._guard_pipe.close()  # the guard finds nothing left to do and exits
            self._guard_pipe = None
        if self._guard is not None:
            self._guard.wait(timeout=30)
            self._guard = None

    # -- namespaces ------------------------------------------------------------------------------

    @property
    def node_dir(self) -> Path:
        return self.run_dir / "node"

    def _enter_namespaces(self) -> None:
        self.node_dir.mkdir(parents=True, exist_ok=True)
        holder = self._spawn("netns", ["unshare", "--net", "--mount", "--propagation", "private",
                                       "--", "sleep", "infinity"])
        self._holder_pid = holder.pid
        own = os.stat("/proc/self/ns/net").st_ino
        net = Path(f"/proc/{holder.pid}/ns/net")
        deadline = time.monotonic() + 10
        while _inode(net) in (own, 0):
            if holder.exited() is not None or time.monotonic() > deadline:
                raise ControlPlaneError(f"unshare failed:\n{self._tail(holder, 20)}")
            time.sleep(0.01)
        self._trace = hoststate.NodeTrace(
            net_ns=_inode(net), mnt_ns=_inode(Path(f"/proc/{holder.pid}/ns/mnt")),
            cgroup_root=f"/readiness-node-{holder.pid}", extra={"harness_pid": str(os.getpid())},
        )
        self._trace.write(self._trace_file)
        self._start_guard()
        self._in_namespaces("sh", "-ec", _namespace_setup_script(self.node, self.node_dir))
        try:
            self._forwarder = Forwarder(net)
        except ForwardError as error:
            raise ControlPlaneError(str(error)) from error

    @property
    def _trace_file(self) -> Path:
        return self.node_dir / "trace.json"

    def _start_guard(self) -> None:
        """A process outside our process group that restores the host when we go away, however we do."""
        self._guard = subprocess.Popen(
            [sys.executable, "-m", "readiness.envtest.hoststate", str(self._trace_file)],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
            stderr=open(self.node_dir / "guard.log", "ab"),  # noqa: SIM115 (the child owns it)
            start_new_session=True, env={**os.environ, "PYTHONPATH": _package_root()},
        )
        self._guard_pipe = self._guard.stdin

    def _namespace_prefix(self) -> list[str]:
        return ["nsenter", f"--target={self._holder_pid}", "--net", "--mount", "--"]

    def _in_namespaces(self, *argv: str, timeout: float = 60) -> str:
        result = subprocess.run([*self._namespace_prefix(), *argv], capture_output=True, text=True,
                                timeout=timeout)
        if result.returncode != 0:
            raise ControlPlaneError(f"{' '.join(argv[:3])} in the node's namespaces failed: "
                                    f"{result.stderr.strip()}")
        return result.stdout

    def _command_prefix(self, name: str) -> list[str]:
        return [] if name == "netns" else self._namespace_prefix()

    def _expose(self, port: int) -> None:
        if self._forwarder is None:
            raise ControlPlaneError("the node's namespaces are not set up")
        self._forwarder.add(port)

    # -- control plane, node flavour -------------------------------------------------------------

    def _make_pki(self) -> _Pki:
        service_ip = _first_address(self.node.service_cidr)
        names = ("kubernetes", "kubernetes.default", "kubernetes.default.svc",
                 "kubernetes.default.svc.cluster.local")
        return _Pki(self.run_dir / "pki", names, (self.node.node_ip, service_ip))

    def _apiserver_mode_flags(self) -> list[str]:
        pki = self._require_pki()
        kubelet_client, kubelet_key = pki.client("kube-apiserver-kubelet-client", [MASTERS_GROUP]).write(
            pki.directory, "apiserver-kubelet-client")
        return [
            "--bind-address=0.0.0.0", f"--advertise-address={self.node.node_ip}",
            "--endpoint-reconciler-type=lease",  # the `kubernetes` Service points at the node's address
            "--authorization-mode=Node,RBAC", "--enable-admission-plugins=NodeRestriction",
            "--disable-admission-plugins=",  # ServiceAccount admission back on: pods get their tokens
            f"--kubelet-client-certificate={kubelet_client}", f"--kubelet-client-key={kubelet_key}",
            f"--kubelet-certificate-authority={pki.ca_cert}",
            "--kubelet-preferred-address-types=InternalIP",
        ]

    def _controller_manager_mode_flags(self) -> list[str]:
        pki = self._require_pki()
        return [
            f"--root-ca-file={pki.ca_cert}",  # publishes kube-root-ca.crt into every namespace
            f"--service-account-private-key-file={pki.sa_private}",
            f"--cluster-signing-cert-file={pki.client_ca_cert}",
            f"--cluster-signing-key-file={pki.directory / 'client-ca.key'}",
            "--node-monitor-grace-period=20s",
        ]

    # -- the node --------------------------------------------------------------------------------

    def _start_node(self, began: float) -> None:
        if not self._trace.tunables_saved:
            hoststate.save_tunables(self._trace.holder)
            self._trace.tunables_saved = True
            self._trace.write(self._trace_file)
        _make_cgroup_root(self._trace.cgroup_root)
        configs = _NodeConfigs(self, self.node)
        self._spawn("containerd", ["containerd", f"--config={configs.containerd()}"])
        self._wait("containerd", lambda: self._containerd_socket.is_socket() and self._ctr_ok())
        self._import_images()
        self._phase("containerd", began)
        scheduler = binaries.locate(binaries.KUBE_SCHEDULER)
        self._spawn("kube-scheduler", [
            str(scheduler), f"--kubeconfig={configs.user_kubeconfig('system:kube-scheduler')}",
            "--leader-elect=false", "--bind-address=127.0.0.1", "--secure-port=0",
        ])
        self._spawn("kubelet", [
            str(binaries.locate(binaries.KUBELET)), f"--config={configs.kubelet()}",
            f"--kubeconfig={configs.kubelet_kubeconfig()}", f"--hostname-override={self.node.name}",
            f"--node-ip={self.node.node_ip}", *self.node.kubelet_flags,
        ])
        self._spawn("kube-proxy", [str(binaries.locate(binaries.KUBE_PROXY)), f"--config={configs.proxy()}"])
        self._wait("kubelet", self._node_ready, timeout=self.node.ready_timeout)
        self._phase("node Ready", began)

    @property
    def _containerd_socket(self) -> Path:
        return self.node_dir / "run-containerd" / "containerd.sock"

    def _ctr(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["ctr", f"--address={self._containerd_socket}", "--namespace=k8s.io", *args],
                              capture_output=True, text=True, timeout=timeout)

    def _ctr_ok(self) -> bool:
        return self._ctr("version", timeout=10).returncode == 0

    def _import_images(self) -> None:
        for archive in self.node.image_archives:
            self.load_image(archive)
        self._add_digest_references()

    def _add_digest_references(self) -> None:
        """Give each imported ``repo:tag`` its ``repo@sha256:...`` name too, as a registry pull would, so
        pods can pin images by digest (the strict policy's ``image-digest-missing``)."""
        listed = self._ctr("images", "ls", "--quiet").stdout.split()
        for ref in listed:
            if ref.startswith("sha256:") or "@" in ref:
                continue
            info = self._ctr("images", "ls", f"name=={ref}").stdout.splitlines()[1:]
            fields = info[0].split() if info else []
            digest = next((field for field in fields if field.startswith("sha256:")), "")
            target = f"{ref.rsplit(':', 1)[0]}@{digest}"
            if digest and target not in listed:
                self._ctr("images", "tag", ref, target)

    def load_image(self, archive: Path) -> None:
        """Import a docker-archive tarball into the node's containerd (``k8s.io`` namespace)."""
        result = self._ctr("images", "import", "--no-unpack=false", str(archive))
        if result.returncode != 0:
            raise ControlPlaneError(f"importing {archive} into containerd failed: {result.stderr.strip()}")

    def _node_ready(self) -> bool:
        node = self._api_get(f"/api/v1/nodes/{self.node.name}")
        conditions = node.get("status", {}).get("conditions") or []
        return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)

    def tag_image(self, source: str, *targets: str) -> None:
        """Give a loaded image more names (as a registry would serve it under them): ``redis:7.4`` becomes
        ``docker.io/library/redis:7.4``, as kubelet asks for it."""
        for target in targets:
            self._ctr("images", "rm", normalized_reference(target))
            result = self._ctr("images", "tag", source, normalized_reference(target))
            if result.returncode != 0:
                raise ControlPlaneError(f"tagging {source} as {target}: {result.stderr.strip()}")

    def image_digest(self, ref: str) -> str | None:
        """``sha256:...`` of an image the node reports (``status.images``), for pinning it by digest."""
        repository = ref.rsplit(":", 1)[0]
        for image in self._api_get(f"/api/v1/nodes/{self.node.name}").get("status", {}).get("images", []):
            names = image.get("names") or []
            if ref in names or f"docker.io/{ref}" in names:
                for name in names:
                    if name.startswith(f"{repository}@sha256:"):
                        return str(name.split("@", 1)[1])
        return None

    def in_node(self, *argv: str, timeout: float = 60) -> str:
        """Run a command inside the node's network and mount namespaces (``crictl``-like debugging)."""
        return self._in_namespaces(*argv, timeout=timeout)


class _NodeConfigs:
    """The node components' configuration files, written into the node's run directory."""

    def __init__(self, cluster: NodeCluster, node: NodeSettings) -> None:
        self._cluster = cluster
        self._node = node
        self._dir = cluster.node_dir
        self._pki = cluster._require_pki()

    def user_kubeconfig(self, user: str, groups: Sequence[str] = (MASTERS_GROUP,)) -> Path:
        path = self._dir / f"{user.replace(':', '-')}.kubeconfig"
        return self._cluster._write_user_kubeconfig(path, user, groups)

    def kubelet_kubeconfig(self) -> Path:
        # The Node authorizer and NodeRestriction know kubelets by this name and group.
        return self.user_kubeconfig(f"system:node:{self._node.name}", ["system:nodes"])

    def containerd(self) -> Path:
        cni_conf = self._dir / "cni"
        cni_conf.mkdir(exist_ok=True)
        (cni_conf / "10-readiness.conflist").write_text(json.dumps(_cni_config(self._node), indent=2))
        path = self._dir / "containerd.toml"
        path.write_text(_containerd_toml(self._node, cni_conf, self._cluster._containerd_socket))
        return path

    def kubelet(self) -> Path:
        serving = self._pki.server_ca.issue_server(self._node.name, (self._node.name,),
                                                   (self._node.node_ip, LOOPBACK))
        cert, key = serving.write(self._dir, "kubelet-serving")
        config: dict[str, Any] = {
            "apiVersion": "kubelet.config.k8s.io/v1beta1", "kind": "KubeletConfiguration",
            # cgroup v1 only here; kubelet refuses it unless told (deprecated upstream, still supported).
            "failCgroupV1": False, "cgroupDriver": "cgroupfs", "failSwapOn": False,
            "cgroupRoot": self._cluster._trace.cgroup_root,
            "containerRuntimeEndpoint": f"unix://{self._cluster._containerd_socket}",
            "authentication": {"anonymous": {"enabled": False}, "webhook": {"enabled": True},
                               "x509": {"clientCAFile": str(self._pki.client_ca_cert)}},
            "authorization": {"mode": "Webhook"},
            "tlsCertFile": str(cert), "tlsPrivateKeyFile": str(key),
            "address": self._node.node_ip, "readOnlyPort": 0, "healthzBindAddress": LOOPBACK,
            "resolvConf": "",  # no cluster DNS and no upstream resolver: pods use KUBERNETES_SERVICE_HOST
            "imageGCHighThresholdPercent": 100, "imageGCLowThresholdPercent": 99,  # images never return
            "evictionHard": {"memory.available": "200Mi", "nodefs.available": "2%",
                             "imagefs.available": "2%", "nodefs.inodesFree": "2%"},
            "maxPods": self._node.max_pods, "serializeImagePulls": False,
            "protectKernelDefaults": False,  # it would refuse to start; hoststate restores the tunables
            "syncFrequency": "10s", "fileCheckFrequency": "10s",
            "nodeStatusReportFrequency": "20s",
            "shutdownGracePeriod": "0s",
        }
        path = self._dir / "kubelet.yaml"
        path.write_text(json.dumps(config, indent=2))
        return path

    def proxy(self) -> Path:
        config = {
            "apiVersion": "kubeproxy.config.k8s.io/v1alpha1", "kind": "KubeProxyConfiguration",
            "clientConnection": {"kubeconfig": str(self.user_kubeconfig("system:kube-proxy", ()))},
            "mode": "iptables", "hostnameOverride": self._node.name, "clusterCIDR": self._node.pod_cidr,
            # Leave the host's conntrack settings alone (they are not per namespace).
            "conntrack": {"maxPerCore": 0, "min": 0, "tcpEstablishedTimeout": "0s",
                          "tcpCloseWaitTimeout": "0s"},
            # No route_localnet; masquerade everything so replies between pods on one bridge come back
            # through the node's rules even without br_netfilter.
            "iptables": {"localhostNodePorts": False, "masqueradeAll": True},
            "healthzBindAddress": f"{LOOPBACK}:10256", "metricsBindAddress": f"{LOOPBACK}:10249",
        }
        path = self._dir / "kube-proxy.yaml"
        path.write_text(json.dumps(config, indent=2))
        return path


def _cni_config(node: NodeSettings) -> dict[str, Any]:
    prefix = node.pod_cidr.split("/")[1]
    return {
        "cniVersion": "0.4.0", "name": "readiness",
        "plugins": [
            {"type": "bridge", "bridge": "cni0", "isGateway": True, "ipMasq": False, "hairpinMode": True,
             "ipam": {"type": "host-local", "dataDir": "/var/lib/cni/networks",
                      "ranges": [[{"subnet": node.pod_cidr, "gateway": node.node_ip}]],
                      "routes": [{"dst": "0.0.0.0/0"}]}},
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
        "_comment": f"pods on cni0 in {node.pod_cidr} (/{prefix}), the node at {node.node_ip}",
    }


def _containerd_toml(node: NodeSettings, cni_conf: Path, socket: Path) -> str:
    cri = 'plugins."io.containerd.grpc.v1.cri"'
    return f"""version = 2
root = "/var/lib/containerd"
state = "/run/containerd"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
                    "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs",
                    "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = "{socket}"

[{cri}]
  sandbox_image = "{node.sandbox_image}"
  # No CAP_SYS_RESOURCE here: runc cannot lower oom_score_adj, so containerd must not ask it to.
  restrict_oom_score_adj = true
  enable_selinux = false
  [{cri}.containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [{cri}.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [{cri}.containerd.runtimes.runc.options]
        SystemdCgroup = false
  [{cri}.cni]
    bin_dir = "{node.cni_bin_dir}"
    conf_dir = "{cni_conf}"

[plugins."io.containerd.internal.v1.opt"]
  path = "/var/lib/containerd/opt"
"""


def _namespace_setup_script(node: NodeSettings, node_dir: Path) -> str:
    """Loopback and ``cni0`` up; overlays on /var and /run; containerd's and kubelet's state on disk."""
    prefix = node.pod_cidr.split("/")[1]
    lines = [
        "ip link set lo up",
        "ip link add cni0 type bridge",
        f"ip addr add {node.node_ip}/{prefix} dev cni0",
        "ip link set cni0 up",
        # No default route in here: ClusterIPs need a route for the API server's own connections
        # (webhooks through their Service), which kube-proxy's OUTPUT rules then DNAT to a pod.
        f"ip route add {node.service_cidr} dev cni0",
    ]
    for top in ("var", "run"):
        upper, work = node_dir / "overlay" / top / "upper", node_dir / "overlay" / top / "work"
        lines += [f"mkdir -p {upper} {work}",
                  f"mount -t overlay overlay -o lowerdir=/{top},upperdir={upper},workdir={work} /{top}"]
    # overlayfs cannot hold containerd's overlay snapshots, and kubelet wants a plain, shared mount.
    binds = {"var-lib-containerd": "/var/lib/containerd", "var-lib-kubelet": "/var/lib/kubelet",
             "run-containerd": "/run/containerd"}
    for source, target in binds.items():
        lines += [f"mkdir -p {node_dir / source} {target}", f"mount --bind {node_dir / source} {target}"]
    lines += ["mount --make-rshared /var/lib/kubelet",
              "mkdir -p /var/log/pods /var/log/containers /run/netns"]
    return "\n".join(lines)


def _make_cgroup_root(cgroup_root: str) -> None:
    """kubelet insists that its ``cgroupRoot`` exists; a child of each v1 hierarchy, removed on stop."""
    base = hoststate.CGROUP_ROOT
    for hierarchy in _CGROUP_V1_HIERARCHIES:
        top = base / hierarchy
        if not (top / "cgroup.procs").exists():
            continue
        target = top / cgroup_root.strip("/")
        target.mkdir(exist_ok=True)
        if hierarchy == "cpuset":  # a new cpuset is empty: give it the machine's CPUs and memory nodes
            for name in ("cpuset.cpus", "cpuset.mems"):
                (target / name).write_text((top / name).read_text())


def _check_prerequisites(node: NodeSettings) -> None:
    if os.geteuid() != 0:
        raise ControlPlaneError("a node needs root (namespaces, mounts, cgroups); the control plane alone "
                                "does not")
    missing = [name for name in _REQUIRED_COMMANDS if shutil.which(name) is None]
    missing += [str(node.cni_bin_dir / p) for p in ("bridge", "host-local", "loopback", "portmap")
                if not (node.cni_bin_dir / p).exists()]
    if missing:
        raise ControlPlaneError(f"missing for the node: {', '.join(missing)}; run {INSTALL_SCRIPT}")


def normalized_reference(ref: str) -> str:
    """An image reference the way containerd stores it: registry host, ``library/`` and tag filled in."""
    name, _, digest = ref.partition("@")
    first = name.split("/", 1)[0]
    if "/" not in name or not ("." in first or ":" in first or first == "localhost"):
        name = f"docker.io/{name if '/' in name else 'library/' + name}"
    if not digest and ":" not in name.rsplit("/", 1)[-1]:
        name += ":latest"
    return f"{name}@{digest}" if digest else name


def _inode(path: Path) -> int:
    try:
        return os.stat(path).st_ino
    except OSError:
        return 0


def _first_address(cidr: str) -> str:
    import ipaddress
    return str(next(ipaddress.ip_network(cidr).hosts()))


def _package_root() -> str:
    """The directory holding the ``readiness`` package, for the guard's ``python -m``."""
    return str(Path(__file__).resolve().parents[2])
