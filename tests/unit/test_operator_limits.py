"""Issue 12, items 17-18: what the operator writes stays within Kubernetes' bounds, expected answers are
not errors, and the compiled-policy cache stays bounded."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from kubernetes_asyncio.client.exceptions import ApiException

from readiness.checks import CATALOG
from readiness.checks.base import Category, Severity
from readiness.controller import handlers, output
from readiness.controller import settings as settings_mod
from readiness.controller.__main__ import main
from readiness.controller.output import Outputs, PolicyVerdict
from readiness.controller.settings import OperatorSettings
from readiness.controller.writer import annotations_too_long, is_not_found, with_retries
from readiness.engine import Finding
from readiness.metrics import ReadinessMetrics


def finding(check: str, severity: Severity = Severity.ERROR) -> Finding:
    return Finding(check, Category.PROBES, severity, "m" * 150, "app")


def desired(findings: int) -> Outputs:
    verdicts = [PolicyVerdict("p", tuple(finding(f"check-{i:03}") for i in range(findings)),
                              notices=("an exemption annotation was ignored",))]
    return output.desired_outputs(verdicts, 64 * 1024)


# -- 17: write what fits -----------------------------------------------------------------------------

def test_what_fits_is_the_label_then_the_verdict_then_a_shortened_list() -> None:
    full = desired(100)
    fitted = output.fit_outputs(full, 2000)
    assert fitted.label == "false"
    assert fitted.annotations[output.VERDICT] == "violating"
    assert fitted.annotations[output.POLICIES] == "p"
    assert output.annotation_bytes(fitted.annotations) <= 2000
    listed = json.loads(fitted.annotations[output.VIOLATIONS])
    assert listed[:-1] == json.loads(full.annotations[output.VIOLATIONS])[:len(listed) - 1]
    assert listed[-1] == {"truncated": 100 - (len(listed) - 1)}
    assert output.NOTICES not in fitted.annotations  # last in line, and there is no room left


def test_every_annotation_of_ours_has_its_place_and_small_ones_go_before_the_list() -> None:
    order = output.fit_order()
    assert sorted(order) == sorted(output.OUR_ANNOTATIONS)
    assert order[:2] == (output.VERDICT, output.POLICIES)
    assert order[-2:] == (output.VIOLATIONS, output.NOTICES)


def test_a_cut_list_keeps_counting_what_it_already_left_out() -> None:
    text = output.violations_json([PolicyVerdict("p", tuple(finding(f"c{i}") for i in range(40)))], 4096)
    keys, omitted = output.parse_violations(text)
    shorter = output.shortened_violations(text, 600)
    assert shorter is not None and len(shorter.encode()) <= 600
    kept, still_omitted = output.parse_violations(shorter)
    assert kept < keys and len(kept) + still_omitted == len(keys) + omitted == 40
    assert output.shortened_violations(text, 10) is None


def test_no_room_at_all_still_writes_the_label_and_removes_stale_annotations() -> None:
    full = desired(3)
    fitted = output.fit_outputs(full, 0)
    assert fitted == Outputs({}, "false")
    patch = output.merge_patch(full, fitted)
    assert patch == {"metadata": {"annotations": dict.fromkeys(full.annotations)}}


def test_everything_that_fits_is_written_unchanged() -> None:
    full = desired(3)
    assert output.fit_outputs(full, output.annotation_bytes(full.annotations)) == full
    assert output.truncation_intent(full, full) is None


def test_the_event_says_what_was_left_out_and_what_was_written() -> None:
    full = desired(100)
    intent = output.truncation_intent(full, output.fit_outputs(full, 2000))
    assert intent is not None and (intent.type, intent.reason) == ("Warning", "ReadinessOutputTruncated")
    assert "256 KiB" in intent.message and f"{output.NOTICES} left out" in intent.message
    assert f"{output.VIOLATIONS} cut to" in intent.message and "of 100 findings" in intent.message
    assert output.COMPLIANT_LABEL in intent.message


def test_annotation_bytes_count_as_the_api_server_does() -> None:
    assert output.annotation_bytes({"a": "é", output.VERDICT: "x"}, output.OUR_ANNOTATIONS) == 1 + 2


def test_a_422_for_annotation_size_is_recognised() -> None:
    error = ApiException(status=422, reason="Unprocessable Entity")
    error.body = (b'{"kind":"Status","message":"Deployment.apps \\"web\\" is invalid: metadata.annotations: '
                  b'Too long: may not be more than 262144 bytes","reason":"Invalid"}')
    assert annotations_too_long(error)
    other = ApiException(status=422, reason="Unprocessable Entity")
    other.body = b'{"message":"metadata.labels: Invalid value: \\"not a label!\\""}'
    assert not annotations_too_long(other) and not annotations_too_long(ApiException(status=500))


@pytest.mark.parametrize("value", [0, 63, 65537, 300_000])
def test_violations_max_bytes_is_bounded_with_one_line(value: int) -> None:
    with pytest.raises(ValueError) as error:
        settings_mod.validate(OperatorSettings(violations_max_bytes=value))
    assert "violations_max_bytes" in str(error.value) and "\n" not in str(error.value)


def test_violations_max_bytes_out_of_range_is_one_line_on_the_command_line(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--violations-max-bytes", "300000", "--metrics-port", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == ("readiness.controller: violations_max_bytes must be between 64 and 65536 (64 KiB), "
                   "got 300000")


def test_violations_max_bytes_accepts_its_bounds() -> None:
    for value in (64, 4096, 64 * 1024):
        settings_mod.validate(OperatorSettings(violations_max_bytes=value))
    # The largest list plus our other annotations stays far below the 256 KiB total.
    largest = output.desired_outputs([PolicyVerdict("p", tuple(finding(f"c{i}") for i in range(2000)),
                                                    notices=("n" * 500,) * 20)], 64 * 1024)
    assert output.annotation_bytes(largest.annotations) < output.ANNOTATIONS_LIMIT_BYTES // 3


def test_the_truncation_counter_is_exposed() -> None:
    metrics = ReadinessMetrics()
    metrics.writes_truncated.inc()
    assert metrics.registry.get_sample_value("readiness_writes_truncated_total") == 1.0


# -- 18: expected answers are not errors; the compiled-policy cache is bounded --------------------------

class Counted:
    def __init__(self) -> None:
        self.errors: list[tuple[str, str]] = []

    def api_error(self, operation: str, code: str) -> None:
        self.errors.append((operation, code))


def test_an_expected_404_is_raised_but_not_counted() -> None:
    async def missing() -> None:
        raise ApiException(status=404, reason="Not Found")

    async def probe(expected: bool) -> Counted:
        counter = Counted()
        with pytest.raises(ApiException):
            if expected:
                await with_retries(missing, operation="read_crd", counter=counter, attempts=3, base=0.0,
                                   cap=0.0, expected=is_not_found)
            else:
                await with_retries(missing, operation="read_crd", counter=counter, attempts=3, base=0.0,
                                   cap=0.0)
        return counter

    assert asyncio.run(probe(expected=True)).errors == []
    assert asyncio.run(probe(expected=False)).errors == [("read_crd", "404")]  # elsewhere it still counts


def policy(generation: int, name: str = "edited", uid: str = "uid-1") -> dict[str, Any]:
    checks = {cid: {"enabled": cid == "readiness-probe-missing"} for cid in CATALOG}
    return {"apiVersion": "readiness.dev/v1alpha1", "kind": "ReadinessPolicy",
            "metadata": {"name": name, "uid": uid, "generation": generation},
            "spec": {"checks": checks, "auditInterval": f"{60 + generation % 7}s"}}


def cached(name: str) -> int:
    return sum(1 for entry in handlers._engines.values() if entry.name == name)


def test_the_compiled_policy_cache_keeps_only_the_current_generation() -> None:
    for generation in range(1, 1001):
        entry = handlers.index_policy(policy(generation))["edited"]
        assert entry.generation == generation
    assert cached("edited") == 1
    again = handlers.index_policy(policy(1000))["edited"]
    assert again is handlers.index_policy(policy(1000))["edited"]  # still compiled once per generation
    handlers.index_policy(policy(1, uid="uid-2"))  # deleted and created again under the same name
    assert cached("edited") == 1


def test_a_deleted_policy_leaves_the_cache() -> None:
    handlers.index_policy(policy(1, name="deleted"))
    assert cached("deleted") == 1
    handlers.forget_policy_engine("deleted")
    assert cached("deleted") == 0
    handlers.forget_policy_engine("deleted")  # twice (or never indexed): nothing to do
