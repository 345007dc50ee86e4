"""The retry helper and the rate limiter: pure functions, driven with fake coroutines and clocks."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from kubernetes_asyncio.client.exceptions import ApiException

from readiness.controller.writer import (
    TokenBucket,
    backoff_delay,
    error_code,
    is_retryable,
    resource_path,
    retry_after,
    with_retries,
)


class Counted:
    def __init__(self) -> None:
        self.errors: list[tuple[str, str]] = []

    def api_error(self, operation: str, code: str) -> None:
        self.errors.append((operation, code))


def api_error(status: int, retry: str | None = None) -> ApiException:
    error = ApiException(status=status, reason="test")
    error.headers = {"Retry-After": retry} if retry else {}  # type: ignore[assignment]
    return error


def failing(*errors: BaseException) -> tuple[Callable[[], Awaitable[str]], list[int]]:
    calls: list[int] = []

    async def call() -> str:
        calls.append(1)
        if len(calls) <= len(errors):
            raise errors[len(calls) - 1]
        return "ok"

    return call, calls


def run(call: Callable[[], Awaitable[str]], counter: Counted, sleeps: list[float], attempts: int = 5) -> str:
    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    return asyncio.run(with_retries(call, operation="patch_workload", counter=counter, attempts=attempts,
                                    base=0.1, cap=5.0, sleep=sleep, rand=lambda: 1.0))


def test_conflict_and_throttling_are_retried_with_growing_backoff_and_counted() -> None:
    counter, sleeps = Counted(), list[float]()
    call, calls = failing(api_error(409), api_error(429), api_error(503))
    assert run(call, counter, sleeps) == "ok"
    assert len(calls) == 4
    assert sleeps == [0.1, 0.2, 0.4]
    assert counter.errors == [("patch_workload", "409"), ("patch_workload", "429"), ("patch_workload", "503")]


def test_retry_after_is_honoured_when_longer_than_the_backoff() -> None:
    counter, sleeps = Counted(), list[float]()
    call, _ = failing(api_error(429, retry="3"))
    run(call, counter, sleeps)
    assert sleeps == [3.0]


def test_client_errors_are_not_retried() -> None:
    counter, sleeps = Counted(), list[float]()
    call, calls = failing(api_error(422))
    with pytest.raises(ApiException):
        run(call, counter, sleeps)
    assert len(calls) == 1 and sleeps == [] and counter.errors == [("patch_workload", "422")]


def test_gives_up_after_the_last_attempt() -> None:
    counter, sleeps = Counted(), list[float]()
    call, calls = failing(*[api_error(500)] * 5)
    with pytest.raises(ApiException):
        run(call, counter, sleeps, attempts=3)
    assert len(calls) == 3 and len(counter.errors) == 3


def test_network_errors_are_retryable() -> None:
    assert is_retryable(ConnectionResetError()) and is_retryable(TimeoutError())
    assert not is_retryable(ValueError())
    assert error_code(ConnectionResetError()) == "ConnectionResetError"


def test_backoff_is_capped_and_jittered() -> None:
    assert backoff_delay(20, 0.2, 10.0, rand=lambda: 1.0) == 10.0
    assert backoff_delay(3, 0.2, 10.0, rand=lambda: 0.5) == pytest.approx(0.8)
    assert retry_after(api_error(429, retry="soon")) is None


def test_token_bucket_allows_a_burst_then_the_rate() -> None:
    now = [0.0]
    bucket = TokenBucket(rate=5.0, burst=3, clock=lambda: now[0])
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]
    now[0] += 0.2  # one token at 5/s
    assert bucket.take() and not bucket.take()
    now[0] += 100.0
    assert sum(bucket.take() for _ in range(10)) == 3


def test_resource_paths() -> None:
    path = resource_path("apps/v1", "deployments", "ns", "web")
    assert path == "/apis/apps/v1/namespaces/ns/deployments/web"
    assert resource_path("v1", "events", "ns") == "/api/v1/namespaces/ns/events"
    assert resource_path("readiness.dev/v1alpha1", "readinesspolicies", None, "p", "status") == (
        "/apis/readiness.dev/v1alpha1/readinesspolicies/p/status")
