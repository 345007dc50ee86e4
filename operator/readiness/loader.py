"""Reading manifests fast and the way Kubernetes reads them, with the line each document starts on.

Two parsers, one meaning:

* The fast path is yaml-rs (a Rust YAML 1.2 parser), about 8x faster than PyYAML's libyaml binding on a
  large `helm template` output. We split the stream into documents ourselves (so each keeps its line
  number and one broken document does not hide the others) and parse each one separately.
* Kubernetes does not read YAML 1.2: sigs.k8s.io/yaml uses go-yaml v2, which reads plain scalars the
  YAML 1.1 way (`0644` is 420, `yes`/`on`/`y` are booleans, `<<` merges mappings; timestamps stay strings).
  A document whose text contains a plain scalar that the two readings disagree on (found with a few
  precompiled regular expressions) is parsed with PyYAML instead, through `KubeLoader`, whose resolvers
  are go-yaml v2's. PyYAML is also the fallback whenever yaml-rs is missing or rejects a document: its
  error messages carry the line, and it decides what is valid.

Duplicate keys are an error on both paths, naming the key and its line: the API server rejects duplicate
fields (strict decoding), so a manifest with one would never apply as written.
"""

from __future__ import annotations

import bisect
import json
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import yaml

try:  # the fast path is optional: without yaml-rs every document goes through PyYAML
    import yaml_rs

    _rs_loads: Any = yaml_rs.loads
except ImportError:  # pragma: no cover - yaml-rs is a declared dependency
    _rs_loads = None

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")


@dataclass(frozen=True, slots=True)
class InputError:
    """A problem with the input that the audit reports instead of judging: one line, naming where."""

    source: str
    line: int | None
    message: str

    def __str__(self) -> str:
        return f"{self.source}:{self.line}: {self.message}" if self.line else f"{self.source}: {self.message}"


@dataclass(frozen=True, slots=True)
class Document:
    """One parsed document (or one item of a `List`), with where it came from."""

    source: str
    """The file path, or `-` for standard input."""
    line: int
    """The line of the document's first content (what reports point at)."""
    obj: Any
    text: str = field(repr=False)
    """The document's raw text, kept so reports can find a container's line cheaply."""
    text_line: int = 1
    """The line number of `text`'s first character."""


@dataclass(slots=True)
class LoadResult:
    documents: list[Document] = field(default_factory=list)
    errors: list[InputError] = field(default_factory=list)

    def extend(self, other: LoadResult) -> None:
        self.documents.extend(other.documents)
        self.errors.extend(other.errors)


# -- the Kubernetes (go-yaml v2) reading, on PyYAML ------------------------------------------------------

_BaseLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

BOOL_TAG = "tag:yaml.org,2002:bool"
FLOAT_TAG = "tag:yaml.org,2002:float"
NUMBER_TAG = "tag:readiness.dev,2024:go-number"
"""Plain scalars that start like a number: go-yaml decides int, float or string by trying to parse them."""

_GO_TRUE = frozenset({"y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON"})
_GO_BOOL = re.compile(r"^(?:[yY]|yes|Yes|YES|[nN]|no|No|NO|true|True|TRUE|false|False|FALSE"
                      r"|on|On|ON|off|Off|OFF)$")
_GO_NUMBER = re.compile(r"^[-+]?\.?[0-9][0-9a-zA-Z_.+\-]*$")
_SPECIAL_FLOAT = re.compile(r"^(?:[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$")
_LEADING_ZERO_OCTAL = re.compile(r"[-+]?0[0-7]+")
_YAML_STYLE_FLOAT = re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?")
_DROPPED_TAGS = frozenset({
    "tag:yaml.org,2002:timestamp",  # go-yaml hands timestamps to untyped code as strings
    "tag:yaml.org,2002:value",  # PyYAML's `=`: a plain string for go-yaml
    "tag:yaml.org,2002:int", FLOAT_TAG, BOOL_TAG,  # replaced by go-yaml's rules below
})


def go_number(text: str) -> int | float | str:
    """A plain scalar that starts like a number, read as go-yaml v2 reads it: strconv.ParseInt with base
    0 after dropping underscores (so `0644` is octal 420, `0o17`, `0x1F` and `0b101` work), then a
    YAML-style float, else the string itself (`1:20` and `1.2.3` stay strings)."""
    plain = text.replace("_", "")
    if _LEADING_ZERO_OCTAL.fullmatch(plain):
        return int(plain, 8)
    try:
        return int(plain, 0)
    except ValueError:
        pass
    if _YAML_STYLE_FLOAT.fullmatch(plain):
        return float(plain)
    return text


