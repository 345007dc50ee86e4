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
import gc
import io
import os
import re
import sys
from collections.abc import Sequence
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

def build_parser() -> argparse.ArgumentParser:
    common = _Parser(add_help=False)
    common.add_argument("--debug", action="store_true", help="show tracebacks of internal errors")
    parser = _Parser(prog="readiness", parents=[common],
                     description="Audit Kubernetes workloads against production-readiness policies.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)

    audit = commands.add_parser("audit", parents=[common], help="audit manifests (files, directories, stdin)")
    audit.add_argument("-f", "--filename", dest="files", action="append", default=[], metavar="FILE|DIR|-",
                       help="manifests to audit: a file, a directory (recursive *.yaml, *.yml, *.json) or - "
                            "for stdin (repeatable; default: stdin when it is not a terminal)")
    audit.add_argument("-p", "--policy", action="append", default=[], metavar="FILE",
                       help="ReadinessPolicy file (repeatable; every matching policy judges each workload; "
                            "default: the built-in policy)")
    audit.add_argument("-o", "--output", choices=("text", "json", "sarif", "junit"), default="text")
    audit.add_argument("--fail-on", choices=FAIL_ON, default="error",
                       help="exit 1 when a finding is at least this severe (default: error)")
    audit.add_argument("--custom-kind", action="append", default=[],
                       metavar="[GROUP/]KIND=PATH[,replicas=PATH]",
                       help="audit a custom kind whose pod template is at PATH, e.g. "
                            "'example.com/Worker=spec.template,replicas=spec.replicas'")
    audit.add_argument("--namespace-labels", action="append", default=[],
                       metavar="NAMESPACE:KEY=VALUE[,KEY=VALUE...]",
                       help="the labels of a namespace for policies' namespaceSelector, e.g. "
                            "'shop:env=prod,tier=web' ('shop:' for none; repeatable; they replace a "
                            "Namespace object's labels). Unknown labels are assumed to match, and the report "
                            "says so")
    audit.add_argument("--allow-empty", action="store_true",
                       help="exit 0, not 3, when nothing was judged (the report still says so)")
    audit.add_argument("--no-color", action="store_true", help="no ANSI colours (also: NO_COLOR=1)")
    audit.set_defaults(handler=cmd_audit)

    checks = commands.add_parser("checks", parents=[common], help="list the check catalog")
    checks.add_argument("-o", "--output", choices=("text", "json"), default="text")
    checks.set_defaults(handler=cmd_checks)

    explain = commands.add_parser("explain", parents=[common], help="why a check matters and how to fix it")
    explain.add_argument("check_id", metavar="ID")
    explain.set_defaults(handler=cmd_explain)

    rules = commands.add_parser("rules", parents=[common], help="print a policy's Prometheus alert rules")
    rules.add_argument("--policy", required=True, metavar="FILE")
    rules.add_argument("-o", "--output", choices=("rules", "prometheusrule"), default="rules")
    rules.set_defaults(handler=cmd_rules)

    crd = commands.add_parser("crd", parents=[common], help="print the ReadinessPolicy CRD")
    crd.set_defaults(handler=cmd_crd)
    return parser


# -- audit -----------------------------------------------------------------------------------------------

def cmd_audit(args: argparse.Namespace, stdin: TextIO, stdout: TextIO, stderr: TextIO) -> int:
    from datetime import UTC, datetime

    from readiness.report import RenderOptions

    kinds = _kinds(args.custom_kind)
    namespace_labels = parse_namespace_labels(args.namespace_labels)
    engines = _engines(args.policy, [spec.kind for spec in kinds.custom])
    files = args.files or _stdin_or_usage(stdin)
    now = datetime.now(UTC)  # one clock for the whole run (and both processes of the parallel path)
    threshold = None if args.fail_on == "never" else _severity(args.fail_on)
    color = stdout.isatty() and not args.no_color and not os.environ.get("NO_COLOR")
    options = RenderOptions(color=color, fail_on=threshold, allow_empty=args.allow_empty)
    # The parsed manifests are hundreds of thousands of small dicts and lists without reference cycles:
    # the cyclic GC would rescan them all again and again (half the time of a 10,000-document audit).
    # Reference counting frees them; the collector is back on before this returns (unless the process
    # ends right after, see `main`: its first pass would walk them all again).
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        prerender = _prerender(args.output, options, engines)
        result = _audit_large_stream(files, stdin, engines, kinds.registry, now, prerender, namespace_labels)
        if result is None:
            result = _audit_serial(files, stdin, engines, kinds.registry, now, namespace_labels)
        _write_report(args.output, result, options, stdout)
    finally:
        _wait_for_workers()
        if gc_was_enabled and not _process_ends_after_run:
            gc.enable()
    _keep_until_exit(result)
    for error in result.errors:
        print(f"readiness: {error}", file=stderr)
    if args.output != "text":  # stdout may be a JSON or SARIF file: the CI log says it too
        for notice in result.notices():
            print(f"readiness: {notice}", file=stderr)
    if result.errors:
        return EXIT_ERROR
    if result.nothing_judged() is not None and not args.allow_empty:
        return EXIT_NOTHING_JUDGED
    return EXIT_FINDINGS if result.fails(threshold) else EXIT_OK


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
        return Prerender(output, functools.partial(module.entry_bytes, index=index))
    return Prerender(output, functools.partial(module.entry_bytes, options=options))


def _audit_serial(files: Sequence[str], stdin: TextIO, engines: list[Any], kinds: Any, now: Any,
                  namespace_labels: dict[str, dict[str, str]], loaded: Any = None) -> Any:
    """`loaded`: the input when it was already read (else `files` are)."""
    from readiness.loader import load_paths
    from readiness.report.model import audit

    loaded = loaded if loaded is not None else load_paths(files, stdin)
    if not loaded.documents and not loaded.errors:
        raise UsageError(f"no Kubernetes objects in {', '.join(files)}")
    result = audit(loaded.documents, engines, kinds, now, namespace_labels=namespace_labels)
    result.errors[:0] = loaded.errors  # reading problems first: they usually explain the rest
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
        raise UsageError(f"no Kubernetes objects in {name}")
    result.errors[:0] = load_errors
    return result


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
    from readiness.workload import KindRegistry

    kinds = _Kinds()
    for text in declarations:
        try:
            spec = KindRegistry.parse_custom(text)
        except ValueError as error:
            raise UsageError(f"--custom-kind: {error}") from None
        if not spec.template_path:
            raise UsageError(f"--custom-kind {text!r}: the pod template path is empty")
        kinds.registry.register(spec)
        kinds.custom.append(spec)
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


# -- rules, crd: delegated to the modules that own them -----------------------------------------------------

def cmd_rules(args: argparse.Namespace, stdin: TextIO, stdout: TextIO, stderr: TextIO) -> int:
    import yaml

    try:
        from readiness.alerts import rules_document
    except ImportError:
        raise UsageError("rules: alert rules are not available in this build (readiness.alerts)") from None
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


def run(arguments: Sequence[str]) -> int:
    """One command line, in this process: its exit code."""
    arguments = list(arguments)
    try:
        args = build_parser().parse_args(arguments)
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
