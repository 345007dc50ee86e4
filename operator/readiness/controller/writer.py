"""Every API call the operator makes itself (Kopf's own watches aside): bounded, retried, counted.

Uses kubernetes-asyncio: the sync client would block the event loop that also runs every watch.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

import aiohttp
from kubernetes_asyncio import client as k8s
from kubernetes_asyncio.client.exceptions import ApiException

from readiness.controller.output import EventIntent
from readiness.workload import WorkloadRef

T = TypeVar("T")
log = logging.getLogger(__name__)
RETRYABLE_STATUS = frozenset({409, 429})
MERGE_PATCH = "application/merge-patch+json"
METADATA_ONLY = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"
COMPONENT = "readiness-operator"


class ErrorCounter(Protocol):
    def api_error(self, operation: str, code: str) -> None: ...


def error_code(error: BaseException) -> str:
    """The label of readiness_api_errors_total: the HTTP status, or the exception class for I/O errors."""
    if isinstance(error, ApiException) and error.status:
        return str(error.status)
    return type(error).__name__


def is_retryable(error: BaseException) -> bool:
    """409 (a concurrent writer), 429 (API priority and fairness), 5xx and network errors. Other 4xx
    are our bug or a vanished object: retrying would only repeat them."""
    if isinstance(error, ApiException):
        status = error.status or 0
        return status in RETRYABLE_STATUS or status >= 500
    return isinstance(error, aiohttp.ClientError | asyncio.TimeoutError | ConnectionError)


def retry_after(error: BaseException) -> float | None:
    """The server's Retry-After in seconds (429 and 503 carry it), if any and numeric."""
    headers = getattr(error, "headers", None)
    if not headers:
        return None
    value = headers.get("Retry-After") if hasattr(headers, "get") else None
    try:
        return float(str(value)) if value is not None else None
    except ValueError:
        return None


def backoff_delay(attempt: int, base: float, cap: float, rand: Callable[[], float] = random.random) -> float:
    """Exponential backoff with full jitter: spreads retries of many workers (AWS architecture blog)."""
    return float(rand() * min(cap, base * (2 ** attempt)))


def unexpected(error: BaseException) -> bool:
    return False


def is_not_found(error: BaseException) -> bool:
    """404: the answer of an existence probe (is that CRD installed?), or a delete of what is gone."""
    return isinstance(error, ApiException) and error.status == 404


def annotations_too_long(error: BaseException) -> bool:
    """The API server refused a write because the object's annotations together would pass 256 KiB."""
    if not isinstance(error, ApiException) or error.status != 422:
        return False
    body = error.body
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body or "")
    return "metadata.annotations" in text and "Too long" in text


async def with_retries(
    call: Callable[[], Awaitable[T]], *, operation: str, counter: ErrorCounter, attempts: int,
    base: float, cap: float, sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    rand: Callable[[], float] = random.random, expected: Callable[[BaseException], bool] = unexpected,
) -> T:
    """Run `call`, retrying retryable errors with backoff; every failure is counted, the last re-raised.
    An `expected` error is an answer the caller handles (a 404 of an existence probe): raised at once,
    never counted, so that readiness_api_errors_total counts only what went wrong."""
    for attempt in range(attempts):
        try:
            return await call()
        except Exception as error:
            if expected(error):
                raise
            counter.api_error(operation, error_code(error))
            if not is_retryable(error) or attempt == attempts - 1:
                raise
            delay = backoff_delay(attempt, base, cap, rand)
            server_asks = retry_after(error)
            if server_asks is not None:
                delay = max(delay, server_asks)
            log.debug("%s failed (%s), retrying in %.2fs", operation, error_code(error), delay)
            await sleep(delay)
    raise AssertionError("unreachable: attempts must be >= 1")


