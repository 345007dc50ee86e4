"""What a node changes on the host, saved before and put back after, even when the harness crashed.

A node runs in its own network and mount namespaces, so its mounts, bridge and iptables rules vanish with
its processes. Three things outlive them and are restored here:
- the kernel tunables kubelet rewrites (global, not per namespace), saved to one file per machine
  *before* kubelet starts, with the nodes that hold it: overlapping nodes share the first one's
  originals, the last to stop writes them back, and a file left by crashed runs only is restored before
  anything is saved, so kubelet's values are never taken for the host's;
- processes that escape the harness's process groups (containerd shims re-parent to init, and the
  containers under them): found by namespace and by cgroup, and killed;
- the cgroups kubelet creates under its own ``cgroupRoot``, removed bottom-up once empty.

`NodeTrace` is written to the run directory as JSON: ``python -m readiness.envtest node down --dir DIR``
and the guard process (``python -m readiness.envtest.hoststate GUARD-FILE``, started with every node,
which waits for its parent to go away) both call `restore` with it. `restore` is idempotent.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from readiness.envtest.binaries import cache_root

KERNEL_TUNABLES = (
    "vm/overcommit_memory", "vm/panic_on_oom", "kernel/panic", "kernel/panic_on_oops",
    "kernel/keys/root_maxkeys", "kernel/keys/root_maxbytes",
)
"""What kubelet's container manager sets (``setupKernelTunables``) when ``protectKernelDefaults`` is off."""

CGROUP_ROOT = Path("/sys/fs/cgroup")
_KILL_ROUNDS = 50


def saved_tunables_file() -> Path:
    """One file per machine: the host's original tunables while any node has changed them."""
    return cache_root() / "node-host-tunables.json"


def read_tunables() -> dict[str, str]:
    return {name: (Path("/proc/sys") / name).read_text().strip() for name in KERNEL_TUNABLES
            if (Path("/proc/sys") / name).exists()}


@contextlib.contextmanager
def _tunables_lock() -> Iterator[Path]:
    path = saved_tunables_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield path


def _read_saved(path: Path) -> dict[str, Any]:
    try:
        saved: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return saved if isinstance(saved.get("values"), dict) else {}


def _live(holders: list[str]) -> list[str]:
    """Holders whose harness still runs (``PID:NETNS``); a crashed one's guard normally removes it."""
    return [holder for holder in holders if Path(f"/proc/{holder.split(':', 1)[0]}").exists()]


def save_tunables(holder: str) -> dict[str, str]:
    """Record the host's tunables before a node changes them; return the originals.

    Nodes may overlap (two test runs on one machine): the first saves the values, later ones only add
    themselves as holders, and the last to leave writes them back. A file left by crashed runs only (no
    live holder) is restored first, so its originals are never taken for kubelet's values.
    """
    with _tunables_lock() as path:
        saved = _read_saved(path)
        if saved and not _live(saved.get("holders", [])):
            _write_tunables(saved["values"])
            saved = {}
        if not saved:
            saved = {"values": read_tunables(), "holders": []}
        saved["holders"] = [*_live(saved["holders"]), holder]
        _replace(path, saved)
        values: dict[str, str] = saved["values"]
        return values


def restore_tunables(holder: str | None = None) -> dict[str, str]:
    """Drop ``holder`` (None: any dead one); once no live holder is left, write the originals back and
    forget them. Return what was changed back (name -> value)."""
    with _tunables_lock() as path:
        saved = _read_saved(path)
        if not saved:
            return {}
        holders = [h for h in _live(saved.get("holders", [])) if h != holder]
        if holders:
            _replace(path, {**saved, "holders": holders})
            return {}
        path.unlink(missing_ok=True)
        return _write_tunables(saved["values"])


def _write_tunables(values: dict[str, str]) -> dict[str, str]:
    changed = {}
    for name, value in values.items():
        target = Path("/proc/sys") / name
        with contextlib.suppress(OSError):
            if target.read_text().strip() != value:
                target.write_text(value)
                changed[name] = value
    return changed


def _replace(path: Path, content: dict[str, Any]) -> None:
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(content, indent=2) + "\n")
    os.replace(temporary, path)


