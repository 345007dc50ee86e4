"""Hostile input at admission (issue 12, items 10-13): oversized and malformed AdmissionReviews, denials
in the log, and the `api` policy cache under concurrent requests.

The HTTP tests run our webhook server (`configure` -> `settings.admission.server`) with Kopf's own request
function (`serve_admission_request`), as the operator wires them, on 127.0.0.1 with a real certificate.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import ssl
import types
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import kopf
import pytest
from kopf._cogs.structs import ephemera, references
from kopf._core.engines import admission, indexing
from kopf._core.reactor import inventory

from readiness import webhook as webhook_module
from readiness.engine import Engine
from readiness.envtest.controlplane import free_port
from readiness.policy import ReadinessPolicy
from readiness.tls import Authority, write_serving_certificate
from readiness.webhook import (
    MalformedReview,
    WebhookSettings,
    _ApiSource,
    configure,
    malformed_verdict,
    parse_review,
)

NOW = datetime(2030, 1, 1, tzinfo=UTC)
PROBE = {"httpGet": {"path": "/healthz", "port": 8080}}


def engine(name: str, enforcement: str, namespaces: tuple[str, ...] = ("shop",)) -> Engine:
    return Engine(ReadinessPolicy.model_validate({"metadata": {"name": name}, "spec": {
        "enforcement": enforcement, "match": {"namespaces": list(namespaces)}}}))


def deployment(name: str = "web", namespace: str = "shop", padding: int = 0, probe: bool = False,
               ) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "app", "image": "nginx:1.27",
                                 "env": [{"name": "PADDING", "value": "x" * padding}]}
    if probe:
        container["readinessProbe"] = PROBE
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": namespace, "uid": "u-1"},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [container]}}}}


def admission_review(obj: Any, operation: str = "CREATE", old: Any = None, uid: str = "req-1",
                     namespace: str = "shop") -> dict[str, Any]:
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": uid, "kind": {"group": "apps", "version": "v1", "kind": "Deployment"},
        "resource": {"group": "apps", "version": "v1", "resource": "deployments"},
        "namespace": namespace, "operation": operation, "userInfo": {"username": "alice"},
        "object": obj, "oldObject": old, "dryRun": False}}


def raw(review: Any) -> bytes:
    return json.dumps(review).encode()


def deep(levels: int) -> bytes:
    """A spec nested `levels` deep (json.dumps itself could not write it)."""
    return raw(admission_review({**deployment(), "spec": "DEEP"})).replace(
        b'"DEEP"', b'{"a": ' * levels + b"1" + b"}" * levels)


MALFORMED: dict[str, bytes] = {
    "missing request": raw({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}),
    "non-object object": raw(admission_review(["not", "an", "object"])),
    "metadata null": raw(admission_review({**deployment(), "metadata": None})),
    "deep nesting": deep(5000),
    "5,001-digit number": raw(admission_review(deployment())).replace(b'"replicas": 2',
                                                                       b'"replicas": ' + b"9" * 5001),
    "non-UTF-8": raw(admission_review(deployment())).replace(b"nginx", b"ngi\xff\xfex"),
    "not JSON": b"{\"request\": ",
    "a list": b"[1, 2, 3]",
}


# -- the pure part ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("body", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_reviews_are_named_not_raised(body: bytes) -> None:
    with pytest.raises(MalformedReview) as caught:
        parse_review(body)
    assert str(caught.value) and "\n" not in str(caught.value)


def test_what_can_be_read_of_a_malformed_review_is_kept() -> None:
    with pytest.raises(MalformedReview) as caught:
        parse_review(MALFORMED["metadata null"])
    assert (caught.value.uid, caught.value.namespace) == ("req-1", "shop")


def test_a_well_formed_review_parses() -> None:
    assert parse_review(raw(admission_review(deployment())))["request"]["uid"] == "req-1"


def test_malformed_is_denied_where_a_deny_policy_applies() -> None:
    engines = [engine("strict", "deny"), engine("hints", "warn", ("*",))]
    verdict = malformed_verdict(engines, MalformedReview("request.object is not an object", "u", "shop"))
    assert not verdict.allowed and "strict" in verdict.message and "malformed" in verdict.message


def test_malformed_is_allowed_with_a_warning_where_no_deny_policy_applies() -> None:
    engines = [engine("strict", "deny"), engine("hints", "warn", ("*",))]
    verdict = malformed_verdict(engines, MalformedReview("request.object is not an object", "u", "other"))
    assert verdict.allowed and verdict.warnings == [
        "[readiness] not judged: malformed AdmissionReview: request.object is not an object"]


def test_malformed_without_a_namespace_is_denied_if_any_deny_policy_exists() -> None:
    """Unreadable must not mean admitted: with no namespace, any deny policy might have applied."""
    assert not malformed_verdict([engine("strict", "deny")], MalformedReview("no request object")).allowed
    assert malformed_verdict([engine("hints", "warn")], MalformedReview("no request object")).allowed


# -- the real server with Kopf's request function ------------------------------------------------------


class StaticState:
    def __init__(self, *engines: Engine) -> None:
        self._engines = list(engines)

    def engines(self) -> list[Engine]:
        return self._engines

    def namespace_labels(self, name: str) -> Mapping[str, str] | None:
        return {"kubernetes.io/metadata.name": name}


@contextlib.asynccontextmanager
async def served(tmp_path: Path, *engines: Engine) -> AsyncIterator[aiohttp.ClientSession]:
    """Our webhook server and Kopf's request function; a client session posting to /readiness."""
    paths = write_serving_certificate(tmp_path, ["127.0.0.1"], Authority.create())
    port = free_port()
    settings = WebhookSettings(addr="127.0.0.1", host="127.0.0.1", port=port, certfile=paths.certfile,
                               pkeyfile=paths.pkeyfile, cafile=paths.cafile, operator_namespace="ops")
    registry = kopf.OperatorRegistry()
    kopf_settings = kopf.OperatorSettings()
    configure(kopf_settings, types.SimpleNamespace(extra={"webhook": settings}), StaticState(*engines),
              registry=registry)
    insights = references.Insights()
    insights.webhook_resources.add(references.Resource("apps", "v1", "deployments", kind="Deployment",
                                                       namespaced=True))
    fn = functools.partial(admission.serve_admission_request, settings=kopf_settings, registry=registry,
                           insights=insights, memories=inventory.ResourceMemories(),
                           memobase=ephemera.AnyMemo(ephemera.Memo()),
                           indices=indexing.OperatorIndexers().indices)
    client_ssl = ssl.create_default_context(cafile=str(paths.cafile))
    assert isinstance(kopf_settings.admission.server, kopf.WebhookServer)
    async with kopf_settings.admission.server as server:  # as Kopf's admission_webhook_server does
        configs = server(fn)
        await configs.__anext__()
        try:
            async with aiohttp.ClientSession(base_url=f"https://127.0.0.1:{port}",
                                             connector=aiohttp.TCPConnector(ssl=client_ssl)) as session:
                yield session
        finally:
            await configs.aclose()  # type: ignore[attr-defined]


