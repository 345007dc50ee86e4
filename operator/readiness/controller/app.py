"""Build and run the operator: Kopf settings, handler registry, startup and cleanup."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
from typing import Any

import kopf
from kopf._core.engines.peering import Identity  # kopf.run()'s type, not re-exported

from readiness.controller import client, ticker
from readiness.controller.auditor import Auditor, AuditQueue
from readiness.controller.handlers import (
    TIMER_TICK,
    Runtime,
    on_policy_tick,
    policy_due,
    register,
    watched_kinds,
)
from readiness.controller.heap import HeapKeeper
from readiness.controller.publisher import Publisher
from readiness.controller.settings import OperatorSettings
from readiness.controller.writer import Writer
from readiness.metrics import ReadinessMetrics
from readiness.policy import API_GROUP, KIND
from readiness.workload import BUILTIN_KINDS, KindRegistry

log = logging.getLogger(__name__)


class PolicyDiffBaseStorage(kopf.AnnotationsDiffBaseStorage):
    """Kopf's default diff-base storage, but only for ReadinessPolicies.

    On every event of every watched object, Kopf builds the object's "essence" (a deep copy without
    status and system metadata) to detect changes for `on.create/update` handlers, whether or not the
    kind has any. Only policies have them: for workloads, namespaces, PDBs and HPAs the essence is never
    used, and its deep copies (built, then cleared of Kopf's progress keys) were about a third of the
    operator's CPU during a start-up on 1,000 Deployments (cProfile). Those kinds get an empty essence; no
    `last-handled-configuration` is ever stored on them anyway (no changing handlers).
    """

    def build(self, *, body: kopf.Body, extra_fields: Any = None) -> kopf.BodyEssence:
        if body.get("kind") != KIND or not str(body.get("apiVersion") or "").startswith(API_GROUP + "/"):
            return kopf.BodyEssence()
        return super().build(body=body, extra_fields=extra_fields)


def kopf_settings(ours: OperatorSettings) -> kopf.OperatorSettings:
    """Kopf's settings for an operator watching every workload of a big cluster."""
    settings = kopf.OperatorSettings()
    # Deliberate Events only: Kopf would otherwise mirror log lines onto objects.
    settings.posting.enabled = False
    settings.posting.loggers = False
    # An int: Kopf passes it through as `timeoutSeconds`, and the API server rejects "300.0" (400).
    settings.watching.server_timeout = int(ours.watch_server_timeout)
    settings.watching.client_timeout = ours.watch_client_timeout
    settings.watching.connect_timeout = ours.connect_timeout
    settings.watching.chunk_size = ours.list_chunk_size or None
    settings.networking.connect_timeout = ours.connect_timeout
    settings.networking.request_timeout = ours.request_timeout
    settings.queueing.worker_limit = ours.worker_limit or None
    settings.queueing.idle_timeout = ours.worker_idle_timeout
    settings.peering.standalone = ours.standalone
    settings.peering.clusterwide = True
    settings.peering.priority = ours.priority
    if ours.peering:
        settings.peering.name = ours.peering
        settings.peering.mandatory = True
    # Policies are few: Kopf's default persistence (annotations on the policy) is fine for them.
    settings.persistence.diffbase_storage = PolicyDiffBaseStorage()
    return settings


def build(ours: OperatorSettings) -> tuple[kopf.OperatorRegistry, kopf.OperatorSettings, Runtime]:
    """A registry with every handler, Kopf's settings, and the runtime they share."""
    kinds = KindRegistry(BUILTIN_KINDS)
    runtime = Runtime(ours, kinds, watched_kinds(ours, kinds), metrics=ReadinessMetrics())
    registry = kopf.OperatorRegistry()
    runtime.registry = registry
    register(runtime, registry)
    _register_lifecycle(runtime, registry)
    return registry, kopf_settings(ours), runtime


def _register_lifecycle(runtime: Runtime, registry: kopf.OperatorRegistry) -> None:
    @kopf.on.login(id="login", registry=registry)
    async def login(**_: Any) -> kopf.ConnectionInfo:
        return client.connection_info(await client.load_configuration(runtime.settings))

    @kopf.on.startup(id="startup", registry=registry)
    async def startup(settings: kopf.OperatorSettings, **kwargs: Any) -> None:
        await start(runtime, settings, kwargs)

    @kopf.on.cleanup(id="cleanup", registry=registry)
    async def cleanup(**_: Any) -> None:
        await stop(runtime)


async def start(runtime: Runtime, kopf_settings: kopf.OperatorSettings, indexes: dict[str, Any]) -> None:
    ours, state = runtime.settings, runtime.state
    # Kopf hands the (still filling) indexes to startup handlers: keep them for every later audit.
    state.policies = indexes["policies"]
    state.namespaces = indexes["namespaces"]
    state.pdbs = indexes["pdbs"]
    state.hpas = indexes["hpas"]
    state.service_accounts = indexes["service_accounts"]
    runtime.api = await client.api_client(ours)
    runtime.writer = Writer(
        runtime.api, runtime.metrics, concurrency=ours.write_concurrency, attempts=ours.retry_attempts,
        base_delay=ours.retry_base_delay, max_delay=ours.retry_max_delay, event_rate=ours.event_rate,
        event_burst=ours.event_burst, request_timeout=ours.request_timeout)
    runtime.heap = HeapKeeper(ours.gc_freeze_every, ours.gc_full_interval)
    runtime.heap.start()
    runtime.auditor = Auditor(ours, state, runtime.metrics, runtime.writer, runtime.heap)
    # Twice the writes in flight: while some audits wait for the writer, others evaluate.
    runtime.audits = AuditQueue(runtime.auditor, workers=2 * ours.write_concurrency)
    runtime.audits.start()
    runtime.publisher = Publisher(ours, runtime.auditor, runtime.writer)
    if ours.metrics_port:
        runtime.metrics_port = runtime.metrics.serve(ours.metrics_port, ours.metrics_address)
    runtime.tasks.append(asyncio.create_task(runtime.publisher.run(ours.status_interval)))
    runtime.tasks.append(asyncio.create_task(_periodic_audits(runtime)))
    if ours.webhook_enabled:
        # Imported only when enabled: the webhook's dependencies are not needed otherwise.
        webhook = importlib.import_module("readiness.webhook")
        webhook.configure(kopf_settings, ours, state, registry=runtime.registry)


async def _periodic_audits(runtime: Runtime) -> None:
    writer = runtime.writer
    assert writer is not None
    await ticker.run(
        policies=lambda: list(runtime.state.policies),
        due=lambda name, now: policy_due(runtime, name, now),
        tick=lambda name: on_policy_tick(runtime, name),
        active=lambda: ticker.is_active(runtime.settings, writer),
        interval=TIMER_TICK)


async def stop(runtime: Runtime) -> None:
    if runtime.audits is not None:
        await runtime.audits.stop()
    for task in runtime.tasks:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
    runtime.tasks.clear()
    if runtime.publisher is not None:
        with contextlib.suppress(Exception):
            await runtime.publisher.flush()  # the last verdicts reach the status before we exit
    if runtime.auditor is not None:
        with contextlib.suppress(Exception):
            await runtime.auditor.close()  # pending Events are posted before the client closes
    if runtime.api is not None:
        await runtime.api.close()
    runtime.metrics.close()
    if runtime.heap is not None:
        runtime.heap.stop()


def run(ours: OperatorSettings) -> None:
    """Run until SIGINT/SIGTERM, cluster-wide."""
    registry, settings, _runtime = build(ours)
    kopf.run(registry=registry, settings=settings, clusterwide=True, standalone=ours.standalone,
             priority=ours.priority, peering_name=ours.peering, liveness_endpoint=ours.liveness,
             identity=Identity(ours.identity) if ours.identity else None)
