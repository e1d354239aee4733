"""Structural JSON Schema compatibility: does a reader schema accept every document a writer allows.

``json_incompatibilities(reader, writer)`` answers "can the reader read what the writer wrote"
without generating documents: it walks both schemas side by side and returns one message per
problem, ``"RULE at #/json/path: explanation"`` (the path follows the reader's structure), or
``[]`` when every document valid under the writer is valid under the reader.

The check is sound but not complete: ``[]`` is only returned when compatibility follows from the
rules below; whatever cannot be proven is reported as incompatible (conservatively).

Resolution
  * ``$ref`` to a local pointer (``#/definitions/x``, ``#/$defs/x``), to an ``$anchor``, or to a
    schema reference by name (``.references``; also matched by ``$id`` or last path segment),
    with an optional fragment. Siblings of ``$ref`` apply, except under draft-07 and older.
    Recursion is guarded: a (reader, writer) pair already being compared counts as compatible
    when the cycle went through a nested value (property, item); a cycle on the same value
    cannot be decided and is reported (RECURSION_UNRESOLVED).
  * The writer is normalised into alternatives, each a conjunction of subschemas: ``allOf`` parts
    and ``$ref`` targets are conjoined, each ``anyOf``/``oneOf`` branch (and ``if``+``then`` /
    ``else`` of ``if``) becomes its own alternative; every alternative must be accepted.
    Unresolvable writer references are treated as ``true`` (accept anything).
  * Boolean schemas: writer ``false`` is compatible with anything, reader ``true`` accepts
    anything, reader ``false`` rejects everything (SCHEMA_FALSE), writer ``true`` acts as ``{}``.
  * A writer alternative inside one of its own negations (see below) is empty and skipped.
  * Identical (reference-free) reader and writer subschemas are compatible.

Rules (reader keyword against the writer's conjunction)
  * ``type`` (TYPE_CHANGED / TYPE_NARROWED): the reader's types must cover the writer's;
    ``number`` covers ``integer``; absent ``type`` is any. Writer ``enum``/``const`` values
    narrow the writer's types. Keyword groups below only apply to the types the writer can produce.
  * ``enum`` / ``const`` (ENUM_ARRAY_ADDED / ENUM_ARRAY_NARROWED / CONST_ADDED / CONST_CHANGED):
    each writer value must be in the reader's set; a writer without a finite value set (``enum``,
    ``const``, or only null/boolean types) is incompatible with a reader enum.
  * strings: ``maxLength`` (MAX_LENGTH_ADDED/DECREASED), ``minLength`` (MIN_LENGTH_ADDED/
    INCREASED), ``pattern`` (PATTERN_ADDED/CHANGED: identical pattern needed), ``format``
    (FORMAT_ADDED/CHANGED: identical format needed). Writer enum values are tested directly.
  * numbers: ``maximum``/``exclusiveMaximum``/``minimum``/``exclusiveMinimum`` (incl. draft-04
    boolean exclusives) must be implied by the writer's tightest bound (integer writers use
    integer rounding); ``multipleOf`` (MULTIPLE_OF_ADDED/CHANGED): the reader's must divide the
    writer's (an integer writer counts as a multiple of 1).
  * objects: each property is compared recursively; a property only in the reader must be
    accepted by the writer's ``additionalProperties``/``patternProperties`` schema for it
    (PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL / PROPERTY_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_
    MODEL), unless the writer forbids it (closed model); a property only in the writer must be
    accepted by the reader's (PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL / PROPERTY_REMOVED_NOT_
    COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL); undeclared properties the writer allows must be
    accepted by the reader's ``additionalProperties``/``patternProperties``
    (ADDITIONAL_PROPERTIES_NARROWED); ``required`` must be a subset of the writer's
    (REQUIRED_ATTRIBUTE_ADDED); ``minProperties``/``maxProperties``; ``dependentRequired`` and
    array-valued ``dependencies`` (DEPENDENCY_ARRAY_ADDED/EXTENDED); ``dependentSchemas`` and
    schema-valued ``dependencies`` (DEPENDENCY_SCHEMA_CHANGED); ``propertyNames``
    (PROPERTY_NAMES_NARROWED).
  * arrays: per position, ``prefixItems`` or list-valued ``items`` with ``items`` /
    ``additionalItems`` for the rest (ITEM_ADDED_TO_OPEN_CONTENT_MODEL, ITEM_ADDED_NOT_COVERED_BY_
    PARTIALLY_OPEN_CONTENT_MODEL, ITEM_REMOVED_FROM_CLOSED_CONTENT_MODEL, ITEM_REMOVED_NOT_COVERED_
    BY_PARTIALLY_OPEN_CONTENT_MODEL, ADDITIONAL_ITEMS_REMOVED), positions past the writer's
    ``maxItems`` are skipped; ``minItems``/``maxItems``; ``uniqueItems`` (UNIQUE_ITEMS_ADDED);
    ``contains``/``minContains``/``maxContains`` (CONTAINS_ADDED/CHANGED, MAX_CONTAINS_ADDED).
  * ``allOf`` in the reader: every part must accept the writer. ``anyOf``/``oneOf`` in the reader:
    some branch must accept each writer alternative (SUM_TYPE_NARROWED). For ``oneOf`` the other
    branches must also provably reject that alternative (ONEOF_AMBIGUOUS), unlike Confluent's
    checker which treats ``oneOf`` like ``anyOf``: a writer document matching two branches is
    invalid for the reader.
  * Disjointness ("provably rejects every writer document") is shown by types or enum/const
    values that do not meet, a required property the writer forbids, a property the writer
    requires whose reader schema rejects the writer's (a discriminator ``const``), parts of
    ``allOf``/all branches of ``anyOf``/``oneOf``, or containment in a schema the writer's
    documents never match (the writer's ``not``, the other branches of a writer ``oneOf``, the
    ``if`` of an ``else`` branch), proven by this same check with the sides swapped.
  * ``not`` (NOT_TYPE_CHANGED): the negated schema must provably reject every writer document.
    ``if``/``then``/``else``: if the writer is accepted by ``if`` only ``then`` is checked,
    if ``if`` provably rejects it only ``else``, otherwise both.

Conservatively reported as incompatible
  * any change of ``pattern``/``format`` (no regular-language or format reasoning), ``not`` and
    ``oneOf`` branches whose disjointness from the writer cannot be shown as above;
  * ``unevaluatedProperties``/``unevaluatedItems`` in a reader node that also uses applicators
    (they are treated as ``additionalProperties``/rest items in plain nodes), ``$dynamicRef`` /
    ``$recursiveRef``, and unresolvable reader references (unless the writer has the same one)
    (UNSUPPORTED_KEYWORD / REF_UNRESOLVED);
  * pattern properties with patterns that are not provably disjoint (literal ``^prefix`` test);
  * schemas too large to compare (TOO_COMPLEX).
Annotations (title, description, default, examples, content*, readOnly, ...) and unknown keywords
are ignored, as validators ignore them.
"""

from __future__ import annotations

import functools
import itertools
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Protocol
from urllib.parse import unquote, urljoin

__all__ = ["JsonSchemaSource", "json_incompatibilities"]


