"""`readiness`: audit manifests offline (CI), list and explain checks, print alert rules and the CRD.

A thin shell around the engine: the operator and the webhook judge workloads with the same code.

Exit codes: 0 clean; 1 findings at or above --fail-on; 2 usage or input errors; 3 nothing was judged
(no policy matched any workload; --allow-empty makes that 0). Input errors win over findings: a run that
could not read part of its input exits 2 even when what it could read is clean, because a CI gate must
never pass on manifests it did not judge. Broken documents do not stop the
audit of the others; their errors are printed (stderr, one line each) and in every report format.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import io
import os
import re
import stat
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn, TextIO

EXIT_OK, EXIT_FINDINGS, EXIT_ERROR, EXIT_NOTHING_JUDGED = 0, 1, 2, 3
FAIL_ON = ("error", "warning", "info", "never")


class UsageError(Exception):
    """A problem with the command line or its inputs: printed as one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    """argparse, but usage errors are one line (with a pointer to --help) instead of the usage block."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_ERROR, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


# -- the command line ------------------------------------------------------------------------------------

def build_parser(prog: str = "readiness") -> argparse.ArgumentParser:
    """`prog`: the command as the user typed it (`kubectl readiness` when run as the kubectl plugin)."""
    common = _Parser(add_help=False)
    common.add_argument("--debug", action="store_true", help="show tracebacks of internal errors")
    parser = _Parser(prog=prog, parents=[common],
                     description="Audit Kubernetes workloads against production-readiness policies.")
    parser.add_argument("--version", action="version", version=version_text(prog),
                        help="print the version (and the Python and platform it runs on) and exit")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)

    audit = commands.add_parser("audit", parents=[common],
                                help="audit manifests (files, directories, stdin) or a live cluster "
                                     "(--cluster)")
    audit.add_argument("-f", "--filename", dest="files", action="append", default=[], metavar="FILE|DIR|-",
                       help="manifests to audit: a file, a directory (recursive *.yaml, *.yml, *.json, "
                            "hidden ones not read; Helm chart sources and files with no Kubernetes object "
                            "skipped with a notice) or - for stdin (repeatable; default: stdin when it is "
                            "not a terminal)")
    audit.add_argument("-p", "--policy", action="append", default=[], metavar="FILE",
                       help="ReadinessPolicy file (repeatable; every matching policy judges each workload; "
                            "default: the built-in policy)")
    audit.add_argument("-o", "--output", choices=("text", "json", "sarif", "junit"), default="text",
                       help="report format (default: text)")
    audit.add_argument("--fail-on", choices=FAIL_ON, default="error",
                       help="exit 1 when a finding is at least this severe (default: error)")
    audit.add_argument("--custom-kind", action="append", default=[],
                       metavar="[GROUP/]KIND=PATH[,replicas=PATH]",
                       help="audit a custom kind whose pod template is at PATH, e.g. "
                            "'example.com/Worker=spec.template,replicas=spec.replicas' (repeatable); more "
                            "options: strategy=PATH, class=service|daemon|batch, plural=NAME (used by the "
                            "operator; the CLI discovers it): the operator's --custom-kind syntax")
    audit.add_argument("--namespace-labels", action="append", default=[],
                       metavar="NAMESPACE:KEY=VALUE[,KEY=VALUE...]",
                       help="the labels of a namespace for policies' namespaceSelector, e.g. "
                            "'shop:env=prod,tier=web' ('shop:' for none; repeatable; they replace a "
                            "Namespace object's labels). Unknown labels are assumed to match, and the report "
                            "says so")
    audit.add_argument("--allow-empty", action="store_true",
                       help="exit 0, not 3, when nothing was judged (the report still says so)")
    audit.add_argument("--sarif-root", metavar="DIR",
                       help="the directory SARIF file uris are relative to (-o sarif; default: the working "
                            "directory). Code scanning matches them against the repository: give its root "
                            "when running elsewhere. Files outside DIR get absolute file:// uris")
    _add_ci_flags(audit)
    _add_cluster_flags(audit)
    audit.set_defaults(handler=cmd_audit)

    checks = commands.add_parser("checks", parents=[common], help="list the check catalog")
    checks.add_argument("-o", "--output", choices=("text", "json"), default="text",
                        help="output format (default: text)")
    checks.set_defaults(handler=cmd_checks)

    explain = commands.add_parser("explain", parents=[common], help="why a check matters and how to fix it")
    explain.add_argument("check_id", metavar="ID")
    explain.set_defaults(handler=cmd_explain)

    rules = commands.add_parser("rules", parents=[common],
                                help="print a policy's Prometheus alert rules, or the operator's own")
    source = rules.add_mutually_exclusive_group(required=True)
    source.add_argument("--policy", metavar="FILE", help="the ReadinessPolicy whose alerts to print")
    source.add_argument("--operator", action="store_true",
                        help="the operator's own alerts (ReadinessOperatorDown, ReadinessOperatorAPIErrors), "
                             "as the chart's prometheusRule ships them")
    rules.add_argument("-o", "--output", choices=("rules", "prometheusrule"), default="rules",
                       help="a Prometheus rules file, or a PrometheusRule object (default: rules)")
    rules.set_defaults(handler=cmd_rules)

    crd = commands.add_parser("crd", parents=[common], help="print the ReadinessPolicy CRD")
    crd.set_defaults(handler=cmd_crd)

    _add_cleanup(commands, common)

    completion = commands.add_parser("completion", parents=[common],
                                     help="print a shell completion script (bash, zsh, fish)",
                                     description=COMPLETION_HELP,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    completion.add_argument("shell", choices=COMPLETION_SHELLS)
    completion.set_defaults(handler=cmd_completion)
    return parser


def _add_ci_flags(audit: argparse.ArgumentParser) -> None:
    """The flags for running the audit in a CI pipeline: what it reads, where and how it writes."""
    audit.add_argument("--exclude", action="append", default=[], metavar="GLOB",
                       help="leave out files and folders of a directory walk, gitignore syntax relative to "
                            "each directory given with -f (repeatable; also read: .readinessignore files "
                            "in those directories and below). Files named with -f are always read")
    audit.add_argument("--output-file", metavar="PATH",
                       help="write the report to PATH instead of stdout, atomically (a reader never sees "
                            "half a report; the exit status is the same). Notices then go to stderr")
    audit.add_argument("--only-failing", action="store_true",
                       help="list only the workloads with open findings (default: every audited workload); "
                            "the summary still counts them all")
    audit.add_argument("--color", choices=("auto", "always", "never"), default="auto",
                       help="ANSI colours in the text report (default: auto, on when stdout is a terminal "
                            "and NO_COLOR is unset; FORCE_COLOR turns auto on). always wins over NO_COLOR")
    audit.add_argument("--no-color", dest="color", action="store_const", const="never",
                       help="the same as --color=never")


def _add_cluster_flags(audit: argparse.ArgumentParser) -> None:
    """The flags of an audit of the live cluster (readiness.cluster) instead of manifests."""
    group = audit.add_argument_group("live cluster (read-only: it only gets and lists)")
    group.add_argument("--cluster", action="store_true",
                       help="audit the live cluster of the kubeconfig context instead of manifests: its "
                            "workloads with their namespaces' labels, PodDisruptionBudgets, autoscalers and "
                            "ServiceAccounts, judged by its ReadinessPolicies as the operator judges them "
                            "(or by --policy FILE; the built-in policy when it has none). Findings name "
                            "cluster:NAMESPACE/KIND/NAME. Default: off (audit -f or stdin)")
    group.add_argument("--kubeconfig", metavar="FILE",
                       help="with --cluster: the kubeconfig (default: $KUBECONFIG, else ~/.kube/config; "
                            "without either, the service account of the pod it runs in)")
    group.add_argument("--context", metavar="NAME",
                       help="with --cluster: the kubeconfig context (default: its current-context)")
    group.add_argument("-n", "--namespace", metavar="NAME",
                       help="with --cluster: audit one namespace (default: all namespaces)")


def _cluster_target(args: argparse.Namespace) -> Any:
    """The cluster to audit (a readiness.cluster.ClusterTarget), or None without --cluster."""
    given = [flag for flag, value in (("--kubeconfig", args.kubeconfig), ("--context", args.context),
                                      ("--namespace", args.namespace)) if value]
    if not args.cluster:
        if given:
            raise UsageError(f"{given[0]} reads a live cluster: add --cluster")
        return None
    if args.files:
        raise UsageError("--cluster audits the live cluster, -f audits manifests: pass one or the other")
    if args.namespace is not None and not _DNS_LABEL.fullmatch(args.namespace):
        raise UsageError(f"--namespace {args.namespace!r}: not a namespace name (a DNS label)")
    from readiness.cluster import ClusterTarget

    return ClusterTarget(kubeconfig=args.kubeconfig, context=args.context, namespace=args.namespace)


def _audit_cluster(target: Any, engines: list[Any] | None, kinds: _Kinds, now: Any,
                   namespace_labels: dict[str, dict[str, str]]) -> Any:
    from readiness.cluster import ClusterError, audit_cluster

    groups = {spec.kind: spec.group for spec in kinds.custom}
    try:
        return audit_cluster(target, engines, kinds.registry, groups, now, namespace_labels)
    except ClusterError as error:
        raise UsageError(str(error)) from None


def version_text(prog: str) -> str:
    """`readiness 0.1.0 (python 3.11.2, linux x86_64)`: what a bug report needs to name the build."""
    import platform

    from readiness import __version__

    system = f"{platform.system().lower()} {platform.machine()}".strip()
    return f"{prog} {__version__} (python {platform.python_version()}, {system})"


def program_name(argv0: str) -> str:
    """The command as typed: kubectl runs a plugin `kubectl-NAME` (dashes in NAME from `_`) for
    `kubectl NAME`, so its usage says so; any other name (`readiness`, `python -m ...`) is `readiness`."""
    name = os.path.basename(argv0)
    if name.startswith("kubectl-"):
        return "kubectl " + name.removeprefix("kubectl-").replace("_", "-")
    return "readiness"


# -- audit -----------------------------------------------------------------------------------------------

def cmd_audit(args: argparse.Namespace, stdin: TextIO, stdout: TextIO, stderr: TextIO) -> int:
    from datetime import UTC, datetime

    from readiness.report import RenderOptions

    kinds = _kinds(args.custom_kind)
    namespace_labels = parse_namespace_labels(args.namespace_labels)
    cluster = _cluster_target(args)  # --cluster: the live cluster is the input, its policies the default
    # --cluster without --policy: the cluster's own policies (read with it), so none from here
    engines = [] if cluster and not args.policy else _engines(args.policy, [k.kind for k in kinds.custom])
    files = [] if cluster else args.files or _stdin_or_usage(stdin)
    now = datetime.now(UTC)  # one clock for the whole run (and both processes of the parallel path)
    threshold = None if args.fail_on == "never" else _severity(args.fail_on)
    exclude = _exclude_patterns(args.exclude)
    if args.output_file:
        _check_writable(args.output_file)
    # a report file is coloured only when asked for (--color=always): FORCE_COLOR is meant for a CI log
    color = args.color == "always" if args.output_file else use_color(args.color, stdout.isatty())
    options = RenderOptions(color=color, fail_on=threshold, allow_empty=args.allow_empty,
                            sarif_root=_sarif_root(args.sarif_root))
    # The parsed manifests are hundreds of thousands of small dicts and lists without reference cycles:
    # the cyclic GC would rescan them all again and again (half the time of a 10,000-document audit).
    # Reference counting frees them; the collector is back on before this returns (unless the process
    # ends right after, see `main`: its first pass would walk them all again).
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        if cluster is not None:
            result = _audit_cluster(cluster, engines or None, kinds, now, namespace_labels)
        else:
            prerender = _prerender(args.output, options, engines)
            result = _audit_large_stream(files, stdin, engines, kinds.registry, now, prerender,
                                         namespace_labels)
        if result is None:
            result = _audit_serial(files, stdin, engines, kinds.registry, now, namespace_labels,
                                   exclude=exclude)
        shown = result.only_violating() if args.only_failing else result
        if args.output_file:
            write_atomically(args.output_file,
                             lambda stream: _write_report(args.output, shown, options, stream))
        else:
            _write_report(args.output, shown, options, stdout)
    finally:
        _wait_for_workers()
        if gc_was_enabled and not _process_ends_after_run:
            gc.enable()
    _keep_until_exit(result)
    for error in result.errors:
        print(f"readiness: {error}", file=stderr)
    if args.output != "text" or args.output_file:  # the report may be a file: the CI log says it too
        for notice in [*result.notices(), *result.skipped_files]:
            print(f"readiness: {notice}", file=stderr)
    if result.errors:
        return EXIT_ERROR
    if result.nothing_judged() is not None and not args.allow_empty:
        return EXIT_NOTHING_JUDGED
    return EXIT_FINDINGS if result.fails(threshold) else EXIT_OK


def use_color(choice: str, terminal: bool) -> bool:
    """--color: always and never as said; auto is off with NO_COLOR (no-color.org), on with FORCE_COLOR
    (CI logs that render ANSI but are no terminal), else on for a terminal that is not TERM=dumb."""
    if choice != "auto":
        return choice == "always"
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    return terminal and os.environ.get("TERM") != "dumb"


def _sarif_root(directory: str | None) -> str | None:
    """--sarif-root as an absolute path (fixed before a parallel audit forks), checked to be a directory."""
    if directory is None:
        return None
    if not Path(directory).is_dir():
        raise UsageError(f"--sarif-root {directory}: not a directory")
    return os.path.abspath(directory)


def _exclude_patterns(patterns: Sequence[str]) -> list[str]:
    from readiness.discovery import compile_patterns

    for pattern in patterns:
        try:
            compile_patterns([pattern])
        except ValueError as error:
            raise UsageError(f"--exclude {pattern!r}: {error}") from None
    return list(patterns)


def _check_writable(path: str) -> None:
    """Fail before the audit, not after it, when --output-file cannot be written."""
    target = Path(path)
    folder = target.parent
    if target.is_dir():
        raise UsageError(f"--output-file {path}: is a directory")
    if not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK):
        why = "no such directory" if not folder.is_dir() else "permission denied"
        raise UsageError(f"--output-file {path}: cannot write in {folder}: {why}")


def write_atomically(path: str, write: Callable[[TextIO], None]) -> None:
    """Write a file through a temporary one beside it, renamed over it once complete: a reader (a CI
    step, a code-scanning upload) sees the old file or the whole new one, never a part. The file gets
    the mode the old one had, else the umask's."""
    import tempfile

    target = Path(path)
    try:
        mode = stat.S_IMODE(target.stat().st_mode)
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    try:
        descriptor, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as error:
        raise UsageError(f"--output-file {path}: cannot write: {error.strerror or error}") from None
    try:
        with open(descriptor, "w", encoding="utf-8") as stream:
            write(stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def parse_namespace_labels(values: Sequence[str]) -> dict[str, dict[str, str]]:
    """`--namespace-labels NAMESPACE:KEY=VALUE[,KEY=VALUE...]`, repeatable (the same namespace's labels
    are merged). A colon ends the name because neither a namespace name nor a label key can hold one."""
    labels: dict[str, dict[str, str]] = {}
    for text in values:
        name, colon, pairs = text.partition(":")
        name = name.strip()
        if not colon or not _DNS_LABEL.fullmatch(name):
            raise UsageError(f"--namespace-labels {text!r}: expected NAMESPACE:KEY=VALUE[,KEY=VALUE...] "
                             f"(NAMESPACE a DNS label, e.g. 'shop:env=prod')")
        known = labels.setdefault(name, {})
        for pair in filter(None, (part.strip() for part in pairs.split(","))):
            key, equals, value = pair.partition("=")
            if not equals or not _is_label(key.strip(), value.strip()):
                raise UsageError(f"--namespace-labels {text!r}: {pair!r} is not a KEY=VALUE label")
            known[key.strip()] = value.strip()
    return labels


_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
_LABEL_NAME = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?")
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?")


def _is_label(key: str, value: str) -> bool:
    """A valid label (Kubernetes' rules: `[prefix/]name`, the prefix a DNS subdomain, the value empty
    or a name)."""
    prefix, slash, name = key.rpartition("/")
    return (bool(_LABEL_NAME.fullmatch(name)) and (not slash or bool(_DNS_SUBDOMAIN.fullmatch(prefix)))
            and (not value or bool(_LABEL_NAME.fullmatch(value))))


def _write_report(output: str, result: Any, options: Any, stdout: TextIO) -> None:
    """Render and write the report. JSON, text and SARIF go to the binary stream in UTF-8 pieces, so that
    tens of MB are never joined into one string (text only when the stream is UTF-8 anyway)."""
    binary = getattr(stdout, "buffer", None)
    encoding = (getattr(stdout, "encoding", None) or "").lower().replace("-", "")
    if output in _CHUNKED and binary is not None and (output != "text" or encoding == "utf8"):
        chunks = _report_module(output).render_chunks(result, options)
        stdout.flush()
        binary.writelines(chunks)
        binary.flush()
        return
    from readiness.report import renderer

    stdout.write(renderer(output)(result, options))
    stdout.flush()


_CHUNKED = frozenset({"json", "text", "sarif"})
"""Formats whose renderers write pieces of bytes (`render_chunks`: tens of MB never joined into one)."""


def _report_module(output: str) -> Any:
    """The module of one report format (imported only for the format being written)."""
    import importlib

    return importlib.import_module(f"readiness.report.{output}")


def _prerender(output: str, options: Any, engines: Sequence[Any]) -> Any:
    """How each process of a parallel audit renders its workloads' part of the `output` report."""
    import functools

    from readiness.report.parallel import Prerender

    module = _report_module(output)
    if output == "sarif":
        from readiness.report.model import active_checks

        index = module.rule_index(active_checks(engines))
        return Prerender(output, functools.partial(module.entry_bytes, index=index,
                                                   root=module.sarif_root(options)))
    return Prerender(output, functools.partial(module.entry_bytes, options=options))


def _audit_serial(files: Sequence[str], stdin: TextIO, engines: list[Any], kinds: Any, now: Any,
                  namespace_labels: dict[str, dict[str, str]], loaded: Any = None,
                  exclude: Sequence[str] = ()) -> Any:
    """`loaded`: the input when it was already read (else `files` are, directories without `exclude`)."""
    from readiness.loader import load_paths
    from readiness.report.model import NoObjects, audit

    loaded = loaded if loaded is not None else load_paths(files, stdin, exclude)
    if not loaded.documents and not loaded.errors:  # an input error, in a report of every format
        skipped = "".join(f"; {skipped}" for skipped in loaded.skipped[:3])
        more = f"; and {len(loaded.skipped) - 3} more skipped" if len(loaded.skipped) > 3 else ""
        loaded.errors.extend(NoObjects(name, None, f"no Kubernetes objects in {_input_name(name)}" + (
            f"{skipped}{more}" if index == 0 else "")) for index, name in enumerate(files))
    result = audit(loaded.documents, engines, kinds, now, namespace_labels=namespace_labels)
    result.errors[:0] = loaded.errors  # reading problems first: they usually explain the rest
    result.skipped_files = loaded.skipped
    return result


def _audit_large_stream(files: Sequence[str], stdin: TextIO, engines: list[Any], kinds: Any, now: Any,
                        prerender: Any, namespace_labels: dict[str, dict[str, str]]) -> Any | None:
    """One large YAML file (or stdin) is audited in two processes (readiness.report.parallel); None when
    the input is anything else, small, or the parallel path failed. Stdin, once read, is replaced by its
    text so that the serial path can read it again."""
    if len(files) != 1:
        return None
    from readiness.loader import InputError, LoadResult, read_stdin
    from readiness.report import parallel

    name = files[0]
    if name == "-":
        if stdin is None or stdin.closed:
            return None
        read = read_stdin(stdin)
        if isinstance(read, InputError):  # not UTF-8: the same one-line error as for a file
            unread = LoadResult(errors=[read])
            return _audit_serial(files, stdin, engines, kinds, now, namespace_labels, unread)
        text = read
        stdin_again: TextIO = io.StringIO(text)
        files_source = "-"
        if not parallel.worth_parallel(len(text)):
            return _audit_serial(files, stdin_again, engines, kinds, now, namespace_labels)
    else:
        path = Path(name)
        if path.suffix == ".json" or not path.is_file():
            return None
        try:
            if not parallel.worth_parallel(path.stat().st_size):
                return None
            text = path.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError):
            return None  # the serial path reports it
        files_source = str(path)
        stdin_again = stdin
    outcome = parallel.audit_stream(text, files_source, engines, kinds, now, prerender, namespace_labels)
    if outcome is None:
        return _audit_serial(files, stdin_again, engines, kinds, now, namespace_labels)
    result, load_errors, documents = outcome
    if not documents and not load_errors:
        from readiness.report.model import NoObjects

        load_errors = [NoObjects(name, None, f"no Kubernetes objects in {_input_name(name)}")]
    result.errors[:0] = load_errors
    return result


