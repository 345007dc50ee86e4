"""Helpers shared by the cluster suite (tests/cluster) and the node suite (tests/node)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any, TypeVar

from readiness.envtest import Kubectl

T = TypeVar("T")


def wait_until(predicate: Callable[[], T], timeout: float = 20.0, message: str = "condition",
               interval: float = 0.1) -> T:
    """Poll `predicate` until it returns something truthy; fail with `message` after `timeout`."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except Exception as error:  # a not-yet-existing object while waiting
            last_error = error
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {message}"
                         + (f" (last error: {last_error})" if last_error else ""))


def get_json(kubectl: Kubectl, *args: str) -> Any:
    return json.loads(kubectl("get", *args, "-o", "json").stdout)
