#!/usr/bin/env python3
"""Generate src/strom/protocol/messages/ from Kafka's JSON message specs (../shared/kafka-protocol).

Each API gets one module with its request and response classes; every version in validVersions
gets straight-line encode/decode functions (identical bodies are shared between versions).
Only names, types, version ranges and defaults are taken from the specs, never their prose.
tools/protocol_overlays.json adds the few versions newer than the specs that clients already
send (written from the KIPs), so those are generated like the rest.

    python tools/gen_protocol.py            # write the modules
    python tools/gen_protocol.py --check    # fail if the committed modules differ
"""

from __future__ import annotations

import argparse
import json
import keyword
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT.parent / "shared" / "kafka-protocol"
OUT = ROOT / "src" / "strom" / "protocol" / "messages"
OPEN = 32767  # "N+" versions run to here

# type -> (struct code, size) for fixed-width primitives
FIXED = {
    "int8": ("b", 1),
    "int16": ("h", 2),
    "uint16": ("H", 2),
    "int32": ("i", 4),
    "int64": ("q", 8),
    "float64": ("d", 8),
    "bool": ("?", 1),
    "uuid": ("16s", 16),
}
PY_TYPES = {
    "int8": "int",
    "int16": "int",
    "uint16": "int",
    "int32": "int",
    "int64": "int",
    "float64": "float",
    "bool": "bool",
    "uuid": "bytes",
    "string": "str",
    "bytes": "bytes",
    "records": "bytes | memoryview",
}


# --- reading the specs -------------------------------------------------------------------------


def strip_comments(text: str) -> str:
    """Remove // comments (outside strings) so the spec parses as JSON."""
    out = []
    i, n, in_str = 0, len(text), False
    while i < n:
        c = text[i]
        if in_str:
            out.append(c)
            if c == "\\":
                out.append(text[i + 1])
                i += 2
                continue
            if c == '"':
                in_str = False
            i += 1
        elif c == '"':
            in_str = True
            out.append(c)
            i += 1
        elif text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        else:
            out.append(c)
            i += 1
    return "".join(out)


def parse_versions(spec: str | None) -> tuple[int, int] | None:
    """'3+', '0-7', '5' or 'none' -> inclusive (low, high); None when empty."""
    if spec is None or spec == "none":
        return None
    spec = str(spec)
    if spec.endswith("+"):
        return int(spec[:-1]), OPEN
    if "-" in spec:
        lo, hi = spec.split("-")
        return int(lo), int(hi)
    return int(spec), int(spec)


def af_name(code: str) -> str:
    """The generated constant holding ARRAY_FORMATS of one struct code."""
    return "_AF_" + {"?": "bool", "H": "u16"}.get(code, code)


def within(v: int, rng: tuple[int, int] | None) -> bool:
    return rng is not None and rng[0] <= v <= rng[1]


def snake(name: str) -> str:
    s = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower()
    return s + "_" if keyword.iskeyword(s) else s


@dataclass
class Field:
    name: str  # python attribute name
    type: str  # spec type, e.g. "int32", "[]Topic", "Topic"
    versions: tuple[int, int] | None
    nullable: tuple[int, int] | None
    tagged: tuple[int, int] | None
    tag: int
    default: object
    flexible_override: tuple[int, int] | None | str  # "inherit" unless the field says
    zero_copy: bool

    @property
    def is_array(self) -> bool:
        return self.type.startswith("[]")

    @property
    def elem(self) -> str:
        return self.type[2:] if self.is_array else self.type

    @property
    def is_struct(self) -> bool:
        return self.elem[0].isupper()


@dataclass
class Struct:
    name: str  # spec struct name
    pyname: str  # module-level class name
    qualname: str  # what users see: Message.Struct
    fields: list[Field] = field(default_factory=list)


@dataclass
class Message:
    name: str
    kind: str  # request, response, header, data
    api_key: int | None
    versions: tuple[int, int]
    flexible: tuple[int, int] | None
    top: Struct
    structs: dict[str, Struct]  # by spec name, in definition order (dependencies first)


OVERLAYS = Path(__file__).resolve().parent / "protocol_overlays.json"


