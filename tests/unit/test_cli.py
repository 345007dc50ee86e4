"""`readiness` run as users run it: a real subprocess, real files, real exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "workloads"
COMPLIANT = EXAMPLES / "compliant"
VIOLATING = EXAMPLES / "non-compliant"


def run(*args: str, stdin: str | None = None, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "readiness.cli", *args], input=stdin, capture_output=True,
                          text=True, cwd=cwd, timeout=120, check=False)


def one_line_error(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert result.returncode == 2, result
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_text_report_and_exit_codes() -> None:
    clean = run("audit", "-f", str(COMPLIANT))
    assert clean.returncode == 0, clean.stderr
    assert "7 compliant" in clean.stdout and "score:     100/100" in clean.stdout
    assert "\033[" not in clean.stdout  # not a terminal: no colour
    dirty = run("audit", "-f", str(VIOLATING))
    assert dirty.returncode == 1
    assert "readiness-probe-missing" in dirty.stdout and "non-compliant/web-deployment.yaml:" in dirty.stdout
    assert run("audit", "-f", str(VIOLATING), "--fail-on", "never").returncode == 0


def test_fail_on_thresholds(tmp_path: Path) -> None:
    policy = tmp_path / "warn-only.yaml"
    policy.write_text("apiVersion: readiness.dev/v1alpha1\nkind: ReadinessPolicy\nmetadata: {name: w}\n"
                      "spec:\n  match: {kinds: [Deployment]}\n  checks:\n"
                      "    readiness-probe-missing: {severity: warning}\n")
    target = str(VIOLATING / "pdb-hpa.yaml")  # only warnings once readiness is demoted... and run-as-root
    errors = run("audit", "-f", target, "-p", str(policy))
    warnings = run("audit", "-f", target, "-p", str(policy), "--fail-on", "warning")
    assert warnings.returncode == 1
    assert errors.returncode in (0, 1)


def test_json_schema() -> None:
    result = run("audit", "-f", str(EXAMPLES), "-o", "json")
    assert result.returncode == 1
    data = json.loads(result.stdout)
    assert data["schemaVersion"] == "readiness.dev/audit/v1"
    assert set(data) == {"schemaVersion", "summary", "workloads", "skipped", "errors", "notices",
                         "skippedFiles", "onlyFailing", "context"}
    assert data["summary"]["workloads"] == 14 and data["summary"]["compliant"] == 7
    workload = next(w for w in data["workloads"] if w["name"] == "legacy-web")
    assert {"kind", "namespace", "name", "file", "line", "policies", "findings", "exempted"} <= set(workload)
    finding = next(f for f in workload["findings"] if f["check"] == "readiness-probe-missing")
    assert finding == {**finding, "policy": "default", "severity": "error", "container": "web",
                       "category": "probes"}
    assert finding["line"] > workload["line"]  # the container's `name:` line
    assert data["skipped"] == [{"kind": "Service", "count": 1}]  # PDBs and HPAs are context, not skipped
    assert {"kind": "PodDisruptionBudget", "count": 7} in data["context"]


def test_sarif_shape() -> None:
    data = json.loads(run("audit", "-f", str(VIOLATING), "-o", "sarif").stdout)
    assert data["version"] == "2.1.0" and "sarif" in data["$schema"]
    run0 = data["runs"][0]
    rules = run0["tool"]["driver"]["rules"]
    ids = [r["id"] for r in rules]
    assert "readiness-probe-missing" in ids and len(ids) == len(set(ids))
    rule = rules[ids.index("readiness-probe-missing")]
    assert rule["defaultConfiguration"]["level"] == "error" and rule["helpUri"].endswith(
        "docs/checks/readiness-probe-missing.md")
    assert rule["shortDescription"]["text"] and rule["fullDescription"]["text"] and rule["help"]["markdown"]
    results = run0["results"]
    assert results
    for result in results:
        assert result["ruleId"] in ids and result["level"] in ("error", "warning", "note")
        location = result["locations"][0]["physicalLocation"]
        assert location["artifactLocation"]["uri"].startswith("examples/workloads/non-compliant/")
        assert location["region"]["startLine"] >= 1
        assert result["partialFingerprints"]
    fingerprints = [next(iter(r["partialFingerprints"].values())) for r in results]
    assert len(fingerprints) == len(set(fingerprints))


def test_junit_shape() -> None:
    result = run("audit", "-f", str(VIOLATING), "-o", "junit")
    root = ET.fromstring(result.stdout)
    assert root.tag == "testsuites"
    (suite,) = root.findall("testsuite")
    assert suite.get("name") == "default"
    cases = suite.findall("testcase")
    assert int(suite.get("tests", "0")) == len(cases) > 0
    failures = [c for c in cases if c.find("failure") is not None]
    assert int(suite.get("failures", "0")) == len(failures) > 0
    assert all(c.find("failure").text for c in failures)  # type: ignore[union-attr]


def test_stdin_helm_style() -> None:
    files = sorted(COMPLIANT.glob("*.yaml"))
    manifests = "".join(f"---\n# Source: {p.name}\n{p.read_text()}" for p in files)
    implicit = run("audit", stdin=manifests)
    explicit = run("audit", "-f", "-", "-o", "json", stdin=manifests)
    assert implicit.returncode == 0 and explicit.returncode == 0, implicit.stderr
    assert json.loads(explicit.stdout)["workloads"][0]["file"] == "-"


def test_checks_and_explain() -> None:
    listing = run("checks")
    assert listing.returncode == 0 and "readiness-probe-missing" in listing.stdout
    rows = json.loads(run("checks", "-o", "json").stdout)
    assert {"id", "category", "severity", "enabled", "title"} <= set(rows[0])
    explained = run("explain", "readiness-probe-missing")
    assert explained.returncode == 0 and "readinessProbe" in explained.stdout
    one_line_error(run("explain", "readiness-probe-mising"), "unknown check id", "readiness-probe-missing")


def test_policy_from_examples() -> None:
    strict = ROOT / "examples" / "policies" / "strict.yaml"
    if not strict.exists():
        pytest.skip("no strict example policy")
    result = run("audit", "-f", str(COMPLIANT), "-p", str(strict), "-o", "json")
    assert result.returncode in (0, 1), result.stderr
    # strict selects namespaces by label: without Namespace objects in the input their labels are
    # unknown, assumed to match, and the report says so (tests/unit/test_trust_cli_namespace_labels.py)
    data = json.loads(result.stdout)
    assert data["summary"]["workloads"] == 6
    assert all("assumed to match the namespaceSelector of policy strict" in n for n in data["notices"])


BAD_INPUTS = {
    "malformed yaml": ("kind: Deployment\nmetadata: {name: x\n", ["bad.yaml:", "invalid YAML"]),
    "non-mapping": ("- just\n- a list\n", ["bad.yaml:1", "a list"]),
    "no kind": ("metadata: {name: x}\n", ["bad.yaml:1", "no kind"]),
    "malformed workload": ("kind: Deployment\nmetadata: {name: x}\nspec:\n  template:\n    spec:\n"
                           "      containers: {name: web}\n", ["bad.yaml:1", "Deployment x", "containers"]),
    "duplicate key": ("kind: Deployment\nkind: Pod\n", ["bad.yaml:2", "duplicate key 'kind'"]),
}


@pytest.mark.parametrize("name", list(BAD_INPUTS))
def test_bad_documents_are_one_line_errors(name: str, tmp_path: Path) -> None:
    text, fragments = BAD_INPUTS[name]
    (tmp_path / "bad.yaml").write_text(text)
    (tmp_path / "good.yaml").write_text((COMPLIANT / "web-deployment.yaml").read_text())
    result = run("audit", "-f", "bad.yaml", "-f", "good.yaml", "-o", "json", cwd=tmp_path)
    one_line_error(result, *fragments)
    data = json.loads(result.stdout)
    assert data["summary"]["workloads"] == 1  # the good file was still audited
    assert len(data["errors"]) == 1


def test_unknown_kinds_are_counted_not_errors(tmp_path: Path) -> None:
    cronjob = (COMPLIANT / "cronjob.yaml").read_text()
    (tmp_path / "svc.yaml").write_text(
        f"kind: Service\nmetadata: {{name: a}}\n---\nkind: ConfigMap\nmetadata: {{name: b}}\n---\n{cronjob}")
    result = run("audit", "-f", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "1 ConfigMap, 1 Service" in result.stdout


def test_bad_invocations(tmp_path: Path) -> None:
    one_line_error(run("audit", "-f", str(tmp_path / "missing.yaml")), "missing.yaml", "no such file")
    one_line_error(run("audit", "-f", str(tmp_path)), "no *.yaml")
    policy = tmp_path / "policy.yaml"
    policy.write_text("apiVersion: readiness.dev/v1alpha1\nkind: ReadinessPolicy\nmetadata: {name: p}\n"
                      "spec:\n  checks:\n    termination-grace-period:\n      parameters: {minSeconds: -1}\n")
    one_line_error(run("audit", "-f", str(COMPLIANT), "-p", str(policy)), "minSeconds")
    one_line_error(run("audit", "-f", str(COMPLIANT), "--custom-kind", "nonsense"), "custom kind")
    one_line_error(run("audit", "--output", "xml", "-f", str(COMPLIANT)), "invalid choice")
    one_line_error(run("audit", stdin=""), "no Kubernetes objects")


def test_custom_kind(tmp_path: Path) -> None:
    (tmp_path / "w.yaml").write_text("apiVersion: example.com/v1\nkind: Worker\nmetadata: {name: w}\n"
                                     "spec:\n  pod:\n    spec:\n      containers: [{name: c, image: i:1}]\n")
    result = run("audit", "-f", str(tmp_path), "--custom-kind", "example.com/Worker=spec.pod", "-o", "json")
    assert json.loads(result.stdout)["workloads"][0]["kind"] == "Worker"


def test_broken_pipe_is_quiet() -> None:
    proc = subprocess.Popen(
        f"{sys.executable} -m readiness.cli audit -f {EXAMPLES} | head -1", shell=True, cwd=ROOT,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _out, err = proc.communicate(timeout=120)
    assert "Traceback" not in err and "BrokenPipe" not in err


# -- one large stream on two cores (readiness.report.parallel) ----------------------------------------------

sys.path.insert(0, str(ROOT / "benchmarks"))
import generate  # noqa: E402

CONTEXT = """---
apiVersion: v1
kind: Namespace
metadata: {name: payments, labels: {tier: gold}}
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: zero, namespace: search}
spec: {maxUnavailable: 0, selector: {matchLabels: {}}}
"""
LATE_CONTEXT = """---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: hpa, namespace: media}
spec: {minReplicas: 1, scaleTargetRef: {kind: Deployment, name: media-svc-3}}
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: late, namespace: ledger}
spec: {minAvailable: 1, selector: {matchLabels: {}}}
---
kind: Deployment
metadata: {name: broken}
spec: {template: {spec: {containers: 7}}}
---
key: [unclosed
"""


def large_stream(count: int) -> str:
    """`count` generated Deployments with context objects at both ends and broken documents in the
    second half: the worker's context must reach the parent and the other way round."""
    import io
    import random

    rng = random.Random(7)
    out = io.StringIO()
    out.write(CONTEXT)
    for index in range(count):
        out.write(generate.deployment(rng, index))
        if index == count * 3 // 4:
            out.write("---\n- not\n- a mapping\n")
    out.write(LATE_CONTEXT)
    return out.getvalue()


def test_parallel_audit_matches_the_serial_one_in_every_format(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from readiness.cli import _prerender
    from readiness.engine import Engine, default_policy
    from readiness.loader import load_text
    from readiness.report import FORMATS, RenderOptions, renderer
    from readiness.report.model import audit
    from readiness.report.parallel import audit_stream
    from readiness.workload import DEFAULT_KINDS

    text = large_stream(400)
    engines = [Engine(default_policy())]
    now = datetime(2026, 1, 1, tzinfo=UTC)
    outcome = audit_stream(text, "big.yaml", engines, DEFAULT_KINDS, now)
    assert outcome is not None
    parallel, load_errors, documents = outcome
    parallel.errors[:0] = load_errors
    loaded = load_text(text, "big.yaml")
    serial = audit(loaded.documents, engines, DEFAULT_KINDS, now)
    serial.errors[:0] = loaded.errors
    assert documents == len(loaded.documents)
    assert len(serial.errors) == 3
    judged = {(w.workload.ref.namespace, f.check) for w in serial.workloads for _, f in w.findings}
    assert ("search", "pdb-blocks-evictions") in judged  # a budget from the first half
    assert ("ledger", "pod-disruption-budget-missing") not in judged  # ... and one from the second
    for name in FORMATS:
        options = RenderOptions()
        assert renderer(name)(parallel, options) == renderer(name)(serial, options), name
    for output in ("json", "text", "sarif", "junit"):
        for color in (False, True):
            options = RenderOptions(color=color)
            ahead = audit_stream(text, "big.yaml", engines, DEFAULT_KINDS, now,
                                 _prerender(output, options, engines))
            assert ahead is not None
            ahead[0].errors[:0] = ahead[1]
            assert all(w.prerendered_as(output) is not None for w in ahead[0].workloads)
            assert renderer(output)(ahead[0], options) == renderer(output)(serial, options), (output, color)


@pytest.mark.parametrize("room", ["none", "too small", "the verdicts only"])
def test_json_entries_go_through_the_pipe_without_shared_memory(room: str,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from datetime import UTC, datetime

    from readiness.cli import _prerender
    from readiness.engine import Engine
    from readiness.loader import load_text
    from readiness.report import RenderOptions, parallel, renderer
    from readiness.report.model import audit
    from readiness.workload import DEFAULT_KINDS

    if room == "none":
        monkeypatch.setattr(parallel, "_shared_memory", lambda size: None)
    else:  # nothing fits; or the worker's verdicts (~100 KB here) fit and its JSON entries (~800 KB) do not
        monkeypatch.setattr(parallel, "SHARED_BYTES_PER_INPUT_BYTE", 0)
        monkeypatch.setattr(parallel, "SHARED_MIN_BYTES", 4096 if room == "too small" else 300_000)
    text = large_stream(300)
    engines = [Engine.builtin()]
    now = datetime(2026, 1, 1, tzinfo=UTC)
    outcome = parallel.audit_stream(text, "big.yaml", engines, DEFAULT_KINDS, now,
                                    _prerender("json", RenderOptions(), engines))
    assert outcome is not None
    outcome[0].errors[:0] = outcome[1]
    loaded = load_text(text, "big.yaml")
    serial = audit(loaded.documents, engines, DEFAULT_KINDS, now)
    serial.errors[:0] = loaded.errors
    assert renderer("json")(outcome[0], RenderOptions()) == renderer("json")(serial, RenderOptions())


def test_a_failing_worker_falls_back_to_the_serial_path(monkeypatch: pytest.MonkeyPatch) -> None:
    from datetime import UTC, datetime

    from readiness.engine import Engine, default_policy
    from readiness.report import parallel
    from readiness.workload import DEFAULT_KINDS

    def crash(*args: object) -> None:
        raise RuntimeError("worker bug")

    monkeypatch.setattr(parallel, "_worker", crash)
    now = datetime(2026, 1, 1, tzinfo=UTC)
    engines = [Engine(default_policy())]
    assert parallel.audit_stream(large_stream(50), "x", engines, DEFAULT_KINDS, now) is None


@pytest.mark.parametrize("output", ["json", "text", "sarif", "junit"])
def test_cli_output_is_the_same_with_and_without_the_worker(output: str, tmp_path: Path) -> None:
    import os

    path = tmp_path / "big.yaml"
    path.write_text(large_stream(2600))  # above the 2 MB threshold of the parallel path
    assert path.stat().st_size > 2_000_000
    two = run("audit", "-f", str(path), "-o", output)
    env = dict(os.environ, READINESS_SERIAL="1")
    one = subprocess.run([sys.executable, "-m", "readiness.cli", "audit", "-f", str(path), "-o", output],
                         capture_output=True, text=True, cwd=ROOT, timeout=120, check=False, env=env)
    assert two.returncode == one.returncode == 2  # the broken documents
    assert two.stdout == one.stdout and two.stderr == one.stderr
    if output == "json":
        assert json.loads(two.stdout)["summary"]["workloads"] == 2600
    elif output == "sarif":
        assert json.loads(two.stdout)["runs"][0]["results"]
    elif output == "junit":
        assert 'failures="' in two.stdout
    else:
        assert "2600 audited" in two.stdout
