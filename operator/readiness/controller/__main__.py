"""`python -m readiness.controller [flags]`: run the operator cluster-wide."""

from __future__ import annotations

import argparse
import logging
import sys

from readiness.controller import settings as settings_mod


def parser() -> argparse.ArgumentParser:
    result = argparse.ArgumentParser(
        prog="python -m readiness.controller",
        description="Audit every matching workload against every ReadinessPolicy, continuously. Each flag "
                    "can also be set as READINESS_<NAME> in the environment.")
    settings_mod.add_arguments(result)
    result.add_argument("--verbose", action="store_true", help="debug logging")
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


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not args.verbose:
        # Kopf logs every index and event handler call at INFO: one line per workload event.
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    try:
        ours = settings_mod.from_args(args, extra={k: v for k, v in vars(args).items()
                                                   if k.startswith("webhook_") and k != "webhook_enabled"})
    except ValueError as error:
        print(f"readiness.controller: {error}", file=sys.stderr)
        return 2
    from readiness.controller.app import run

    run(ours)
    return 0


if __name__ == "__main__":
    sys.exit(main())