class JsonSchemaSource(Protocol):
    """What the checker reads of a parsed schema (``ParsedSchema`` has both attributes)."""

    @property
    def parsed(self) -> object: ...

    @property
    def references(self) -> tuple[tuple[str, str], ...]: ...


def json_incompatibilities(reader: JsonSchemaSource, writer: JsonSchemaSource) -> list[str]:
    """Why documents valid under ``writer`` may be invalid under ``reader``; [] if none can be."""
    checker = _Checker(_Side("reader", reader), _Side("writer", writer))
    try:
        return checker.run()
    except (_TooComplex, RecursionError):
        return ["TOO_COMPLEX at #: the schemas are too large to compare; treated as incompatible"]


_ALL_KINDS = frozenset({"null", "boolean", "integer", "fraction", "string", "array", "object"})
_NUMERIC = frozenset({"integer", "fraction"})
_TYPE_KINDS: dict[str, frozenset[str]] = {
    "null": frozenset({"null"}),
    "boolean": frozenset({"boolean"}),
    "integer": frozenset({"integer"}),
    "number": _NUMERIC,
    "string": frozenset({"string"}),
    "array": frozenset({"array"}),
    "object": frozenset({"object"}),
    "any": _ALL_KINDS,
}
_KIND_ORDER = ("null", "boolean", "integer", "number", "string", "array", "object")
_LEGACY_DRAFTS = ("draft-03", "draft-04", "draft-06", "draft-07")
_APPLICATORS = (
    "$ref",
    "$dynamicRef",
    "$recursiveRef",
    "allOf",
    "anyOf",
    "oneOf",
    "not",
    "if",
    "dependentSchemas",
    "dependencies",
)
_ANNOTATIONS = frozenset(
    {"title", "description", "$comment", "examples", "default", "readOnly", "writeOnly"}
    | {"deprecated", "$id", "$anchor", "$schema", "$defs", "definitions"}
)
_RULE_NAMES = {
    "maxLength": "MAX_LENGTH",
    "minLength": "MIN_LENGTH",
    "maxItems": "MAX_ITEMS",
    "minItems": "MIN_ITEMS",
    "maxProperties": "MAX_PROPERTIES",
    "minProperties": "MIN_PROPERTIES",
}
_MAX_ALTERNATIVES = 256
_MAX_STEPS = 100_000


class _TooComplex(Exception):
    """The comparison exceeded its step budget."""


class _TooManyAlternatives(Exception):
    """Expanding the writer's disjunctions produced too many alternatives."""


class _Doc:
    """One schema document: a root schema or a named reference."""

    __slots__ = ("key", "name", "root", "uri", "legacy")

    def __init__(self, side: str, name: str, root: Any, legacy_default: bool = False) -> None:
        self.key = f"{side}:{name}"
        self.name = name
        self.root = root
        ident = root.get("$id", root.get("id")) if isinstance(root, dict) else None
        self.uri = ident.split("#")[0] if isinstance(ident, str) else ""
        dialect = root.get("$schema") if isinstance(root, dict) else None
        if isinstance(dialect, str):
            self.legacy = any(draft in dialect for draft in _LEGACY_DRAFTS)
        else:
            self.legacy = legacy_default


@dataclass(frozen=True, eq=False)
class _Node:
    """A subschema with the document it lives in and its JSON pointer there."""

    schema: Any
    doc: _Doc
    ptr: str

    @property
    def loc(self) -> tuple[str, str]:
        return (self.doc.key, self.ptr)

    def child(self, *keys: str | int) -> _Node:
        schema = self.schema
        for key in keys:
            schema = schema[key]
        return _Node(schema, self.doc, self.ptr + "".join("/" + _esc(str(k)) for k in keys))


@dataclass(frozen=True, eq=False)
class _Alt:
    """One writer alternative: a conjunction of subschemas plus schemas known not to match."""

    nodes: tuple[_Node, ...]
    negs: tuple[_Node, ...]
    key: frozenset[tuple[str, str]]


