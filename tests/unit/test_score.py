"""The score and the summary (issue 13, item 7): a score that means something a person can act on.

100 is clean; 60-99 has warnings only; below 60 has an error-level finding (what --fail-on error fails on),
however much else passes. The run's score is the mean of its workloads', kept below 60 while any workload
is. Nothing judged has no score; context objects (PDBs, HPAs) are context, not "skipped"."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from readiness.checks.base import Category, Severity
from readiness.engine import Engine, Evaluation, Exempted, Finding, default_policy
from readiness.loader import load_paths, load_text
from readiness.report.model import (
    PASS_SCORE,
    audit,
    band_score,
    check_counts,
    run_score,
    workload_score,
)
from readiness.workload import WorkloadRef

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "workloads"
COMPLIANT = EXAMPLES / "compliant"
VIOLATING = EXAMPLES / "non-compliant"


def cli(*args: str, stdin: str | None = None, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([sys.executable, "-m", "readiness.cli", "audit", *args], input=stdin, cwd=cwd,
                          capture_output=True, text=True, timeout=120)
    assert "Traceback" not in done.stderr, done.stderr
    return done


def scores_of(path: Path) -> dict[str, int | None]:
    result = audit(load_paths([str(path)]).documents, [Engine(default_policy())])
    return {str(w.workload.ref): workload_score(w) for w in result.workloads}


# -- the formula ------------------------------------------------------------------------------------------

def test_bands() -> None:
    assert band_score(25, 0, 0) == 100
    for passed in range(0, 40):
        for warnings in range(1, 12):
            assert PASS_SCORE <= band_score(passed, warnings, 0) <= 99
            for errors in range(1, 5):
                assert 0 <= band_score(passed, warnings, errors) < PASS_SCORE
                # fixing a check never lowers the score
                assert band_score(passed + 1, warnings, errors - 1) >= band_score(passed, warnings, errors)
            assert band_score(passed + 1, warnings - 1, 0) >= band_score(passed, warnings, 0)
    assert band_score(1000, 0, 1) == PASS_SCORE - 1  # one error, however much passes, is below the bar
    assert band_score(1000, 1, 0) == 99  # one warning is never 100


def test_the_run_score_passes_only_if_every_workload_does() -> None:
    assert run_score([]) is None
    assert run_score([100, 100]) == 100
    assert run_score([100, 80]) == 90
    assert run_score([100] * 99 + [20]) == PASS_SCORE - 1  # the mean is 99, one workload is not ready
    assert run_score([30, 20]) == 25


def finding(check: str, severity: Severity, container: str | None = None) -> Finding:
    return Finding(check, Category.SECURITY, severity, "m", container)


def test_checks_count_once_at_their_worst_severity() -> None:
    """A check failing in three containers is one thing to fix; exempted and info findings are on neither
    side."""
    ref = WorkloadRef("Deployment", "ns", "w")
    checks = ("a", "b", "c", "d", "e", "f")
    evaluation = Evaluation("p", ref, [finding("a", Severity.ERROR, c) for c in ("x", "y", "z")]
                            + [finding("b", Severity.WARNING, "x"), finding("b", Severity.ERROR, "y"),
                               finding("c", Severity.WARNING), finding("d", Severity.INFO)],
                            exempted=[Exempted(finding("e", Severity.ERROR), "policy", "ok", None)],
                            checks_run=checks, results=10)
    assert check_counts(evaluation) == (1, 1, 2)  # f passed; c warning; a and b errors; d, e ungraded
    assert check_counts(Evaluation("p", ref, checks_run=checks, results=6)) == (6, 0, 0)
    assert check_counts(Evaluation("p", ref, checks_run=checks, results=0)) == (0, 0, 0)


# -- the examples -------------------------------------------------------------------------------------------

def test_compliant_examples_score_100() -> None:
    scores = scores_of(COMPLIANT)
    assert len(scores) == 7 and set(scores.values()) == {100}


def test_non_compliant_examples_are_below_the_pass_score() -> None:
    """Every non-compliant example has an error finding: each is below 60, whatever else passes."""
    scores = scores_of(VIOLATING)
    assert len(scores) == 7
    assert all(s is not None and s < PASS_SCORE for s in scores.values()), scores


def test_a_privileged_host_pid_root_daemonset_scores_low() -> None:
    """The issue's DaemonSet (privileged, hostPID, root, no probes) scored 49 under Polaris' ratio."""
    scores = scores_of(VIOLATING / "daemonset-agent.yaml")
    assert scores == {"DaemonSet monitoring/node-exporter": 18}
    assert scores["DaemonSet monitoring/node-exporter"] == min(s for s in scores_of(VIOLATING).values() if s)
    text = cli("-f", str(VIOLATING / "daemonset-agent.yaml")).stdout
    assert "node-exporter" in text.splitlines()[0] and "score 18/100" in text.splitlines()[0]
    assert "score:     18/100 (1 workload(s): 0 clean, 0 warnings only, 1 not ready)" in text


def test_warnings_only_is_between_60_and_99(tmp_path: Path) -> None:
    text = (COMPLIANT / "web-deployment.yaml").read_text()
    without_hook = re.sub(r"\n *lifecycle:\n *preStop:\n *sleep: .*", "", text)
    assert without_hook != text
    (tmp_path / "web.yaml").write_text(without_hook)  # no preStop hook: one warning
    done = cli("-f", "web.yaml", "-o", "json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr  # warnings do not fail the default gate...
    data = json.loads(done.stdout)
    assert data["summary"]["findings"]["error"] == 0 and data["summary"]["findings"]["warning"] >= 1
    assert PASS_SCORE <= data["summary"]["score"] <= 99  # ... and the score passes, short of 100
    assert data["summary"]["warningsOnly"] == 1 and data["summary"]["notReady"] == 0
    assert data["workloads"][0]["score"] == data["summary"]["score"]


def test_the_examples_run_scores_below_the_pass_score() -> None:
    done = cli("-f", str(EXAMPLES), "-o", "json")
    summary = json.loads(done.stdout)["summary"]
    assert summary["scored"] == 14 and summary["notReady"] == 7 and summary["warningsOnly"] == 0
    assert summary["score"] == PASS_SCORE - 1


def test_docs_example_agrees_with_the_tool() -> None:
    """docs/cli.md's JSON example summary is this run's (examples/workloads)."""
    docs = (ROOT / "docs" / "cli.md").read_text()
    block = docs[docs.index('"summary": {'):]
    block = block[:block.index("\n  }") + 4]  # the summary object, up to its closing brace
    documented: dict[str, Any] = json.loads(block.removeprefix('"summary": '))
    actual = json.loads(cli("-f", "examples/workloads", "-o", "json").stdout)["summary"]
    assert documented == {key: actual[key] for key in documented}
    assert re.search(rf"score:\s+{actual['score']}/100", docs)  # the text example, too


# -- nothing judged, empty input, context -----------------------------------------------------------------

@pytest.mark.parametrize("content", ["apiVersion: v1\nkind: Service\nmetadata: {name: s}\n",
                                     "apiVersion: v1\nmetadata: {name: s}\n"])  # the second: an input error
def test_nothing_judged_has_no_score(tmp_path: Path, content: str) -> None:
    (tmp_path / "in.yaml").write_text(content)
    text = cli("-f", "in.yaml", cwd=tmp_path)
    assert text.returncode in (2, 3)
    assert "score:     none (nothing was judged)" in text.stdout and "100/100" not in text.stdout
    data = json.loads(cli("-f", "in.yaml", "-o", "json", cwd=tmp_path).stdout)
    assert data["summary"]["score"] is None and data["summary"]["nothingJudged"]


def test_a_partial_read_says_so(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("kind: [unclosed\n")
    (tmp_path / "web.yaml").write_text((COMPLIANT / "web-deployment.yaml").read_text())
    done = cli("-f", "bad.yaml", "-f", "web.yaml", cwd=tmp_path)
    assert done.returncode == 2
    assert ("score:     100/100 (1 workload(s): 1 clean, 0 warnings only, 0 not ready; "
            "of what could be read)") in done.stdout


@pytest.mark.parametrize("output", ["text", "json", "sarif", "junit"])
def test_empty_input_still_reports(output: str) -> None:
    done = cli("-o", output, stdin="")
    assert done.returncode == 2
    assert done.stderr.splitlines()[0] == "readiness: no Kubernetes objects in standard input"
    assert done.stdout.strip(), "no report"
    if output == "text":
        assert "Summary" in done.stdout and "1 input error(s)" in done.stdout
    if output == "json":
        data = json.loads(done.stdout)
        assert data["errors"] == [{"file": "-", "line": None,
                                   "message": "no Kubernetes objects in standard input"}]
        assert data["summary"]["score"] is None


def test_context_objects_are_not_skipped() -> None:
    text = cli("-f", str(EXAMPLES)).stdout
    assert "  context:   2 HorizontalPodAutoscaler, 7 PodDisruptionBudget (read for the checks)" in text
    assert "  skipped:   1 Service (not workloads)" in text
    result = audit(load_text((COMPLIANT / "pdb-hpa.yaml").read_text(), "pdb-hpa.yaml").documents,
                   [Engine(default_policy())])
    assert result.context_kinds() and not result.skipped_kinds()
