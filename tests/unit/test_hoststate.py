"""The saved kernel tunables of overlapping nodes: the first saves, the last to leave restores.

Only reads /proc/sys (the values never differ here, so nothing is written); the file goes to a temporary
XDG_CACHE_HOME.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from readiness.envtest import hoststate


@pytest.fixture(autouse=True)
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))


def holders() -> list[str]:
    found: list[str] = hoststate._read_saved(hoststate.saved_tunables_file()).get("holders", [])
    return found


def test_overlapping_nodes_share_the_first_save_and_the_last_restores() -> None:
    me = os.getpid()
    first = hoststate.save_tunables(f"{me}:1")
    assert first == hoststate.read_tunables()
    hoststate.save_tunables(f"{me}:2")
    assert holders() == [f"{me}:1", f"{me}:2"]
    hoststate.restore_tunables(f"{me}:1")
    assert holders() == [f"{me}:2"]  # still held: nothing written back yet
    hoststate.restore_tunables(f"{me}:2")
    assert not hoststate.saved_tunables_file().exists()


def test_a_file_left_by_crashed_runs_only_is_restored_not_resaved() -> None:
    path = hoststate.saved_tunables_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    originals = hoststate.read_tunables()
    hoststate._replace(path, {"values": originals, "holders": ["999999999:7"]})  # no such process
    hoststate.save_tunables(f"{os.getpid()}:3")
    assert holders() == [f"{os.getpid()}:3"]
    assert hoststate._read_saved(path)["values"] == originals


def test_never_the_namespaces_we_are_in() -> None:
    own = hoststate.NodeTrace(net_ns=os.stat("/proc/self/ns/net").st_ino,
                              mnt_ns=os.stat("/proc/self/ns/mnt").st_ino)
    assert hoststate._node_pids(own) == set()