def _input_name(name: str) -> str:
    return "standard input" if name == "-" else name


def _wait_for_workers() -> None:
    """The command returns only when all its work is done: no worker of the parallel path outlives it."""
    parallel = sys.modules.get("readiness.report.parallel")
    if parallel is not None:
        parallel.wait_for_workers()


def _stdin_or_usage(stdin: TextIO | None) -> list[str]:
    if stdin is None or stdin.closed or stdin.isatty():
        raise UsageError("no input: pass -f FILE|DIR|- or pipe manifests on stdin")
    return ["-"]


def _severity(name: str) -> Any:
    from readiness.checks.base import Severity

    return Severity(name)


class _Kinds:
    def __init__(self) -> None:
        from readiness.workload import BUILTIN_KINDS, KindRegistry, KindSpec

        self.registry = KindRegistry(BUILTIN_KINDS)
        self.custom: list[KindSpec] = []


def _kinds(declarations: Sequence[str]) -> _Kinds:
    from readiness.workload import parse_custom_kind  # the operator's parser too: one syntax

    kinds = _Kinds()
    for text in declarations:
        try:
            custom = parse_custom_kind(text)
        except ValueError as error:
            raise UsageError(f"--custom-kind: {error}") from None
        if custom.deprecation:
            print(f"readiness: {custom.deprecation}", file=sys.stderr)
        kinds.registry.register(custom.spec)
        kinds.custom.append(custom.spec)
    return kinds


