"""A real, local Kubernetes control plane: etcd, kube-apiserver and kube-controller-manager.

Started the way controller-runtime's envtest does it, plus the controller manager so namespaces are
deleted, ownerReferences cascade and aggregated ClusterRoles (view, edit, admin) get their rules.
Or, with ``use_existing_cluster``, the cluster of the current ``KUBECONFIG`` behind the same interface.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

from readiness.envtest import binaries, processes
from readiness.envtest.certs import CertificateAuthority, KeyPair, service_account_key
from readiness.envtest.kubeconfig import cert_credentials, local_cluster, token_credentials, write_kubeconfig
from readiness.envtest.settings import ControlPlaneSettings

LOOPBACK = "127.0.0.1"
ADMIN_USER = "admin"
MASTERS_GROUP = "system:masters"
SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local"
_START_ATTEMPTS = 3
_CONTROLLER_PROOFS = {
    "serviceaccount-controller": ("/api/v1/namespaces/default/serviceaccounts/default", "metadata"),
    "clusterrole-aggregation-controller": ("/apis/rbac.authorization.k8s.io/v1/clusterroles/view", "rules"),
}
"""Controller -> (object, field) that is non-empty once the controller works: start() waits for these,
so no test races the controller manager's startup."""


class ControlPlaneError(RuntimeError):
    """The control plane failed to start or was used in a way its mode does not support."""


class Kubectl(Protocol):
    """The signature of ``ControlPlane.kubectl`` (and of the pytest ``kubectl`` fixture)."""

    def __call__(
        self, *args: str, check: bool = True, input: str | None = None,
        kubeconfig: Path | None = None, timeout: float = 120.0,
    ) -> subprocess.CompletedProcess[str]: ...


class KubectlError(subprocess.CalledProcessError):
    """A failed kubectl call; unlike CalledProcessError, its message includes kubectl's stderr."""

    def __str__(self) -> str:
        return f"{super().__str__()}\nstderr: {(self.stderr or '').strip()}"


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


def _with_no_proxy(env: dict[str, str]) -> dict[str, str]:
    """Keep the apiserver's calls to webhooks on 127.0.0.1 away from any configured proxy."""
    for name in ("NO_PROXY", "no_proxy"):
        existing = [entry for entry in env.get(name, "").split(",") if entry]
        env[name] = ",".join([*existing, "127.0.0.1", "localhost"])
    return env


class _Pki:
    """The throwaway CAs and key files of one control plane, written under ``directory``."""

    def __init__(self, directory: Path, dns_names: Sequence[str] = (), ips: Sequence[str] = ()) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.server_ca = CertificateAuthority("readiness-envtest-server-ca")
        self.client_ca = CertificateAuthority("readiness-envtest-client-ca")
        self.ca_cert, _ = self.server_ca.pair.write(directory, "server-ca")
        self.client_ca_cert, _ = self.client_ca.pair.write(directory, "client-ca")
        serving = self.server_ca.issue_server("kube-apiserver", ("localhost", *dns_names), (LOOPBACK, *ips))
        self.serving_cert, self.serving_key = serving.write(directory, "apiserver")
        private, public = service_account_key()
        self.sa_private, self.sa_public = directory / "sa.key", directory / "sa.pub"
        self.sa_private.touch(mode=0o600)
        self.sa_private.write_bytes(private)
        self.sa_public.write_bytes(public)

    def client(self, user: str, groups: Sequence[str]) -> KeyPair:
        return self.client_ca.issue_client(user, tuple(groups))

    def admin_ssl_context(self) -> ssl.SSLContext:
        """A TLS context that trusts the apiserver and authenticates as an admin (for health probes)."""
        cert, key = self.client(ADMIN_USER, [MASTERS_GROUP]).write(self.directory, "probe")
        context = ssl.create_default_context(cafile=str(self.ca_cert))
        context.load_cert_chain(str(cert), str(key))
        return context