async def post(session: aiohttp.ClientSession, body: bytes) -> tuple[int, Any]:
    async with session.post("/readiness", data=body, headers={"Content-Type": "application/json"}) as reply:
        text = await reply.text()
        return reply.status, json.loads(text) if reply.status == 200 else text


def test_bodies_beyond_a_mebibyte_are_judged(tmp_path: Path) -> None:
    """What the API server can send (3 MiB by default, plus the old object on UPDATE) gets a verdict,
    not aiohttp's 413 that failurePolicy Ignore turns into an admission."""
    async def scenario() -> None:
        async with served(tmp_path, engine("strict", "deny")) as session:
            status, answer = await post(session, raw(admission_review(deployment(padding=1_100_000))))
            assert status == 200 and answer["response"]["allowed"] is False
            assert "readiness-probe-missing" in answer["response"]["status"]["message"]
            old, new = deployment(padding=600_000, probe=True), deployment(padding=600_000)
            status, answer = await post(session, raw(admission_review(new, "UPDATE", old)))
            assert status == 200 and answer["response"]["allowed"] is False
            status, _text = await post(session, raw(admission_review(deployment(padding=9 * 2**20))))
            assert status == 413  # beyond max_body_bytes: more than the API server sends by default

    asyncio.run(scenario())


def test_malformed_bodies_get_an_admission_review_and_a_warning(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> dict[str, tuple[int, Any]]:
        async with served(tmp_path, engine("strict", "deny")) as session:
            return {name: await post(session, body) for name, body in MALFORMED.items()}

    with caplog.at_level(logging.WARNING, logger="readiness.webhook"):
        answers = asyncio.run(scenario())
    for name, (status, answer) in answers.items():
        assert status == 200, f"{name}: HTTP {status} {answer}"
        assert answer["kind"] == "AdmissionReview", name
        assert answer["response"]["allowed"] is False, name  # a deny policy applies to shop (or may)
        assert "malformed AdmissionReview" in answer["response"]["status"]["message"], name
    assert answers["metadata null"][1]["response"]["uid"] == "req-1"
    warned = [r for r in caplog.records if r.levelno == logging.WARNING and "malformed" not in r.getMessage()
              and r.name == "readiness.webhook"]
    assert len([r for r in caplog.records if r.levelno == logging.WARNING
                and r.name == "readiness.webhook"]) == len(MALFORMED) and not warned


def test_malformed_bodies_are_allowed_with_a_warning_without_deny(tmp_path: Path) -> None:
    async def scenario() -> tuple[int, Any]:
        async with served(tmp_path, engine("hints", "warn")) as session:
            return await post(session, MALFORMED["non-object object"])

    status, answer = asyncio.run(scenario())
    assert status == 200 and answer["response"]["allowed"] is True
    assert answer["response"]["warnings"][0].startswith("[readiness] not judged: malformed AdmissionReview")


def test_a_deny_is_one_brief_info_line(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> tuple[int, Any]:
        async with served(tmp_path, engine("strict", "deny")) as session:
            return await post(session, raw(admission_review(deployment())))

    with caplog.at_level(logging.DEBUG):
        status, answer = asyncio.run(scenario())
    assert status == 200 and answer["response"]["allowed"] is False
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text
    denials = [r for r in caplog.records if "denied" in r.getMessage()]
    assert len(denials) == 1 and denials[0].levelno == logging.INFO
    assert "Deployment shop/web" in denials[0].getMessage() and len(denials[0].getMessage()) <= 250


# -- the `api` policy source's cache --------------------------------------------------------------------


class CountingSource(_ApiSource):
    """The real cache with its API reads replaced by a slow, counted stand-in."""

    def __init__(self, max_age: float, clock: Any) -> None:
        super().__init__(max_age, clock=clock)
        self.fetches: list[tuple[str | None, bool]] = []

    async def _fetch(self, namespace: str | None, policies: bool) -> None:
        self.fetches.append((namespace, policies))
        await asyncio.sleep(0.05)
        if policies:
            self._policies_at = self._clock()
        if namespace:
            self._namespaces[namespace] = (self._clock(), {})


def test_concurrent_requests_on_a_stale_cache_make_one_fetch() -> None:
    now = [0.0]

    async def scenario() -> CountingSource:
        source = CountingSource(10.0, lambda: now[0])
        await asyncio.gather(*(source.refresh("shop") for _ in range(100)))
        assert sorted(source.fetches, key=str) == [("shop", False), (None, True)]
        now[0] = 15.0  # stale, but within twice max_age: served at once, refreshed in the background
        started = asyncio.get_running_loop().time()
        await asyncio.gather(*(source.refresh("shop") for _ in range(100)))
        assert asyncio.get_running_loop().time() - started < 0.04
        await asyncio.sleep(0.1)
        return source

    source = asyncio.run(scenario())
    assert len(source.fetches) == 4


def test_the_body_limit_is_a_setting_that_covers_what_the_api_server_sends() -> None:
    """kube-apiserver's --max-request-bytes is 3 MiB by default; an UPDATE carries the old object too."""
    assert WebhookSettings().max_body_bytes >= 2 * 3 * 2**20
    assert WebhookSettings.from_env({"READINESS_WEBHOOK_MAX_BODY_BYTES": "16777216"}).max_body_bytes == 2**24
    with pytest.raises(ValueError, match="at least 1 MiB"):
        WebhookSettings.from_env({"READINESS_WEBHOOK_MAX_BODY_BYTES": "1000"})


# -- a review that raises is no way past deny -------------------------------------------------------------


@pytest.mark.parametrize(("enforcement", "allowed"), [("deny", False), ("warn", True)])
def test_an_object_that_makes_the_review_raise_is_denied_under_deny(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, enforcement: str, allowed: bool) -> None:
    """Whatever makes judging fail (a bug, or an object crafted to make the engine raise) is denied where
    a deny policy applies, and allowed with a warning elsewhere; before, it was always allowed."""
    def crash(*_: Any, **__: Any) -> None:
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(webhook_module, "review", crash)

    async def scenario() -> tuple[int, Any]:
        async with served(tmp_path, engine("policy", enforcement)) as session:
            return await post(session, raw(admission_review(deployment(probe=True))))

    status, answer = asyncio.run(scenario())
    assert status == 200 and answer["response"]["allowed"] is allowed, answer
    said = answer["response"]["status"]["message"] if not allowed else answer["response"]["warnings"][0]
    assert "not judged (webhook error: RecursionError" in said or "not judged: webhook error" in said, said