def _engines(policy_files: Sequence[str], custom_kinds: Sequence[str]) -> list[Any]:
    from readiness.engine import Engine

    if not policy_files:  # the built-in policy judges every kind the user asked for, custom ones included
        return [Engine.builtin(custom_kinds)]
    return [Engine(policy) for name in policy_files for policy in read_policies(name)]


def read_policies(name: str) -> list[Any]:
    """Every ReadinessPolicy document in a file. Any problem is a UsageError naming file, line, field."""
    from readiness.loader import load_paths

    loaded = load_paths([name])
    if loaded.errors:
        raise UsageError(f"policy {loaded.errors[0]}")
    policies = []
    for document in loaded.documents:
        where = f"{document.source}:{document.line}"
        if not isinstance(document.obj, dict) or document.obj.get("kind") != "ReadinessPolicy":
            kind = document.obj.get("kind") if isinstance(document.obj, dict) else None
            raise UsageError(f"policy {where}: expected kind ReadinessPolicy, got {kind or 'no kind'}")
        policies.append(parse_policy(document.obj, where))
    if not policies:
        raise UsageError(f"policy {name}: no ReadinessPolicy in the file")
    return policies


def parse_policy(data: dict[str, Any], where: str) -> Any:
    """readiness.policy.load_policy when it exists; else pydantic, its first error made one line."""
    from pydantic import ValidationError

    from readiness import policy as policy_module

    load_policy = getattr(policy_module, "load_policy", None)
    policy_error = getattr(policy_module, "PolicyError", ValueError)
    try:
        if load_policy is not None:
            return load_policy(data, where)
        return policy_module.ReadinessPolicy.model_validate(data)
    except ValidationError as error:
        raise UsageError(f"invalid policy {where}: {validation_message(error)}") from None
    except policy_error as error:
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise UsageError(message if where in message else f"invalid policy {where}: {message}") from None


