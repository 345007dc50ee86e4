"""Small pure helpers shared by several checks: Kubernetes quantities, int-or-percent values,
effective security-context fields, probe handlers and image references.

Everything here sits on the hot path of `Engine.evaluate`: plain dict lookups, no per-call regex
compilation, and memoised parsing of the strings that repeat across a cluster (quantities).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any, TypeGuard

from readiness.workload import EMPTY, Container, Workload, describe

# -- fast type tests -----------------------------------------------------------------------------------
# Manifests come from YAML and JSON, so they are plain dicts. `isinstance(x, Mapping)` goes through the
# ABC machinery and costs several dict lookups; test the concrete type first and fall back to the ABC.


def is_mapping(value: Any) -> TypeGuard[Mapping[str, Any]]:
    return value.__class__ is dict or (value is not None and isinstance(value, Mapping))


def mapping(value: Any) -> Mapping[str, Any]:
    """`value` when it is a mapping, otherwise an empty one (absent or malformed fields read as unset)."""
    if value.__class__ is dict:
        return value
    return value if value is not None and isinstance(value, Mapping) else EMPTY


def security_context(container: Container) -> Mapping[str, Any]:
    sc = container.spec.get("securityContext")
    if sc.__class__ is dict:  # `mapping()` inlined: eight checks call this for every container
        return sc
    return sc if sc is not None and isinstance(sc, Mapping) else EMPTY


def pod_security_context(workload: Workload) -> Mapping[str, Any]:
    sc = workload.pod_spec.get("securityContext")
    if sc.__class__ is dict:
        return sc
    return sc if sc is not None and isinstance(sc, Mapping) else EMPTY


def shown(value: Any) -> str:
    """A manifest value as a finding prints it: str(), except for an integer too long for str() (over
    4,300 digits), which is described instead (`a 5001-digit number`)."""
    if value.__class__ is str:
        return value
    try:
        return str(value)
    except ValueError:
        return describe(value)


# -- quantities ----------------------------------------------------------------------------------------

_QUANTITY = re.compile(r"^([+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+))([eE][+-]?[0-9]+|[a-zA-Z]*)$")
_SUFFIXES: dict[str, float] = {
    "": 1.0, "n": 1e-9, "u": 1e-6, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18,
    "Ki": 2.0**10, "Mi": 2.0**20, "Gi": 2.0**30, "Ti": 2.0**40, "Pi": 2.0**50, "Ei": 2.0**60,
}


_PARSED: dict[str, float] = {}
_MAX_PARSED = 4096


def _parse_quantity_text(text: str) -> float:
    match = _QUANTITY.match(text.strip())
    if match is None:
        raise ValueError(f"{text!r} is not a Kubernetes quantity")
    number, suffix = match.groups()
    if suffix[:1] in ("e", "E") and suffix[1:].lstrip("+-").isdigit():  # 1e3, not the exa suffixes E, Ei
        return float(number + suffix)
    try:
        return float(number) * _SUFFIXES[suffix]
    except KeyError:
        raise ValueError(f"{text!r}: unknown quantity suffix {suffix!r}") from None


def parse_quantity(value: Any) -> float:
    """A Kubernetes resource quantity as a float in base units (cores, bytes).

    Accepts numbers and strings with decimal SI (`m`, `k`, `M`, `G`...), binary (`Ki`, `Mi`, `Gi`...) or
    exponent (`1e3`, `12E-1`) suffixes. Raises ValueError on anything else, including booleans.
    """
    kind = value.__class__
    if kind is str:
        parsed = _PARSED.get(value)
        if parsed is None:  # quantities repeat across a cluster: parse each spelling once
            parsed = _parse_quantity_text(value)
            if len(_PARSED) >= _MAX_PARSED:
                _PARSED.clear()
            _PARSED[value] = parsed
        return parsed
    if kind is float:
        return value  # type: ignore[no-any-return]
    if kind is int:
        try:
            return float(value)
        except OverflowError:  # past float range (309+ digits): as "1e400" parses, infinite
            return math.inf if value > 0 else -math.inf
    raise ValueError(f"{value!r} is not a Kubernetes quantity")


# -- int-or-percent ------------------------------------------------------------------------------------


def scaled_value(value: Any, total: int, round_up: bool) -> int:
    """Resolve an IntOrString such as maxUnavailable against `total`, as Kubernetes'
    GetScaledValueFromIntOrPercent does: `25%` of 10 is 2 rounding down, 3 rounding up.
    Raises ValueError on anything that is neither an integer nor a percentage."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        if value.endswith("%"):
            percent = int(value[:-1])
            # integer arithmetic: exact, and no OverflowError on totals past float range
            return -(-percent * total // 100) if round_up else percent * total // 100
        return int(value)
    raise ValueError(f"{value!r} is neither an integer nor a percentage")


def resolve_rolling_update(max_unavailable: Any, max_surge: Any, replicas: int) -> tuple[int, int]:
    """(maxUnavailable, maxSurge) of a Deployment's rolling update as absolute pod counts, as the
    deployment controller resolves them: unavailable rounds down, surge rounds up, and when both come
    out as zero, one pod may be unavailable (otherwise the rollout could never progress)."""
    surge = scaled_value(max_surge, replicas, round_up=True)
    unavailable = scaled_value(max_unavailable, replicas, round_up=False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return unavailable, surge


# -- security contexts ---------------------------------------------------------------------------------


def effective(container: Container, workload: Workload, key: str) -> Any:
    """A securityContext field as the kubelet applies it: the container's value wins over the pod's."""
    value = security_context(container).get(key)
    if value is None:
        value = pod_security_context(workload).get(key)
    return value


def added_capabilities(container: Container) -> list[Any]:
    added = mapping(security_context(container).get("capabilities")).get("add")
    return added if isinstance(added, list) else []


def normalize_capability(name: Any) -> str:
    """`cap_net_raw`, `NET_RAW` and `CAP_NET_RAW` all name the same capability."""
    text = shown(name).upper()
    return text[4:] if text.startswith("CAP_") else text


# -- probes --------------------------------------------------------------------------------------------

PROBE_DEFAULTS = {"periodSeconds": 10, "failureThreshold": 3, "timeoutSeconds": 1}
"""What the API server fills in when a probe leaves these fields unset."""


def probe_field(probe: Mapping[str, Any], key: str) -> int:
    value = probe.get(key)
    return value if value.__class__ is int else PROBE_DEFAULTS[key]


def _port(value: Any, container: Container) -> Any:
    """A named port resolved to its number, so `port: http` and `port: 8080` compare equal."""
    if not isinstance(value, str):
        return value
    for port in container.spec.get("ports") or ():
        if is_mapping(port) and port.get("name") == value:
            return port.get("containerPort", value)
    return value


def same_handler(a: Mapping[str, Any], b: Mapping[str, Any], container: Container) -> bool:
    """Whether two probes of `container` hit the same endpoint (and so fail together)."""
    for kind in ("httpGet", "tcpSocket", "grpc", "exec"):
        ha, hb = a.get(kind), b.get(kind)
        if ha is None and hb is None:
            continue
        if not is_mapping(ha) or not is_mapping(hb):
            return False
        if kind == "exec":
            return bool(ha.get("command") == hb.get("command"))
        if kind == "httpGet" and (ha.get("path") or "/") != (hb.get("path") or "/"):
            return False
        if kind == "grpc" and ha.get("service") != hb.get("service"):
            return False
        return bool(_port(ha.get("port"), container) == _port(hb.get("port"), container))
    return False


def liveness_at_least_as_strict(liveness: Mapping[str, Any], readiness: Mapping[str, Any]) -> bool:
    """Whether liveness gives up no later than readiness: a failure window (periodSeconds x
    failureThreshold) no longer, and a timeout no longer, so any stall that makes the pod unready
    also gets it killed."""
    window_l = probe_field(liveness, "periodSeconds") * probe_field(liveness, "failureThreshold")
    window_r = probe_field(readiness, "periodSeconds") * probe_field(readiness, "failureThreshold")
    return window_l <= window_r and probe_field(liveness, "timeoutSeconds") <= probe_field(
        readiness, "timeoutSeconds")


# -- images --------------------------------------------------------------------------------------------


def image_tag(image: str) -> str | None:
    """The tag of an image reference, or None when it has none. The registry's port is not a tag:
    in `registry:5000/app` the colon sits before the last slash."""
    reference = image.partition("@")[0]
    last = reference.rpartition("/")[2]
    _name, colon, tag = last.partition(":")
    return tag if colon else None


def has_digest(image: str) -> bool:
    return "@sha256:" in image or "@sha512:" in image


# -- workloads -----------------------------------------------------------------------------------------


def hpa_min_replicas(workload: Workload, context_hpas: Mapping[tuple[str, str, str], int]) -> int | None:
    ref = workload.ref
    return context_hpas.get((ref.namespace, ref.kind, ref.name)) if context_hpas else None


# -- resources -----------------------------------------------------------------------------------------


def resource(container: Container, section: str, name: str) -> Any:
    """`resources.<section>.<name>` of a container (requests.cpu, limits.memory...), or None. Requests
    are read as the pods will have them: see `requests`."""
    resources = container.spec.get("resources")
    if not resources:
        return None
    if resources.__class__ is not dict:  # `mapping()` inlined for plain dicts: four checks per container
        resources = mapping(resources)
    values = resources.get(section)
    if values.__class__ is not dict:
        values = mapping(values)
    value = values.get(name)
    if value is None and section == "requests":  # defaulted from the limit, as `requests` explains
        value = mapping(resources.get("limits")).get(name)
    return value


def requests(container: Container) -> Mapping[str, Any]:
    """A container's resource requests as the API server stores them on its pods: every resource with a
    limit and no request requests its limit (cpu, memory, ephemeral-storage, hugepages, extended
    resources alike), for app, init and sidecar containers (SetDefaults_Pod in
    kubernetes pkg/apis/core/v1/defaults.go). Only Pods are defaulted, not pod templates, so a stored
    Deployment still shows no requests while every pod it creates has them: judging the defaulted values
    makes a manifest, its stored object and its pods agree."""
    resources = mapping(container.spec.get("resources"))
    declared = mapping(resources.get("requests"))
    limits = mapping(resources.get("limits"))
    if all(name in declared for name in limits):
        return declared
    return {**limits, **declared}


def expected_replicas(workload: Workload, context_hpas: Mapping[tuple[str, str, str], int],
                      ) -> tuple[int, bool]:
    """(the replica count the workload can run at, whether an HPA manages it). An autoscaled workload
    can drop to the HPA's minReplicas whatever its manifest says."""
    minimum = hpa_min_replicas(workload, context_hpas)
    if minimum is not None:
        return minimum, True
    return workload.replicas or 0, False