@dataclass
class NodeTrace:
    """What one node started, so that anyone can clean up after it."""

    net_ns: int = 0
    """Inode of the node's network namespace (``stat /proc/PID/ns/net``)."""
    mnt_ns: int = 0
    """Inode of the node's mount namespace."""
    cgroup_root: str = ""
    """kubelet's ``cgroupRoot`` (e.g. ``/readiness-node-1234``), created in every v1 hierarchy."""
    tunables_saved: bool = False
    """Whether this node holds the saved tunables (``holder`` below)."""
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def holder(self) -> str:
        """This node's name among the holders of the saved tunables: ``HARNESS_PID:NETNS_INODE``."""
        return f"{self.extra.get('harness_pid', '0')}:{self.net_ns}"

    def write(self, path: Path) -> None:
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(asdict(self), indent=2) + "\n")
        os.replace(temporary, path)

    @classmethod
    def read(cls, path: Path) -> NodeTrace:
        return cls(**json.loads(path.read_text()))


def restore(trace: NodeTrace) -> list[str]:
    """Kill what is left of the node, remove its cgroups and restore the tunables; say what was done."""
    done: list[str] = []
    killed = kill_leftovers(trace)
    if killed:
        done.append(f"killed {killed} leftover processes")
    removed = remove_cgroups(trace.cgroup_root)
    if removed:
        done.append(f"removed {removed} cgroups under {trace.cgroup_root}")
    if trace.tunables_saved:
        changed = restore_tunables(trace.holder)
        if changed:
            done.append("restored " + ", ".join(f"{k}={v}" for k, v in sorted(changed.items())))
    return done


def kill_leftovers(trace: NodeTrace) -> int:
    """SIGKILL every process in the node's namespaces or cgroups until none is left."""
    total = 0
    for _ in range(_KILL_ROUNDS):
        pids = _node_pids(trace) - {os.getpid()}
        if not pids:
            return total
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        total += len(pids)
        time.sleep(0.1)
    return total


def _node_pids(trace: NodeTrace) -> set[int]:
    pids = _pids_in_cgroups(trace.cgroup_root) if trace.cgroup_root else set()
    # Never the namespaces we are in: a trace written before the node's own existed must not kill the host.
    own = {("net", _ns_inode(Path("/proc/self"), "net")), ("mnt", _ns_inode(Path("/proc/self"), "mnt"))}
    wanted = {("net", trace.net_ns), ("mnt", trace.mnt_ns)} - {("net", 0), ("mnt", 0)} - own
    if not wanted:
        return pids
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and any(_ns_inode(entry, kind) == inode for kind, inode in wanted):
            pids.add(int(entry.name))
    return pids


def _ns_inode(proc: Path, kind: str) -> int:
    try:
        return os.stat(proc / "ns" / kind).st_ino
    except OSError:
        return -1


def _cgroup_dirs(cgroup_root: str) -> list[Path]:
    """Every directory of ``cgroup_root``'s subtrees in all hierarchies, deepest first."""
    if not cgroup_root.strip("/"):
        return []  # never the root cgroup itself
    found: list[Path] = []
    for hierarchy in CGROUP_ROOT.iterdir() if CGROUP_ROOT.is_dir() else ():
        top = hierarchy / cgroup_root.strip("/")
        if top.is_dir():
            found += [Path(d) for d, _, _ in os.walk(top)]
    return sorted(found, key=lambda p: len(p.parts), reverse=True)


def _pids_in_cgroups(cgroup_root: str) -> set[int]:
    pids: set[int] = set()
    for directory in _cgroup_dirs(cgroup_root):
        with contextlib.suppress(OSError):
            pids |= {int(line) for line in (directory / "cgroup.procs").read_text().split()}
    return pids


def remove_cgroups(cgroup_root: str) -> int:
    removed = 0
    for directory in _cgroup_dirs(cgroup_root):
        with contextlib.suppress(OSError):
            directory.rmdir()
            removed += 1
    return removed


def guard(trace_file: Path) -> int:
    """Block until our stdin closes (the harness exited, however it did), then restore the host."""
    with contextlib.suppress(OSError):
        while sys.stdin.buffer.read(4096):
            pass
    if trace_file.exists():
        for line in restore(NodeTrace.read(trace_file)):
            print(f"node guard: {line}", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C in the terminal is for the harness, not us
    sys.exit(guard(Path(sys.argv[1])))
