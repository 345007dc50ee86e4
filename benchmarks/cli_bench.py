"""`readiness audit` end to end on N generated Deployments, next to the parsers alone. Medians of 5.

    python benchmarks/cli_bench.py [N] [--pyyaml]     # default 10000
    python benchmarks/cli_bench.py --parallel-vs-serial [N...]   # default 2500 5000 10000

Each round runs, back to back so that they share the machine's load: `readiness audit -o json` in a
fresh child (startup, loading, evaluating and rendering included; two processes on a large file), the
same with READINESS_SERIAL=1 (one process), an audit of a one-document file (the fixed cost: interpreter,
imports, policy), and, in this process, `json.loads` of the same objects as JSON text, `yaml_rs.loads`
of the stream and `readiness.loader.load_text`. It prints the median wall seconds of each, the CPU
seconds of the children (user + system, worker included), the ratio of each row to `json.loads`, and
the CLI's peak RSS. The last column compares each row with `json.load` of the same objects as an
indented JSON file in a fresh process, start-up included like the audit's: the issue's yardstick.
`--pyyaml` adds PyYAML's CSafeLoader (about 4 s a run).
"""

from __future__ import annotations

import compileall
import gc
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


def timed(fn: Callable[[], object]) -> float:
    gc.collect()
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


LAUNCHER = """
import ctypes, json, os, subprocess, sys, time
try:  # adopt the audit's worker if it outlives its parent (Linux), so that its CPU and RSS count
    ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
except (OSError, AttributeError):
    pass
start = time.perf_counter()
child = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL)
_, _, usage = os.wait4(child.pid, 0)
wall = time.perf_counter() - start
cpu, rss = usage.ru_utime + usage.ru_stime, usage.ru_maxrss
while True:
    try:
        _, _, usage = os.wait4(-1, 0)
    except ChildProcessError:
        break
    cpu, rss = cpu + usage.ru_utime + usage.ru_stime, max(rss, usage.ru_maxrss)
print(json.dumps([wall, cpu, rss / 1024]))
"""
"""Runs one command and prints its wall seconds, CPU seconds (its worker's included) and peak RSS (MiB).
A small process of its own starts the audit: a child started straight from this benchmark, which holds
hundreds of MB of parsed objects, would report this process's RSS as its own peak (Linux keeps the high
water mark of the memory a child shared with its parent until `exec`)."""


def child_run(path: Path, serial: bool = False) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds (user + system of the child and its worker) and peak RSS (MiB, the
    largest of the two) of one `readiness audit -o json` in a fresh child."""
    env = dict(os.environ)
    env.pop("READINESS_SERIAL", None)
    env["READINESS_PARALLEL"] = "1"  # the parallel path itself, whatever the load (it normally checks)
    if serial:
        env["READINESS_SERIAL"] = "1"
    audit = [sys.executable, "-m", "readiness.cli", "audit", "-f", str(path), "-o", "json"]
    out = subprocess.run([sys.executable, "-c", LAUNCHER, *audit], env=env, check=True, capture_output=True,
                         text=True)
    wall, cpu, rss = json.loads(out.stdout)
    return float(wall), float(cpu), float(rss)


FRESH_JSON_LOAD = "json.load, fresh process"


def fresh_json_load(path: Path) -> float:
    """Wall seconds of `python -c "json.load(open(path))"`: the issue's yardstick ("merely json.load-ing
    the same objects"), start-up included like the audit's, of the objects written as indented JSON."""
    command = [sys.executable, "-c", "import json, sys; json.load(open(sys.argv[1]))", str(path)]
    out = subprocess.run([sys.executable, "-c", LAUNCHER, *command], check=True, capture_output=True,
                         text=True)
    return float(json.loads(out.stdout)[0])


def compile_bytecode() -> None:
    """Write the package's bytecode, as `pip install` does: in an editable checkout on a machine that sets
    PYTHONDONTWRITEBYTECODE (this one does), every run would otherwise compile every module again
    (+0.03-0.05 s of start-up that no installed copy pays)."""
    import readiness

    compileall.compile_dir(Path(readiness.__file__).parent, quiet=1)


