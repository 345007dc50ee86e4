"""``python -m readiness.envtest build | crds | env | up | node up [--no-images] | node down`` (``--dir``).

A thin shell over ControlPlane and NodeCluster: ``up`` and ``node up`` print ``export KUBECONFIG=...`` and
run until interrupted; ``node down`` stops what a ``node up`` in DIR started (also one that crashed) and
restores the host.
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import sys
import time
from dataclasses import replace
from pathlib import Path

from readiness.envtest import binaries, hoststate
from readiness.envtest.binaries import BinaryError
from readiness.envtest.controlplane import ControlPlane, ControlPlaneError
from readiness.envtest.settings import ControlPlaneSettings


def _build(_: argparse.Namespace) -> int:
    for name, path in binaries.ensure_all(progress=sys.stderr).items():
        print(f"{name}: {path}", file=sys.stderr)
    return 0


def _crds(_: argparse.Namespace) -> int:
    """Fetch the pinned upstream CRDs (PrometheusRule, ServiceMonitor, PolicyReport, Rollout)."""
    from readiness.envtest import upstream_crds

    for name, path in upstream_crds.ensure(progress=sys.stderr).items():
        print(f"{name}: {path}", file=sys.stderr)
    return 0


def _env(_: argparse.Namespace) -> int:
    """Print ``export TEST_ASSET_...=path`` lines for ``eval``, building what is missing."""
    for tool in binaries.ALL_TOOLS:
        print(f"export {tool.env_var}={shlex.quote(str(binaries.locate(tool)))}")
    return 0


def _up(args: argparse.Namespace) -> int:
    settings = replace(ControlPlaneSettings.from_env(), run_dir=args.dir)
    return _serve(ControlPlane(settings))


def _node_up(args: argparse.Namespace) -> int:
    from readiness.envtest.images import ensure_images
    from readiness.envtest.node import NodeCluster, NodeSettings

    archives: tuple[Path, ...] = ()
    if args.images:
        built = ensure_images(progress=sys.stderr)  # the python base is only a build input: not imported
        archives = tuple(image.archive for name, image in built.items() if name != "python-base")
    settings = replace(ControlPlaneSettings.from_env(), run_dir=args.dir, keep_run_dir=args.dir is not None)
    return _serve(NodeCluster(settings, NodeSettings(image_archives=archives)))


def _node_down(args: argparse.Namespace) -> int:
    """Kill what a node in ``--dir`` left running, remove its cgroups, restore the host's tunables."""
    trace_file = args.dir / "node" / "trace.json"
    if trace_file.exists():
        _stop_harness(hoststate.NodeTrace.read(trace_file))
    done = hoststate.restore(hoststate.NodeTrace.read(trace_file)) if trace_file.exists() else []
    done += [f"restored {k}={v}" for k, v in sorted(hoststate.restore_tunables().items())]  # dead holders
    for line in done or ["nothing was left running"]:
        print(f"node down: {line}", file=sys.stderr)
    return 0


def _stop_harness(trace: hoststate.NodeTrace) -> None:
    """SIGTERM the `node up` still running for this directory, and give it time to stop its node."""
    pid = int(trace.extra.get("harness_pid", "0"))
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return
    if pid <= 1 or b"readiness.envtest" not in command:
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 60
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.2)


def _serve(plane: ControlPlane) -> int:
    with plane:
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
    commands.add_parser(
        "crds", help="fetch the pinned upstream CRDs the tests and the demo install (from Go modules)"
    ).set_defaults(run=_crds)
    commands.add_parser("env", help="print export lines with the binary paths").set_defaults(run=_env)
    up = commands.add_parser("up", help="start a control plane in the foreground until Ctrl-C")
    up.add_argument("--dir", type=Path, default=None, help="run directory (default: a temporary one)")
    up.set_defaults(run=_up)
    node = commands.add_parser("node", help="a one-node cluster (control plane, kubelet, containerd)")
    node_commands = node.add_subparsers(dest="node_command", required=True)
    node_up = node_commands.add_parser("up", help="start it in the foreground until Ctrl-C")
    node_up.add_argument("--dir", type=Path, default=None, help="run directory (kept; default: temporary)")
    node_up.add_argument(
        "--no-images", dest="images", action="store_false",
        help="do not build or import the operator, pause and workload images: a node that is Ready but "
             "cannot start pods (no pause image); for tests of the harness itself, 10-20 s faster")
    node_up.set_defaults(run=_node_up)
    node_down = node_commands.add_parser("down", help="stop what `node up --dir DIR` left; restore the host")
    node_down.add_argument("--dir", type=Path, required=True, help="the run directory of `node up`")
    node_down.set_defaults(run=_node_down)
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