class KubeLoader(_BaseLoader):  # type: ignore[misc]
    """PyYAML with go-yaml v2's implicit types, timestamps left as strings, and duplicate keys rejected."""

    yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag not in _DROPPED_TAGS]
        for first, resolvers in _BaseLoader.yaml_implicit_resolvers.items()
    }

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        if isinstance(node, yaml.MappingNode):
            self._reject_duplicate_keys(node)
        return super().construct_mapping(node, deep)  # type: ignore[no-any-return]

    def _reject_duplicate_keys(self, node: yaml.MappingNode) -> None:
        seen: set[Any] = set()
        for key_node, _value in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # merged keys may be overridden: that is what `<<` is for
            key = self.construct_object(key_node, deep=True)
            try:
                duplicate = key in seen
                seen.add(key)
            except TypeError:  # an unhashable complex key: PyYAML reports it itself
                continue
            if duplicate:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} (Kubernetes rejects duplicate fields)",
                    key_node.start_mark)


def _construct_go_bool(loader: Any, node: yaml.ScalarNode) -> bool:
    return str(node.value) in _GO_TRUE


def _construct_go_number(loader: Any, node: yaml.ScalarNode) -> int | float | str:
    return go_number(str(node.value))


KubeLoader.add_implicit_resolver(BOOL_TAG, _GO_BOOL, list("yYnNtTfFoO"))
KubeLoader.add_implicit_resolver(FLOAT_TAG, _SPECIAL_FLOAT, list("-+."))
KubeLoader.add_implicit_resolver(NUMBER_TAG, _GO_NUMBER, list("-+.0123456789"))
KubeLoader.add_constructor(BOOL_TAG, _construct_go_bool)
KubeLoader.add_constructor(NUMBER_TAG, _construct_go_number)


def parse_kubernetes_yaml(text: str) -> Any:
    """One document, the exact (slow) way. Raises yaml.YAMLError with a line-numbered mark."""
    return yaml.load(text, Loader=KubeLoader)


# -- finding the documents the fast path would misread ---------------------------------------------------

_QUIRK_WORD = (r"(?:[-+]?0[0-9_]+|[yYnN]|yes|Yes|YES|no|No|NO|on|On|ON|off|Off|OFF)"
               r"[ \t]*(?:$|[\n,\]}#]|:[ \t\n])")
_QUIRK_SCANS = tuple(
    re.compile(prefix + r"(?=[-+0yYnNoO])" + _QUIRK_WORD)
    for prefix in (" ", "\n", r"\[", r"\{", ",")
)
"""Plain scalars that YAML 1.1 (go-yaml) and YAML 1.2 (yaml-rs) read differently: leading-zero octals and
the yes/no/on/off/y/n booleans, as values, keys, list items or flow items. One pattern per preceding
character, because `re` scans for a literal first character several times faster than for a character
class (0.06 s instead of 0.3 s on 13 MB). Over-matching (the word inside a longer plain string) only
sends a document to the exact path; it never changes a result."""
_QUIRK_LITERALS = ("<<", "!!")
"""Merge keys, and explicit tags (`!!int "0644"`), which the two parsers also read differently."""


def quirk_offsets(text: str) -> list[int]:
    """Offsets in `text` where the YAML 1.1 and 1.2 readings may differ (sorted, possibly repeated).
    Prefix `text` with a newline so that a quirk on its first line is found too."""
    offsets = [m.start() + 1 for scan in _QUIRK_SCANS for m in scan.finditer(text)]
    for literal in _QUIRK_LITERALS:
        start = text.find(literal)
        while start != -1:
            offsets.append(start)
            start = text.find(literal, start + 2)
    offsets.sort()
    return offsets


def needs_exact_parser(text: str) -> bool:
    return bool(quirk_offsets("\n" + text))


# -- splitting a stream into documents -------------------------------------------------------------------

