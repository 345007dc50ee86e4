"""``python -m readiness.envtest build | env | up [--dir DIR]``: a thin shell over ControlPlane."""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from dataclasses import replace
from pathlib import Path

from readiness.envtest import binaries
from readiness.envtest.binaries import BinaryError
from readiness.envtest.controlplane import ControlPlane, ControlPlaneError
from readiness.envtest.settings import ControlPlaneSettings


def _build(_: argparse.Namespace) -> int:
    for name, path in binaries.ensure_all(progress=sys.stderr).items():
        print(f"{name}: {path}", file=sys.stderr)
    return 0


def _env(_: argparse.Namespace) -> int:
    """Print ``export TEST_ASSET_...=path`` lines for ``eval``, building what is missing."""
    for tool in binaries.ALL_TOOLS:
        print(f"export {tool.env_var}={shlex.quote(str(binaries.locate(tool)))}")
    return 0


def _up(args: argparse.Namespace) -> int:
    settings = replace(ControlPlaneSettings.from_env(), run_dir=args.dir)
    with ControlPlane(settings) as plane:
        print(f"export KUBECONFIG={shlex.quote(str(plane.kubeconfig))}", flush=True)
        print(f"# control plane up ({plane.server}); logs in {plane.run_dir}; Ctrl-C stops it",
              file=sys.stderr, flush=True)
        try:
            while plane.pids and not plane.exited():
                time.sleep(1)
        except KeyboardInterrupt:
            return 0
        print(f"exited: {plane.exited()}\n{plane.dump_logs(tail=40)}", file=sys.stderr)
        return 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m readiness.envtest", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("build", help="build every binary into the cache (progress on stderr)").set_defaults(
        run=_build
    )
    commands.add_parser("env", help="print export lines with the binary paths").set_defaults(run=_env)
    up = commands.add_parser("up", help="start a control plane in the foreground until Ctrl-C")
    up.add_argument("--dir", type=Path, default=None, help="run directory (default: a temporary one)")
    up.set_defaults(run=_up)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        code: int = args.run(args)
    except (BinaryError, ControlPlaneError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main())
