"""probe-cannot-fail: a health check that passes whatever the application's state is a mock."""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping, Sequence
from typing import Any

from readiness.checks._helpers import is_mapping, shown
from readiness.checks.base import (
    APP_AND_SIDECARS,
    LONG_RUNNING,
    Category,
    CheckParams,
    Fail,
    Severity,
    container_check,
    fail,
)
from readiness.workload import Container, Workload

PROBES = ("livenessProbe", "readinessProbe", "startupProbe")
_ALWAYS_TRUE = frozenset({"true", ":"})
_PRINTERS = frozenset({"echo", "printf"})
_READERS = frozenset({"cat", "ls", "stat", "head", "tail", "test", "["})
# A shell script whose last step forces status 0: `... || true`, `...; exit 0`, `... || :`.
_FORCED_ZERO = re.compile(r"(?:;|\n|\|\|)\s*(?:true|:|exit\s+0)\s*;?\s*\Z")
_WHOLE_SCRIPT_ZERO = re.compile(r"(?:true|:|exit(?:\s+0)?)\s*;?\s*\Z")
_PLAIN_ECHO = re.compile(r"(?:echo|printf)\b[^;&|`$<>()\n]*\Z")


class Params(CheckParams):
    """What makes a probe unable to fail."""

    shells: tuple[str, ...] = ("sh", "bash", "ash", "dash", "zsh", "ksh")
    """Programs whose `-c` script is read: `sh -c "exit 0"` and `bash -c "curl -f localhost || true"`
    cannot fail."""
    always_present_files: tuple[str, ...] = ("/etc/hosts", "/etc/hostname", "/etc/resolv.conf", "/dev/null",
                                             "/proc/", "/sys/", "/dev/")
    """Paths every container has whatever the image: the kubelet writes the first three, the runtime mounts
    /proc, /sys and /dev (an entry ending in `/` covers what is below it). `cat /etc/hostname` cannot
    fail. Files of the image itself are not listed: whether the app creates or removes one (the
    `/tmp/healthy` pattern) cannot be told from the manifest."""
    static_extensions: tuple[str, ...] = (".html", ".htm", ".css", ".js", ".png", ".ico", ".svg", ".txt",
                                          ".jpg", ".gif")
    """An `httpGet` path ending like this is a file the web server serves from disk, which it keeps
    serving while the application behind it is broken. Empty: do not judge paths (a static site, whose
    files are the application)."""


def _basename(word: Any) -> str:
    return posixpath.basename(word) if isinstance(word, str) else ""


def _present(path: str, params: Params) -> bool:
    return any(path == f or (f.endswith("/") and path.startswith(f) and len(path) > len(f))
               for f in params.always_present_files)


def _exec_reason(command: Sequence[Any], params: Params) -> str | None:
    program = _basename(command[0])
    if program in _ALWAYS_TRUE:
        return f"`{program}` always succeeds"
    if program in _PRINTERS:
        return f"`{program}` always succeeds"
    if program in params.shells and len(command) >= 3 and command[1] == "-c" and isinstance(command[2], str):
        script = command[2].strip()
        if _WHOLE_SCRIPT_ZERO.fullmatch(script) or _PLAIN_ECHO.fullmatch(script):
            return "its script always exits 0"
        if _FORCED_ZERO.search(script):
            return "its script ends by forcing exit status 0"
        return None
    paths = [w for w in command[1:] if isinstance(w, str) and not w.startswith("-") and w not in ("]",)]
    if program in _READERS and paths and all(_present(p, params) for p in paths):
        return f"every container has {', '.join(paths)}"
    return None


def _declared_ports(container: Mapping[str, Any]) -> set[Any]:
    ports = container.get("ports")
    declared: set[Any] = set()
    for port in ports if isinstance(ports, list) else ():
        if is_mapping(port):
            declared.update(v for v in (port.get("containerPort"), port.get("name"))
                            if isinstance(v, int | str))
    return declared


