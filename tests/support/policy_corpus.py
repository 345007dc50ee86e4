"""The ReadinessPolicy validation corpus (tests/fixtures/policies): documents that the CLI's policy loader and
the API server (through the generated CRD) must both accept (`valid/`) or both reject (`invalid/`).

Each invalid file's first line is `# <field path>: <why it is invalid>`; the CLI's error must name that
field. Two documents are made here rather than stored, for their size: one just under the CLI's limit
(readiness.policy.MAX_POLICY_BYTES, 1 MiB) and one of 1.9 MB, over it and over etcd's 1.5 MiB.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "policies"


@dataclass(frozen=True)
class Case:
    path: Path
    valid: bool
    field: str
    """The field path the CLI's error must name (invalid cases); empty when only the file is named."""

    @property
    def id(self) -> str:
        return f"{'valid' if self.valid else 'invalid'}/{self.path.stem}"


def stored_cases() -> list[Case]:
    cases = [Case(path, True, "") for path in sorted((CORPUS / "valid").glob("*.yaml"))]
    for path in sorted((CORPUS / "invalid").glob("*.yaml")):
        first = path.read_text().splitlines()[0]
        assert first.startswith("# ") and ": " in first, f"{path}: first line must be '# <field>: <why>'"
        cases.append(Case(path, False, first[2:].split(": ", 1)[0]))
    return cases


def _sized_policy(name: str, exemptions: int) -> str:
    """A policy of many exemptions, each naming 128 workloads: about 7.5 kB per exemption as JSON."""
    items = [{"names": [f"workload-{i}-{j}-" + "x" * 40 for j in range(128)], "checks": ["*"],
              "reason": "generated to test the size limit"} for i in range(exemptions)]
    return json.dumps({"apiVersion": "readiness.dev/v1alpha1", "kind": "ReadinessPolicy",
                       "metadata": {"name": name}, "spec": {"exemptions": items}}, separators=(",", ":"))


def generated_cases(directory: Path) -> list[Case]:
    directory.mkdir(parents=True, exist_ok=True)
    large = directory / "large-under-1-mib.json"
    large.write_text(_sized_policy("parity-large", 130))
    oversized = directory / "oversized-1.9-mb.json"
    oversized.write_text(_sized_policy("parity-oversized", 252))
    assert large.stat().st_size < 1024 * 1024 < 1_900_000 < oversized.stat().st_size
    return [Case(large, True, ""), Case(oversized, False, "")]
