"""`python -m readiness.controller [flags]`: run the operator cluster-wide."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import tracemalloc

from readiness import logs
from readiness.controller import settings as settings_mod


def parser() -> argparse.ArgumentParser:
    result = argparse.ArgumentParser(
        prog="python -m readiness.controller",
        description="Audit every matching workload against every ReadinessPolicy, continuously. Each flag "
                    "can also be set as READINESS_<NAME> in the environment.")
    settings_mod.add_arguments(result)
    result.add_argument("--verbose", action="store_true",
                        help="log at DEBUG: Kopf's per-object lines and HTTP access lines too "
                             "(default: INFO)")
    _add_webhook_arguments(result)
    return result


def _add_webhook_arguments(result: argparse.ArgumentParser) -> None:
    """The webhook adds its own flags when it is installed (readiness.webhook.add_arguments)."""
    try:
        from readiness import webhook
    except ImportError:
        return
    add = getattr(webhook, "add_arguments", None)
    if add is not None:
        add(result)


def _log_memory_top(*_: object) -> None:
    """SIGUSR2 with `PYTHONTRACEMALLOC=1`: log where memory is held now (top 15 by file:line). A
    diagnostic for `benchmarks/operator_bench.py --tracemalloc`; costs nothing when tracing is off."""
    stats = tracemalloc.take_snapshot().statistics("lineno")
    total = sum(stat.size for stat in stats)
    peak = tracemalloc.get_traced_memory()[1]
    lines = [f"tracemalloc: {total / 2**20:.1f} MiB traced now, peak {peak / 2**20:.1f} MiB; top 15:"]
    lines += [f"  {stat.size / 2**20:7.2f} MiB {stat.count:8d} blocks  {stat.traceback[0]}"
              for stat in stats[:15]]
    logging.getLogger(__name__).warning("\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        ours = settings_mod.from_args(args, extra={k: v for k, v in vars(args).items()
                                                   if k.startswith("webhook_") and k != "webhook_enabled"})
    except ValueError as error:
        print(f"readiness.controller: {error}", file=sys.stderr)
        return 2
    logs.configure(ours.log_format, verbose=args.verbose)
    for notice in settings_mod.deprecations(ours):
        logging.getLogger("readiness.controller").warning("%s", notice)
    if tracemalloc.is_tracing():
        signal.signal(signal.SIGUSR2, _log_memory_top)
    from readiness.controller.app import run

    run(ours)
    return 0


if __name__ == "__main__":
    sys.exit(main())
