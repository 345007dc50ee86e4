"""Reading manifests fast and the way Kubernetes reads them, with the line each document starts on.

Two parsers, one meaning:

* The fast path is yaml-rs (a Rust YAML 1.2 parser), about 8x faster than PyYAML's libyaml binding on a
  large `helm template` output. We split the stream into documents ourselves (so each keeps its line
  number and one broken document does not hide the others) and parse each one separately.
* Kubernetes does not read YAML 1.2: sigs.k8s.io/yaml uses go-yaml v2, which reads plain scalars the
  YAML 1.1 way (`0644` is 420, `yes`/`on`/`y` are booleans, `<<` merges mappings; timestamps stay strings).
  A few precompiled regular expressions find the words the two readings may disagree on. yaml-rs still
  reads such a document, with each word swapped for a placeholder that is then typed the go-yaml way
  (`_parse_with_placeholders`). What that cannot settle (merge keys, explicit tags, block scalars) goes to
  PyYAML, through readiness.yaml11, whose resolvers are go-yaml v2's. PyYAML is also the fallback
  whenever yaml-rs is missing or rejects a document: its error messages carry the line, and it decides
  what is valid.

Duplicate keys are an error on both paths, naming the key and its line: the API server rejects duplicate
fields (strict decoding), so a manifest with one would never apply as written.
"""

from __future__ import annotations

import bisect
import json
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from readiness.records import record

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


CLUSTER_SOURCE = "cluster:"
"""How the source of an object read from a live cluster starts (`cluster:NAMESPACE/KIND/NAME`, see
readiness.cluster): it names the object, not a file, and it has no line (0)."""


def from_cluster(source: str) -> bool:
    """Whether `source` names an object of a live cluster rather than a file."""
    return source.startswith(CLUSTER_SOURCE)


def location(source: str, line: int | None) -> str:
    """`file:line` for a file, the source alone when there is no line (a live cluster's object)."""
    return f"{source}:{line}" if line else source


@dataclass(frozen=True, slots=True)
class SkippedInput:
    """A file (or a Helm chart's folder of them) that a directory walk found and did not audit, because it
    clearly holds no Kubernetes object (readiness.discovery): said as a notice, counted in the summary."""

    source: str
    reason: str
    files: int = 1
    """How many files it stands for (a Helm chart: all of its files)."""

    def __str__(self) -> str:
        count = f"{self.files} file(s) " if self.files != 1 else ""
        return f"{self.source}: {count}skipped, {self.reason}"


@record
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
    skipped: list[SkippedInput] = field(default_factory=list)
    """Files of a directory walk that hold no Kubernetes object (never a file named on the command line)."""

    def extend(self, other: LoadResult) -> None:
        self.documents.extend(other.documents)
        self.errors.extend(other.errors)
        self.skipped.extend(other.skipped)


# -- go-yaml v2's plain scalars (the exact reading itself, on PyYAML, is readiness.yaml11) ----------------