class ControlPlane:
    """Context manager around a local control plane (or an existing cluster)."""

    def __init__(self, settings: ControlPlaneSettings | None = None) -> None:
        self.settings = settings or ControlPlaneSettings.from_env()
        self._children: dict[str, processes.Child] = {}
        self._run_dir: Path | None = None
        self._owns_run_dir = False
        self._pki: _Pki | None = None
        self._kubeconfig: Path | None = None
        self._kubectl_path: Path | None = None
        self._apiserver_port = 0
        self._probe_context: ssl.SSLContext | None = None
        self.startup_seconds: dict[str, float] = {}
        """How long each phase of the last start() took, for logs and benchmarks."""

    # -- lifecycle -------------------------------------------------------------------------------

    def __enter__(self) -> ControlPlane:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> ControlPlane:
        """Start (or attach to) the cluster; on failure, stop what started and raise."""
        if self._run_dir is not None:
            raise ControlPlaneError("this ControlPlane is already started")
        self._run_dir = self._make_run_dir()
        processes.register(self)
        try:
            if self.settings.use_existing_cluster:
                self._attach_existing()
            else:
                self._start_local_retrying()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop every process (controller manager, apiserver, then etcd) and remove the temporary run
        directory. Idempotent; safe to call from signal handlers and atexit."""
        processes.unregister(self)
        self._stop_children()
        if self._run_dir is not None and self._owns_run_dir and not self.settings.keep_run_dir:
            shutil.rmtree(self._run_dir, ignore_errors=True)
        self._run_dir = None

    def kill_apiserver(self) -> None:
        """SIGKILL kube-apiserver, as a crash would (fault-injection tests); `start_apiserver` brings it
        back on the same port and flags."""
        child = self._children["kube-apiserver"]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signal.SIGKILL)
        child.process.wait()

    def start_apiserver(self) -> None:
        """Start kube-apiserver again after `kill_apiserver`, and wait until it is ready."""
        old = self._children["kube-apiserver"]
        argv = [str(arg) for arg in old.process.args]  # type: ignore[union-attr]
        self._children["kube-apiserver"] = processes.Child(  # same key: the stop order stays
            "kube-apiserver", argv, old.log_path, _with_no_proxy(dict(os.environ)))
        self._wait("kube-apiserver", lambda: self._api_status("/readyz") == 200)

    def _stop_children(self) -> None:
        for name in reversed(list(self._children)):
            self._children.pop(name).stop(self.settings.stop_timeout)

    def _make_run_dir(self) -> Path:
        if self.settings.run_dir is None:
            self._owns_run_dir = True
            return Path(tempfile.mkdtemp(prefix="readiness-envtest-"))
        self.settings.run_dir.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(self.settings.run_dir / "etcd-data", ignore_errors=True)
        return self.settings.run_dir

    def _attach_existing(self) -> None:
        config = os.environ.get("KUBECONFIG", "").split(os.pathsep)[0]
        self._kubeconfig = Path(config) if config else Path.home() / ".kube" / "config"
        which = shutil.which("kubectl")
        self._kubectl_path = Path(which) if which else binaries.kubectl()

    def _start_local_retrying(self) -> None:
        """Start; retry when another process took one of our free ports between check and bind."""
        for attempt in range(1, _START_ATTEMPTS + 1):
            try:
                return self._start_local()
            except ControlPlaneError as error:
                if "address already in use" not in str(error) or attempt == _START_ATTEMPTS:
                    raise
                self._stop_children()

    def _start_local(self) -> None:
        paths = {tool.name: binaries.locate(tool) for tool in binaries.CONTROL_PLANE_TOOLS}
        self._kubectl_path = paths["kubectl"]
        self._pki = self._make_pki()
        began = time.monotonic()
        etcd_url = self._start_etcd(paths["etcd"])
        self._phase("etcd", began)
        self._start_apiserver(paths["kube-apiserver"], etcd_url)
        self._phase("kube-apiserver", began)
        admin = self.run_dir / "kubeconfig"
        self._kubeconfig = self._write_user_kubeconfig(admin, ADMIN_USER, [MASTERS_GROUP])
        if self.settings.with_controller_manager:
            self._start_controller_manager(paths["kube-controller-manager"])
            self._phase("kube-controller-manager", began)

    def _make_pki(self) -> _Pki:
        return _Pki(self.run_dir / "pki")

    def _phase(self, name: str, began: float) -> None:
        self.startup_seconds[name] = time.monotonic() - began

    # -- processes -------------------------------------------------------------------------------

    def _spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> processes.Child:
        argv = [*self._command_prefix(name), *argv]
        child = processes.Child(name, argv, self.run_dir / f"{name}.log", env or dict(os.environ))
        self._children[name] = child
        return child

    def _command_prefix(self, name: str) -> list[str]:
        """What runs component ``name`` (e.g. ``nsenter`` into a node's namespaces); nothing here."""
        return []

    def _expose(self, port: int) -> None:
        """Make ``LOOPBACK:port`` of a component reachable from here (a node forwards it); nothing here."""

    def _apiserver_mode_flags(self) -> list[str]:
        """Flags a subclass adds before the user's ``apiserver_flags`` (a node needs other ones)."""
        return []

    def _controller_manager_mode_flags(self) -> list[str]:
        return []

    def _start_etcd(self, etcd: Path) -> str:
        client_port = free_port()
        self._expose(client_port)
        client_url, peer_url = f"http://{LOOPBACK}:{client_port}", f"http://{LOOPBACK}:{free_port()}"
        self._spawn("etcd", [
            str(etcd), "--name=envtest", f"--data-dir={self.run_dir / 'etcd-data'}",
            f"--listen-client-urls={client_url}", f"--advertise-client-urls={client_url}",
            f"--listen-peer-urls={peer_url}", f"--initial-advertise-peer-urls={peer_url}",
            f"--initial-cluster=envtest={peer_url}", "--unsafe-no-fsync", "--log-level=warn",
            *self.settings.etcd_flags,
        ])
        self._wait("etcd", lambda: _http_get(client_url, "/health")[0] == 200)
        return client_url

    def _start_apiserver(self, apiserver: Path, etcd_url: str) -> None:
        pki = self._require_pki()
        self._apiserver_port = free_port()
        self._expose(self._apiserver_port)
        self._spawn("kube-apiserver", [str(apiserver), *overridden([
            f"--etcd-servers={etcd_url}",
            f"--advertise-address={LOOPBACK}", f"--bind-address={LOOPBACK}",
            # The `kubernetes` Service's endpoints may not be loopback, and nothing could reach them.
            "--endpoint-reconciler-type=none",
            f"--secure-port={self._apiserver_port}",
            f"--tls-cert-file={pki.serving_cert}", f"--tls-private-key-file={pki.serving_key}",
            f"--client-ca-file={pki.client_ca_cert}", "--authorization-mode=RBAC",
            f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}",
            f"--service-account-key-file={pki.sa_public}",
            f"--service-account-signing-key-file={pki.sa_private}",
            f"--service-cluster-ip-range={self.settings.service_cluster_ip_range}",
            "--allow-privileged=true",
            # Pods may be created before the namespace's default ServiceAccount exists (as in envtest).
            # TokenRequest does not depend on this admission plugin.
            "--disable-admission-plugins=ServiceAccount",
        ], self._apiserver_mode_flags()), *self.settings.apiserver_flags],
            env=_with_no_proxy(dict(os.environ)))
        self._wait("kube-apiserver", lambda: self._api_status("/readyz") == 200)

    def _start_controller_manager(self, controller_manager: Path) -> None:
        # Every controller runs under this one identity (--use-service-account-credentials=false) and
        # deletes arbitrary resources, so it gets system:masters like the admin.
        kubeconfig = self._write_user_kubeconfig(
            self.run_dir / "kube-controller-manager.kubeconfig", "system:kube-controller-manager",
            [MASTERS_GROUP],
        )
        self._spawn("kube-controller-manager", [str(controller_manager), *overridden([
            f"--kubeconfig={kubeconfig}",
            f"--controllers={','.join(self.settings.controllers)}",
            "--leader-elect=false", "--use-service-account-credentials=false", "--secure-port=0",
        ], self._controller_manager_mode_flags()), *self.settings.controller_manager_flags])
        if self.settings.wait_for_controller_manager:
            self._wait("kube-controller-manager", self._controllers_working)

    def _controllers_working(self) -> bool:
        """Whether each enabled controller with a visible effect at startup has had it."""
        for controller, (path, field) in _CONTROLLER_PROOFS.items():
            enabled = controller in self.settings.controllers or "*" in self.settings.controllers
            if enabled and not self._api_get(path).get(field):
                return False
        return True

    def _wait(self, name: str, ready: Callable[[], bool], timeout: float | None = None) -> None:
        """Poll ``ready()`` until true; fail fast with the log tail if ``name`` exits meanwhile."""
        child = self._children[name]
        timeout = self.settings.start_timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        while not ready():
            code = child.exited()
            if code is not None:
                raise ControlPlaneError(f"{name} exited with code {code}:\n{self._tail(child, 40)}")
            if time.monotonic() > deadline:
                raise ControlPlaneError(
                    f"{name} not ready after {timeout:.0f}s:\n{self._tail(child, 40)}"
                )
            time.sleep(0.05)

    def _api_status(self, path: str) -> int | None:
        return self._api_response(path)[0]

    def _api_get(self, path: str) -> dict[str, Any]:
        """GET ``path`` as admin: the decoded object, or {} unless it answered 200."""
        status, body = self._api_response(path)
        return dict(json.loads(body)) if status == 200 else {}

    def _api_response(self, path: str) -> tuple[int | None, bytes]:
        if self._probe_context is None:
            self._probe_context = self._require_pki().admin_ssl_context()
        return _https_get(self.server, path, self._probe_context)

    # -- accessors -------------------------------------------------------------------------------

    @property
    def run_dir(self) -> Path:
        if self._run_dir is None:
            raise ControlPlaneError("the control plane is not started")
        return self._run_dir

    @property
    def kubeconfig(self) -> Path:
        """The admin kubeconfig (system:masters), or the current KUBECONFIG on an existing cluster."""
        if self._kubeconfig is None:
            raise ControlPlaneError("the control plane is not started")
        return self._kubeconfig

    @property
    def server(self) -> str:
        return f"https://{LOOPBACK}:{self._apiserver_port}"

    @property
    def pids(self) -> dict[str, int]:
        """Process id of each running component (empty on an existing cluster or after stop)."""
        return {name: child.pid for name, child in self._children.items()}

    def exited(self) -> dict[str, int]:
        """Components that exited on their own, with their exit codes: a watchdog for long runs."""
        codes = {name: child.exited() for name, child in self._children.items()}
        return {name: code for name, code in codes.items() if code is not None}

    def dump_logs(self, tail: int = 200) -> str:
        """The last ``tail`` lines of each component's log, with a header per component."""
        return "\n".join(
            f"----- {name} ({child.log_path}) -----\n{self._tail(child, tail)}"
            for name, child in self._children.items()
        )

    @staticmethod
    def _tail(child: processes.Child, lines: int) -> str:
        try:
            text = child.log_path.read_text(errors="replace")
        except OSError as error:
            return f"(log unreadable: {error})"
        return "\n".join(text.splitlines()[-lines:])

    def _require_pki(self) -> _Pki:
        if self._pki is None:
            raise ControlPlaneError(
                "this needs the local control plane's CA, which an existing cluster does not have; "
                "use impersonation (kubectl --as/--as-group) instead"
            )
        return self._pki

    # -- users and kubectl -----------------------------------------------------------------------

    def kubeconfig_for_user(self, name: str, groups: Sequence[str] = ()) -> Path:
        """A kubeconfig authenticating as user ``name`` in ``groups`` (a client certificate)."""
        return self._write_user_kubeconfig(self._user_file(name), name, groups)

    def kubeconfig_for_token(self, token: str, name: str = "token-user") -> Path:
        """A kubeconfig authenticating with a bearer ``token`` (e.g. from ``kubectl create token``)."""
        return write_kubeconfig(self._user_file(name), self._cluster_stanza(), name, token_credentials(token))

    def _write_user_kubeconfig(self, path: Path, name: str, groups: Sequence[str]) -> Path:
        pair = self._require_pki().client(name, groups)
        credentials = cert_credentials(pair.cert_pem, pair.key_pem)
        return write_kubeconfig(path, self._cluster_stanza(), name, credentials)

    def _user_file(self, name: str) -> Path:
        directory = self.run_dir / "users"
        directory.mkdir(exist_ok=True)
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
        return directory / f"{safe}-{time.monotonic_ns()}.kubeconfig"

    def _cluster_stanza(self) -> dict[str, Any]:
        if self._pki is not None:
            return local_cluster(self.server, self._pki.server_ca.pair.cert_pem)
        view = self.kubectl("config", "view", "--minify", "--raw", "-o", "json").stdout
        cluster: dict[str, Any] = json.loads(view)["clusters"][0]["cluster"]
        return cluster

    def kubectl(
        self, *args: str, check: bool = True, input: str | None = None,
        kubeconfig: Path | None = None, timeout: float = 120.0,
    ) -> subprocess.CompletedProcess[str]:
        """Run kubectl (admin kubeconfig unless ``kubeconfig`` is given); raise KubectlError if ``check``."""
        if self._kubectl_path is None:
            raise ControlPlaneError("the control plane is not started")
        command = [str(self._kubectl_path), f"--kubeconfig={kubeconfig or self.kubeconfig}", *args]
        env = {**os.environ, "KUBECACHEDIR": str(self.run_dir / "kube-cache")}
        result = subprocess.run(
            command, input=input, capture_output=True, text=True, env=env, timeout=timeout
        )
        if check and result.returncode != 0:
            raise KubectlError(result.returncode, command, result.stdout, result.stderr)
        return result


def overridden(flags: list[str], overrides: list[str]) -> list[str]:
    """``flags`` with each ``--name=value`` of ``overrides`` replacing the same ``--name`` (list-valued flags
    such as ``--authorization-mode`` append when repeated, so appending is not overriding)."""
    names = {flag.split("=", 1)[0] for flag in overrides}
    return [flag for flag in flags if flag.split("=", 1)[0] not in names] + overrides


def _http_get(base_url: str, path: str) -> tuple[int | None, bytes]:
    host, port = base_url.removeprefix("http://").split(":")
    return _request(http.client.HTTPConnection(host, int(port), timeout=2), path)


def _https_get(base_url: str, path: str, context: ssl.SSLContext) -> tuple[int | None, bytes]:
    host, port = base_url.removeprefix("https://").split(":")
    return _request(http.client.HTTPSConnection(host, int(port), timeout=2, context=context), path)


def _request(connection: http.client.HTTPConnection, path: str) -> tuple[int | None, bytes]:
    """GET ``path``: the status and body, or (None, b"") while the server does not answer."""
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read()
    except (OSError, http.client.HTTPException):
        return None, b""
    finally:
        connection.close()
