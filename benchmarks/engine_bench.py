"""Engine throughput: evaluations per second on one core, median of 5 runs.

    python benchmarks/engine_bench.py [N]          # N generated Deployments (default 2000)

Projects N generated Deployments once (benchmarks/generate.py), then times `Engine.evaluate` over all
of them, for the built-in policy and for examples/policies/strict.yaml when present (its namespace
selector is bypassed: the point is the cost of its checks). Pinned to one CPU when the OS allows.
Prints evaluations per CPU-second (process time: what one core sustains, robust to a busy machine) and
per wall-second (what this run got).
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import generate

from readiness.engine import Engine, default_policy
from readiness.loader import load_text
from readiness.workload import project

ROOT = Path(__file__).resolve().parents[1]
RUNS = 5


def workloads(count: int) -> list:  # type: ignore[type-arg]
    import io
    import random

    out = io.StringIO()
    rng = random.Random(20240601)
    for index in range(count):
        out.write(generate.deployment(rng, index))
    return [project(d.obj) for d in load_text(out.getvalue(), "bench").documents]


def engines() -> list[tuple[str, Engine]]:
    result = [("default", Engine(default_policy()))]
    strict = ROOT / "examples" / "policies" / "strict.yaml"
    if strict.exists():
        from readiness.cli import read_policies

        policy = read_policies(str(strict))[0]
        result.append(("strict", Engine(policy)))
    return result


def main() -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    items = workloads(count)
    for name, engine in engines():
        wall, cpu = [], []
        for _ in range(RUNS):
            start, start_cpu = time.perf_counter(), time.process_time()
            for workload in items:
                engine.evaluate(workload)
            wall.append(len(items) / (time.perf_counter() - start))
            cpu.append(len(items) / (time.process_time() - start_cpu))
        print(f"{name:8} {len(engine.active):2} checks  {statistics.median(cpu):9,.0f} evaluations/CPU-s"
              f"  {statistics.median(wall):9,.0f} per wall-second (medians of {RUNS})")


if __name__ == "__main__":
    main()