def validation_message(error: Any) -> str:
    """The first pydantic error as `field.path[0].name: message`, plus how many more there are."""
    errors = error.errors()
    first = errors[0]
    path = ""
    for part in first["loc"]:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{path or '(document)'}: {first['msg']}{more}"


# -- checks, explain ---------------------------------------------------------------------------------------

def cmd_checks(args: argparse.Namespace, stdin: TextIO, stdout: TextIO, stderr: TextIO) -> int:
    from readiness.checks import all_checks

    checks = all_checks()
    if args.output == "json":
        import orjson

        rows = [{"id": c.id, "category": c.category.value, "severity": c.severity.value,
                 "enabled": c.enabled_by_default, "title": c.title, "references": list(c.references),
                 "dependsOn": list(c.depends_on)}
                for c in checks]
        stdout.write(orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode() + "\n")
        return EXIT_OK
    width = max((len(c.id) for c in checks), default=2)
    stdout.write(f"{'ID':<{width}}  {'CATEGORY':<12}  {'SEVERITY':<8}  {'ON':<3}  TITLE\n")
    for c in checks:
        on = "on" if c.enabled_by_default else "off"
        reads = f" (reads {', '.join(c.depends_on)})" if c.depends_on else ""
        stdout.write(f"{c.id:<{width}}  {c.category.value:<12}  {c.severity.value:<8}  {on:<3}  {c.title}"
                     f"{reads}\n")
    return EXIT_OK


