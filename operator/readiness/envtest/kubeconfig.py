"""Self-contained kubeconfig files (credentials embedded), written as JSON, which is valid YAML."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def local_cluster(server: str, ca_pem: bytes) -> dict[str, Any]:
    """The kubeconfig ``cluster`` stanza for a server whose CA is ``ca_pem``."""
    return {"server": server, "certificate-authority-data": _b64(ca_pem)}


def write_kubeconfig(path: Path, cluster: dict[str, Any], user: str, credentials: dict[str, str]) -> Path:
    """Write a one-context kubeconfig for ``user`` (``credentials`` is the kubeconfig ``user`` stanza)."""
    config: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "envtest", "cluster": cluster}],
        "users": [{"name": user, "user": credentials}],
        "contexts": [{"name": user, "context": {"cluster": "envtest", "user": user}}],
        "current-context": user,
    }
    path.touch(mode=0o600)
    path.write_text(json.dumps(config, indent=2) + "\n")
    return path


def cert_credentials(cert_pem: bytes, key_pem: bytes) -> dict[str, str]:
    return {"client-certificate-data": _b64(cert_pem), "client-key-data": _b64(key_pem)}


def token_credentials(token: str) -> dict[str, str]:
    return {"token": token}