def apply_overlay(spec: dict, overlay: dict) -> None:
    """Newer versions than the shared specs hold: a new version range, fields inserted."""
    spec["validVersions"] = overlay.get("validVersions", spec["validVersions"])
    for after, added in overlay.get("insertAfter", {}).items():
        names = [f["name"] for f in spec["fields"]]
        at = names.index(after) + 1
        spec["fields"][at:at] = added


def load_message(path: Path) -> Message:
    spec = json.loads(strip_comments(path.read_text()))
    name = spec["name"]
    overlay = json.loads(OVERLAYS.read_text()).get(name)
    if overlay is not None:
        apply_overlay(spec, overlay)
    structs: dict[str, Struct] = {}
    order: list[str] = []

    def make_fields(raw_fields: list[dict]) -> list[Field]:
        out = []
        for f in raw_fields:
            ftype = f["type"]
            elem = ftype[2:] if ftype.startswith("[]") else ftype
            if "fields" in f:
                sub = Struct(elem, f"_{name}_{elem}", f"{name}.{elem}")
                structs.setdefault(elem, sub)
                structs[elem].fields = make_fields(f["fields"])
                order.append(elem)
            fo = f.get("flexibleVersions", "inherit")
            out.append(
                Field(
                    name=snake(f["name"]),
                    type=ftype,
                    versions=parse_versions(f["versions"]),
                    nullable=parse_versions(f.get("nullableVersions")),
                    tagged=parse_versions(f.get("taggedVersions")),
                    tag=f.get("tag", -1),
                    default=f.get("default"),
                    flexible_override=fo if fo == "inherit" else parse_versions(fo),
                    zero_copy=bool(f.get("zeroCopy")),
                )
            )
        return out

    for cs in spec.get("commonStructs", []):
        st = Struct(cs["name"], f"_{name}_{cs['name']}", f"{name}.{cs['name']}")
        structs[cs["name"]] = st
        st.fields = make_fields(cs["fields"])
        order.append(cs["name"])
    top = Struct(name, name, name)
    top.fields = make_fields(spec["fields"])
    versions = parse_versions(spec["validVersions"])
    assert versions is not None
    ordered = {k: structs[k] for k in _dependency_order(order, structs)}
    return Message(
        name=name,
        kind=spec["type"],
        api_key=spec.get("apiKey"),
        versions=versions,
        flexible=parse_versions(spec.get("flexibleVersions")),
        top=top,
        structs=ordered,
    )


def _dependency_order(names: list[str], structs: dict[str, Struct]) -> list[str]:
    done: list[str] = []

    def visit(n: str) -> None:
        if n in done:
            return
        for f in structs[n].fields:
            if f.is_struct and f.elem in structs:
                visit(f.elem)
        done.append(n)

    for n in names:
        visit(n)
    return done


# --- generating --------------------------------------------------------------------------------