class YamlSyntaxError(ValueError):
    """A document no parser accepts: the message, and the line of the document it names (0-based)."""

    def __init__(self, message: str, line: int | None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


GO_TRUE = frozenset({"y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON"})
GO_BOOL = re.compile(r"^(?:[yY]|yes|Yes|YES|[nN]|no|No|NO|true|True|TRUE|false|False|FALSE"
                     r"|on|On|ON|off|Off|OFF)$")
GO_NUMBER = re.compile(r"^[-+]?\.?[0-9][0-9a-zA-Z_.+\-]*$")
SPECIAL_FLOAT = re.compile(r"^(?:[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$")
_LEADING_ZERO_OCTAL = re.compile(r"[-+]?0[0-7]+")
_YAML_STYLE_FLOAT = re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?")


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


def parse_kubernetes_yaml(text: str) -> Any:
    """One document, the exact (slow) way. Raises YamlSyntaxError naming the line."""
    from readiness import yaml11  # PyYAML: imported by the runs that need it

    return yaml11.parse(text)


# -- the plain scalars that YAML 1.1 and 1.2 read differently ----------------------------------------------

_QUIRK_WORD = (r"([-+]?0[0-9_]+|[yYnN]|yes|Yes|YES|no|No|NO|on|On|ON|off|Off|OFF)"
               r"(?=[ \t]*(?:$|[\n,\]}#]|:[ \t\n]))")  # what ends it is not consumed: it may precede the next
_QUIRK_SCANS = tuple(
    re.compile(prefix + r"(?=[-+0yYnNoO])" + _QUIRK_WORD)
    for prefix in (" ", "\n", r"\[", r"\{", ",")
)
"""Plain scalars that YAML 1.1 (go-yaml) and YAML 1.2 (yaml-rs) read differently: leading-zero octals and
the yes/no/on/off/y/n booleans, as values, keys, list items or flow items. One pattern per preceding
character, because `re` scans for a literal first character several times faster than for a character
class (0.06 s instead of 0.3 s on 13 MB). The word is the pattern's group. Over-matching (the word inside
a longer plain string, a quoted string or a comment) costs a little work, never a wrong result: see
`_parse_with_placeholders`."""
_QUIRK_LITERALS = ("<<", "!!")
"""Merge keys, and explicit tags (`!!int "0644"`), which the two parsers also read differently and only
PyYAML settles."""


Spans = list[tuple[int, int]]


@dataclass(slots=True)
class Quirks:
    """Where a stream's readings may differ, in the stream's offsets."""

    words: Spans
    """(start, end) of each word that may be a YAML 1.1 plain scalar, sorted."""
    literals: list[int]
    """Offsets of merge keys and explicit tags."""


def find_quirks(text: str) -> Quirks:
    padded = "\n" + text  # so that a word on the first line has its preceding character
    words = sorted({(m.start(1) - 1, m.end(1) - 1) for scan in _QUIRK_SCANS for m in scan.finditer(padded)})
    literals = []
    for literal in _QUIRK_LITERALS:
        start = text.find(literal)
        while start != -1:
            literals.append(start)
            start = text.find(literal, start + 2)
    return Quirks(words, literals)


def needs_exact_parser(text: str) -> bool:
    """Whether yaml-rs alone could misread `text`."""
    quirks = find_quirks(text)
    return bool(quirks.words or quirks.literals)


_PLACEHOLDER_MARK = "_readiness_quirk_"
_PLACEHOLDER = re.compile(_PLACEHOLDER_MARK + r"([0-9]+)_")
_BLOCK_SCALAR_CHARS = ("|", ">")


def _parse_with_placeholders(body: str, words: Spans) -> Any:
    """A document with YAML 1.1 plain scalars, read by yaml-rs: each word is swapped for a placeholder (a
    plain string in any context), and after parsing, a string that is exactly a placeholder was that plain
    scalar and takes go-yaml's value (`0644` -> 420, `yes` -> True), while a placeholder inside a longer
    string (a quoted string, a multi-word plain scalar) gets its word back. Ten times faster than PyYAML.
    Only a block scalar (`|-`) could make a whole string of a word without it being a plain scalar, so a
    document with `|` or `>` goes to PyYAML, as does one that yaml-rs rejects or whose keys would collide
    once typed (PyYAML then names the duplicate key)."""
    if _PLACEHOLDER_MARK in body or any(c in body for c in _BLOCK_SCALAR_CHARS):
        return parse_kubernetes_yaml(body)
    pieces: list[str] = []
    tokens: list[str] = []
    last = 0
    for start, end in words:
        if start < last:  # overlapping words cannot happen (each needs its own preceding character)
            return parse_kubernetes_yaml(body)
        pieces += (body[last:start], f"{_PLACEHOLDER_MARK}{len(tokens)}_")
        tokens.append(body[start:end])
        last = end
    pieces.append(body[last:])
    try:
        return _typed(_rs_loads("".join(pieces), parse_datetime=False), tokens)
    except Exception:  # yaml-rs said no, or typed keys collide: PyYAML decides and names the line
        return parse_kubernetes_yaml(body)


class _KeysCollide(Exception):
    pass


def _typed(obj: Any, tokens: list[str]) -> Any:
    if obj.__class__ is str:
        if _PLACEHOLDER_MARK not in obj:
            return obj
        whole = _PLACEHOLDER.fullmatch(obj)
        if whole is not None:
            return go_scalar(tokens[int(whole.group(1))])
        return _PLACEHOLDER.sub(lambda m: tokens[int(m.group(1))], obj)
    if obj.__class__ is dict:
        typed = {_typed(key, tokens): _typed(value, tokens) for key, value in obj.items()}
        if len(typed) != len(obj):
            raise _KeysCollide
        return typed
    if obj.__class__ is list:
        return [_typed(item, tokens) for item in obj]
    return obj


def go_scalar(word: str) -> bool | int | float | str:
    """A plain scalar found by the quirk scan, read as go-yaml v2 reads it."""
    if GO_BOOL.match(word):
        return word in GO_TRUE
    return go_number(word)


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


# -- nesting depth, bounded before parsing ----------------------------------------------------------------

MAX_NESTING = 200
"""How deeply collections may nest in one document: an input error beyond it. Real manifests stay far
below (the examples' Deployments and CronJobs 8-10 levels, our own CRD with its whole schema 19; each
level of a CRD schema costs two), while deeper input crashed the parsers: yaml-rs and PyYAML's C composer
recurse on the C stack (a segfault at ~25,000 levels), json and our code on Python's (a RecursionError at
~1,000); yaml-rs's flow collections and orjson stop at ~255. For YAML the bound is checked on the flow
brackets and, for deeply indented documents, on the parser's events (exact); for JSON, exactly."""
_OPENERS = ("[", "{")
_FEW_OPENERS = MAX_NESTING // 2 - 3
_DEEP_LINE = MAX_NESTING // 2
_DEEP_INDENT = re.compile(rf"\n[ ?:-]{{{_DEEP_LINE}}}")
_DEEP_FIRST_LINE = re.compile(rf"[ ?:-]{{{_DEEP_LINE}}}")
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_BRACKET_RUN = re.compile(r"[\[{]+|[\]}]+")


def nesting_problem(text: str, json_text: bool = False, indented: bool = True) -> int | None:
    """The line in `text` (0-based) where it nests deeper than MAX_NESTING; None when it does not.

    First a bound at C speed, which almost every document passes: flow collections need a `[` or `{` each,
    and block ones a column of indentation or an indicator (`- `, `? `, `: `) each, so few brackets and no
    deeply indented line cannot nest deep. Then, for the rest, the depth itself: of the brackets outside
    double-quoted strings (exact for JSON), or, when a line is deeply indented, of the exact parser's
    events (readiness.yaml11, which also guards itself: no crafted string smuggles depth past it).
    `indented`: False when the whole stream has no deeply indented line (one scan, not one per document)."""
    deep_line = not json_text and indented and _deeply_indented(text)
    if not deep_line and not _many_brackets(text):
        return None
    if deep_line:
        from readiness import yaml11  # PyYAML: only for documents indented this deeply

        line = yaml11.too_deep_at(text, MAX_NESTING)
    else:
        at = _bracket_depth_exceeded(text)
        line = None if at is None else text.count("\n", 0, at)
    return line


def may_nest_deeply(text: str) -> bool:
    """False when `text` cannot nest deeper than MAX_NESTING (see `nesting_problem`)."""
    return _many_brackets(text) or _deeply_indented(text)


def _many_brackets(text: str) -> bool:
    return sum(map(text.count, _OPENERS)) >= _FEW_OPENERS


def _deeply_indented(text: str) -> bool:
    return _DEEP_INDENT.search(text) is not None or _DEEP_FIRST_LINE.match(text) is not None


_ALIAS = re.compile(r"[\s\[{,]\*[^\s\[\]{},]")
"""An alias (`*name`, after a space or a flow indicator): rare in manifests, so its cost is only theirs."""
ALIASES_UNCOUNTED = 12
"""Up to this many aliases, a document is not counted: 12 aliases multiply a document by at most 81 (four
levels of three each: 3**4), under the 100x that go-yaml's 99% rule allows, so none is one it rejects and
PyYAML is not imported for a few `*locked-down` reuses."""


def _shape_problem(body: str, indented: bool) -> tuple[int, str] | None:
    """(line in `body`, 0-based; message) for a document no parser should be handed: nested deeper than
    MAX_NESTING, or with aliases that expand it out of proportion to its size (go-yaml's rule)."""
    deep = nesting_problem(body, indented=indented)
    if deep is not None:
        return deep, too_deep_message()
    if "&" in body and len(_ALIAS.findall(body)) > ALIASES_UNCOUNTED:
        from readiness import yaml11  # PyYAML: only for documents with aliases

        return yaml11.excessive_aliasing(body)
    return None


def too_deep_message() -> str:
    return f"nested deeper than {MAX_NESTING} levels"


def _bracket_depth_exceeded(text: str) -> int | None:
    """The offset where the brackets outside double-quoted strings first nest deeper than MAX_NESTING."""
    stripped = _JSON_STRING.sub(lambda m: " " * (m.end() - m.start()), text) if '"' in text else text
    depth = 0
    for match in _BRACKET_RUN.finditer(stripped):
        run = match.end() - match.start()
        if stripped[match.start()] in _OPENERS:
            if depth + run > MAX_NESTING:
                return match.start() + MAX_NESTING - depth
            depth += run
        else:
            depth = max(0, depth - run)
    return None


# -- parsing ---------------------------------------------------------------------------------------------

def _parse(text: str) -> Any:
    if _rs_loads is None:
        return parse_kubernetes_yaml(text)
    try:
        return _rs_loads(text, parse_datetime=False)
    except Exception:  # yaml-rs said no: PyYAML decides, and its error names the line
        return parse_kubernetes_yaml(text)


def _quirks_by_segment(text: str, segments: list[_Segment]) -> tuple[dict[int, Spans], set[int]]:
    """({segment index: its quirk words, in the segment's own offsets}, the segments only PyYAML reads)."""
    quirks = find_quirks(text)
    starts = [s.start for s in segments]
    words: dict[int, Spans] = {}
    for start, end in quirks.words:
        index = bisect.bisect_right(starts, start) - 1
        offset = segments[index].start
        words.setdefault(index, []).append((start - offset, end - offset))
    exact = {bisect.bisect_right(starts, offset) - 1 for offset in quirks.literals}
    if _rs_loads is None:
        exact.update(words)
    return words, exact


def load_text(text: str, source: str, first_line: int = 1) -> LoadResult:
    """Parse a multi-document YAML stream. Broken documents become errors; the others are kept.
    `first_line`: the line number of `text`'s first line, when it is a part of a larger stream (each
    process of a parallel audit loads its own part, see readiness.report.parallel)."""
    text = normalise(text)
    segments = split_documents(text, first_line)
    words, exact = _quirks_by_segment(text, segments)
    indented = _deeply_indented(text)
    result = LoadResult()
    for index, segment in enumerate(segments):
        body = text[segment.start:segment.end]
        quirky = words.get(index)
        problem = _shape_problem(body, indented)
        if problem is not None:  # before any parser sees it: they recurse, and expand aliases
            result.errors.append(InputError(source, segment.line + problem[0], f"invalid YAML: {problem[1]}"))
            continue
        try:
            if body.startswith("%") or "\n%" in body:  # directives (`%YAML 1.1`) precede a `---`
                body = _DIRECTIVE_LINE.sub("", body)
                obj = parse_kubernetes_yaml(body) if quirky or index in exact else _parse(body)
            elif index in exact:
                obj = parse_kubernetes_yaml(body)
            elif quirky:
                obj = _parse_with_placeholders(body, quirky)
            else:
                obj = _parse(body)
        except YamlSyntaxError as error:
            line = segment.line + error.line if error.line is not None else segment.line
            result.errors.append(InputError(source, line, error.message))
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
    deep = nesting_problem(text, json_text=True)
    if deep is not None:  # json recurses on Python's stack
        result.errors.append(InputError(source, deep + 1, f"invalid JSON: {too_deep_message()}"))
        return result
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as error:
        result.errors.append(InputError(source, error.lineno, f"invalid JSON: {error.msg}"))
        return result
    if _SURROGATE_ESCAPE.search(text) is not None:
        obj = _without_lone_surrogates(obj)
    if obj is not None:
        _add(result, Document(source, 1, obj, text, 1))
    return result


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _without_lone_surrogates(obj: Any) -> Any:
    """JSON may escape half a UTF-16 pair (`"\\ud800"`), which no UTF-8 report can hold: each becomes
    U+FFFD, as Go's encoding/json (so the API server) decodes it. Depth is bounded by MAX_NESTING."""
    if obj.__class__ is str:
        return _LONE_SURROGATE.sub("\ufffd", obj)
    if obj.__class__ is dict:
        return {_without_lone_surrogates(k): _without_lone_surrogates(v) for k, v in obj.items()}
    if obj.__class__ is list:
        return [_without_lone_surrogates(item) for item in obj]
    return obj


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
        # _add again: a List nested in a List is expanded too (its depth is bounded by MAX_NESTING)
        if spans is None:
            item_document = Document(document.source, document.line, item, document.text, document.text_line)
        else:
            start, end = spans[index]
            line = document.text_line + document.text.count("\n", 0, start)
            item_document = Document(document.source, line, item, document.text[start:end], line)
        if item is None:
            result.errors.append(InputError(document.source, item_document.line,
                                            f"items[{index}]: a null item, expected a Kubernetes object"))
            continue
        _add(result, item_document)


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
        return LoadResult(errors=[read_error(name, error)])
    if path.suffix == ".json":
        return load_json(text, name)
    return load_text(text, name)


def read_error(name: str, error: Exception) -> InputError:
    return InputError(name, None, f"cannot read: {_os_reason(error)}")


def _os_reason(error: Exception) -> str:
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return str(error)


def load_paths(paths: Sequence[str], stdin: TextIO | None = None, exclude: Sequence[str] = ()) -> LoadResult:
    """Load every path (`-` is standard input; directories are walked, see readiness.discovery, with the
    gitignore-style `exclude` patterns). Errors never stop the others."""
    result = LoadResult()
    for name in paths:
        result.extend(_load_path(name, stdin, exclude))
    return result


def read_stdin(stdin: TextIO) -> str | InputError:
    """Standard input as UTF-8 text (a BOM dropped), as a file is read, whatever the locale says: its
    bytes when it has them, else its text, whose undecodable bytes Python keeps as lone surrogates."""
    binary = getattr(stdin, "buffer", None)
    try:
        if binary is not None:
            data: bytes = binary.read()
        else:
            data = stdin.read().encode("utf-8", "surrogateescape")
        return data.decode("utf-8-sig")
    except (OSError, UnicodeError) as error:
        return InputError("-", None, f"cannot read: {_os_reason(error)}")


def _load_path(name: str, stdin: TextIO | None, exclude: Sequence[str] = ()) -> LoadResult:
    if name == "-":
        if stdin is None:
            return LoadResult(errors=[InputError("-", None, "standard input is not available")])
        text = read_stdin(stdin)
        return LoadResult(errors=[text]) if isinstance(text, InputError) else load_text(text, "-")
    path = Path(name)
    if path.is_dir():
        from readiness.discovery import load_directory

        return load_directory(path, exclude)
    if not path.exists():
        return LoadResult(errors=[InputError(name, None, "no such file or directory")])
    return load_file(path)


def iter_objects(documents: Iterable[Document]) -> Iterator[Any]:
    return (document.obj for document in documents)


# -- locating a container's line in a document ------------------------------------------------------------

_NAME_PATTERNS: dict[str, re.Pattern[str]] = {}


def container_line(document: Document, container: str) -> int:
    """The line of `name: <container>` inside the document's containers, else the document's line.
    A text scan, not a line-tracking parse: it only has to be right for the usual block layouts.
    Both searches start with a literal, which `re` and `str.find` skip to ten times faster than they
    try a pattern at every offset (0.19 s to 0.03 s for the containers of 10,000 Deployments)."""
    at = _container_offset(document.text, container)
    return document.line if at is None else document.text_line + document.text.count("\n", 0, at)


Anchor = tuple[str, str]
"""("key", "env") for a mapping key, ("name", "DB_PASSWORD") for the list item of that name."""


def field_line(document: Document, container: str | None, anchors: Sequence[Anchor]) -> int:
    """The line of a field inside a container (or, with no container, the document): each anchor, a key
    (`env`) or a list item's name (`DB_PASSWORD`), is looked for after the previous one, starting at the
    container's `name:`; the line of the last one found, else the container's line. The same text scan
    as `container_line`, so the same layouts: flow style too, not a container whose `name:` comes last."""
    text = document.text
    at = 0 if container is None else _container_offset(text, container)
    if at is None:
        return document.line
    for kind, word in anchors:
        match = (_name_pattern(word) if kind == "name" else _key_pattern(word)).search(text, at)
        if match is None:
            break
        at = match.start()
    if at == 0 and container is None:
        return document.line
    return document.text_line + text.count("\n", 0, at)


def _container_offset(text: str, container: str) -> int | None:
    start = _after_containers_key(text)
    if start < 0:
        return None
    match = _name_pattern(container).search(text, start)
    return None if match is None else match.start()


def _name_pattern(name: str) -> re.Pattern[str]:
    pattern = _NAME_PATTERNS.get(name)
    if pattern is None:  # container names repeat across documents (app, proxy): compile each one once
        # `name:` not preceded by a word character: the lookbehind comes after the literal it checks
        pattern = re.compile(r"name:(?<!\wname:)[ \t]*([\"']?)" + re.escape(name)
                             + r"\1[ \t]*(?:[,}\n#]|$)")
        if len(_NAME_PATTERNS) >= 1024:
            _NAME_PATTERNS.clear()
        _NAME_PATTERNS[name] = pattern
    return pattern


def _key_pattern(key: str) -> re.Pattern[str]:
    return re.compile(r"(?<![\w\"'-])[\"']?" + re.escape(key) + r"[\"']?[ \t]*:")


def _after_containers_key(text: str) -> int:
    """The offset after the first `containers:` or `initContainers:` in `text`, else -1."""
    at = text.find("ontainers:", 1)  # a key needs the `c` before it
    while at != -1:
        if text[at - 1] == "c" or (at >= 5 and text[at - 5:at] == "initC"):
            return at + len("ontainers:")
        at = text.find("ontainers:", at + 1)
    return -1
