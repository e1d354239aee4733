"""Java properties files, read and written by java.util.Properties' rules (via javaproperties)."""

from __future__ import annotations

import re
from collections.abc import Mapping

# javaproperties is imported inside the functions: it costs tens of ms, and a broker with
# no properties file to read should not pay for it at start-up.

_LINE_END = re.compile(r"\r\n?|\n")  # Java's line terminators (no other Unicode breaks)


class PropertiesError(ValueError):
    """A properties document Java would refuse (a malformed \\uXXXX escape)."""


def parse_properties(text: str) -> dict[str, str]:
    """Key -> value of a properties document by Java's Properties.load rules.

    Keys end at the first unescaped `=`, `:` or whitespace; lines starting with `#` or `!`
    are comments; backslash escapes (`\\t`, `\\n`, `\\uXXXX`, ...) are decoded and a line
    ending in an odd number of backslashes continues on the next. A key with no separator
    gets the empty value; of a key given twice the later value wins.
    """
    import javaproperties

    props: dict[str, str] = {}
    line = 1
    try:
        for element in javaproperties.parse(text):
            if isinstance(element, javaproperties.KeyValue):
                props[element.key] = element.value
            line += len(_LINE_END.findall(element.source))
    except javaproperties.InvalidUEscapeError as e:
        raise PropertiesError(f"line {line}: {e}") from None
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


def format_properties(props: Mapping[str, str], header: str = "") -> str:
    """`props` as a properties document, one `key=value` line each, sorted by key.

    Keys and values are escaped as Java's Properties.store escapes them (`=`, `:`, `#`, `!`,
    backslashes, control characters, spaces in keys and a value's leading space), and every
    non-ASCII character becomes a \\uXXXX escape, so the text is plain ASCII. A non-empty
    `header` comes first as a comment, each of its lines starting with `#`.
    """
    import javaproperties

    return javaproperties.dumps(
        props,
        comments=header or None,
        timestamp=None,
        sort_keys=True,
        ensure_ascii=True,
        ensure_ascii_comments=True,
    )
