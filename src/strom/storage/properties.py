"""Java properties files, read and written by java.util.Properties' rules.

Our own small parser: the javaproperties package does the same but costs ~56 ms to import and
~135 µs a file, and a broker reads one of these per partition directory at start-up.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

_LINE_END = re.compile(r"\r\n|\r|\n")  # Java's line terminators (no other Unicode breaks)
_WHITESPACE = " \t\f"
_SEPARATORS = "=:"
_ESCAPES = {"t": "\t", "n": "\n", "r": "\r", "f": "\f"}
_STORE_ESCAPES = {"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r", "\f": "\\f"}


class PropertiesError(ValueError):
    """A properties document Java would refuse (a malformed \\uXXXX escape)."""


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """(line number, text) of each logical line: comments and blank lines dropped, a line
    ending in an odd number of backslashes joined with the next (its leading blanks cut)."""
    natural = _LINE_END.split(text)
    out: list[tuple[int, str]] = []
    i = 0
    while i < len(natural):
        number = i + 1
        line = natural[i].lstrip(_WHITESPACE)
        i += 1
        if not line or line[0] in "#!":
            continue
        while _continues(line) and i < len(natural):
            line = line[:-1] + natural[i].lstrip(_WHITESPACE)
            i += 1
        if _continues(line):
            line = line[:-1]  # a continuation at the end of the document continues nothing
        out.append((number, line))
    return out


def _continues(line: str) -> bool:
    trailing = len(line) - len(line.rstrip("\\"))
    return trailing % 2 == 1


def _unescape(raw: str, number: int) -> str:
    if "\\" not in raw:
        return raw
    out: list[str] = []
    i = 0
    n = len(raw)
    while i < n:
        c = raw[i]
        if c != "\\" or i + 1 == n:
            out.append(c)
            i += 1
            continue
        nxt = raw[i + 1]
        if nxt == "u":
            digits = raw[i + 2 : i + 6]
            if len(digits) != 4 or any(d not in "0123456789abcdefABCDEF" for d in digits):
                raise PropertiesError(f"line {number}: malformed \\uxxxx escape \\u{digits}")
            out.append(chr(int(digits, 16)))
            i += 6
            continue
        out.append(_ESCAPES.get(nxt, nxt))
        i += 2
    text = "".join(out)
    # \uD83D\uDE00 (a UTF-16 surrogate pair, as Java writes a character beyond the BMP)
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def _split(line: str) -> tuple[str, str]:
    """The raw (still escaped) key and value of a logical line."""
    i = 0
    n = len(line)
    while i < n:
        c = line[i]
        if c == "\\":
            i += 2
            continue
        if c in _SEPARATORS or c in _WHITESPACE:
            break
        i += 1
    key = line[:i]
    while i < n and line[i] in _WHITESPACE:
        i += 1
    if i < n and line[i] in _SEPARATORS:
        i += 1
        while i < n and line[i] in _WHITESPACE:
            i += 1
    return key, line[i:]


def parse_properties(text: str) -> dict[str, str]:
    """Key -> value of a properties document by Java's Properties.load rules.

    Keys end at the first unescaped `=`, `:` or whitespace; lines starting with `#` or `!`
    are comments; backslash escapes (`\\t`, `\\n`, `\\uXXXX`, ...) are decoded and a line
    ending in an odd number of backslashes continues on the next. A key with no separator
    gets the empty value; of a key given twice the later value wins.
    """
    props: dict[str, str] = {}
    for number, line in _logical_lines(text):
        raw_key, raw_value = _split(line)
        props[_unescape(raw_key, number)] = _unescape(raw_value, number)
    return props


def read_properties(path: str) -> dict[str, str]:
    """The properties in the file at `path` (see parse_properties).

    The bytes are read as UTF-8, or as ISO-8859-1 (what Java's load(InputStream) assumes)
    when they are not valid UTF-8. Raises OSError if the file cannot be read and
    PropertiesError, naming the file, if it is malformed.
    """
    with open(path, "rb") as f:
        text = _decode(f.read())
    try:
        return parse_properties(text)
    except PropertiesError as e:
        raise PropertiesError(f"{path}: {e}") from None


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("iso-8859-1")


def _escape(text: str, is_key: bool) -> str:
    out: list[str] = []
    for i, c in enumerate(text):
        if c == " ":
            out.append("\\ " if is_key or i == 0 else " ")
        elif c in _STORE_ESCAPES:
            out.append(_STORE_ESCAPES[c])
        elif c in "=:#!":
            out.append("\\" + c)
        elif " " <= c <= "~":
            out.append(c)
        else:  # beyond printable ASCII: UTF-16 code units as \uXXXX, as Java writes them
            out.append(_units(c))
    return "".join(out)


def format_properties(props: Mapping[str, str], header: str = "") -> str:
    """`props` as a properties document, one `key=value` line each, sorted by key.

    Keys and values are escaped as Java's Properties.store escapes them (`=`, `:`, `#`, `!`,
    backslashes, control characters, spaces in keys and a value's leading space), and every
    non-ASCII character becomes a \\uXXXX escape, so the text is plain ASCII. A non-empty
    `header` comes first as a comment, each of its lines starting with `#`.
    """
    lines = []
    if header:
        for line in _LINE_END.split(header):
            lines.append("#" + _escape_comment(line))
    for key in sorted(props):
        lines.append(f"{_escape(key, True)}={_escape(props[key], False)}")
    return "".join(line + "\n" for line in lines)


def _escape_comment(line: str) -> str:
    return "".join(c if " " <= c <= "~" or c == "\t" else _units(c) for c in line)


def _units(c: str) -> str:
    """A character as Java's \\uXXXX escapes of its UTF-16 code units."""
    data = c.encode("utf-16-be", "surrogatepass")
    return "".join(
        f"\\u{int.from_bytes(data[j : j + 2], 'big'):04X}" for j in range(0, len(data), 2)
    )
