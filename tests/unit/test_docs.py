"""The committed docs/checks pages are exactly what the catalog generates."""

from __future__ import annotations

from pathlib import Path

import pytest

from readiness import docs
from readiness.checks import all_checks, get_check


def test_committed_docs_are_up_to_date() -> None:
    stale = docs.stale_files(docs.DOCS_DIR)
    assert not stale, f"docs/checks out of date ({', '.join(stale)}): run python -m readiness.docs --write"


def test_every_check_has_a_page_and_an_index_row() -> None:
    names = set(docs.pages())
    index = docs.render_index()
    for check in all_checks():
        assert f"{check.id}.md" in names
        assert f"[`{check.id}`]({check.id}.md)" in index


def test_page_shows_the_parameters_in_camel_case_with_defaults() -> None:
    page = docs.render_check(get_check("limit-request-ratio"))
    assert "| `maxRatio` | number (>= 1.0) | `4.0` |" in page
    assert "## Rationale" in page and "## Remediation" in page and "## References" in page
    assert "limit-request-ratio:\n      enabled: true" in page


def test_explain_is_plain_text() -> None:
    text = docs.render_explain(get_check("secret-in-env"))
    assert text.startswith("secret-in-env: ")
    assert "```" not in text and "`" not in text
    assert "patterns (list of strings" in text
    assert "secretKeyRef" in text


def test_check_mode_reports_drift(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert docs.main(["--write", "--dir", str(tmp_path)]) == 0
    assert docs.main(["--check", "--dir", str(tmp_path)]) == 0
    (tmp_path / "run-as-root.md").write_text("edited by hand\n")
    (tmp_path / "removed-check.md").write_text("stale\n")
    assert docs.main(["--check", "--dir", str(tmp_path)]) == 1
    assert "run-as-root.md" in capsys.readouterr().err
    docs.main(["--write", "--dir", str(tmp_path)])
    assert not (tmp_path / "removed-check.md").exists()