def _esc(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def _load(value: Any) -> Any:
    if isinstance(value, (str, bytes)):
        return json.loads(value)
    return value


class _Side:
    """The documents of one side (reader or writer) and reference resolution among them."""

    def __init__(self, label: str, source: Any) -> None:
        self.root = _Doc(label, "", _load(getattr(source, "parsed", True)))
        self.docs = [self.root]
        for item in getattr(source, "references", ()) or ():
            try:
                name, text = item
                content = _load(text)
            except (TypeError, ValueError):
                continue
            self.docs.append(_Doc(label, str(name), content, self.root.legacy))

    def root_node(self) -> _Node:
        return _Node(self.root.root, self.root, "")

    def resolve(self, node: _Node, ref: str) -> _Node | None:
        base, _, frag = ref.partition("#")
        doc = self._find(node.doc, base) if base else node.doc
        if doc is None:
            return None
        frag = unquote(frag)
        if not frag:
            return _Node(doc.root, doc, "")
        if frag.startswith("/"):
            return _pointer(doc, frag)
        found = _find_anchor(doc.root, frag, "")
        return _Node(found[0], doc, found[1]) if found else None

    def _find(self, current: _Doc, base: str) -> _Doc | None:
        candidates = {base}
        if current.uri:
            candidates.add(urljoin(current.uri, base))
        for doc in self.docs:
            if (doc.name and doc.name in candidates) or (doc.uri and doc.uri in candidates):
                return doc
        tails = {c.rstrip("/").rsplit("/", 1)[-1] for c in candidates}
        for doc in self.docs:
            if doc.name and doc.name.rstrip("/").rsplit("/", 1)[-1] in tails:
                return doc
        return None


def _pointer(doc: _Doc, frag: str) -> _Node | None:
    target = doc.root
    tokens: list[str] = []
    for raw in frag[1:].split("/"):
        token = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(target, dict) and token in target:
            target = target[token]
        elif isinstance(target, list) and token.isdigit() and int(token) < len(target):
            target = target[int(token)]
        else:
            return None
        tokens.append(token)
    return _Node(target, doc, "".join("/" + _esc(t) for t in tokens))


def _find_anchor(schema: Any, name: str, ptr: str) -> tuple[Any, str] | None:
    if isinstance(schema, dict):
        if schema.get("$anchor") == name or "#" + name in (schema.get("$id"), schema.get("id")):
            return schema, ptr
        for key, value in schema.items():
            if key in ("enum", "const", "default", "examples"):
                continue
            found = _find_anchor(value, name, f"{ptr}/{_esc(key)}")
            if found:
                return found
    elif isinstance(schema, list):
        for index, value in enumerate(schema):
            found = _find_anchor(value, name, f"{ptr}/{index}")
            if found:
                return found
    return None


def _norm(value: Any) -> Any:
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else value
    if isinstance(value, dict):
        return {str(k): _norm(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_norm(v) for v in value]
    return str(value)


def _canon(value: Any) -> str:
    """A JSON text equal for JSON-equal values (1 and 1.0 alike, true and 1 not)."""
    return json.dumps(_norm(value), sort_keys=True, separators=(",", ":"))


def _value_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "integer" if value.is_integer() else "fraction"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _type_kinds(schema: dict) -> frozenset[str]:
    declared = schema.get("type")
    if isinstance(declared, str):
        declared = [declared]
    if not isinstance(declared, list):
        return _ALL_KINDS
    kinds: set[str] = set()
    for name in declared:
        if isinstance(name, str):
            kinds |= _TYPE_KINDS.get(name, frozenset())
    return frozenset(kinds)


def _kinds_text(kinds: frozenset[str] | set[str]) -> str:
    names = {"number" if kind == "fraction" else kind for kind in kinds}
    if kinds >= _NUMERIC:
        names.discard("integer")
    return ", ".join(name for name in _KIND_ORDER if name in names)


def _value_set(schema: dict) -> dict[str, Any] | None:
    values: dict[str, Any] | None = None
    enum = schema.get("enum")
    if isinstance(enum, list):
        values = {_canon(v): v for v in enum}
    if "const" in schema:
        const = {_canon(schema["const"]): schema["const"]}
        values = const if values is None else {k: v for k, v in values.items() if k in const}
    return values


def _values_text(values: Sequence[Any]) -> str:
    shown = ", ".join(json.dumps(v) for v in values[:5])
    return shown + (", ..." if len(values) > 5 else "")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _fraction(value: float) -> Fraction:
    return Fraction(value) if isinstance(value, int) else Fraction(repr(value))


def _is_multiple(value: float, divisor: float) -> bool:
    try:
        return (_fraction(value) / _fraction(divisor)).denominator == 1
    except (ValueError, ZeroDivisionError):
        return False


@functools.lru_cache(maxsize=1024)
def _compile(pattern: str) -> re.Pattern[str] | None:
    try:
        return re.compile(pattern)
    except re.error:
        return None


def _matches(pattern: str, text: str) -> bool | None:
    """Whether ``text`` matches the ECMA-ish ``pattern``; None when the pattern is not understood."""
    compiled = _compile(pattern)
    if compiled is None:
        return None
    return compiled.search(text) is not None


def _disjoint_patterns(first: str, second: str) -> bool:
    """True when both patterns are ``^literal...`` with prefixes that cannot both match."""
    prefixes = []
    for pattern in (first, second):
        found = re.match(r"\^([A-Za-z0-9_\-]+)", pattern)
        if not found:
            return False
        prefixes.append(found.group(1))
    a, b = prefixes
    return not (a.startswith(b) or b.startswith(a))


def _children(node: _Node, keyword: str) -> list[_Node]:
    subs = node.schema.get(keyword)
    if not isinstance(subs, list):
        return []
    return [node.child(keyword, i) for i in range(len(subs))]


def _plain(schema: dict) -> bool:
    return not any(key in schema for key in _APPLICATORS)


def _additional_key(schema: dict) -> str | None:
    if isinstance(schema.get("additionalProperties"), (dict, bool)):
        return "additionalProperties"
    if isinstance(schema.get("unevaluatedProperties"), (dict, bool)) and _plain(schema):
        return "unevaluatedProperties"
    return None


def _prop_subs(node: _Node, name: str, reader: bool) -> list[tuple[str, _Node]]:
    """The subschemas ``node`` applies to property ``name`` (with their path suffixes)."""
    schema = node.schema
    out: list[tuple[str, _Node]] = []
    props = schema.get("properties")
    if isinstance(props, dict) and name in props:
        out.append((f"/properties/{_esc(name)}", node.child("properties", name)))
    patterns = schema.get("patternProperties")
    if isinstance(patterns, dict):
        for pattern in patterns:
            hit = _matches(pattern, name)
            if hit is None and not reader:
                return []  # unknown for the writer: assuming nothing is safe
            if hit is not False:
                out.append(
                    (
                        f"/patternProperties/{_esc(pattern)}",
                        node.child("patternProperties", pattern),
                    )
                )
    if not out:
        key = _additional_key(schema)
        if key:
            out.append((f"/{key}", node.child(key)))
    return out


def _closed(schema: dict) -> bool:
    key = _additional_key(schema)
    return key is not None and schema[key] is False and not schema.get("patternProperties")


def _item_model(node: _Node) -> tuple[list[tuple[str, _Node]], tuple[str, _Node] | None]:
    """Positional item schemas and the schema for the remaining items (None: any)."""
    schema = node.schema
    prefix: list[tuple[str, _Node]] = []
    rest: tuple[str, _Node] | None = None
    if isinstance(schema.get("prefixItems"), list):
        prefix = [(f"/prefixItems/{i}", n) for i, n in enumerate(_children(node, "prefixItems"))]
        if isinstance(schema.get("items"), (dict, bool)):
            rest = ("/items", node.child("items"))
    elif isinstance(schema.get("items"), list):
        prefix = [(f"/items/{i}", n) for i, n in enumerate(_children(node, "items"))]
        if isinstance(schema.get("additionalItems"), (dict, bool)):
            rest = ("/additionalItems", node.child("additionalItems"))
    elif isinstance(schema.get("items"), (dict, bool)):
        rest = ("/items", node.child("items"))
    unevaluated = schema.get("unevaluatedItems")
    plain = _plain(schema) and "contains" not in schema
    if rest is None and isinstance(unevaluated, (dict, bool)) and plain:
        rest = ("/unevaluatedItems", node.child("unevaluatedItems"))
    return prefix, rest


def _bounds(schema: dict, upper: bool) -> list[tuple[float, bool, str]]:
    """Numeric bounds as (value, exclusive, keyword), lower bounds negated to look like upper."""
    inclusive, exclusive = (
        ("maximum", "exclusiveMaximum") if upper else ("minimum", "exclusiveMinimum")
    )
    sign = 1 if upper else -1
    out = []
    if _is_number(schema.get(inclusive)):
        strict = schema.get(exclusive) is True  # draft-04 boolean form
        out.append((sign * schema[inclusive], strict, exclusive if strict else inclusive))
    if _is_number(schema.get(exclusive)):
        out.append((sign * schema[exclusive], True, exclusive))
    return out


def _bound_implies(writer: tuple[float, bool], reader: tuple[float, bool], integers: bool) -> bool:
    (wv, wex), (rv, rex) = writer, reader
    if integers:
        largest = math.ceil(wv) - 1 if wex else math.floor(wv)
        return largest < rv if rex else largest <= rv
    return wv < rv or (wv == rv and (wex or not rex))


def _scalar_ok(schema: dict, value: Any) -> bool:
    """False when ``schema``'s own keywords certainly reject the scalar ``value``."""
    if isinstance(value, str):
        for keyword, longest in (("maxLength", True), ("minLength", False)):
            limit = _as_int(schema.get(keyword))
            if limit is not None and (len(value) > limit if longest else len(value) < limit):
                return False
        pattern = schema.get("pattern")
        return not isinstance(pattern, str) or _matches(pattern, value) is not False
    if not _is_number(value):
        return True
    for upper in (True, False):
        sign = 1 if upper else -1
        for bound, strict, _ in _bounds(schema, upper):
            if sign * value > bound or (strict and sign * value == bound):
                return False
    divisor = schema.get("multipleOf")
    return not (_is_number(divisor) and divisor > 0 and not _is_multiple(value, divisor))


def _trivial(schema: Any) -> bool:
    """Whether a schema accepts everything for certain (true, {} or annotations only)."""
    return schema is True or (
        isinstance(schema, dict) and all(key in _ANNOTATIONS for key in schema)
    )


def _dedupe(messages: list[str]) -> list[str]:
    return list(dict.fromkeys(messages))


class _Shared:
    """State shared by a checker and its helpers (swapped sides, writer against writer)."""

    __slots__ = ("steps", "depth")

    def __init__(self) -> None:
        self.steps = 0
        self.depth = 0


class _Checker:
    """One comparison of a reader schema against a writer schema."""

    def __init__(self, reader: _Side, writer: _Side, shared: _Shared | None = None) -> None:
        self.reader = reader
        self.writer = writer
        self._active: dict[tuple[Any, ...], int] = {}  # pair being compared -> descent depth
        self._canons: dict[int, tuple[Any, str]] = {}
        self._domains: dict[frozenset[tuple[str, str]], tuple[frozenset[str], Any]] = {}
        self._shared = shared if shared is not None else _Shared()  # with the helper checkers
        self._swapped_checker: _Checker | None = None
        self._writer_checker: _Checker | None = None
        self._empty: dict[tuple[Any, ...], bool] = {}
        self._string_node = _Node({"type": "string"}, writer.root, "!string")

    def _swapped(self) -> _Checker:
        """A checker with the sides exchanged, to prove a reader subschema is in a writer one."""
        if self._swapped_checker is None:
            self._swapped_checker = _Checker(self.writer, self.reader, self._shared)
            self._swapped_checker._swapped_checker = self
        return self._swapped_checker

    def _step(self) -> None:
        self._shared.steps += 1
        if self._shared.steps > _MAX_STEPS:
            raise _TooComplex

    def run(self) -> list[str]:
        return self.compare(self.reader.root_node(), [self.writer.root_node()], "#")

    # -- helpers -------------------------------------------------------------------------------

    def _canon_noref(self, schema: Any) -> str | None:
        """Canonical text of a schema without references (None when it has any)."""
        cached = self._canons.get(id(schema))
        if cached is None or cached[0] is not schema:
            cached = (schema, _canon(schema))
            self._canons[id(schema)] = cached
        text = cached[1]
        if '"$ref"' in text or '"$dynamicRef"' in text or '"$recursiveRef"' in text:
            return None
        return text

    def _domain(self, alt: _Alt) -> tuple[frozenset[str], dict[str, Any] | None]:
        """The kinds of value a writer alternative can produce, and its values if finite."""
        cached = self._domains.get(alt.key)
        if cached is not None:
            return cached
        kinds = _ALL_KINDS
        values: dict[str, Any] | None = None
        for node in alt.nodes:
            kinds &= _type_kinds(node.schema)
            found = _value_set(node.schema)
            if found is not None:
                values = (
                    found if values is None else {k: v for k, v in values.items() if k in found}
                )
        if values is not None:
            values = {
                k: v
                for k, v in values.items()
                if _value_kind(v) in kinds and all(_scalar_ok(n.schema, v) for n in alt.nodes)
            }
            kinds = frozenset(_value_kind(v) for v in values.values())
        elif kinds <= {"null", "boolean"}:
            values = {}
            if "null" in kinds:
                values["null"] = None
            if "boolean" in kinds:
                values.update({"true": True, "false": False})
        self._domains[alt.key] = (kinds, values)
        return kinds, values

    def _alternatives(self, nodes: Sequence[_Node]) -> list[_Alt]:
        results: list[_Alt] = []
        try:
            self._expand(list(nodes), [], frozenset(), (), True, results)
        except _TooManyAlternatives:
            results = []  # dropping the disjunctions only widens the writer: still sound
            self._expand(list(nodes), [], frozenset(), (), False, results)
        return results

    def _expand(
        self,
        pending: list[_Node],
        done: list[_Node],
        seen: frozenset[tuple[str, str]],
        negs: tuple[_Node, ...],
        branch: bool,
        results: list[_Alt],
    ) -> None:
        pending = list(pending)
        done = list(done)
        while pending:
            node = pending.pop(0)
            schema = node.schema
            if schema is False:
                return  # this alternative admits no document
            if not isinstance(schema, dict) or node.loc in seen:
                continue
            seen = seen | {node.loc}
            extra: list[_Node] = []
            ref = schema.get("$ref")
            if isinstance(ref, str):
                target = self.writer.resolve(node, ref)
                if target is not None:
                    extra.append(target)
                if node.doc.legacy:
                    pending = extra + pending
                    continue
            done.append(node)
            extra.extend(_children(node, "allOf"))
            if "not" in schema:
                negs = (*negs, node.child("not"))
            choices: list[list[tuple[list[_Node], tuple[_Node, ...]]]] = []
            if branch:
                subs = _children(node, "anyOf")
                if subs:
                    choices.append([([sub], ()) for sub in subs])
                subs = _children(node, "oneOf")
                if subs:  # a document matching one branch matches none of the others
                    choices.append(
                        [([sub], (*subs[:i], *subs[i + 1 :])) for i, sub in enumerate(subs)]
                    )
                if "if" in schema and ("then" in schema or "else" in schema):
                    then = [node.child("if")] + ([node.child("then")] if "then" in schema else [])
                    other = [node.child("else")] if "else" in schema else []
                    options = [(then, ()), (other, (node.child("if"),))]
                    if _trivial(schema["if"]):
                        options = options[:1]
                    elif schema["if"] is False:
                        options = options[1:]
                    choices.append(options)
            pending = extra + pending
            if choices:
                for combo in itertools.product(*choices):
                    added = [n for nodes, _ in combo for n in nodes]
                    more = tuple(n for _, extra_negs in combo for n in extra_negs)
                    self._expand(added + pending, done, seen, (*negs, *more), branch, results)
                return
        if len(results) >= _MAX_ALTERNATIVES:
            raise _TooManyAlternatives
        results.append(_Alt(tuple(done), negs, frozenset(n.loc for n in done)))

    def _writer_prop(self, alt: _Alt, name: str) -> list[_Node]:
        return [sub for node in alt.nodes for _, sub in _prop_subs(node, name, reader=False)]

    # -- comparison ----------------------------------------------------------------------------

    def compare(
        self, reader: _Node, writer: Sequence[_Node], path: str, descend: bool = False
    ) -> list[str]:
        """Messages for writer documents (conjunction of ``writer``) that ``reader`` rejects.

        ``descend`` tells that the schemas apply to a value inside the current one (a property,
        an item): only cycles through such a step may be assumed compatible.
        """
        out: list[str] = []
        self._shared.depth += descend
        try:
            for alt in self._alternatives(writer):
                messages = self._compare_alt(reader, alt, path)
                if messages and not self._alt_empty(alt):
                    out.extend(messages)
        finally:
            self._shared.depth -= descend
        return _dedupe(out)

    def _alt_empty(self, alt: _Alt) -> bool:
        """Whether the alternative lies inside a schema its documents never match (so is empty)."""
        if not alt.negs:
            return False
        key = (alt.key, tuple(neg.loc for neg in alt.negs))
        cached = self._empty.get(key)
        if cached is None:
            if self._writer_checker is None:
                if self.reader is self.writer:
                    self._writer_checker = self
                else:
                    self._writer_checker = _Checker(self.writer, self.writer, self._shared)
            inner = self._writer_checker
            self._empty[key] = False  # while deciding, assume not empty (no proof by recursion)
            cached = any(not inner.compare(neg, list(alt.nodes), "#") for neg in alt.negs)
            self._empty[key] = cached
        return cached

    def _compare_alt(self, reader: _Node, alt: _Alt, path: str) -> list[str]:
        schema = reader.schema
        if schema is True or not isinstance(schema, (dict, bool)):
            return []
        kinds, values = self._domain(alt)
        if not kinds:
            return []
        if schema is False:
            return [
                f"SCHEMA_FALSE at {path}: the reader schema is false and rejects what the writer allows"
            ]
        text = self._canon_noref(schema)
        if text is not None and any(self._canon_noref(n.schema) == text for n in alt.nodes):
            return []
        key = (reader.loc, alt.key)
        entered = self._active.get(key)
        if entered is not None:
            if self._shared.depth > entered:
                return []  # coinductive: the same pair again, on a nested value
            return [
                f"RECURSION_UNRESOLVED at {path}: the schemas refer back to themselves on the "
                "same value"
            ]
        self._step()
        self._active[key] = self._shared.depth
        try:
            return _dedupe(self._check_node(reader, alt, kinds, values, path))
        finally:
            del self._active[key]

    def _check_node(
        self,
        reader: _Node,
        alt: _Alt,
        kinds: frozenset[str],
        values: dict[str, Any] | None,
        path: str,
    ) -> list[str]:
        schema = reader.schema
        out: list[str] = []
        ref = schema.get("$ref")
        if isinstance(ref, str):
            target = self.reader.resolve(reader, ref)
            if target is not None:
                out.extend(self._compare_alt(target, alt, path))
            elif not any(
                n.schema.get("$ref") == ref and self.writer.resolve(n, ref) is None
                for n in alt.nodes
            ):
                out.append(f"REF_UNRESOLVED at {path}: reader reference {ref!r} cannot be resolved")
            if reader.doc.legacy:
                return out
        for index, part in enumerate(_children(reader, "allOf")):
            out.extend(self._compare_alt(part, alt, f"{path}/allOf/{index}"))
        for keyword in ("anyOf", "oneOf"):
            if isinstance(schema.get(keyword), list):
                out.extend(self._check_sum(reader, keyword, alt, path))
        if "not" in schema:
            out.extend(self._check_not(reader, alt, path))
        if "if" in schema:
            out.extend(self._check_if(reader, alt, path))
        for keyword in ("$dynamicRef", "$recursiveRef"):
            if keyword in schema and not any(
                n.schema.get(keyword) == schema[keyword] for n in alt.nodes
            ):
                out.append(
                    f"UNSUPPORTED_KEYWORD at {path}: reader keyword {keyword} cannot be checked"
                )

        reader_kinds = _type_kinds(schema)
        missing = kinds - reader_kinds
        if missing:
            if kinds & reader_kinds:
                out.append(
                    f"TYPE_NARROWED at {path}: reader type {_kinds_text(reader_kinds)} does not "
                    f"accept writer type {_kinds_text(missing)}"
                )
            else:
                out.append(
                    f"TYPE_CHANGED at {path}: reader type {_kinds_text(reader_kinds)} does not "
                    f"accept writer type {_kinds_text(kinds)}"
                )
            kinds = kinds & reader_kinds
            if not kinds:
                return out
            if values is not None:
                values = {k: v for k, v in values.items() if _value_kind(v) in kinds}
        out.extend(self._check_values(schema, values, path))
        if "string" in kinds:
            out.extend(self._check_string(schema, alt, values, path))
        if kinds & _NUMERIC:
            out.extend(self._check_number(schema, alt, kinds, values, path))
        if "object" in kinds:
            out.extend(self._check_object(reader, alt, path))
        if "array" in kinds:
            out.extend(self._check_array(reader, alt, path))
        return out

    def _check_sum(self, reader: _Node, keyword: str, alt: _Alt, path: str) -> list[str]:
        results = [
            self._compare_alt(branch, alt, f"{path}/{keyword}/{index}")
            for index, branch in enumerate(_children(reader, keyword))
        ]
        accepted = [index for index, messages in enumerate(results) if not messages]
        if not accepted:

            def distance(index: int) -> tuple[int, int]:
                own = f"{path}/{keyword}/{index}:"
                changed = any(m.startswith("TYPE_CHANGED at " + own) for m in results[index])
                return (int(changed), len(results[index]))

            closest = results[min(range(len(results)), key=distance)] if results else []
            detail = f" (closest: {closest[0]})" if closest else ""
            return [
                f"SUM_TYPE_NARROWED at {path}: no reader {keyword} branch accepts the writer{detail}"
            ]
        if keyword != "oneOf":
            return []
        if len(accepted) > 1:
            return [
                f"ONEOF_AMBIGUOUS at {path}: writer documents match reader oneOf branches "
                f"{', '.join(map(str, accepted))} at once"
            ]
        overlapping = [
            index
            for index, branch in enumerate(_children(reader, keyword))
            if index != accepted[0] and not self._rejects_all(branch, alt)
        ]
        if overlapping:
            return [
                f"ONEOF_AMBIGUOUS at {path}: writer documents accepted by reader oneOf branch "
                f"{accepted[0]} may also match branch(es) {', '.join(map(str, overlapping))}"
            ]
        return []

    def _rejects_all(self, node: _Node, alt: _Alt) -> bool:
        """Whether the reader subschema ``node`` provably rejects every writer document."""
        schema = node.schema
        if schema is False:
            return True
        if not isinstance(schema, dict):
            return False
        kinds, values = self._domain(alt)
        if not kinds:
            return True
        key = ("rejects", node.loc, alt.key)
        if key in self._active:
            return False
        self._step()
        self._active[key] = self._shared.depth
        try:
            return self._disjoint(node, alt, kinds, values)
        finally:
            del self._active[key]

    def _disjoint(
        self, node: _Node, alt: _Alt, kinds: frozenset[str], values: dict[str, Any] | None
    ) -> bool:
        schema = node.schema
        ref = schema.get("$ref")
        if isinstance(ref, str):
            target = self.reader.resolve(node, ref)
            if target is not None and self._rejects_all(target, alt):
                return True
        own_kinds = _type_kinds(schema)
        own_values = _value_set(schema)
        if own_values is not None:
            own_kinds &= frozenset(_value_kind(v) for v in own_values.values())
            if values is not None and not set(values) & set(own_values):
                return True
        if not own_kinds & kinds:
            return True
        # inside a schema the writer's documents never match: "not", other oneOf branches, ...
        if any(not self._swapped().compare(neg, [node], "#") for neg in alt.negs):
            return True
        if any(self._rejects_all(part, alt) for part in _children(node, "allOf")):
            return True
        for keyword in ("anyOf", "oneOf"):
            subs = _children(node, keyword)
            if subs and all(self._rejects_all(sub, alt) for sub in subs):
                return True
        if own_kinds & kinds <= {"object"}:
            required = schema.get("required")
            if isinstance(required, list) and any(
                any(sub.schema is False for sub in self._writer_prop(alt, name))
                for name in required
                if isinstance(name, str)
            ):
                return True  # requires a property the writer never has
            props = schema.get("properties")
            writer_required = {
                p
                for n in alt.nodes
                if isinstance(n.schema.get("required"), list)
                for p in n.schema["required"]
            }
            if isinstance(props, dict):
                for name in props:
                    if name not in writer_required:
                        continue
                    sub = node.child("properties", name)
                    subs = self._writer_prop(alt, name)
                    if all(self._rejects_all(sub, a) for a in self._alternatives(subs)):
                        return True  # e.g. a discriminator with another const
        return False

    def _check_not(self, reader: _Node, alt: _Alt, path: str) -> list[str]:
        if self._rejects_all(reader.child("not"), alt):
            return []
        return [
            f"NOT_TYPE_CHANGED at {path}/not: the writer may produce documents the reader's "
            "negated schema matches"
        ]

    def _check_if(self, reader: _Node, alt: _Alt, path: str) -> list[str]:
        schema = reader.schema
        branches = [key for key in ("then", "else") if key in schema]
        if not branches:
            return []
        if not self._compare_alt(reader.child("if"), alt, f"{path}/if"):
            branches = [key for key in branches if key == "then"]
        elif self._rejects_all(reader.child("if"), alt):
            branches = [key for key in branches if key == "else"]
        out: list[str] = []
        for key in branches:
            out.extend(self._compare_alt(reader.child(key), alt, f"{path}/{key}"))
        return out

    def _check_values(self, schema: dict, values: dict[str, Any] | None, path: str) -> list[str]:
        allowed = _value_set(schema)
        if allowed is None:
            return []
        keyword = "const" if "const" in schema and "enum" not in schema else "enum"
        base = "CONST" if keyword == "const" else "ENUM_ARRAY"
        if values is None:
            return [
                f"{base}_ADDED at {path}: reader restricts values with {keyword}, the writer does not"
            ]
        missing = [v for k, v in values.items() if k not in allowed]
        if not missing:
            return []
        rule = "CONST_CHANGED" if keyword == "const" else "ENUM_ARRAY_NARROWED"
        return [f"{rule} at {path}: reader {keyword} lacks writer value(s) {_values_text(missing)}"]

    def _limit(
        self,
        schema: dict,
        keyword: str,
        alt: _Alt,
        measures: list[int] | None,
        extra: list[int],
        path: str,
    ) -> list[str]:
        """maxLength/minLength/maxItems/minItems/maxProperties/minProperties."""
        limit = _as_int(schema.get(keyword))
        if limit is None:
            return []
        is_max = keyword.startswith("max")
        found = [v for n in alt.nodes if (v := _as_int(n.schema.get(keyword))) is not None]
        found += extra
        writer = (min(found) if is_max else max(found)) if found else None
        if measures is not None:
            if all((m <= limit) if is_max else (m >= limit) for m in measures):
                return []
            text = f"reader {keyword} {limit} rejects some writer enum values"
        else:
            if is_max and writer is not None and writer <= limit:
                return []
            if not is_max and (writer or 0) >= limit:
                return []
            if writer is None:
                text = f"reader {keyword} {limit} but the writer has no {keyword}"
            else:
                side = "below" if is_max else "above"
                text = f"reader {keyword} {limit} is {side} the writer's {writer}"
        base = _RULE_NAMES[keyword]
        rule = (
            f"{base}_ADDED"
            if writer is None
            else f"{base}_{'DECREASED' if is_max else 'INCREASED'}"
        )
        return [f"{rule} at {path}: {text}"]

    def _check_string(
        self, schema: dict, alt: _Alt, values: dict[str, Any] | None, path: str
    ) -> list[str]:
        strings = [v for v in values.values() if isinstance(v, str)] if values is not None else None
        lengths = [len(s) for s in strings] if strings is not None else None
        out = self._limit(schema, "maxLength", alt, lengths, [], path)
        out += self._limit(schema, "minLength", alt, lengths, [], path)
        pattern = schema.get("pattern")
        if isinstance(pattern, str):
            writer_patterns = [n.schema["pattern"] for n in alt.nodes if "pattern" in n.schema]
            if strings is not None:
                bad = [s for s in strings if not _matches(pattern, s)]
                if bad:
                    out.append(
                        f"PATTERN_CHANGED at {path}: reader pattern {pattern!r} rejects writer "
                        f"value(s) {_values_text(bad)}"
                    )
            elif pattern not in writer_patterns:
                rule = "PATTERN_CHANGED" if writer_patterns else "PATTERN_ADDED"
                out.append(f"{rule} at {path}: reader pattern {pattern!r} is not the writer's")
        fmt = schema.get("format")
        if isinstance(fmt, str):
            writer_formats = [n.schema["format"] for n in alt.nodes if "format" in n.schema]
            if fmt not in writer_formats:
                rule = "FORMAT_CHANGED" if writer_formats else "FORMAT_ADDED"
                out.append(f"{rule} at {path}: reader format {fmt!r} is not the writer's")
        return out

    def _check_number(
        self,
        schema: dict,
        alt: _Alt,
        kinds: frozenset[str],
        values: dict[str, Any] | None,
        path: str,
    ) -> list[str]:
        numbers = [v for v in values.values() if _is_number(v)] if values is not None else None
        integers = "fraction" not in kinds
        out: list[str] = []
        for upper in (True, False):
            sign = 1 if upper else -1
            writer = [b for n in alt.nodes for b in _bounds(n.schema, upper)]
            tightest = min(writer, key=lambda b: (b[0], not b[1])) if writer else None
            for value, strict, keyword in _bounds(schema, upper):
                if numbers is not None:
                    bad = [
                        v
                        for v in numbers
                        if not (sign * v < value or (sign * v == value and not strict))
                    ]
                    if not bad:
                        continue
                    detail = f"rejects writer value(s) {_values_text(bad)}"
                elif tightest is not None:
                    if _bound_implies(tightest[:2], (value, strict), integers):
                        continue
                    detail = f"is tighter than the writer's {tightest[2]} {sign * tightest[0]}"
                else:
                    detail = "but the writer has no such bound"
                base = "EXCLUSIVE_" if strict else ""
                base += "MAXIMUM" if upper else "MINIMUM"
                change = "DECREASED" if upper else "INCREASED"
                rule = f"{base}_{change}" if tightest is not None else f"{base}_ADDED"
                out.append(f"{rule} at {path}: reader {keyword} {sign * value} {detail}")
        divisor = schema.get("multipleOf")
        if _is_number(divisor) and divisor > 0:
            if numbers is not None:
                bad = [v for v in numbers if not _is_multiple(v, divisor)]
                if bad:
                    out.append(
                        f"MULTIPLE_OF_CHANGED at {path}: reader multipleOf {divisor} rejects writer "
                        f"value(s) {_values_text(bad)}"
                    )
                return out
            declared = [
                n.schema["multipleOf"] for n in alt.nodes if _is_number(n.schema.get("multipleOf"))
            ]
            candidates = declared + ([1] if integers else [])
            if not any(_is_multiple(w, divisor) for w in candidates):
                rule = "MULTIPLE_OF_CHANGED" if declared else "MULTIPLE_OF_ADDED"
                out.append(
                    f"{rule} at {path}: reader multipleOf {divisor} does not divide the writer's "
                    f"{declared[0] if declared else 'numbers'}"
                )
        return out

    def _check_object(self, reader: _Node, alt: _Alt, path: str) -> list[str]:
        schema = reader.schema
        out: list[str] = []
        reader_props = (
            schema.get("properties") if isinstance(schema.get("properties"), dict) else {}
        )
        writer_names: dict[str, None] = {}
        for node in alt.nodes:
            props = node.schema.get("properties")
            if isinstance(props, dict):
                writer_names.update(dict.fromkeys(props))
        for name in [*reader_props, *(n for n in writer_names if n not in reader_props)]:
            out.extend(self._check_property(reader, alt, name, name in writer_names, path))
        out.extend(self._check_additional(reader, alt, path))

        required = schema.get("required")
        writer_required = {
            p
            for n in alt.nodes
            if isinstance(n.schema.get("required"), list)
            for p in n.schema["required"]
        }
        if isinstance(required, list):
            for name in required:
                if name not in writer_required:
                    out.append(
                        f"REQUIRED_ATTRIBUTE_ADDED at {path}/required: reader requires {name!r}, "
                        "the writer does not"
                    )
        closed_counts = [
            len(n.schema.get("properties") or {}) for n in alt.nodes if _closed(n.schema)
        ]
        implied_min = [len(writer_required)] if writer_required else []
        out += self._limit(schema, "maxProperties", alt, None, closed_counts, path)
        out += self._limit(schema, "minProperties", alt, None, implied_min, path)
        out.extend(self._check_dependencies(reader, alt, writer_required, path))

        if isinstance(schema.get("propertyNames"), (dict, bool)):
            names = [n.child("propertyNames") for n in alt.nodes if "propertyNames" in n.schema]
            names.append(self._string_node)
            for node in alt.nodes:
                if _closed(node.schema):
                    listed = list(node.schema.get("properties") or {})
                    names.append(_Node({"enum": listed}, node.doc, node.ptr + "!names"))
            nested = self.compare(
                reader.child("propertyNames"), names, f"{path}/propertyNames", descend=True
            )
            if nested:
                out.append(
                    f"PROPERTY_NAMES_NARROWED at {path}/propertyNames: the reader rejects "
                    "property names the writer allows"
                )
                out.extend(nested)
        unevaluated = schema.get("unevaluatedProperties")
        if unevaluated is not None and unevaluated is not True and not _plain(schema):
            out.append(
                f"UNSUPPORTED_KEYWORD at {path}/unevaluatedProperties: cannot be checked next to "
                "applicators"
            )
        return out

    def _check_property(
        self, reader: _Node, alt: _Alt, name: str, in_writer: bool, path: str
    ) -> list[str]:
        writer_subs = self._writer_prop(alt, name)
        if any(sub.schema is False for sub in writer_subs):
            return []  # the writer never produces this property
        reader_subs = _prop_subs(reader, name, reader=True)
        in_reader = (
            isinstance(reader.schema.get("properties"), dict)
            and name in reader.schema["properties"]
        )
        where = f"{path}/properties/{_esc(name)}"
        if not in_reader and any(sub.schema is False for _, sub in reader_subs):
            return [
                f"PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL at {where}: writer property {name!r} "
                "is not allowed by the reader's closed content model"
            ]
        nested: list[str] = []
        for suffix, sub in reader_subs:
            nested.extend(self.compare(sub, writer_subs, path + suffix, descend=True))
        if not nested:
            return []
        if in_reader and in_writer:
            return nested
        if in_reader:
            if writer_subs:
                rule = "PROPERTY_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL"
                text = "the writer's additional/pattern properties schema allows values it rejects"
            else:
                rule = "PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL"
                text = "the writer's open content model allows any value there"
            return [
                f"{rule} at {where}: reader property {name!r} is not in the writer and {text}",
                *nested,
            ]
        return [
            f"PROPERTY_REMOVED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL at {where}: writer "
            f"property {name!r} is not accepted by the reader's additional/pattern properties",
            *nested,
        ]

    def _check_additional(self, reader: _Node, alt: _Alt, path: str) -> list[str]:
        """Undeclared properties the writer allows against the reader's content model."""
        schema = reader.schema
        key = _additional_key(schema)
        reader_extra = reader.child(key) if key else None
        if reader_extra is not None and reader_extra.schema is True:
            reader_extra = None
        reader_patterns = schema.get("patternProperties")
        reader_patterns = reader_patterns if isinstance(reader_patterns, dict) else {}
        if reader_extra is None and not reader_patterns:
            return []
        entries: list[tuple[str | None, list[_Node]]] = []
        undeclared: list[_Node] = []
        open_region = True
        for node in alt.nodes:
            writer_key = _additional_key(node.schema)
            patterns = node.schema.get("patternProperties")
            patterns = patterns if isinstance(patterns, dict) else {}
            if writer_key and node.schema[writer_key] is False:
                if not patterns:
                    return []  # closed writer: no undeclared properties at all
                open_region = False
            elif writer_key:
                undeclared.append(node.child(writer_key))
            entries.extend((p, [node.child("patternProperties", p)]) for p in patterns)
        writer_patterns = {p for p, _ in entries}
        if open_region:
            entries.insert(0, (None, undeclared))
        out: list[str] = []
        for pattern, subs in entries:
            targets: list[tuple[str, _Node]] = []
            for reader_pattern in reader_patterns:
                if pattern is None:
                    applies = reader_pattern not in writer_patterns
                else:
                    applies = reader_pattern == pattern or not _disjoint_patterns(
                        reader_pattern, pattern
                    )
                if applies:
                    suffix = f"/patternProperties/{_esc(reader_pattern)}"
                    targets.append((suffix, reader.child("patternProperties", reader_pattern)))
            if reader_extra is not None and pattern not in reader_patterns:
                targets.append((f"/{key}", reader_extra))
            region = (
                "undeclared properties" if pattern is None else f"properties matching {pattern!r}"
            )
            for suffix, target in targets:
                nested = self.compare(target, subs, path + suffix, descend=True)
                if not nested:
                    continue
                if target.schema is False:
                    out.append(
                        f"ADDITIONAL_PROPERTIES_NARROWED at {path}{suffix}: the reader forbids "
                        f"{region} that the writer allows"
                    )
                else:
                    out.append(
                        f"ADDITIONAL_PROPERTIES_NARROWED at {path}{suffix}: the reader's schema "
                        f"rejects {region} that the writer allows"
                    )
                    out.extend(nested)
        return out

    def _check_dependencies(
        self, reader: _Node, alt: _Alt, writer_required: set[str], path: str
    ) -> list[str]:
        out: list[str] = []
        for keyword in ("dependentRequired", "dependentSchemas", "dependencies"):
            mapping = reader.schema.get(keyword)
            if not isinstance(mapping, dict):
                continue
            for name, dependency in mapping.items():
                if any(sub.schema is False for sub in self._writer_prop(alt, name)):
                    continue  # the writer never has the trigger property
                where = f"{path}/{keyword}/{_esc(name)}"
                if isinstance(dependency, list):
                    writer_deps = self._writer_dependency(alt, name, arrays=True)
                    listed = {p for _, dep in writer_deps for p in dep.schema}
                    missing = [
                        p for p in dependency if p not in writer_required and p not in listed
                    ]
                    if missing:
                        rule = (
                            "DEPENDENCY_ARRAY_EXTENDED" if writer_deps else "DEPENDENCY_ARRAY_ADDED"
                        )
                        out.append(
                            f"{rule} at {where}: with {name!r} present the reader also requires "
                            f"{', '.join(map(repr, missing))}, the writer does not"
                        )
                elif isinstance(dependency, (dict, bool)):
                    writer_deps = self._writer_dependency(alt, name, arrays=False)
                    conj = [*alt.nodes, *(dep for _, dep in writer_deps)]
                    nested = self.compare(reader.child(keyword, name), conj, where)
                    if nested:
                        out.append(
                            f"DEPENDENCY_SCHEMA_CHANGED at {where}: with {name!r} present the "
                            "reader's dependent schema rejects writer documents"
                        )
                        out.extend(nested)
        return out

    def _writer_dependency(self, alt: _Alt, name: str, arrays: bool) -> list[tuple[str, _Node]]:
        found = []
        keywords = (
            ("dependentRequired", "dependencies")
            if arrays
            else ("dependentSchemas", "dependencies")
        )
        for node in alt.nodes:
            for keyword in keywords:
                mapping = node.schema.get(keyword)
                if not isinstance(mapping, dict) or name not in mapping:
                    continue
                if isinstance(mapping[name], list) == arrays:
                    found.append((keyword, node.child(keyword, name)))
        return found

    def _check_array(self, reader: _Node, alt: _Alt, path: str) -> list[str]:
        schema = reader.schema
        out: list[str] = []
        reader_prefix, reader_rest = _item_model(reader)
        models = [_item_model(n) for n in alt.nodes]
        closed_lengths = [
            len(prefix) for prefix, rest in models if rest is not None and rest[1].schema is False
        ]
        maxima = [v for n in alt.nodes if (v := _as_int(n.schema.get("maxItems"))) is not None]
        writer_max = min(maxima + closed_lengths) if maxima or closed_lengths else None
        positions = max([len(reader_prefix), *(len(prefix) for prefix, _ in models)])
        reachable = True
        for index in range(positions):
            if writer_max is not None and index >= writer_max:
                reachable = False
                break
            writer_subs = [
                (prefix[index] if index < len(prefix) else rest)[1]
                for prefix, rest in models
                if index < len(prefix) or rest is not None
            ]
            if any(sub.schema is False for sub in writer_subs):
                reachable = False
                break
            entry = reader_prefix[index] if index < len(reader_prefix) else reader_rest
            if entry is None:
                continue
            suffix, target = entry
            nested = self.compare(target, writer_subs, path + suffix, descend=True)
            if not nested:
                continue
            writer_positional = any(index < len(prefix) for prefix, _ in models)
            where = f"{path}{suffix}"
            if index < len(reader_prefix) and not writer_positional:
                if writer_subs:
                    rule = "ITEM_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL"
                else:
                    rule = "ITEM_ADDED_TO_OPEN_CONTENT_MODEL"
                out.append(
                    f"{rule} at {where}: reader item {index} rejects what the writer allows there"
                )
                out.extend(nested)
            elif index >= len(reader_prefix) and writer_positional:
                if target.schema is False:
                    out.append(
                        f"ITEM_REMOVED_FROM_CLOSED_CONTENT_MODEL at {where}: the writer has item "
                        f"{index} but the reader allows no item there"
                    )
                else:
                    out.append(
                        f"ITEM_REMOVED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL at {where}: the "
                        f"reader's schema for item {index} rejects the writer's"
                    )
                    out.extend(nested)
            else:
                out.extend(nested)
        if reachable and reader_rest is not None and (writer_max is None or positions < writer_max):
            writer_subs = [rest[1] for _, rest in models if rest is not None]
            if not any(sub.schema is False for sub in writer_subs):
                suffix, target = reader_rest
                nested = self.compare(target, writer_subs, path + suffix, descend=True)
                if nested and target.schema is False:
                    out.append(
                        f"ADDITIONAL_ITEMS_REMOVED at {path}{suffix}: the reader allows at most "
                        f"{positions} item(s), the writer allows more"
                    )
                else:
                    out.extend(nested)
        out += self._limit(schema, "maxItems", alt, None, closed_lengths, path)
        out += self._limit(schema, "minItems", alt, None, [], path)
        at_most_one = writer_max is not None and writer_max <= 1
        writer_unique = any(n.schema.get("uniqueItems") is True for n in alt.nodes)
        if schema.get("uniqueItems") is True and not at_most_one and not writer_unique:
            out.append(
                f"UNIQUE_ITEMS_ADDED at {path}: reader requires unique items, the writer does not"
            )
        out.extend(self._check_contains(reader, alt, writer_max, path))
        unevaluated = schema.get("unevaluatedItems")
        if unevaluated not in (None, True) and (not _plain(schema) or "contains" in schema):
            out.append(
                f"UNSUPPORTED_KEYWORD at {path}/unevaluatedItems: cannot be checked next to "
                "applicators"
            )
        return out

    def _check_contains(
        self, reader: _Node, alt: _Alt, writer_max: int | None, path: str
    ) -> list[str]:
        schema = reader.schema
        if "contains" not in schema:
            return []
        out: list[str] = []
        minimum = _as_int(schema.get("minContains"))
        minimum = 1 if minimum is None else minimum
        if minimum > 0:
            found = False
            for node in alt.nodes:
                if "contains" not in node.schema:
                    continue
                writer_min = _as_int(node.schema.get("minContains"))
                writer_min = 1 if writer_min is None else writer_min
                if writer_min < minimum:
                    continue
                nested = self.compare(
                    reader.child("contains"),
                    [node.child("contains")],
                    f"{path}/contains",
                    descend=True,
                )
                if not nested:
                    found = True
                    break
            if not found:
                has = any("contains" in n.schema for n in alt.nodes)
                rule = "CONTAINS_CHANGED" if has else "CONTAINS_ADDED"
                out.append(
                    f"{rule} at {path}/contains: the writer does not guarantee {minimum} item(s) "
                    "the reader's contains schema accepts"
                )
        maximum = _as_int(schema.get("maxContains"))
        if maximum is not None and not (writer_max is not None and writer_max <= maximum):
            # items matching the reader's contains must all match the writer's (swapped check)
            ok = any(
                "contains" in n.schema
                and (v := _as_int(n.schema.get("maxContains"))) is not None
                and v <= maximum
                and not self._swapped().compare(
                    n.child("contains"), [reader.child("contains")], "#", descend=True
                )
                for n in alt.nodes
            )
            if not ok:
                out.append(
                    f"MAX_CONTAINS_ADDED at {path}/maxContains: the writer may have more than "
                    f"{maximum} matching item(s)"
                )
        return out
