"""The hostile-input fuzzer (tests/support/fuzz.py), CI-sized: a few hundred audits' worth of odd
documents, with a fixed seed. No check may crash (a crash the engine swallows into `Evaluation.errors`
counts), no renderer may raise, JSON and SARIF must parse and JUnit must be well-formed XML.
benchmarks/fuzz_bench.py runs the same with 100,000 documents."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, Phase, given, seed, settings

from readiness.engine import Engine
from support.fuzz import Outcome, batches, check_batch, full_catalog_engine

ENGINES = [Engine.builtin(), full_catalog_engine()]


@seed(12)
@settings(max_examples=200, deadline=None, database=None, phases=[Phase.explicit, Phase.generate],
          suppress_health_check=list(HealthCheck))
@given(batches)
def test_hostile_documents_crash_nothing(batch: list[Any]) -> None:
    outcome = check_batch(batch, ENGINES)
    assert outcome.clean, (dict(outcome.crashes), dict(outcome.failures), outcome.samples)


def test_the_harness_counts_a_swallowed_check_crash() -> None:
    """The property is only as good as its detector: a check that raises (the engine records it in
    `errors` and carries on) must show up as a crash of that check."""
    from readiness.checks import CATALOG

    check = CATALOG["host-namespaces"]
    original = check.workload_fn

    def crash(*_args: Any) -> None:
        raise TypeError("boom")

    object.__setattr__(check, "workload_fn", crash)
    try:
        engines = [Engine.builtin()]
        pod = {"kind": "Pod", "metadata": {"name": "p"},
               "spec": {"containers": [{"name": "c", "image": "x"}]}}
        outcome: Outcome = check_batch([pod], engines)
    finally:
        object.__setattr__(check, "workload_fn", original)
    assert outcome.crashes == {"host-namespaces": 1}
