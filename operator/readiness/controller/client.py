"""One source of credentials for both clients: Kopf's watches and our kubernetes-asyncio writes."""

from __future__ import annotations

from typing import Any

import aiohttp
import kopf
from kubernetes_asyncio import client as k8s
from kubernetes_asyncio import config as k8s_config

from readiness.controller.settings import OperatorSettings


async def load_configuration(settings: OperatorSettings) -> k8s.Configuration:
    """The in-cluster service account, else the kubeconfig (settings.kubeconfig, KUBECONFIG, ~/.kube)."""
    configuration = k8s.Configuration()
    if settings.kubeconfig is None:
        try:
            k8s_config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
            return configuration
        except k8s_config.ConfigException:
            pass
    await k8s_config.load_kube_config(config_file=settings.kubeconfig, client_configuration=configuration,
                                      persist_config=False)
    return configuration


def connection_info(configuration: k8s.Configuration) -> kopf.ConnectionInfo:
    token = (configuration.api_key or {}).get("authorization") or (configuration.api_key or {}).get(
        "BearerToken")
    scheme, _, value = (token or "").partition(" ")
    if scheme and not value:  # a bare token, no "Bearer " prefix
        scheme, value = "Bearer", scheme
    return kopf.ConnectionInfo(
        server=str(configuration.host),
        ca_path=configuration.ssl_ca_cert,
        insecure=not configuration.verify_ssl,
        certificate_path=configuration.cert_file,
        private_key_path=configuration.key_file,
        scheme=scheme if value else None,
        token=value or None,
        username=configuration.username or None,
        password=configuration.password or None,
    )


READ_BUFFER = 2**21
"""kubernetes-asyncio's read buffer: an object can be as large as etcd's 1.5 MiB request limit."""


async def api_client(settings: OperatorSettings) -> Any:
    configuration = await load_configuration(settings)
    # aiohttp's pool: enough connections for every write in flight plus reads, never unbounded.
    configuration.connection_pool_maxsize = settings.write_concurrency + 4
    api = k8s.ApiClient(configuration)
    api.user_agent = settings.user_agent
    _ignore_environment(api)
    return api


def _ignore_environment(api: k8s.ApiClient) -> None:
    """kubernetes-asyncio's aiohttp session trusts the environment: before every request it looks up
    HTTP(S)_PROXY and parses ~/.netrc, each in a thread (a quarter of the operator's CPU at start-up on
    10,000 workloads). Kopf's own session does not, so both clients now reach the API server the same
    way; a proxy named in the kubeconfig (`proxy-url`) is still passed with every request."""
    rest = api.rest_client
    environment_session = rest.pool_manager
    rest.pool_manager = aiohttp.ClientSession(connector=environment_session.connector, trust_env=False,
                                              read_bufsize=READ_BUFFER)
    environment_session.detach()  # the connector (and its TLS context) now belongs to the new session
