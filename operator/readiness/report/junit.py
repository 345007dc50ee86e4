"""JUnit XML for CI test reports (Jenkins, GitLab): one testsuite per policy, one testcase per
workload x check. Findings at or above --fail-on are failures carrying the messages; findings below it
pass with the message in system-out (so the test report agrees with the exit code); exempted checks
are skipped with the reason. Input errors form their own testsuite of errored cases, and so does
"nothing was judged" (a skipped case with --allow-empty); a directory walk's files that hold no Kubernetes
object are skipped cases there. Notices (namespace labels assumed to match, an
exemption annotation ignored...) are each policy's testsuite's `system-out`.

Written as text, in the layout ElementTree's `indent` + `tostring` gave (attributes in the same order,
the same escaping): 10,000 workloads make 270,000 testcases, and building then serialising that tree
took 2 s of a 3 s audit.
"""

from __future__ import annotations

import pickle
import re
from collections import defaultdict
from dataclasses import dataclass, field

from readiness.engine import Evaluation, Finding
from readiness.loader import location
from readiness.report import RenderOptions
from readiness.report.model import NOTHING_JUDGED, AuditResult, WorkloadResult, assumption_notice

DECLARATION = "<?xml version='1.0' encoding='utf-8'?>"
CASE_INDENT = "    "
CHILD_INDENT = "      "


_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
"""The characters XML 1.0 forbids in any document, even as character references (ElementTree writes
them as they are, which makes the report unreadable to every parser)."""


