"""The periodic re-audit of every policy: one operator-wide task, not a Kopf timer per policy.

A `@kopf.timer` (or daemon) makes Kopf put its finalizer on every policy, whatever the delete handler
says (nolar/kopf#1074): deleting a policy while the operator is stopped, or after it was uninstalled,
then hangs forever. Without timers Kopf needs no finalizer on policies, and removes the one an older
release left as soon as it sees the policy. What a policy owns (PrometheusRule or ConfigMap,
PolicyReports) carries an ownerReference, so the garbage collector deletes it without the operator.

A Kopf timer also stops while peering pauses a standby replica; this task asks the peering object itself
before a due audit (one read per due tick, at most one a second), so a standby never writes verdicts from
its frozen view of the cluster.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from readiness.controller.settings import OperatorSettings
from readiness.controller.writer import Writer

log = logging.getLogger(__name__)

PEERING_PATH = "/apis/kopf.dev/v1/clusterkopfpeerings/{name}"
DEFAULT_PEERING = "default"
"""Kopf's peering name when none is given (then optional: a missing object means standalone)."""


def _parse_time(text: object) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def active_by_peering(status: Mapping[str, Any] | None, identity: str, priority: int,
                      now: datetime) -> bool:
    """Kopf's own rule (kopf/_core/engines/peering.py): a replica pauses while another live peer has a
    higher priority, or the same one. `status` is the peering object's status, {identity: {priority,
    lifetime, lastseen}}; a peer is live until lastseen + lifetime."""
    for peer, info in (status or {}).items():
        if peer == identity or not isinstance(info, Mapping):
            continue
        seen = _parse_time(info.get("lastseen"))
        try:
            lifetime, theirs = int(info.get("lifetime", 60)), int(info.get("priority", 0))
        except (TypeError, ValueError):
            continue
        if seen is not None and seen + timedelta(seconds=lifetime) <= now:
            continue  # dead: Kopf ignores it too
        if theirs >= priority:
            return False
    return True


async def is_active(settings: OperatorSettings, writer: Writer) -> bool:
    """Whether this replica is the one Kopf's peering lets handle events."""
    if settings.standalone:
        return True
    name = settings.peering or DEFAULT_PEERING
    try:
        body = await writer.read("read_peering", PEERING_PATH.format(name=name))
    except Exception as error:  # unreadable: do not audit from a view that may be frozen
        log.warning("periodic audit skipped: the peering object %s could not be read: %s", name, error)
        return False
    if body is None:
        return settings.peering is None  # Kopf runs standalone without an optional peering object
    return active_by_peering(body.get("status"), settings.identity, settings.priority, datetime.now(UTC))


async def run(policies: Callable[[], list[str]], due: Callable[[str, float], bool],
              tick: Callable[[str], Awaitable[None]], active: Callable[[], Awaitable[bool]],
              interval: float) -> None:
    """Every `interval` seconds: tick each due policy, when this replica is active."""
    while True:
        await asyncio.sleep(interval)
        now = time.monotonic()  # the clock of Runtime.last_periodic
        names = [name for name in policies() if due(name, now)]
        if not names or not await active():
            continue
        for name in names:
            try:
                await tick(name)
            except Exception:  # one policy's failure must not stop the others' periodic audits
                log.exception("periodic audit of policy %s failed", name)
