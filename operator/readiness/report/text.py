"""The human report: findings grouped by workload, then a summary and the score."""

from __future__ import annotations

from readiness.checks.base import Severity
from readiness.loader import location
from readiness.report import RenderOptions
from readiness.report.model import NOTHING_JUDGED, AuditResult, Piece, Summary, WorkloadResult

_COLORS = {"error": "31", "warning": "33", "info": "36", "ok": "32", "dim": "2", "bold": "1"}
_MARKS = {Severity.ERROR: "✗", Severity.WARNING: "!", Severity.INFO: "i"}


class _Style:
    """ANSI styling that is a no-op when colour is off, so the layout code never branches on it."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def __call__(self, name: str, text: str) -> str:
        return f"\033[{_COLORS[name]}m{text}\033[0m" if self.enabled else text


FORMAT = "text"


def render(result: AuditResult, options: RenderOptions) -> str:
    return b"".join(render_chunks(result, options)).decode()


def render_chunks(result: AuditResult, options: RenderOptions) -> list[Piece]:
    """The report as UTF-8 pieces: each workload's lines (rendered ahead by the process that judged it,
    in a parallel audit), then the summary."""
    chunks: list[Piece] = []
    for workload in result.workloads:
        ahead = workload.prerendered_as(FORMAT)
        chunks += (ahead if ahead is not None else entry_bytes(workload, options), b"\n")
    style = _Style(options.color)
    chunks.append(("\n".join(["", *_summary(result, result.summary(), style)]) + "\n").encode())
    return chunks


def entry_bytes(result: WorkloadResult, options: RenderOptions) -> bytes:
    """One workload's lines of the report."""
    return "\n".join(_workload(result, _Style(options.color))).encode()


def _workload(result: WorkloadResult, style: _Style) -> list[str]:
    doc = result.document
    where = location(doc.source, doc.line)
    policies = ", ".join(e.policy for e in result.evaluations)
    if result.compliant and not result.exempted:
        # notices (an exemption annotation that was ignored...) are said even on a compliant workload
        return [f"{style('ok', '✓')} {result.workload.ref}  {style('dim', f'{where} [{policies}]')}",
                *_expired_and_notices(result, style)]
    score = result.score
    graded = f"  score {score}/100" if score is not None else ""
    lines = [f"{style('bold', str(result.workload.ref))}  {style('dim', f'{where} [{policies}]')}{graded}"]
    multi = len(result.evaluations) > 1
    for policy, finding in result.findings:
        sev = finding.severity
        label = style(sev.value, f"{_MARKS[sev]} {sev.value:<7}")
        origin = f" ({policy})" if multi else ""
        line = result.line_of(finding)
        at = f"  {style('dim', f'line {line}')}" if line != doc.line else ""
        lines.append(f"  {label} {finding.check}: {finding.message}{origin}{at}")
    for _policy, exempted in result.exempted:
        f = exempted.finding
        until = f", until {exempted.expires:%Y-%m-%d}" if exempted.expires else ""
        lines.append(style("dim", f"  - exempt  {f.check}: {f.message} ({exempted.reason}; "
                                  f"{exempted.source}{until})"))
    return lines + _expired_and_notices(result, style)


def _expired_and_notices(result: WorkloadResult, style: _Style) -> list[str]:
    lines: list[str] = []
    for evaluation in result.evaluations:
        for expired in evaluation.expired_exemptions:
            checks = ", ".join(expired.checks)
            lines.append(style("warning", f"  ! expired exemption {expired.source} ({checks}) expired "
                                          f"{expired.expired_at:%Y-%m-%d}: {expired.reason}"))
        lines += [style("warning", f"  note: {notice}") for notice in evaluation.notices]
    return lines


def _score_line(result: AuditResult, summary: Summary, style: _Style) -> str:
    """`score: 59/100 (14 workloads: 7 clean, 0 warnings only, 7 not ready)`, or why there is none."""
    if summary.score is None:
        return f"  score:     {style('bold', 'none')} (nothing was judged)"
    clean = summary.scored - summary.warnings_only - summary.not_ready
    partial = "; of what could be read" if result.errors else ""
    return (f"  score:     {style('bold', str(summary.score))}/100 ({summary.scored} workload(s): "
            f"{clean} clean, {summary.warnings_only} warnings only, {summary.not_ready} not ready{partial})")


def _summary(result: AuditResult, summary: Summary, style: _Style) -> list[str]:
    findings = ", ".join(f"{count} {severity}" for severity, count in summary.findings.items())
    lines = [
        style("bold", "Summary"),
        f"  policies:  {', '.join(result.policies)}",
        f"  workloads: {summary.workloads} audited, {summary.compliant} compliant, "
        f"{summary.violating} violating" + (f"; {summary.unmatched} not matched by any policy"
                                            if summary.unmatched else ""),
        f"  findings:  {findings}" + (f"; {summary.exempted} exempted" if summary.exempted else ""),
    ]
    if context := result.context_kinds():
        kinds = ", ".join(f"{count} {kind}" for kind, count in context.items())
        lines.append(f"  context:   {kinds} (read for the checks)")
    if skipped := result.skipped_kinds():
        kinds = ", ".join(f"{count} {kind}" for kind, count in skipped.items())
        lines.append(f"  skipped:   {kinds} (not workloads)")
    if result.skipped_files:
        lines.append(f"  files:     {result.skipped_file_count()} skipped, not Kubernetes manifests "
                     f"(listed below)")
    if result.errors:
        lines.append(style("error", f"  errors:    {len(result.errors)} input error(s), listed on stderr"))
    lines.append(_score_line(result, summary, style))
    for notice in result.notices():
        empty = notice.startswith(NOTHING_JUDGED)
        lines.append(style("error" if empty else "warning", f"  {'' if empty else 'notice: '}{notice}"))
    lines += [style("dim", f"  notice: {skipped}") for skipped in result.skipped_files]
    return lines