def _visible(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def character_data(text: str) -> str:
    """Text content, escaped as ElementTree escapes it; characters XML forbids are written as `\\xNN`
    escapes (a container name with a control character is still named, and the report still parses)."""
    if _NOT_XML.search(text) is not None:
        text = _NOT_XML.sub(_visible, text)
    if "&" in text:
        text = text.replace("&", "&amp;")
    if "<" in text:
        text = text.replace("<", "&lt;")
    if ">" in text:
        text = text.replace(">", "&gt;")
    return text


ATTRIBUTE_ENTITIES = (('"', "&quot;"), ("\r", "&#13;"), ("\n", "&#10;"), ("\t", "&#09;"))
"""What an attribute value escapes besides what text content does (ElementTree's choice)."""


def attribute(text: str) -> str:
    """An attribute value, quoted and escaped as ElementTree escapes it."""
    text = character_data(text)
    for char, entity in ATTRIBUTE_ENTITIES:
        if char in text:
            text = text.replace(char, entity)
    return f'"{text}"'


FORMAT = "junit"


@dataclass
class Suite:
    """One testsuite's testcases as lines of text, with its counts."""

    name: str
    lines: list[str] = field(default_factory=list)
    tests: int = 0
    failures: int = 0
    errors: int = 0
    skipped: int = 0
    notes: list[str] = field(default_factory=list)
    """Notices of this policy's run, said in the suite's system-out."""

    def case(self, opening: str, child: str | None = None) -> None:
        """A testcase (`opening` is its start tag's name and attributes) with at most one child."""
        self.tests += 1
        if child is None:
            self.lines.append(f"{CASE_INDENT}<testcase {opening} />")
        else:
            self.lines.append(f"{CASE_INDENT}<testcase {opening}>\n{CHILD_INDENT}{child}\n"
                              f"{CASE_INDENT}</testcase>")

    def add(self, part: Part) -> None:
        """The testcases of one workload under this suite's policy, rendered already."""
        _policy, text, tests, failures, skipped, notes = part
        if tests:
            self.lines.append(text)
        self.tests += tests
        self.failures += failures
        self.skipped += skipped
        self.notes += notes

    def counts(self) -> str:
        return (f'tests="{self.tests}" failures="{self.failures}" errors="{self.errors}" '
                f'skipped="{self.skipped}"')

    def render(self) -> str:
        head = f"  <testsuite name={attribute(self.name)} {self.counts()}"
        lines = self.lines
        if self.notes:
            notes = character_data("\n".join(self.notes))
            lines = [*lines, f"{CASE_INDENT}<system-out>{notes}</system-out>"]
        if not lines:
            return head + " />"
        return head + ">\n" + "\n".join(lines) + "\n  </testsuite>"


Part = tuple[str, str, int, int, int, tuple[str, ...]]
"""One workload's testcases under one policy: (policy, their lines, tests, failures, skipped, notices)."""


def render(result: AuditResult, options: RenderOptions) -> str:
    suites = {policy: Suite(policy) for policy in result.policies}
    for policy, namespace in result.assumed:
        suites[policy].notes.append(assumption_notice(policy, namespace))
    for workload in result.workloads:
        ahead = workload.prerendered_as(FORMAT)
        for part in pickle.loads(ahead) if ahead is not None else parts(workload, options):
            suites[part[0]].add(part)
    every = list(suites.values())
    empty = result.nothing_judged()
    if result.errors or empty or result.skipped_files:
        errors = Suite("input")
        for error in result.errors:
            errors.errors += 1
            errors.case(f'classname="input" name={attribute(str(error))}',
                        f'<error message={attribute(error.message)} type="InputError">'
                        f"{character_data(str(error))}</error>")
        if empty:
            _nothing_judged(errors, empty, options)
        for skipped in result.skipped_files:  # a directory walk's files that hold no Kubernetes object
            errors.skipped += 1
            errors.case(f'classname="input" name={attribute(skipped.source)}',
                        f"<skipped message={attribute(str(skipped))} />")
        every.append(errors)
    total = Suite("readiness", tests=sum(s.tests for s in every), failures=sum(s.failures for s in every),
                  errors=sum(s.errors for s in every), skipped=sum(s.skipped for s in every))
    head = f'<testsuites name="readiness" {total.counts()}'
    if not every:
        return f"{DECLARATION}\n{head} />\n"
    body = "\n".join(suite.render() for suite in every)
    return f"{DECLARATION}\n{head}>\n{body}\n</testsuites>\n"


def _nothing_judged(suite: Suite, message: str, options: RenderOptions) -> None:
    """One case for "nothing was judged": an error, as the exit status (3) has it, or skipped with
    --allow-empty."""
    opening = f'classname="input" name={attribute(NOTHING_JUDGED)}'
    if options.allow_empty:
        suite.skipped += 1
        suite.case(opening, f"<skipped message={attribute(message)} />")
    else:
        suite.errors += 1
        suite.case(opening, f'<error message={attribute(message)} type="NothingJudged">'
                            f"{character_data(message)}</error>")


def entry_bytes(workload: WorkloadResult, options: RenderOptions) -> bytes:
    """One workload's parts of the report, for a parallel audit's hand-over (`render` reads them back)."""
    return pickle.dumps(parts(workload, options), protocol=pickle.HIGHEST_PROTOCOL)


def parts(workload: WorkloadResult, options: RenderOptions) -> list[Part]:
    """The workload's testcases, one part per policy that judged it."""
    return [_cases(evaluation.policy, workload, evaluation, options) for evaluation in workload.evaluations]


def _cases(policy: str, workload: WorkloadResult, evaluation: Evaluation, options: RenderOptions) -> Part:
    suite = Suite(policy)
    findings: dict[str, list[Finding]] = defaultdict(list)
    for finding in evaluation.findings:
        findings[finding.check].append(finding)
    exempted = {x.finding.check: x for x in evaluation.exempted}
    doc = workload.document
    # The same for every check of this workload: escaped once.
    where = (f"classname={attribute(str(workload.workload.ref))} file={attribute(doc.source)}"
             + (f' line="{doc.line}"' if doc.line else ""))  # a live cluster's object has no line
    threshold = options.fail_on
    for check_id in evaluation.checks_run:
        opening = f"name={attribute(check_id)} {where}"
        failed = findings.get(check_id)
        if failed and threshold is not None and max(f.severity.rank for f in failed) >= threshold.rank:
            text = "\n".join(f"{location(doc.source, workload.line_of(f))}: [{f.severity}] {f.message}"
                             for f in failed)
            suite.failures += 1
            suite.case(opening, f"<failure message={attribute(failed[0].message)} "
                                f"type={attribute(failed[0].severity.value)}>{character_data(text)}</failure>")
        elif failed:
            text = "\n".join(f"[{f.severity}] {f.message}" for f in failed)
            suite.case(opening, f"<system-out>{character_data(text)}</system-out>")
        elif check_id in exempted:
            suite.skipped += 1
            suite.case(opening, f"<skipped message={attribute('exempted: ' + exempted[check_id].reason)} />")
        else:
            suite.case(opening)
    notes = tuple(f"{workload.workload.ref}: {notice}" for notice in evaluation.notices)
    return policy, "\n".join(suite.lines), suite.tests, suite.failures, suite.skipped, notes