def parallel_vs_serial(counts: list[int]) -> None:
    """`--parallel-vs-serial N...`: for each size, `readiness audit -o json` with and without
    READINESS_SERIAL=1, interleaved in each of RUNS rounds; medians and the serial/parallel ratio (above 1:
    the parallel path pays). The wall time ends when the command has returned, its worker reaped."""
    print(f"{os.cpu_count()} CPUs, affinity {len(os.sched_getaffinity(0))}, medians of {RUNS}")
    print(f"  {'documents':>9} {'MB':>5} {'parallel s':>10} {'cpu':>5} {'serial s':>9} {'cpu':>5} "
          f"{'serial/parallel':>16}")
    with tempfile.TemporaryDirectory() as tmp:
        for count in counts:
            path = Path(tmp, f"deployments-{count}.yaml")
            with path.open("w") as out:
                subprocess.run([sys.executable, str(HERE / "generate.py"), str(count)], stdout=out,
                               check=True)
            walls: dict[bool, list[float]] = {False: [], True: []}
            cpus: dict[bool, list[float]] = {False: [], True: []}
            for _ in range(RUNS):
                for serial in (False, True):
                    wall, seconds, _ = child_run(path, serial)
                    walls[serial].append(wall)
                    cpus[serial].append(seconds)
            par, ser = statistics.median(walls[False]), statistics.median(walls[True])
            size = path.stat().st_size / 1e6
            print(f"  {count:>9} {size:5.1f} {par:10.2f} {statistics.median(cpus[False]):5.2f} "
                  f"{ser:9.2f} {statistics.median(cpus[True]):5.2f} {ser / par:16.2f}")


def main() -> None:
    compile_bytecode()
    if "--parallel-vs-serial" in sys.argv:
        parallel_vs_serial([int(a) for a in sys.argv[1:] if not a.startswith("--")] or [2500, 5000, 10000])
        return
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    count = int(args[0]) if args else 10000
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp, f"deployments-{count}.yaml")
        with path.open("w") as out:
            subprocess.run([sys.executable, str(HERE / "generate.py"), str(count)], stdout=out, check=True)
        one = Path(tmp, "one.yaml")
        with one.open("w") as out:
            subprocess.run([sys.executable, str(HERE / "generate.py"), "1"], stdout=out, check=True)
        text = path.read_text()
        objects = [d for d in yaml_rs.loads(text, parse_datetime=False) if d is not None]
        json_text = json.dumps(objects)
        json_file = Path(tmp, "same-objects.json")
        json_file.write_text(json.dumps(objects, indent=2))
        del objects  # json.loads must not pay for a heap full of earlier objects
        rows: dict[str, list[float]] = {}
        cpu: dict[str, list[float]] = {}
        rss = 0.0
        for _ in range(RUNS):
            for name, serial in (("readiness audit -o json", False), ("  same, READINESS_SERIAL=1", True)):
                wall, seconds, peak = child_run(path, serial)
                rows.setdefault(name, []).append(wall)
                cpu.setdefault(name, []).append(seconds)
                rss = max(rss, peak)
            wall, seconds, _ = child_run(one)
            rows.setdefault("readiness audit, one document", []).append(wall)
            cpu.setdefault("readiness audit, one document", []).append(seconds)
            rows.setdefault("json.loads (same objects)", []).append(timed(lambda: json.loads(json_text)))
            rows.setdefault(FRESH_JSON_LOAD, []).append(fresh_json_load(json_file))
            rows.setdefault("yaml_rs.loads (whole stream)", []).append(
                timed(lambda: yaml_rs.loads(text, parse_datetime=False)))
            rows.setdefault("readiness.loader.load_text", []).append(timed(lambda: load_text(text, "bench")))
            if "--pyyaml" in sys.argv:
                rows.setdefault("PyYAML CSafeLoader", []).append(
                    timed(lambda: list(yaml.load_all(text, Loader=yaml.CSafeLoader))))
    base = statistics.median(rows["json.loads (same objects)"])
    fresh = statistics.median(rows[FRESH_JSON_LOAD])
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"{count} Deployments, {len(text) / 1e6:.1f} MB, {os.cpu_count()} CPUs, load average {load:.1f}, "
          f"medians of {RUNS}")
    for name, times in rows.items():
        median = statistics.median(times)
        cpu_text = f"  cpu {statistics.median(cpu[name]):5.2f} s" if name in cpu else " " * 14
        print(f"  {name:32} {median:6.2f} s{cpu_text}   x{median / base:5.2f} of json.loads"
              f"   x{median / fresh:5.2f} of a fresh json.load")
    print(f"  readiness audit peak RSS: {rss:.0f} MiB (largest process)")


if __name__ == "__main__":
    main()
