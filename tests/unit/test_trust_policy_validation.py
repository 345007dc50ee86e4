"""Validation parity, offline half: the CLI's verdict on every document of the policy corpus
(tests/fixtures/policies), and its error for an invalid one: one line naming the file and the field.
tests/cluster/test_policy_parity.py checks that the API server agrees."""

from __future__ import annotations

from pathlib import Path

import pytest

from readiness import crd
from readiness.cli import UsageError, read_policies
from readiness.loader import load_text
from readiness.policy import MAX_POLICY_NAME_LENGTH, RFC3339_PATTERN
from support.policy_corpus import Case, generated_cases, stored_cases

CASES = stored_cases()


@pytest.mark.parametrize("case", [c for c in CASES if c.valid], ids=lambda c: c.id)
def test_valid_policies_load(case: Case) -> None:
    assert read_policies(str(case.path))


@pytest.mark.parametrize("case", [c for c in CASES if not c.valid], ids=lambda c: c.id)
def test_invalid_policy_gets_one_line_naming_file_and_field(case: Case) -> None:
    with pytest.raises(UsageError) as caught:
        read_policies(str(case.path))
    message = str(caught.value)
    assert "\n" not in message and "Traceback" not in message
    assert message.startswith(f"{case.path}:")
    assert f": {case.field}" in message or f": {case.field}." in message, message


def test_corpus_is_large_enough() -> None:
    assert sum(c.valid for c in CASES) >= 10 and sum(not c.valid for c in CASES) >= 60


def test_size_limit_is_one_clear_line(tmp_path: Path) -> None:
    large, oversized = generated_cases(tmp_path)
    assert read_policies(str(large.path))
    expected = r"^.*oversized-1\.9-mb\.json:1: the policy is 19\d{5} bytes as JSON, over the limit of 1048576"
    with pytest.raises(UsageError, match=expected + r" \(1 MiB\)$"):
        read_policies(str(oversized.path))


def test_crd_enforces_the_name_length_and_the_date_time_pattern() -> None:
    schema = crd.render()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    assert {"rule": f"self.metadata.name.size() <= {MAX_POLICY_NAME_LENGTH}",
            "message": "metadata.name must be at most 63 characters: the operator writes it as a label "
                       "value"} in schema["x-kubernetes-validations"]
    expires = schema["properties"]["spec"]["properties"]["exemptions"]["items"]["properties"]["expires"]
    assert expires["pattern"] == RFC3339_PATTERN


def test_crd_reads_back_the_same_with_kubectl_yaml_rules() -> None:
    """kubectl reads YAML 1.1, where an unquoted `y` or `off` is a boolean: a default list holding such a
    word, written unquoted, made the CRD itself invalid on the API server."""
    loaded = load_text(crd.render_yaml(), "crd")
    assert not loaded.errors
    assert loaded.documents[0].obj == crd.render()
