"""Kopf peering priorities for replicas that have no ordinal: the pods of a Deployment.

Kopf lets only the highest-priority operator of a peering run, and replicas with EQUAL priorities all
freeze. A Deployment's pods are interchangeable (no ordinal to count from), and a Deployment cannot give
each pod a different environment value, so each replica derives its priority from its own identity:
the pod's UID (or name), exposed through the downward API, hashed to 32 bits. Two replicas collide with
a probability of about 1 in 4 billion; a restarted or rescheduled pod gets a new UID, so even that
collision would not outlive one rollout. Which replica wins does not matter: they are identical.

The chart sets `READINESS_PRIORITY_FROM=POD_UID` and `POD_UID` (fieldRef `metadata.uid`). An explicit
`--priority` / `READINESS_PRIORITY` always wins over the derived value.
"""

from __future__ import annotations

import hashlib
import os
import socket
from collections.abc import Mapping

PRIORITY_FROM_ENV = "READINESS_PRIORITY_FROM"
"""Names the variable holding this replica's identity: `POD_UID` (recommended) or `POD_NAME`."""
IDENTITY_VARIABLES = ("POD_UID", "POD_NAME")
PRIORITY_BITS = 32


def identity_from_environ(environ: Mapping[str, str] | None = None) -> str:
    """This replica's peering identity: ``$POD_NAME``, else ``hostname/pid`` (unique on one machine).

    Kopf's default calls ``getpass.getuser()``, which raises KeyError when the process's uid has no
    passwd entry (an image run as ``runAsUser: 65532``, or any uid OpenShift picks): never rely on it.
    """
    environ = os.environ if environ is None else environ
    pod = environ.get("POD_NAME", "").strip()
    return pod or f"{socket.gethostname()}/{os.getpid()}"


def priority_of(identity: str) -> int:
    """A stable priority in [0, 2**32) for a pod identity: the first 32 bits of its SHA-256."""
    if not identity:
        raise ValueError("a peering priority needs a non-empty pod identity")
    digest = hashlib.sha256(identity.encode()).hexdigest()
    return int(digest[: PRIORITY_BITS // 4], 16)


def priority_from_environ(environ: Mapping[str, str] | None = None) -> int | None:
    """The priority derived from `$READINESS_PRIORITY_FROM`'s variable, or None when it is unset.

    Raises ValueError, with a one-line reason, when it names an unknown variable or an empty one (a pod
    spec missing its downward-API entry must not silently fall back to a shared priority).
    """
    environ = os.environ if environ is None else environ
    source = environ.get(PRIORITY_FROM_ENV, "").strip()
    if not source:
        return None
    if source not in IDENTITY_VARIABLES:
        raise ValueError(f"{PRIORITY_FROM_ENV}: expected one of {', '.join(IDENTITY_VARIABLES)}, "
                         f"got {source!r}")
    identity = environ.get(source, "").strip()
    if not identity:
        raise ValueError(f"{PRIORITY_FROM_ENV}={source}, but ${source} is empty: set it from the downward "
                         f"API (fieldRef metadata.{'uid' if source == 'POD_UID' else 'name'})")
    return priority_of(identity)