_SEPARATOR = re.compile(r"\n(---|\.\.\.)(?=[ \t\n])")
_BLANK_OR_COMMENT_LINES = re.compile(r"(?:[ \t]*(?:#[^\n]*)?\n)*")
_DIRECTIVE_LINE = re.compile(r"^%[^\n]*", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class _Segment:
    start: int  # offset of the document's text in the normalised stream
    end: int
    line: int  # line number of text[start]


def normalise(text: str) -> str:
    """Drop a BOM, turn CRLF into LF, and end with a newline (the separator scan relies on it)."""
    if text.startswith("\ufeff"):
        text = text[1:]
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text if text.endswith("\n") else text + "\n"


def split_documents(text: str, first_line: int = 1) -> list[_Segment]:
    """Cut a normalised stream at `---` and `...` lines (column 0 only: an indented `---` belongs to a
    block scalar). Text after `--- ` on the separator line belongs to the document it starts.
    `first_line`: the line number of `text`'s first line (a part of a larger stream)."""
    padded = "\n" + text
    segments: list[_Segment] = []
    start, line = 0, first_line
    for match in _SEPARATOR.finditer(padded):
        sep_offset = match.start()  # offset of the separator line in `text` (padded has one more char)
        segments.append(_Segment(start, sep_offset, line))
        line += text.count("\n", start, sep_offset)
        start = sep_offset + 3  # after `---`: the rest of the line is the new document's content
        if match.group(1) == "...":  # after `...`: the rest of the line is not content
            start = text.find("\n", start) + 1
            line += 1
    segments.append(_Segment(start, len(text), line))
    return segments


def separator_after(text: str, offset: int) -> int | None:
    """Where the first document separator line at or after `offset` of a normalised stream starts: the
    two parts around it are streams of whole documents. None when there is none."""
    match = _SEPARATOR.search(text, max(0, offset - 1))
    return match.start() + 1 if match else None


def _content_line(text: str, line: int) -> int:
    """The line of the first character that is neither blank nor a comment."""
    skipped = _BLANK_OR_COMMENT_LINES.match(text)
    return line + (text.count("\n", 0, skipped.end()) if skipped else 0)


# -- parsing ---------------------------------------------------------------------------------------------

def _yaml_error(error: yaml.YAMLError, source: str, line: int) -> InputError:
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None) or str(error).splitlines()[0]
    context = getattr(error, "context", None)
    message = f"invalid YAML: {problem}" + (f" ({context})" if context else "")
    return InputError(source, line + mark.line if mark is not None else line, message)


def _parse(text: str, exact: bool) -> Any:
    if exact or _rs_loads is None:
        return parse_kubernetes_yaml(text)
    try:
        return _rs_loads(text, parse_datetime=False)
    except Exception:  # yaml-rs said no: PyYAML decides, and its error names the line
        return parse_kubernetes_yaml(text)


def _exact_segments(text: str, segments: list[_Segment]) -> frozenset[int]:
    """Indices of the segments with a plain scalar that YAML 1.1 and 1.2 read differently."""
    starts = [s.start for s in segments]
    # quirk offsets are in "\n" + text: one more than the same place in `text`
    return frozenset(bisect.bisect_right(starts, offset - 1) - 1 for offset in quirk_offsets("\n" + text))


def load_text(text: str, source: str, first_line: int = 1) -> LoadResult:
    """Parse a multi-document YAML stream. Broken documents become errors; the others are kept.
    `first_line`: the line number of `text`'s first line, when it is a part of a larger stream (each
    process of a parallel audit loads its own part, see readiness.report.parallel)."""
    text = normalise(text)
    segments = split_documents(text, first_line)
    exact = _exact_segments(text, segments)
    result = LoadResult()
    for index, segment in enumerate(segments):
        body = text[segment.start:segment.end]
        if body.startswith("%") or "\n%" in body:  # directives (`%YAML 1.1`) precede a `---`
            body = _DIRECTIVE_LINE.sub("", body)
        try:
            obj = _parse(body, index in exact)
        except yaml.YAMLError as error:
            result.errors.append(_yaml_error(error, source, segment.line))
            continue
        except RecursionError:
            result.errors.append(InputError(source, segment.line, "invalid YAML: nested too deeply"))
            continue
        if obj is None:
            continue  # an empty or comments-only document, as kubectl treats it
        _add(result, Document(source, _content_line(body, segment.line), obj, body, segment.line))
    return result


def load_json(text: str, source: str) -> LoadResult:
    result = LoadResult()
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as error:
        result.errors.append(InputError(source, error.lineno, f"invalid JSON: {error.msg}"))
        return result
    if obj is not None:
        _add(result, Document(source, 1, obj, text, 1))
    return result


# -- Lists -----------------------------------------------------------------------------------------------

_ITEMS_KEY = re.compile(r"^items:[ \t]*\n", re.MULTILINE)
_FIRST_ITEM = re.compile(r"^([ \t]*)- ", re.MULTILINE)
_TOP_LEVEL_KEY = re.compile(r"^[^\s#-]", re.MULTILINE)


def is_list(obj: Any) -> bool:
    """`kubectl get -o yaml` and some tools wrap objects in a `List` (or `DeploymentList`...)."""
    kind = obj.get("kind") if isinstance(obj, dict) else None
    return isinstance(kind, str) and kind.endswith("List") and isinstance(obj.get("items"), list)