def cmd_explain(args: argparse.Namespace, stdin: TextIO, stdout: TextIO, stderr: TextIO) -> int:
    from readiness.checks import get_check

    try:
        check = get_check(args.check_id)
    except KeyError as error:
        raise UsageError(str(error.args[0])) from None
    try:
        from readiness.docs import render_explain
    except ImportError:  # the docs renderer is optional: fall back to the check's own text
        text = f"{check.id}: {check.title}\n\nWhy it matters\n\n{check.rationale}\n\nHow to fix it\n\n" \
               f"{check.remediation}\n"
    else:
        text = render_explain(check)
    stdout.write(text if text.endswith("\n") else text + "\n")
    return EXIT_OK


# -- completion ------------------------------------------------------------------------------------------

COMPLETION_SHELLS = ("bash", "zsh", "fish")
COMPLETION_HELP = """\
Print a completion script for the shell: commands, flags, their choices, and file names where a flag
takes a file. Load it in the current shell, or install it once:

  bash:  source <(readiness completion bash)
         readiness completion bash > ~/.local/share/bash-completion/completions/readiness
  zsh:   readiness completion zsh > "${fpath[1]}/_readiness"   (then: autoload -U compinit && compinit)
  fish:  readiness completion fish > ~/.config/fish/completions/readiness.fish

The script completes the `readiness` command (installed with the package, as is `kubectl-readiness`).
"""
_FILE_METAVARS = ("FILE", "PATH")
"""Flags whose metavar starts with one of these complete file names (-f FILE|DIR|-, -p FILE...)."""


