"""A real Prometheus (Debian's package, installed by hack/install-prometheus.sh), started on loopback.

    with PrometheusServer(targets=["127.0.0.1:9102"], rule_files=[path], workdir=tmp_path) as prom:
        prom.wait_for_alert("ReadinessPolicyViolation", state="firing")

Scrape and evaluation intervals are 1s so that alerts with a short `for` move within seconds. The storage
lives in `workdir`; the process runs in its own session and `stop()` terminates it (then kills it), so no
Prometheus outlives the test.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import yaml

PROMETHEUS = "/usr/bin/prometheus"
PROMTOOL = "/usr/bin/promtool"
INSTALL_HINT = "run hack/install-prometheus.sh (Debian's prometheus package)"
JOB = "readiness-operator"

T = TypeVar("T")


class PrometheusError(RuntimeError):
    """Prometheus did not start, did not answer, or a wait ran out; the message carries its log tail."""


def binary(name: str) -> str | None:
    """Path of `prometheus` or `promtool`: Debian's in /usr/bin first, else whatever PATH has."""
    preferred = f"/usr/bin/{name}"
    return preferred if os.access(preferred, os.X_OK) else shutil.which(name)


def free_port() -> int:
    """A TCP port free on loopback right now (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def config(targets: Sequence[str], rule_files: Iterable[Path], *, interval: str = "1s") -> dict[str, Any]:
    """A Prometheus configuration scraping `targets` (host:port) as job `readiness-operator`."""
    return {
        "global": {"scrape_interval": interval, "evaluation_interval": interval, "scrape_timeout": interval},
        "rule_files": [str(path) for path in rule_files],
        "scrape_configs": [{"job_name": JOB, "static_configs": [{"targets": list(targets)}]}],
    }


class PrometheusServer:
    """One Prometheus process with a generated configuration. Use as a context manager."""

    def __init__(self, *, targets: Sequence[str], rule_files: Iterable[Path], workdir: Path,
                 start_timeout: float = 90.0) -> None:
        executable = binary("prometheus")
        if executable is None:
            raise PrometheusError(f"prometheus not found: {INSTALL_HINT}")
        self.executable = executable
        self.workdir = workdir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config_path = workdir / "prometheus.yml"
        self.config_path.write_text(yaml.safe_dump(config(targets, rule_files), sort_keys=False))
        self.log_path = workdir / "prometheus.log"
        self.start_timeout = start_timeout
        self._process: subprocess.Popen[bytes] | None = None

    # -- lifecycle -------------------------------------------------------------------------------------

    def start(self) -> PrometheusServer:
        command = [
            self.executable, f"--config.file={self.config_path}",
            f"--storage.tsdb.path={self.workdir / 'data'}", f"--web.listen-address=127.0.0.1:{self.port}",
            "--log.level=info",
        ]
        with self.log_path.open("wb") as log:
            self._process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                             stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            self.wait(self._ready, timeout=self.start_timeout, what="Prometheus to be ready")
        except BaseException:
            self.stop()
            raise
        return self

    def _ready(self) -> bool:
        if self._process is not None and self._process.poll() is not None:
            raise PrometheusError(f"Prometheus exited with {self._process.returncode}\n{self.log_tail()}")
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def stop(self, timeout: float = 20.0) -> None:
        """Terminate the process group; kill it if it does not leave within `timeout`."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout)

    def __enter__(self) -> PrometheusServer:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    # -- HTTP API --------------------------------------------------------------------------------------

    def api(self, path: str, **params: str) -> Any:
        """GET /api/v1/<path>; returns `data`, raises PrometheusError when the status is not success."""
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        with urllib.request.urlopen(f"{self.url}/api/v1/{path}{query}", timeout=10) as response:
            body = json.load(response)
        if body.get("status") != "success":
            raise PrometheusError(f"/api/v1/{path}: {body}")
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """An instant query's result vector."""
        return list(self.api("query", query=expr)["result"])

    def alerts(self, name: str | None = None) -> list[dict[str, Any]]:
        """Active (pending or firing) alerts, optionally of one name."""
        found = self.api("alerts")["alerts"]
        return [a for a in found if name is None or a["labels"].get("alertname") == name]

    def rule_groups(self) -> list[dict[str, Any]]:
        return list(self.api("rules")["groups"])

    def targets_up(self) -> bool:
        active = self.api("targets")["activeTargets"]
        return bool(active) and all(t["health"] == "up" for t in active)

    # -- waiting ---------------------------------------------------------------------------------------

    def wait(self, probe: Callable[[], T | None], *, timeout: float, what: str, every: float = 0.25) -> T:
        """Call `probe` until it returns something truthy; PrometheusError (with the log) on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            outcome = probe()
            if outcome:
                return outcome
            if time.monotonic() > deadline:
                raise PrometheusError(f"timed out after {timeout:.0f}s waiting for {what}\n{self.log_tail()}")
            time.sleep(every)

    def matching(self, name: str, labels: dict[str, str] | None = None) -> list[dict[str, Any]]:
        """Active alerts of `name` whose labels include `labels`."""
        wanted = labels or {}
        return [a for a in self.alerts(name) if all(a["labels"].get(k) == v for k, v in wanted.items())]

    def wait_for_alert(self, name: str, *, state: str, timeout: float = 60.0,
                       labels: dict[str, str] | None = None) -> dict[str, Any]:
        """The first alert of `name` in `state` (pending or firing) whose labels include `labels`."""

        def probe() -> dict[str, Any] | None:
            return next((a for a in self.matching(name, labels) if a["state"] == state), None)

        return self.wait(probe, timeout=timeout, what=f"alert {name} {state} {labels or {}}")

    def wait_for_no_alert(self, name: str, *, timeout: float = 60.0,
                          labels: dict[str, str] | None = None) -> None:
        """Until no alert of `name` (with `labels`) is pending or firing: resolved alerts leave the list."""
        self.wait(lambda: not self.matching(name, labels), timeout=timeout,
                  what=f"alert {name} {labels or {}} to resolve")


def check_rules(path: Path) -> subprocess.CompletedProcess[str]:
    """`promtool check rules PATH` (raises PrometheusError when promtool is missing)."""
    executable = binary("promtool")
    if executable is None:
        raise PrometheusError(f"promtool not found: {INSTALL_HINT}")
    return subprocess.run([executable, "check", "rules", str(path)], capture_output=True, text=True,
                          timeout=120, check=False)


def require(name: str) -> str:
    """The binary's path; a missing one skips the test on a developer's machine and fails it in CI
    (where hack/install-prometheus.sh has run), so a broken install can never pass as a skip."""
    import pytest

    path = binary(name)
    if path is None:
        message = f"{name} not found: {INSTALL_HINT}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path
