"""`readiness audit` end to end on N generated Deployments, next to the parsers alone. Medians of 5.

    python benchmarks/cli_bench.py [N]     # default 10000

Prints the wall time and peak RSS of `readiness audit -o json` (a child process: startup, loading,
evaluating and rendering included; RSS from resource.getrusage(RUSAGE_CHILDREN) of a fresh child per run),
and, in-process, json.load of the same objects, PyYAML's CSafeLoader and yaml_rs.loads on the same file,
and readiness.loader.load_text, with ratios to the CLI.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import yaml
import yaml_rs

from readiness.loader import load_text

HERE = Path(__file__).resolve().parent
RUNS = 5


def median_time(fn: Callable[[], object]) -> float:
    times = []
    for _ in range(RUNS):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def child_run(path: Path) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of one `readiness audit` in a fresh child."""
    code = ("import resource, subprocess, sys, time; t = time.perf_counter(); "
            "subprocess.run([sys.executable, '-m', 'readiness.cli', 'audit', '-f', sys.argv[1], "
            "'-o', 'json'], "
            "stdout=subprocess.DEVNULL); w = time.perf_counter() - t; "
            "print(w, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)")
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True)
    wall, rss = out.stdout.split()
    return float(wall), float(rss)


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 10000
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp, f"deployments-{count}.yaml")
        with path.open("w") as out:
            subprocess.run([sys.executable, str(HERE / "generate.py"), str(count)], stdout=out, check=True)
        text = path.read_text()
        objects = [d for d in yaml_rs.loads(text, parse_datetime=False) if d is not None]
        json_path = Path(tmp, "objects.json")
        json_path.write_text(json.dumps(objects))
        runs = [child_run(path) for _ in range(RUNS)]
        cli = statistics.median(w for w, _ in runs)
        rss = statistics.median(r for _, r in runs)
        rows = [
            ("readiness audit -o json (child)", cli),
            ("readiness.loader.load_text", median_time(lambda: load_text(text, "bench"))),
            ("json.load (same objects)", median_time(lambda: json.loads(json_path.read_text()))),
            ("yaml_rs.loads (whole stream)", median_time(lambda: yaml_rs.loads(text, parse_datetime=False))),
            ("PyYAML CSafeLoader", median_time(lambda: list(yaml.load_all(text, Loader=yaml.CSafeLoader)))),
        ]
    print(f"{count} Deployments, {len(text) / 1e6:.1f} MB, {os.cpu_count()} CPUs, medians of {RUNS}")
    for name, seconds in rows:
        print(f"  {name:34} {seconds:7.2f} s   x{seconds / cli:5.2f} of the CLI")
    print(f"  readiness audit peak RSS: {rss:.0f} MiB")


if __name__ == "__main__":
    main()