class ModuleWriter:
    """Builds one module's source: shared Structs, classes, and version-deduplicated functions."""

    def __init__(self, messages: list[Message]) -> None:
        self.messages = messages
        self.structs_fmt: dict[str, str] = {}  # struct format -> constant name
        self.funcs: dict[str, str] = {}  # function body (with NAME placeholder) -> function name
        self.func_src: list[str] = []
        self.counter = 0

    # helpers for one message
    def struct_of(self, msg: Message, name: str) -> Struct:
        return msg.structs[name]

    def fmt_const(self, fmt: str) -> str:
        if fmt not in self.structs_fmt:
            self.structs_fmt[fmt] = f"_S{len(self.structs_fmt)}"
        return self.structs_fmt[fmt]

    def flexible(self, msg: Message, v: int) -> bool:
        return within(v, msg.flexible)

    def compact(self, msg: Message, f: Field, v: int) -> bool:
        if f.flexible_override != "inherit":
            return within(v, f.flexible_override)  # type: ignore[arg-type]
        return self.flexible(msg, v)

    def min_size(self, msg: Message, st: Struct, v: int) -> int:
        flex = self.flexible(msg, v)
        size = 1 if flex else 0
        for f in st.fields:
            if not within(v, f.versions) or (flex and within(v, f.tagged)):
                continue
            compact = self.compact(msg, f, v)
            if f.is_array or f.type in ("string", "bytes", "records"):
                size += 1 if compact else (2 if f.type == "string" else 4)
            elif f.type in FIXED:
                size += FIXED[f.type][1]
            elif within(v, f.nullable):
                size += 1
            else:
                size += self.min_size(msg, msg.structs[f.elem], v)
        return size

    def func(self, prefix: str, body: list[str]) -> str:
        """Register a function body (first line is the signature tail); reuse identical ones."""
        key = prefix + "\n".join(body)
        if key in self.funcs:
            return self.funcs[key]
        fname = f"_{prefix}{self.counter}"
        self.counter += 1
        self.funcs[key] = fname
        self.func_src.append(f"def {fname}{body[0]}\n" + "\n".join(body[1:]) + "\n")
        return fname

    # decoding -----------------------------------------------------------------------------
    def decoder(self, msg: Message, st: Struct, v: int) -> str:
        flex = self.flexible(msg, v)
        lines = ["(mv, pos):", f"    o = new_object({st.pyname})"]
        regular = [
            f for f in st.fields if within(v, f.versions) and not (flex and within(v, f.tagged))
        ]
        tagged = [f for f in st.fields if within(v, f.versions) and flex and within(v, f.tagged)]
        group: list[Field] = []

        def flush() -> None:
            if not group:
                return
            fmt = ">" + "".join(FIXED[g.type][0] for g in group)
            size = sum(FIXED[g.type][1] for g in group)
            names = ", ".join(f"o.{g.name}" for g in group)
            lines.append(f"    ({names},) = {self.fmt_const(fmt)}.unpack_from(mv, pos)")
            lines.append(f"    pos += {size}")
            group.clear()

        for f in regular:
            if f.type in FIXED:
                group.append(f)
                continue
            flush()
            lines.extend(self.decode_field(msg, f, v, f"o.{f.name}", "    "))
        flush()
        if flex:
            if tagged:
                for f in tagged:
                    lines.append(f"    o.{f.name} = {self.default_expr(msg, f, v)}")
                lines.append("    unknown = None")
                lines.append("    n_tags, pos = read_uvarint(mv, pos)")
                lines.append("    for _ in range(n_tags):")
                lines.append("        tag, pos, end = read_tag_header(mv, pos)")
                kw = "if"
                for f in tagged:
                    lines.append(f"        {kw} tag == {f.tag}:")
                    if f.type in FIXED:
                        code, size = FIXED[f.type]
                        lines.append(
                            f"            (o.{f.name},) = {self.fmt_const('>' + code)}"
                            ".unpack_from(mv, pos)"
                        )
                        lines.append(f"            pos += {size}")
                    else:
                        lines.extend(self.decode_field(msg, f, v, f"o.{f.name}", "            "))
                    lines.append(f"            check_tag_end(pos, end, {f.tag})")
                    kw = "elif"
                lines.append("        else:")
                lines.append("            if unknown is None:")
                lines.append("                unknown = []")
                lines.append("            unknown.append((tag, bytes(mv[pos:end])))")
                lines.append("            pos = end")
            else:
                lines.append("    if mv[pos] == 0:")
                lines.append("        pos += 1")
                lines.append("        unknown = None")
                lines.append("    else:")
                lines.append("        unknown, pos = skip_tags(mv, pos)")
        for f in st.fields:
            if not within(v, f.versions):
                lines.append(f"    o.{f.name} = {self.default_expr(msg, f, v)}")
        lines.append(f"    o.unknown_tags = {'unknown' if flex else 'None'}")
        lines.append("    return o, pos")
        return self.func("d", lines)

    def decode_field(self, msg: Message, f: Field, v: int, target: str, ind: str) -> list[str]:
        compact = self.compact(msg, f, v)
        nullable = within(v, f.nullable)
        if not f.is_array:
            t = f.type
            if t in FIXED:
                code, size = FIXED[t]
                c = self.fmt_const(">" + code)
                return [f"{ind}({target},) = {c}.unpack_from(mv, pos)", f"{ind}pos += {size}"]
            if t == "string":
                fn = {
                    (False, False): "read_string",
                    (False, True): "read_nullable_string",
                    (True, False): "read_compact_string",
                    (True, True): "read_compact_nullable_string",
                }[(compact, nullable)]
                return [f"{ind}{target}, pos = {fn}(mv, pos)"]
            if t == "bytes" or t == "records":
                if t == "records" or f.zero_copy:
                    fn = "read_compact_records" if compact else "read_records"
                    out = [f"{ind}{target}, pos = {fn}(mv, pos)"]
                    if not nullable:
                        out.append(f"{ind}if {target} is None:")
                        out.append(f"{ind}    raise ProtocolError('null {f.name}')")
                    return out
                fn = {
                    (False, False): "read_bytes",
                    (False, True): "read_nullable_bytes",
                    (True, False): "read_compact_bytes",
                    (True, True): "read_compact_nullable_bytes",
                }[(compact, nullable)]
                return [f"{ind}{target}, pos = {fn}(mv, pos)"]
            # a single struct
            st = msg.structs[t]
            dec = self.decoder(msg, st, v)
            if nullable:
                c = self.fmt_const(">b")
                return [
                    f"{ind}(present,) = {c}.unpack_from(mv, pos)",
                    f"{ind}pos += 1",
                    f"{ind}if present < 0:",
                    f"{ind}    {target} = None",
                    f"{ind}else:",
                    f"{ind}    {target}, pos = {dec}(mv, pos)",
                ]
            return [f"{ind}{target}, pos = {dec}(mv, pos)"]
        # arrays
        elem = f.elem
        if elem in FIXED:
            min_size = FIXED[elem][1]
        elif elem in ("string", "bytes"):
            min_size = 1 if compact else (2 if elem == "string" else 4)
        else:
            min_size = max(1, self.min_size(msg, msg.structs[elem], v))
        if elem in FIXED and elem != "uuid":
            code, size = FIXED[elem]
            af = af_name(code)
            null_check = (
                []
                if nullable
                else [f"if {target} is None:", f"    raise ProtocolError('null {f.name}')"]
            )
            if not compact:
                out = [f"{target}, pos = read_array(mv, pos, {af}, {size})", *null_check]
                return [ind + line for line in out]
            # the common case inline: a one-byte count of a short array (struct checks bounds)
            out = [
                "n = mv[pos] - 1",
                "if n == 0:",
                f"    {target} = []",
                "    pos += 1",
                "elif 0 < n < 64:",
                f"    {target} = list(unpack_from({af}[n], mv, pos + 1))",
                f"    pos += 1 + {size} * n",
                "else:",
                f"    {target}, pos = read_compact_array(mv, pos, {af}, {size})",
                *("    " + line for line in null_check),
            ]
            return [ind + line for line in out]
        if compact:
            out = [
                f"{ind}n = mv[pos]",
                f"{ind}if n < 128:",
                f"{ind}    pos += 1",
                f"{ind}else:",
                f"{ind}    n, pos = read_uvarint(mv, pos)",
                f"{ind}n -= 1",
                f"{ind}if n > 0 and n * {min_size} > len(mv) - pos:",
                f"{ind}    raise_count(n, len(mv) - pos)",
            ]
        else:
            out = [f"{ind}n, pos = read_count(mv, pos, {min_size})"]
        null_line = (
            f"{ind}    {target} = None"
            if nullable
            else f"{ind}    raise ProtocolError('null {f.name}')"
        )
        out += [f"{ind}if n < 0:", null_line, f"{ind}else:"]
        i2 = ind + "    "
        if elem == "uuid":
            out.append(
                f"{i2}{target} = [bytes(mv[p:p + 16]) for p in range(pos, pos + 16 * n, 16)]"
            )
            out.append(f"{i2}pos += 16 * n")
        elif elem == "string":
            out.append(f"{i2}{target}, pos = read_string_array(mv, pos, n, {compact})")
        else:
            dec = self.decoder(msg, msg.structs[elem], v)
            out.append(f"{i2}{target} = []")
            out.append(f"{i2}append = {target}.append")
            out.append(f"{i2}for _ in range(n):")
            out.append(f"{i2}    item, pos = {dec}(mv, pos)")
            out.append(f"{i2}    append(item)")
        return out

    # encoding -----------------------------------------------------------------------------
    def encoder(self, msg: Message, st: Struct, v: int) -> str:
        flex = self.flexible(msg, v)
        lines = ["(o, b, sp):"]
        regular = [
            f for f in st.fields if within(v, f.versions) and not (flex and within(v, f.tagged))
        ]
        tagged = [f for f in st.fields if within(v, f.versions) and flex and within(v, f.tagged)]
        group: list[Field] = []

        def flush() -> None:
            if not group:
                return
            fmt = ">" + "".join(FIXED[g.type][0] for g in group)
            vals = ", ".join(f"o.{g.name}" for g in group)
            lines.append(f"    b += {self.fmt_const(fmt)}.pack({vals})")
            group.clear()

        for f in regular:
            if f.type in FIXED:
                group.append(f)
                continue
            flush()
            lines.extend(self.encode_field(msg, f, v, f"o.{f.name}", "b", "sp", "    "))
        flush()
        if flex:
            if tagged:
                lines.append("    tags = list(o.unknown_tags) if o.unknown_tags else []")
                for f in tagged:
                    lines.append(f"    if not ({self.is_default(msg, f, f'o.{f.name}', v)}):")
                    lines.append("        t = bytearray()")
                    if f.type in FIXED:
                        c = self.fmt_const(">" + FIXED[f.type][0])
                        lines.append(f"        t += {c}.pack(o.{f.name})")
                    else:
                        lines.extend(
                            self.encode_field(msg, f, v, f"o.{f.name}", "t", "None", "        ")
                        )
                    lines.append(f"        tags.append(({f.tag}, t))")
                lines.append("    if tags:")
                lines.append("        write_tags(b, tags)")
                lines.append("    else:")
                lines.append("        b.append(0)")
            else:
                lines.append("    if o.unknown_tags:")
                lines.append("        write_tags(b, list(o.unknown_tags))")
                lines.append("    else:")
                lines.append("        b.append(0)")
        if len(lines) == 1:
            lines.append("    pass")
        return self.func("e", lines)

    def encode_field(
        self, msg: Message, f: Field, v: int, val: str, b: str, sp: str, ind: str
    ) -> list[str]:
        compact = self.compact(msg, f, v)
        nullable = within(v, f.nullable)
        if not f.is_array:
            t = f.type
            if t in FIXED:
                return [f"{ind}{b} += {self.fmt_const('>' + FIXED[t][0])}.pack({val})"]
            if t == "string":
                fn = {
                    (False, False): "write_string",
                    (False, True): "write_nullable_string",
                    (True, False): "write_compact_string",
                    (True, True): "write_compact_nullable_string",
                }[(compact, nullable)]
                return [f"{ind}{fn}({b}, {val})"]
            if t == "records" or (t == "bytes" and f.zero_copy):
                fn = "write_compact_records" if compact else "write_records"
                return [f"{ind}{fn}({b}, {sp}, {val})"]
            if t == "bytes":
                fn = "write_compact_bytes" if compact else "write_bytes"
                return [f"{ind}{fn}({b}, {val})"]
            enc = self.encoder(msg, msg.structs[t], v)
            if nullable:
                return [
                    f"{ind}if {val} is None:",
                    f"{ind}    {b}.append(0xFF)",
                    f"{ind}else:",
                    f"{ind}    {b}.append(1)",
                    f"{ind}    {enc}({val}, {b}, {sp})",
                ]
            return [f"{ind}{enc}({val}, {b}, {sp})"]
        elem = f.elem
        if compact and not nullable:
            out = [
                f"{ind}n = len({val}) + 1",
                f"{ind}{b} += SMALL_UVARINT[n] if n < 128 else uvarint(n)",
            ]
        else:
            count_fn = "write_compact_count" if compact else "write_count"
            out = [f"{ind}{count_fn}({b}, {val})"]
        if elem == "uuid":
            body = [f"{ind}    {b} += b''.join({val})"]
        elif elem in FIXED:
            code = FIXED[elem][0]
            body = [
                f"{ind}    n = len({val})",
                f"{ind}    {b} += pack({af_name(code)}[n] if n < 64 else f'>{{n}}{code}', *{val})",
            ]
        elif elem == "string":
            fn = "write_compact_string" if compact else "write_string"
            body = [f"{ind}    for item in {val}:", f"{ind}        {fn}({b}, item)"]
        else:
            enc = self.encoder(msg, msg.structs[elem], v)
            body = [f"{ind}    for item in {val}:", f"{ind}        {enc}(item, {b}, {sp})"]
        out.append(f"{ind}if {val}:")
        out.extend(body)
        return out

    # defaults and classes -----------------------------------------------------------------
    def default_value(self, msg: Message, f: Field) -> str:
        """The default as a Python expression (a fresh object for containers)."""
        d = f.default
        if f.is_array:
            return "None" if d == "null" else "[]"
        t = f.type
        if t in ("int8", "int16", "uint16", "int32", "int64"):
            return str(int(d, 0) if isinstance(d, str) else int(d or 0))
        if t == "float64":
            return repr(float(d or 0))
        if t == "bool":
            return "True" if d in (True, "true") else "False"
        if t == "uuid":
            return "ZERO_UUID"
        if t == "string":
            return "None" if d == "null" else repr(d or "")
        if t in ("bytes", "records"):
            return "None" if d == "null" or t == "records" else "b''"
        if d == "null" or f.nullable is not None:
            return "None"
        return f"{msg.structs[t].pyname}()"

    def is_default(self, msg: Message, f: Field, val: str, v: int) -> str:
        """An expression true when val holds f's default (no objects built to compare)."""
        d = self.default_value(msg, f)
        if d == "None":
            return f"{val} is None"
        if d == "[]":
            return f"not {val}"
        if not d.endswith("()") or f.is_array:
            return f"{val} == {d}"
        st = msg.structs[f.type]
        parts = [f"not {val}.unknown_tags"]
        for sf in st.fields:
            parts.append(f"({self.is_default(msg, sf, f'{val}.{sf.name}', v)})")
        return " and ".join(parts)

    def default_expr(self, msg: Message, f: Field, v: int) -> str:
        return self.default_value(msg, f)

    def class_source(self, msg: Message, st: Struct, top: bool) -> str:
        lines = ["@dataclass(slots=True)", f"class {st.pyname}:"]
        if top and msg.api_key is not None and msg.kind in ("request", "response"):
            lines.append(f"    API_KEY: ClassVar[int] = {msg.api_key}")
        if top:
            lo, hi = msg.versions
            flo = msg.flexible[0] if msg.flexible else OPEN
            lines.append(f"    MIN_VERSION: ClassVar[int] = {lo}")
            lines.append(f"    MAX_VERSION: ClassVar[int] = {hi}")
            lines.append(f"    FLEXIBLE_MIN: ClassVar[int] = {flo}")
        lines.append("    FIELDS: ClassVar[tuple[FieldSpec, ...]]")
        for f in st.fields:
            if f.is_struct:
                inner = msg.structs[f.elem].qualname
                ann = f"list[{inner}]" if f.is_array else inner
            elif f.is_array:
                ann = f"list[{PY_TYPES[f.elem]}]"
            else:
                ann = PY_TYPES[f.type]
            default = self.default_value(msg, f)
            if default == "None":
                ann += " | None"
                lines.append(f"    {f.name}: {ann} = None")
            elif default == "[]":
                lines.append(f"    {f.name}: {ann} = field(default_factory=list)")
            elif default.endswith("()"):
                lines.append(f"    {f.name}: {ann} = field(default_factory={default[:-2]})")
            else:
                lines.append(f"    {f.name}: {ann} = {default}")
        lines.append(
            "    unknown_tags: list[tuple[int, bytes]] | None = field(default=None, repr=False)"
        )
        if top:
            lines += [
                "",
                "    @classmethod",
                f"    def decode(cls, data: bytes | bytearray | memoryview, version: int) -> {st.pyname}:",
                '        """Decode one message of this version; raise ProtocolError if malformed."""',
                f"        return decode_with(_{msg.name}_DEC, data, version)",
                "",
                "    def encode(self, version: int) -> bytes:",
                '        """Encode as one bytes object (record data copied in)."""',
                "        b = bytearray()",
                "        self.encode_into(version, b, None)",
                "        return bytes(b)",
                "",
                "    def encode_buffers(self, version: int) -> list[bytes | bytearray | memoryview]:",
                '        """Encode as buffers; large record data is passed through, not copied."""',
                "        b = bytearray()",
                "        sp: list = []",
                "        self.encode_into(version, b, sp)",
                "        return splice(b, sp)",
                "",
                "    def encode_into(self, version: int, b: bytearray, sp: list) -> None:",
                '        """Append to b; record data of SPLICE_MIN bytes or more goes to sp if given."""',
                f"        encode_with(_{msg.name}_ENC, self, version, b, sp)",
            ]
        return "\n".join(lines) + "\n"

    def field_specs(self, msg: Message, st: Struct) -> str:
        items = []
        for f in st.fields:
            lo, hi = f.versions or (OPEN, -1)
            nlo, nhi = f.nullable or (OPEN, -1)
            tlo, thi = f.tagged or (OPEN, -1)
            sref = msg.structs[f.elem].pyname if f.is_struct else "None"
            never = f.flexible_override is None
            items.append(
                f"    FieldSpec({f.name!r}, {f.type!r}, {lo}, {hi}, {nlo}, {nhi}, {f.tag}, "
                f"{tlo}, {thi}, {sref}, {never}),"
            )
        return f"{st.pyname}.FIELDS = (\n" + "\n".join(items) + "\n)\n"

    def render(self, doc: str) -> str:
        classes = []
        tails = []
        for msg in self.messages:
            for st in msg.structs.values():
                classes.append(self.class_source(msg, st, False))
                tails.append(self.field_specs(msg, st))
                short = st.qualname.split(".", 1)[1]
                tails.append(f"{msg.top.pyname}.{short} = {st.pyname}")
                tails.append(f"{st.pyname}.__qualname__ = {st.qualname!r}\n")
            classes.append(self.class_source(msg, msg.top, True))
            tails.append(self.field_specs(msg, msg.top))
            lo, hi = msg.versions
            decs = [self.decoder(msg, msg.top, v) for v in range(lo, hi + 1)]
            encs = [self.encoder(msg, msg.top, v) for v in range(lo, hi + 1)]
            pad = ["None"] * lo
            tails.append(f"_{msg.name}_DEC = ({', '.join(pad + decs)},)")
            tails.append(f"_{msg.name}_ENC = ({', '.join(pad + encs)},)\n")
        consts = [f"{name} = struct.Struct({fmt!r})" for fmt, name in self.structs_fmt.items()]
        head = [
            f'"""{doc}"""',
            "",
            "# Generated by tools/gen_protocol.py from Kafka's message specs. Do not edit.",
            "# ruff: noqa",
            "",
            "from __future__ import annotations",
            "",
            "import struct",
            "from dataclasses import dataclass, field",
            "from typing import ClassVar",
            "",
            "from strom.protocol.errors import ProtocolError",
            "from strom.protocol.primitives import *",
            "from strom.protocol.primitives import decode_with, encode_with",
            "from struct import pack, unpack_from",
            *(f"{af_name(c)} = ARRAY_FORMATS[{c!r}]" for c in "bhHiqd?"),
            "",
            *consts,
            "",
        ]
        body = "\n\n".join(classes)
        funcs = "\n\n".join(self.func_src)
        tail = "\n".join(tails)
        return "\n".join(head) + "\n" + body + "\n\n" + funcs + "\n\n" + tail