class TokenBucket:
    """A global rate limit: `rate` tokens per second, at most `burst` saved up."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.burst = float(burst)
        self.tokens = float(burst)
        self.clock = clock
        self.updated = clock()

    def take(self) -> bool:
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False

    async def wait(self, sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep) -> None:
        """Take a token, waiting for one as long as it takes."""
        while not self.take():
            await sleep(max(0.01, (1.0 - self.tokens) / self.rate))


def resource_path(api_version: str, plural: str, namespace: str | None, name: str | None = None,
                  subresource: str | None = None) -> str:
    base = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
    path = f"{base}/namespaces/{namespace}/{plural}" if namespace else f"{base}/{plural}"
    if name:
        path += f"/{name}"
    if subresource:
        path += f"/{subresource}"
    return path


class Writer:
    """Our client: a semaphore bounds writes in flight, `with_retries` handles transient errors."""

    def __init__(self, api: k8s.ApiClient, counter: ErrorCounter, *, concurrency: int, attempts: int,
                 base_delay: float, max_delay: float, event_rate: float, event_burst: int,
                 request_timeout: float) -> None:
        self.api = api
        self.counter = counter
        self.semaphore = asyncio.Semaphore(concurrency)
        self.attempts = attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.events = TokenBucket(event_rate, event_burst)
        self.request_timeout = request_timeout
        self.writes = 0

    async def get(self, path: str, accept: str = "application/json") -> Any:
        """One read, its JSON response decoded."""
        return await self.api.call_api(
            path, "GET", header_params={"Accept": accept}, response_types_map={200: "object"},
            auth_settings=["BearerToken"], _return_http_data_only=True, _request_timeout=self.request_timeout,
        )

    async def send(self, method: str, path: str, body: Any = None, content_type: str | None = None,
                   accept: str = "application/json") -> None:
        """One write whose response is read but not decoded: nothing uses it, and decoding a whole
        returned Deployment cost more CPU than building the patch. Errors raise ApiException, as
        kubernetes-asyncio's own calls do."""
        headers = {"Accept": accept}
        if content_type:
            headers["Content-Type"] = content_type
        response = await self.api.call_api(
            path, method, header_params=headers, body=body, auth_settings=["BearerToken"],
            _return_http_data_only=True, _preload_content=False, _request_timeout=self.request_timeout,
        )
        data = await response.read()
        if not 200 <= response.status <= 299:
            error = ApiException(status=response.status, reason=response.reason)
            error.body = data.decode("utf-8", "replace")  # as kubernetes-asyncio's own errors carry it
            error.headers = response.headers  # Retry-After
            raise error

    async def write(self, operation: str, method: str, path: str, body: Any = None,
                    content_type: str | None = None, accept: str = "application/json",
                    expected: Callable[[BaseException], bool] = unexpected) -> bool:
        """A bounded, retried write. False when the object is gone (404)."""
        async def once() -> None:
            async with self.semaphore:
                self.writes += 1
                await self.send(method, path, body, content_type, accept)
        try:
            await with_retries(once, operation=operation, counter=self.counter, attempts=self.attempts,
                               base=self.base_delay, cap=self.max_delay, expected=expected)
        except ApiException as error:
            if error.status == 404:
                return False
            raise
        return True

    async def read(self, operation: str, path: str, accept: str = "application/json") -> Any:
        """A retried read; None when the object (or its kind) does not exist, which is no error."""
        try:
            return await with_retries(lambda: self.get(path, accept), operation=operation,
                                      counter=self.counter, attempts=self.attempts, base=self.base_delay,
                                      cap=self.max_delay, expected=is_not_found)
        except ApiException as error:
            if error.status == 404:
                return None
            raise

    async def patch_metadata(self, path: str, patch: Mapping[str, Any]) -> bool:
        """Raises ApiException; `annotations_too_long` ones are the caller's to handle (uncounted)."""
        # The response is only the object's metadata: the API server encodes (and sends) a tenth of it.
        return await self.write("patch_workload", "PATCH", path, dict(patch), MERGE_PATCH, METADATA_ONLY,
                                expected=annotations_too_long)

    async def read_metadata(self, path: str) -> Mapping[str, Any] | None:
        """An object's metadata only (PartialObjectMetadata); None when it is gone."""
        found = await self.read("read_workload", path, METADATA_ONLY)
        if found is None:
            return None
        meta = found.get("metadata") if isinstance(found, Mapping) else None
        return meta if isinstance(meta, Mapping) else {}

    async def patch_status(self, path: str, status: Mapping[str, Any]) -> bool:
        return await self.write("patch_status", "PATCH", path + "/status", {"status": dict(status)},
                                MERGE_PATCH)

    async def post_event(self, ref: WorkloadRef, api_version: str, uid: str, intent: EventIntent) -> bool:
        """Post one Event (its caller, the Announcer, waits for `events`, the global rate limit). A
        cluster-scoped object's Events go to the `default` namespace, as kubectl describe looks there."""
        now = datetime.now(UTC)
        stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
        event = {
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"generateName": f"{ref.name[:200]}.", "namespace": ref.namespace or "default"},
            "involvedObject": {"apiVersion": api_version, "kind": ref.kind, "namespace": ref.namespace,
                               "name": ref.name, "uid": uid},
            "type": intent.type, "reason": intent.reason, "message": intent.message[:1024],
            "source": {"component": COMPONENT}, "reportingComponent": COMPONENT,
            "reportingInstance": COMPONENT, "firstTimestamp": stamp, "lastTimestamp": stamp, "count": 1,
            "action": "Audit",
        }
        path = resource_path("v1", "events", ref.namespace or "default")
        return await self.write("post_event", "POST", path, event)

    async def apply(self, operation: str, api_version: str, plural: str, namespace: str | None,
                    body: Mapping[str, Any], compare: Callable[[Mapping[str, Any]], Any]) -> str:
        """Create or update `body` unless what is there already compares equal. Returns created, updated
        or unchanged. A GET first costs a read, never a write, which keeps the steady state write-free."""
        name = body["metadata"]["name"]
        path = resource_path(api_version, plural, namespace, name)
        existing = await self.read(operation, path)
        if existing is None:
            await self.write(operation, "POST", resource_path(api_version, plural, namespace), dict(body))
            return "created"
        if compare(existing) == compare(body):
            return "unchanged"
        await self.write(operation, "PATCH", path, dict(body), MERGE_PATCH)
        return "updated"

    async def delete(self, operation: str, path: str) -> None:
        """Deleting what is already gone (404) is done, not an error."""
        await self.write(operation, "DELETE", path, expected=is_not_found)

    async def crd_installed(self, name: str) -> bool:
        crd = await self.read("read_crd", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}")
        return crd is not None
