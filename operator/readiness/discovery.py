"""What a directory walk audits (`readiness audit -f DIR`), and what it skips and why.

A repository holds more YAML and JSON than manifests (Helm values, mkdocs.yml, CI configs, dashboards). A
walk reads the files that can be manifests and skips, with a notice, the ones that clearly are not, while
a manifest that is broken stays an input error (exit 2): a CI gate must never pass on a manifest it could
not judge. The rules, in order (docs/cli.md, "Directories"):

1. Only `*.yaml`, `*.yml` and `*.json` files are read.
2. Hidden files and folders (a name that starts with `.`) are not walked, as git-aware linters do; the
   directory given may itself be hidden.
3. `--exclude GLOB` and `.readinessignore` files use gitignore's syntax and rules (the pathspec library):
   a pattern is relative to the directory given (`--exclude`) or to the folder that holds the ignore
   file, deeper ignore files override shallower ones and `--exclude` overrides both. Excluded files are
   neither read nor counted.
4. A folder that holds a `Chart.yaml` is a Helm chart's source: its templates become manifests only once
   rendered, so the whole chart is skipped with one notice (audit `helm template` output instead).
5. A file none of whose documents looks like a Kubernetes object is skipped with a notice. A document
   looks like one when it is a mapping with an `apiVersion`, `kind` or `metadata` key; a file that does
   not parse looks like a manifest when a line starts such a key (a top-level one in YAML, anywhere in
   JSON). A file with something that looks like a manifest is audited whole: its other documents, and
   its parse errors, are input errors as always (e.g. `apiVersion` without `kind`: "document has no kind").

Files named with `-f` are never skipped: rules 2-5 apply only to what a walk finds.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from readiness.loader import (
    MANIFEST_SUFFIXES,
    InputError,
    LoadResult,
    SkippedInput,
    load_json,
    load_text,
    read_error,
)

if TYPE_CHECKING:
    import pathspec

IGNORE_FILE = ".readinessignore"
"""The ignore file a walk reads in every folder it enters (gitignore syntax)."""
CHART_FILE = "Chart.yaml"
MANIFEST_KEYS = ("apiVersion", "kind", "metadata")
"""The keys that make a document look like a Kubernetes object (rule 5)."""

_YAML_MANIFEST_KEY = re.compile(r"^[\"']?(?:apiVersion|kind|metadata)[\"']?[ \t]*:", re.MULTILINE)
_JSON_MANIFEST_KEY = re.compile(r"\"(?:apiVersion|kind|metadata)\"\s*:")
NOT_AN_OBJECT = "not a Kubernetes object (no document has apiVersion, kind or metadata)"
CHART_REASON = ("a Helm chart (Chart.yaml), whose templates are manifests only once rendered: "
                "audit `helm template {chart}` instead")


def compile_patterns(patterns: Sequence[str]) -> pathspec.GitIgnoreSpec:
    """gitignore patterns as one spec; ValueError naming the first invalid one. pathspec is imported by
    the walks that have patterns (20 ms of a run that would take 100)."""
    import pathspec

    return pathspec.GitIgnoreSpec.from_lines(patterns)


@dataclass(slots=True)
class _Ignores:
    """The ignore specs that apply below a walked directory: (folder relative to it, spec), shallowest
    first, `--exclude` last (gitignore's precedence: the last matching pattern decides)."""

    specs: list[tuple[str, pathspec.GitIgnoreSpec]] = field(default_factory=list)
    excludes: pathspec.GitIgnoreSpec | None = None

    def ignored(self, relative: str, is_dir: bool) -> bool:
        verdict = False
        candidates = [*self.specs, ("", self.excludes)] if self.excludes is not None else self.specs
        for base, spec in candidates:
            if base and not relative.startswith(base + "/"):
                continue
            below = relative[len(base) + 1:] if base else relative
            include = spec.check_file(below + "/" if is_dir else below).include
            if include is not None:
                verdict = include
        return verdict


@dataclass(slots=True)
class Walk:
    """The files a walk reads, what it skipped, and the errors of its ignore files."""

    files: list[Path] = field(default_factory=list)
    skipped: list[SkippedInput] = field(default_factory=list)
    errors: list[InputError] = field(default_factory=list)
    excluded: int = 0
    """Files and folders left out by --exclude or an ignore file."""


def walk(directory: Path, exclude: Sequence[str] = ()) -> Walk:
    """The files below `directory` that may be manifests (rules 1-4), in a stable order."""
    found = Walk()
    ignores = _Ignores(excludes=compile_patterns(exclude) if exclude else None)
    for root, dirs, files in os.walk(directory):
        here = Path(root)
        relative_root = here.relative_to(directory).as_posix()
        prefix = "" if relative_root == "." else relative_root + "/"
        if IGNORE_FILE in files:
            _read_ignore_file(here / IGNORE_FILE, prefix.rstrip("/"), ignores, found)
        if CHART_FILE in files:
            dirs[:] = []
            count = sum(1 for _ in _chart_files(here, directory, ignores))
            if count:
                found.skipped.append(SkippedInput(str(here), CHART_REASON.format(chart=here), count))
            continue
        visible = sorted(d for d in dirs if not d.startswith("."))
        dirs[:] = [d for d in visible if not ignores.ignored(prefix + d, is_dir=True)]
        found.excluded += len(visible) - len(dirs)
        for name in sorted(files):
            if name.endswith(MANIFEST_SUFFIXES) and not name.startswith("."):
                if ignores.ignored(prefix + name, is_dir=False):
                    found.excluded += 1
                else:
                    found.files.append(here / name)
    return found


def _chart_files(chart: Path, directory: Path, ignores: _Ignores) -> Iterator[str]:
    """A chart's files that the walk would otherwise have read (the count its notice gives)."""
    for root, dirs, files in os.walk(chart):
        prefix = Path(root).relative_to(directory).as_posix()
        prefix = "" if prefix == "." else prefix + "/"
        dirs[:] = [d for d in dirs if not d.startswith(".") and not ignores.ignored(prefix + d, is_dir=True)]
        yield from (name for name in files if name.endswith(MANIFEST_SUFFIXES) and not name.startswith(".")
                    and not ignores.ignored(prefix + name, is_dir=False))


def _read_ignore_file(path: Path, base: str, ignores: _Ignores, found: Walk) -> None:
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        found.errors.append(read_error(str(path), error))
        return
    for number, line in enumerate(lines, 1):
        try:
            compile_patterns([line])
        except ValueError as error:
            found.errors.append(InputError(str(path), number, f"invalid pattern: {error}"))
            return
    ignores.specs.append((base, compile_patterns(lines)))


def looks_like_object(obj: Any) -> bool:
    """A mapping with an apiVersion, kind or metadata key (rule 5)."""
    return isinstance(obj, dict) and any(key in obj for key in MANIFEST_KEYS)


def load_walked(path: Path) -> LoadResult:
    """A file a walk found: loaded, or skipped when nothing in it looks like a Kubernetes object (rule 5)."""
    name = str(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        return LoadResult(errors=[read_error(name, error)])
    json_file = path.suffix == ".json"
    loaded = load_json(text, name) if json_file else load_text(text, name)
    if any(looks_like_object(document.obj) for document in loaded.documents):
        return loaded
    if loaded.errors and (_JSON_MANIFEST_KEY if json_file else _YAML_MANIFEST_KEY).search(text):
        return loaded  # broken, but a manifest: an input error
    if not loaded.documents and not loaded.errors:
        return loaded  # empty, or comments only: nothing to say
    first = loaded.errors[0] if loaded.errors else None
    at = f" at line {first.line}" if first is not None and first.line else ""
    reason = NOT_AN_OBJECT if first is None else (
        f"not a Kubernetes manifest (no apiVersion, kind or metadata key, and it does not parse{at})")
    return LoadResult(skipped=[SkippedInput(name, reason)])


def load_directory(directory: Path, exclude: Sequence[str] = ()) -> LoadResult:
    found = walk(directory, exclude)
    result = LoadResult(errors=found.errors, skipped=found.skipped)
    if not found.files and not found.skipped:
        message = "directory has no *.yaml, *.yml or *.json files" + (
            f" left ({found.excluded} excluded by --exclude or {IGNORE_FILE})" if found.excluded else "")
        result.errors.append(InputError(str(directory), None, message))
        return result
    for file in found.files:
        result.extend(load_walked(file))
    return result