def _add(result: LoadResult, document: Document) -> None:
    if not is_list(document.obj):
        result.documents.append(document)
        return
    items = document.obj["items"]
    spans = _item_spans(document.text, len(items))
    for index, item in enumerate(items):
        if spans is None:
            result.documents.append(Document(document.source, document.line, item, document.text,
                                             document.text_line))
            continue
        start, end = spans[index]
        line = document.text_line + document.text.count("\n", 0, start)
        result.documents.append(Document(document.source, line, item, document.text[start:end], line))


def _item_spans(text: str, count: int) -> list[tuple[int, int]] | None:
    """Where each item of a block-style `items:` list starts, found by its `- ` at the list's indent.
    None (the List's own line is used) when the layout is not the plain one `kubectl` writes."""
    key = _ITEMS_KEY.search(text)
    first = _FIRST_ITEM.search(text, key.end()) if key else None
    if key is None or first is None:
        return None
    item_start = re.compile("^" + re.escape(first.group(1)) + "- ", re.MULTILINE)
    next_key = _TOP_LEVEL_KEY.search(text, first.start())
    stop = next_key.start() if next_key else len(text)
    starts = [m.start() for m in item_start.finditer(text, first.start(), stop)]
    if len(starts) != count:
        return None
    return list(zip(starts, [*starts[1:], stop], strict=True))


# -- files, directories, stdin ---------------------------------------------------------------------------

def load_file(path: Path, source: str | None = None) -> LoadResult:
    name = source or str(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        return LoadResult(errors=[InputError(name, None, f"cannot read: {_os_reason(error)}")])
    if path.suffix == ".json":
        return load_json(text, name)
    return load_text(text, name)


def _os_reason(error: Exception) -> str:
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return str(error)


def manifest_files(directory: Path) -> Iterator[Path]:
    """*.yaml, *.yml and *.json below `directory`, recursively, in a stable order; hidden folders skipped."""
    for root, dirs, files in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if name.endswith(MANIFEST_SUFFIXES):
                yield Path(root, name)


def load_paths(paths: Sequence[str], stdin: TextIO | None = None) -> LoadResult:
    """Load every path (`-` is standard input; directories are walked). Errors never stop the others."""
    result = LoadResult()
    for name in paths:
        result.extend(_load_path(name, stdin))
    return result


def _load_path(name: str, stdin: TextIO | None) -> LoadResult:
    if name == "-":
        if stdin is None:
            return LoadResult(errors=[InputError("-", None, "standard input is not available")])
        return load_text(stdin.read(), "-")
    path = Path(name)
    if path.is_dir():
        return _load_directory(path)
    if not path.exists():
        return LoadResult(errors=[InputError(name, None, "no such file or directory")])
    return load_file(path)


def _load_directory(path: Path) -> LoadResult:
    files = list(manifest_files(path))
    if not files:
        message = "directory has no *.yaml, *.yml or *.json files"
        return LoadResult(errors=[InputError(str(path), None, message)])
    result = LoadResult()
    for file in files:
        result.extend(load_file(file))
    return result


def iter_objects(documents: Iterable[Document]) -> Iterator[Any]:
    return (document.obj for document in documents)


# -- locating a container's line in a document ------------------------------------------------------------

_NAME_PATTERNS: dict[str, re.Pattern[str]] = {}


def container_line(document: Document, container: str) -> int:
    """The line of `name: <container>` inside the document's containers, else the document's line.
    A text scan, not a line-tracking parse: it only has to be right for the usual block layouts.
    Both searches start with a literal, which `re` and `str.find` skip to ten times faster than they
    try a pattern at every offset (0.19 s to 0.03 s for the containers of 10,000 Deployments)."""
    text = document.text
    start = _after_containers_key(text)
    if start < 0:
        return document.line
    pattern = _NAME_PATTERNS.get(container)
    if pattern is None:  # container names repeat across documents (app, proxy): compile each one once
        # `name:` not preceded by a word character: the lookbehind comes after the literal it checks
        pattern = re.compile(r"name:(?<!\wname:)[ \t]*([\"']?)" + re.escape(container)
                             + r"\1[ \t]*(?:[,}\n#]|$)")
        if len(_NAME_PATTERNS) >= 1024:
            _NAME_PATTERNS.clear()
        _NAME_PATTERNS[container] = pattern
    match = pattern.search(text, start)
    if match is None:
        return document.line
    return document.text_line + text.count("\n", 0, match.start())


def _after_containers_key(text: str) -> int:
    """The offset after the first `containers:` or `initContainers:` in `text`, else -1."""
    at = text.find("ontainers:", 1)  # a key needs the `c` before it
    while at != -1:
        if text[at - 1] == "c" or (at >= 5 and text[at - 5:at] == "initC"):
            return at + len("ontainers:")
        at = text.find("ontainers:", at + 1)
    return -1
