"""Hostile input for the engine and the renderers: N fuzzed documents, counts of what went wrong.

    nice python benchmarks/fuzz_bench.py [N] [--seed S]     # N documents (default 100,000), seed 0

Draws N documents from tests/support/fuzz.py (workloads with type-wrong values at every level, huge
numbers, unicode, every probe handler, native sidecars; odd PodDisruptionBudgets, autoscalers and
ServiceAccounts; Lists with null items and Lists in them), projects each and evaluates it with the
built-in policy and a policy enabling the whole catalog, and audits them in batches of 20 rendered in
every format (JSON and SARIF parsed back, JUnit parsed as XML). Prints the counts: examples, workloads
judged, check crashes by check (what the engine swallows into `check X: Error` input errors), and any
other failure by stage. The goal is 0 of both; the exit status is 1 otherwise. Deterministic for a seed.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from hypothesis import HealthCheck, Phase, given, seed, settings  # noqa: E402

from readiness.engine import Engine  # noqa: E402
from support.fuzz import Outcome, check_batch, documents, full_catalog_engine  # noqa: E402

BATCH = 20


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("examples", nargs="?", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    engines = [Engine.builtin(), full_catalog_engine()]
    total = Outcome()
    pending: list[Any] = []
    started = time.perf_counter()

    @seed(args.seed)
    @settings(max_examples=args.examples, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(documents)
    def feed(document: Any) -> None:
        pending.append(document)
        if len(pending) == BATCH:
            total.add(check_batch(pending, engines))
            pending.clear()

    feed()
    if pending:
        total.add(check_batch(pending, engines))
    elapsed = time.perf_counter() - started
    print(f"examples: {total.examples:,} documents in {total.batches:,} audits "
          f"({elapsed:.0f} s, seed {args.seed})")
    print(f"workloads judged: {total.workloads:,} (each by 2 policies)")
    print(f"check crashes: {sum(total.crashes.values()):,}")
    for check, count in total.crashes.most_common():
        print(f"  {check}: {count:,}")
    print(f"other failures (project, evaluate, context, audit, renderers): {sum(total.failures.values()):,}")
    for stage, count in total.failures.most_common():
        print(f"  {stage}: {count:,}")
    for key, sample in total.samples.items():
        print(f"first {key}: {sample}")
    return 0 if total.clean else 1


if __name__ == "__main__":
    sys.exit(main())