def _other_container_port(port: Any, container: Container, workload: Workload) -> str | None:
    """The container, other than this one, that declares `port` (a number or a name), when this one
    does not: the probe then tests that container."""
    if not isinstance(port, int | str) or port in _declared_ports(container.spec):
        return None  # unset, or not a port at all (a list, a map: the API server rejects it)
    for other in workload.containers:
        if other.name != container.name and port in _declared_ports(other.spec):
            return other.name
    return None


def _reason(probe: Mapping[str, Any], container: Container, workload: Workload, params: Params) -> str | None:
    exec_ = probe.get("exec")
    if is_mapping(exec_):
        command = exec_.get("command")
        return _exec_reason(command, params) if isinstance(command, list) and command else None
    for kind in ("httpGet", "tcpSocket", "grpc"):
        handler = probe.get(kind)
        if not is_mapping(handler):
            continue
        port = handler.get("port")
        owner = _other_container_port(port, container, workload)
        if owner is not None:
            return f"port {shown(port)} belongs to container {owner}"
        path = handler.get("path") if kind == "httpGet" else None
        if isinstance(path, str) and params.static_extensions:
            file = path.split("?", 1)[0].lower()
            if file.endswith(tuple(e.lower() for e in params.static_extensions)):
                return f"{path} is a static file"
    return None


@container_check(
    id="probe-cannot-fail",
    category=Category.PROBES,
    severity=Severity.WARNING,
    title="Probe cannot fail",
    message="container {container}: {probes}",
    rationale="""
A probe that passes whatever state the application is in is a mock health check: it satisfies
`readiness-probe-missing` and `liveness-probe-missing` and every dashboard, while a hung or broken
process keeps receiving traffic (readiness) and is never restarted (liveness). It is usually left over
from making a chart pass a linter.

Only what the manifest proves is flagged:

- an `exec` probe that always exits 0: `true`, `:`, `echo`, `sh -c "exit 0"`, and a shell script whose
  last step forces the status (`curl -f localhost:8080 || true`, `...; exit 0`);
- `cat`, `ls`, `stat` or `test -e` of a path every container has whatever the image
  (`alwaysPresentFiles`: /etc/hostname and /etc/hosts, written by the kubelet; /proc, /sys, /dev);
- an `httpGet`, `tcpSocket` or `grpc` probe on a port that another container of the pod declares and this
  one does not: containers of a pod share one network namespace, so the probe tests that container (a
  sidecar's admin port), not this one;
- an `httpGet` of a static file (`staticExtensions`: `/index.html`, `/favicon.ico`), which the web server
  keeps serving from disk while the application behind it is down.

Not flagged, because the manifest cannot tell: `cat` of a file the image ships (the application may
create and remove it, as in the Kubernetes docs' `/tmp/healthy` example), a TCP probe on a port no
container declares (declaring ports is optional; kube-linter's `*-port` checks flag that case instead),
and an HTTP endpoint that always answers 200 whatever the application's state: only its documentation,
not the manifest, says it is static. A probe on a named port that no container declares never succeeds
rather than never fails (the kubelet cannot resolve it): it is not this check's concern. Batch workloads
are not judged.
""",
    remediation="""
Probe something that fails when the application cannot serve: an endpoint of the application itself
that checks what it needs (readiness), or that only the stuck process fails to answer (liveness).

```yaml
readinessProbe:
  httpGet: {path: /readyz, port: http}
livenessProbe:
  httpGet: {path: /livez, port: http}
```
""",
    params=Params,
    classes=LONG_RUNNING,
    roles=APP_AND_SIDECARS,
    references=("kube-linter:liveness-port", "kube-linter:readiness-port", "kube-linter:startup-port"),
)
def probe_cannot_fail(container: Container, workload: Workload, params: Params) -> Fail | None:
    spec = container.spec
    found = [(name, reason) for name in PROBES if is_mapping(probe := spec.get(name))
             and (reason := _reason(probe, container, workload, params))]
    if not found:
        return None
    return fail(probes="; ".join(f"{name} cannot fail ({reason})" for name, reason in found),
                field=found[0][0])
