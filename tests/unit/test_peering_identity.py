"""The operator names itself to Kopf's peering without asking the passwd database.

Regression: `kopf.run()` without `identity=` falls back to `getpass.getuser()`, which raises
`KeyError: 'getpwuid(): uid not found: 65532'` in our image (uid 65532 has no passwd entry), and both
replicas crash-looped. The end-to-end suite runs the image for real (tests/node); these pin the cause.
"""

from __future__ import annotations

import getpass
import os
import socket
from typing import Any

import pytest

from readiness.controller import app
from readiness.controller.settings import OperatorSettings, from_args
from readiness.peering import identity_from_environ


def test_identity_is_the_pod_name() -> None:
    pod = "readiness-operator-7d9f-abcde"
    assert identity_from_environ({"POD_NAME": pod}) == pod


def test_identity_without_a_pod_is_host_and_pid() -> None:
    assert identity_from_environ({}) == f"{socket.gethostname()}/{os.getpid()}"


def test_settings_carry_an_identity_and_an_explicit_one_wins() -> None:
    import argparse

    from readiness.controller.settings import add_arguments
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    derived = from_args(parser.parse_args([]), environ={"POD_NAME": "pod-a"})
    assert derived.identity == "pod-a"
    explicit = from_args(parser.parse_args(["--identity", "mine"]), environ={"POD_NAME": "pod-a"})
    assert explicit.identity == "mine"


def test_kopf_gets_the_identity_and_never_calls_getuser(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_passwd_entry() -> str:
        raise KeyError("getpwuid(): uid not found: 65532")

    seen: dict[str, Any] = {}
    monkeypatch.setattr(getpass, "getuser", no_passwd_entry)
    monkeypatch.setattr(app.kopf, "run", lambda **kwargs: seen.update(kwargs))
    app.run(OperatorSettings(identity="pod-b", peering="readiness-operator", standalone=False))
    assert seen["identity"] == "pod-b"