# --- modules -----------------------------------------------------------------------------------


def module_name(api: str) -> str:
    return snake(api)


def plan_modules(specs: Path) -> dict[str, tuple[str, list[Message]]]:
    """Module name -> (docstring, messages it holds)."""
    modules: dict[str, tuple[str, list[Message]]] = {}
    by_api: dict[str, list[Message]] = {}
    data: list[Message] = []
    headers: list[Message] = []
    for path in sorted((specs / "clients").glob("*.json")):
        msg = load_message(path)
        if msg.kind in ("request", "response"):
            base = re.sub(r"(Request|Response)$", "", msg.name)
            by_api.setdefault(base, []).append(msg)
        elif msg.kind == "header":
            headers.append(msg)
        else:
            data.append(msg)
    for base, msgs in sorted(by_api.items()):
        msgs.sort(key=lambda m: m.kind)  # request before response
        key = msgs[0].api_key
        modules[module_name(base)] = (f"The {base} API (key {key}): request and response.", msgs)
    modules["headers"] = ("Request and response headers (v0-v2).", headers)
    consumer = [m for m in data if m.name.startswith("ConsumerProtocol")]
    other = [m for m in data if not m.name.startswith("ConsumerProtocol")]
    modules["consumer_protocol"] = (
        "The consumer protocol's subscription and assignment.",
        consumer,
    )
    modules["client_data"] = ("Other data schemas of the clients folder (raft, principal).", other)
    for folder, doc in (
        ("group-coordinator", "Key and value records of __consumer_offsets."),
        ("transaction-coordinator", "Key and value records of __transaction_state."),
    ):
        msgs = [load_message(p) for p in sorted((specs / folder).glob("*.json"))]
        modules[folder.replace("-", "_")] = (doc, msgs)
    return modules