def cmd_completion(args: argparse.Namespace, stdin: TextIO, stdout: TextIO, stderr: TextIO) -> int:
    """The script is generated from the parser itself (shtab), so it never falls behind the flags."""
    try:
        import shtab
    except ImportError:
        raise UsageError("completion: shtab is not installed (pip install shtab)") from None
    parser = build_parser("readiness")
    for action in _all_actions(parser):
        if str(action.metavar or "").startswith(_FILE_METAVARS):
            setattr(action, "complete", shtab.FILE)  # noqa: B010  # the attribute shtab reads
    script: str = shtab.complete(parser, shell=args.shell)
    stdout.write(script if script.endswith("\n") else script + "\n")
    return EXIT_OK


def _all_actions(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    """Every action of a parser and of its subcommands' parsers."""
    actions = list(parser._actions)
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in dict.fromkeys(action.choices.values()):
                actions += _all_actions(sub)
    return actions


# -- rules, crd: delegated to the modules that own them -----------------------------------------------------

def cmd_rules(args: argparse.Namespace, stdin: TextIO, stdout: TextIO, stderr: TextIO) -> int:
    import yaml

    try:
        from readiness.alerts import operator_prometheus_rule, rules_document, rules_yaml
    except ImportError:
        raise UsageError("rules: alert rules are not available in this build (readiness.alerts)") from None
    if args.operator:
        operator = operator_prometheus_rule("readiness-system", {})
        stdout.write(rules_yaml(operator if args.output == "prometheusrule" else operator["spec"]))
        return EXIT_OK
    policies = read_policies(args.policy)
    if len(policies) != 1:
        raise UsageError(f"rules: {args.policy} holds {len(policies)} policies; pass a file with one")
    document = rules_document(policies[0])
    if args.output == "prometheusrule":
        document = _prometheus_rule(policies[0].name, document)
    stdout.write(yaml.safe_dump(document, sort_keys=False, default_flow_style=False))
    return EXIT_OK


def _prometheus_rule(policy_name: str, rules: dict[str, Any]) -> dict[str, Any]:
    if rules.get("kind") == "PrometheusRule":
        return rules
    return {"apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule",
            "metadata": {"name": f"readiness-{policy_name}",
                         "labels": {"app.kubernetes.io/name": "readiness"}},
            "spec": rules}


def _add_cleanup(commands: Any, common: argparse.ArgumentParser) -> None:
    cleanup = commands.add_parser(
        "cleanup", parents=[common], help="remove the operator's annotations and label from workloads "
        "after an uninstall (a dry run unless --apply)",
        description="After uninstalling the operator: remove the readiness.dev/* annotations and the "
                    "readiness.dev/compliant label it wrote on workloads (never the readiness.dev/exempt* "
                    "annotations you wrote), its PolicyReports, and Kopf's finalizer that older releases "
                    "left on ReadinessPolicies. Lists what it would change unless --apply is given. Uses "
                    "the current kubeconfig context; needs list and patch on the workload kinds.")
    cleanup.add_argument("--apply", action="store_true",
                         help="patch the workloads and policies and delete our PolicyReports (default: a "
                              "dry run that only lists them, so a wrong context changes nothing)")
    cleanup.add_argument("--kubeconfig", metavar="FILE",
                         help="kubeconfig file (default: $KUBECONFIG, else ~/.kube/config)")
    cleanup.add_argument("--context", help="kubeconfig context (default: its current-context)")
    cleanup.add_argument("-n", "--namespace",
                         help="clean only this namespace (default: all namespaces; policies are "
                              "cluster-scoped and always checked)")
    cleanup.add_argument("--resource", action="append", default=[], metavar="GROUP/VERSION/PLURAL",
                         help="also clean this custom workload kind, one the operator watched with "
                              "--custom-kind, e.g. example.com/v1/widgets (repeatable; default: the "
                              "built-in kinds only)")
    cleanup.set_defaults(handler=cmd_cleanup)


def cmd_cleanup(args: argparse.Namespace, stdin: TextIO, stdout: TextIO, stderr: TextIO) -> int:
    from readiness import uninstall
    try:
        target = uninstall.CleanupTarget(
            kubeconfig=args.kubeconfig, context=args.context, namespace=args.namespace,
            resources=tuple(uninstall.parse_resource(text) for text in args.resource), apply=args.apply)
        outcome = uninstall.cleanup(target)
    except uninstall.CleanupError as error:
        raise UsageError(str(error)) from None
    uninstall.report(outcome, args.apply, stdout)
    return EXIT_OK


def cmd_crd(args: argparse.Namespace, stdin: TextIO, stdout: TextIO, stderr: TextIO) -> int:
    try:
        from readiness.crd import render
    except ImportError:
        raise UsageError("crd: the CRD renderer is not available in this build (readiness.crd)") from None
    rendered: Any = render()
    if not isinstance(rendered, str):  # tolerate a renderer that returns the object itself
        import yaml

        rendered = yaml.safe_dump(rendered, sort_keys=False)
    stdout.write(rendered if rendered.endswith("\n") else rendered + "\n")
    return EXIT_OK


# -- the entry point -------------------------------------------------------------------------------------

def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; never a traceback (unless --debug), always an exit code. Called without `argv`
    (the console script, `python -m readiness.cli`), it is the whole process, and ends it (`_end_process`)."""
    if argv is not None:
        return run(argv)
    global _process_ends_after_run
    _process_ends_after_run = True
    _end_process(run(sys.argv[1:]))


def run(arguments: Sequence[str], prog: str | None = None) -> int:
    """One command line, in this process: its exit code. `prog`: the command's name in usage and help
    (default: from argv[0], see `program_name`)."""
    arguments = list(arguments)
    try:
        args = build_parser(prog or program_name(sys.argv[0])).parse_args(arguments)
        return int(args.handler(args, sys.stdin, sys.stdout, sys.stderr))
    except UsageError as error:
        print(f"readiness: {error}", file=sys.stderr)
        return EXIT_ERROR
    except BrokenPipeError:
        _silence_stdout()  # `readiness audit | head`: the reader left; nothing to report
        return EXIT_OK
    except KeyboardInterrupt:
        return 130
    except Exception as error:
        if "--debug" in arguments:
            raise
        print(f"readiness: internal error: {type(error).__name__}: {error} "
              f"(run with --debug for the traceback)", file=sys.stderr)
        return EXIT_ERROR


_process_ends_after_run = False
"""True when this run is the whole process: what a command built is then left for the OS to reclaim."""
_left_for_the_os: list[Any] = []


def _keep_until_exit(obj: Any) -> None:
    """Keep `obj` alive until the process ends, when it does so right after this run (see `main`)."""
    if _process_ends_after_run:
        _left_for_the_os.append(obj)


def _end_process(code: int) -> NoReturn:
    """Flush our output and exit without the interpreter's teardown. Freeing a 10,000-document audit
    object by object takes about 0.15 s, a tenth of the run; the OS reclaims the memory at once. Nothing
    the CLI imports buffers output of its own or registers exit handlers that matter here."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BrokenPipeError:
            if stream is sys.stdout:
                _silence_stdout()
        except (OSError, ValueError):  # closed or gone: nothing left to say on it
            pass
    os._exit(code)


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush does not raise BrokenPipeError again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


if __name__ == "__main__":
    sys.exit(main())