def render_registry(modules: dict[str, tuple[str, list[Message]]]) -> str:
    """The package's __init__: API key -> class maps that import an API's module on first use,
    so a process pays only for the APIs it meets (importing all of them costs ~0.3 s)."""
    apis = []
    for mod, (_, msgs) in modules.items():
        api = [m for m in msgs if m.kind in ("request", "response")]
        if not api:
            continue
        req = next(m.name for m in api if m.kind == "request")
        resp = next(m.name for m in api if m.kind == "response")
        base = re.sub(r"(Request|Response)$", "", api[0].name)
        apis.append((api[0].api_key, mod, req, resp, base))
    apis.sort()
    lines = [
        '"""Every API\'s request and response class, by API key (generated); an API\'s module is',
        'imported the first time one of its classes is asked for."""',
        "",
        "# Generated by tools/gen_protocol.py from Kafka's message specs. Do not edit.",
        "# ruff: noqa",
        "",
        "from __future__ import annotations",
        "",
        "import importlib",
        "from collections.abc import Iterator, Mapping",
        "",
        "#: api key -> (module, request class, response class)",
        "_MODULES: dict[int, tuple[str, str, str]] = {",
    ]
    lines += [f"    {k}: ({mod!r}, {req!r}, {resp!r})," for k, mod, req, resp, _ in apis]
    lines += [
        "}",
        "",
        "",
        "class _Classes(Mapping[int, type]):",
        '    """API key -> request (or response) class; the module loads on first look-up."""',
        "",
        "    def __init__(self, which: int) -> None:",
        "        self._which = which  # 1: requests, 2: responses",
        "        self._loaded: dict[int, type] = {}",
        "",
        "    def __getitem__(self, key: int) -> type:",
        "        cls = self._loaded.get(key)",
        "        if cls is None:",
        "            entry = _MODULES[key]",
        '            module = importlib.import_module(f"{__name__}.{entry[0]}")',
        "            cls = self._loaded[key] = getattr(module, entry[self._which])",
        "        return cls",
        "",
        "    def get(self, key: int, default: type | None = None) -> type | None:",
        "        cls = self._loaded.get(key)",
        "        if cls is not None:",
        "            return cls",
        "        return self[key] if key in _MODULES else default",
        "",
        "    def __contains__(self, key: object) -> bool:",
        "        return key in _MODULES",
        "",
        "    def __iter__(self) -> Iterator[int]:",
        "        return iter(_MODULES)",
        "",
        "    def __len__(self) -> int:",
        "        return len(_MODULES)",
        "",
        "",
        "REQUESTS: Mapping[int, type] = _Classes(1)",
        "RESPONSES: Mapping[int, type] = _Classes(2)",
        "API_NAMES: dict[int, str] = {",
    ]
    lines += [f"    {k}: {base!r}," for k, _, _, _, base in apis]
    lines.append("}")
    return "\n".join(lines) + "\n"


def generate(specs: Path) -> dict[str, str]:
    """File name -> source for every generated module."""
    modules = plan_modules(specs)
    files = {}
    for mod, (doc, msgs) in modules.items():
        files[f"{mod}.py"] = ModuleWriter(msgs).render(doc)
    files["__init__.py"] = render_registry(modules)
    return files


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="fail if the committed modules differ")
    ap.add_argument("--specs", type=Path, default=SPECS)
    args = ap.parse_args()
    files = generate(args.specs)
    if args.check:
        present = {p.name for p in OUT.glob("*.py")}
        stale = sorted(present - set(files))
        differ = sorted(
            n for n, src in files.items() if not (OUT / n).exists() or (OUT / n).read_text() != src
        )
        if stale or differ:
            print(f"generated protocol modules are out of date: differ={differ} stale={stale}")
            print("run: python tools/gen_protocol.py")
            return 1
        print(f"generated protocol modules up to date ({len(files)} files)")
        return 0
    OUT.mkdir(parents=True, exist_ok=True)
    for p in OUT.glob("*.py"):
        if p.name not in files:
            p.unlink()
    for name, src in files.items():
        (OUT / name).write_text(src)
    print(f"wrote {len(files)} modules to {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
