"""Java properties files (java.util.Properties rules) and atomic whole-file writes."""

from __future__ import annotations

import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

import strom.storage.files as files
from strom.broker.config import read_properties_file
from strom.protocol.errors import ErrorCode, KafkaError
from strom.storage.config import read_config_file as read_topic_properties
from strom.storage.config import write_config_file
from strom.storage.files import atomic_write
from strom.storage.properties import (
    PropertiesError,
    format_properties,
    parse_properties,
    read_properties,
)

# -- reading: Java's rules ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("key=value", {"key": "value"}),
        ("key:value", {"key": "value"}),
        ("key value", {"key": "value"}),
        ("key\tvalue", {"key": "value"}),
        ("key\fvalue", {"key": "value"}),
        ("   key   =   value", {"key": "value"}),
        ("key : value", {"key": "value"}),
        ("key    value with spaces", {"key": "value with spaces"}),
        ("key = = value", {"key": "= value"}),
        ("key=a=b:c d", {"key": "a=b:c d"}),
        ("key:a=b", {"key": "a=b"}),
        ("key=value   ", {"key": "value   "}),
        ("a#b=c", {"a#b": "c"}),
    ],
)
def test_separators(line: str, expected: dict[str, str]) -> None:
    assert parse_properties(line + "\n") == expected


@pytest.mark.parametrize("line", ["flag", "flag=", "flag:", "flag   ", "  flag\\\n"])
def test_key_without_value_gets_empty_value(line: str) -> None:
    assert parse_properties(line) == {"flag": ""}


def test_comments_and_blank_lines() -> None:
    text = "# one=1\n! two=2\n   # three=3\n\t! four=4\n\n   \nfive=5\n#six=6"
    assert parse_properties(text) == {"five": "5"}


def test_a_comment_line_does_not_continue() -> None:
    assert parse_properties("# comment \\\nkey=value\n") == {"key": "value"}


def test_single_character_escapes() -> None:
    text = r"key=tab\there\nnl\rcr\fff\\bs\qq\=\:\#\!\ "
    assert parse_properties(text) == {"key": "tab\there\nnl\rcr\fff\\bsqq=:#! "}


def test_escaped_separators_belong_to_the_key() -> None:
    text = r"a\=b=1" + "\n" + r"c\:d:2" + "\n" + r"e\ f 3" + "\n" + r"\#g=4"
    assert parse_properties(text) == {"a=b": "1", "c:d": "2", "e f": "3", "#g": "4"}


def test_even_backslashes_before_separator_end_the_key() -> None:
    assert parse_properties(r"k\\ v") == {"k\\": "v"}


def test_unicode_escapes() -> None:
    text = r"\u006bey=caf\u00e9 \u20AC \uD83D\uDE00"
    assert parse_properties(text) == {"key": "café € 😀"}


@pytest.mark.parametrize("bad", [r"\u12", r"\u12zz", r"\u", r"\uXYZW"])
def test_malformed_unicode_escape_is_refused_with_its_line(bad: str) -> None:
    with pytest.raises(PropertiesError) as exc:
        parse_properties("# comment\nok=1\nkey=" + bad + "\n")
    assert str(exc.value).startswith("line 3: ")


def test_line_number_counts_continuations() -> None:
    with pytest.raises(PropertiesError) as exc:
        parse_properties("a=1\\\n  2\\\n  3\nb=\\u1\n")
    assert str(exc.value).startswith("line 4: ")


def test_continuation_lines_drop_leading_whitespace() -> None:
    text = "fruits = apple, \\\n         banana, \\\n\tpear\nnext=1\n"
    assert parse_properties(text) == {"fruits": "apple, banana, pear", "next": "1"}


def test_continuation_needs_an_odd_number_of_backslashes() -> None:
    assert parse_properties("a=x\\\\\nb=y\n") == {"a": "x\\", "b": "y"}
    assert parse_properties("a=x\\\\\\\nb=y\n") == {"a": "x\\b=y"}


def test_continuation_in_the_key_and_at_end_of_input() -> None:
    assert parse_properties("lo\\\n  ng=1\nlast=end\\") == {"long": "1", "last": "end"}


@pytest.mark.parametrize("eol", ["\n", "\r\n", "\r"])
def test_line_terminators(eol: str) -> None:
    text = f"a=1{eol}b=2\\{eol}  3{eol}c=4{eol}"
    assert parse_properties(text) == {"a": "1", "b": "23", "c": "4"}


def test_only_java_line_terminators_split_lines() -> None:
    assert parse_properties("a=1\u2028b=2\x0bc") == {"a": "1\u2028b=2\x0bc"}


def test_later_duplicate_wins_and_empty_document() -> None:
    assert parse_properties("k=1\nk=2\n") == {"k": "2"}
    assert parse_properties("") == {}


# -- writing: Java's escaping, and the round trip -----------------------------------------


def test_format_exact_output() -> None:
    props = {"b": "2", "a key": " x=y:z#!\\", "c": "é\n"}
    lines = [
        "#generated",
        "#by strom",
        r"a\ key=\ x\=y\:z\#\!\\",
        "b=2",
        r"c=\u00E9\n",
    ]
    assert format_properties(props, header="generated\nby strom") == "\n".join(lines) + "\n"


def test_format_without_header_and_empty() -> None:
    assert format_properties({"k": "v"}) == "k=v\n"
    assert format_properties({}) == ""


def test_format_is_ascii_even_for_astral_characters_and_header() -> None:
    text = format_properties({"emoji": "😀"}, header="Ünïcode")
    assert text == "#\\u00DCn\\u00EFcode\nemoji=\\uD83D\\uDE00\n"
    assert parse_properties(text) == {"emoji": "😀"}


AWKWARD = {
    "": "empty key",
    "plain": "",
    "k=eq": "v=eq",
    "k:colon": "v:colon",
    "k space": "v space",
    " lead": " lead",
    "trail ": "trail ",
    "back\\slash": "back\\slash\\",
    "new\nline": "new\nline\r\n",
    "tab\tand\fff": "\t",
    "#hash": "#hash",
    "!bang": "!bang",
    "non-ascii é€": "ünï 😀 中文",
    "ctl\x00\x1f\x7f": "\x00\x1f\x7f",
    "u-escape": "\\u0041",
}


def test_round_trip_awkward_keys_and_values() -> None:
    assert parse_properties(format_properties(AWKWARD, header="a\nb")) == AWKWARD


@given(st.dictionaries(st.text(), st.text(), max_size=8), st.text())
def test_round_trip_anything(props: dict[str, str], header: str) -> None:
    text = format_properties(props, header=header)
    assert text.isascii()
    assert parse_properties(text) == props


# -- files --------------------------------------------------------------------------------


def test_read_utf8_latin1_and_bom(tmp_path) -> None:
    utf8 = tmp_path / "utf8.properties"
    utf8.write_bytes("name=café\n".encode())
    latin1 = tmp_path / "latin1.properties"
    latin1.write_bytes("name=café\n".encode("iso-8859-1"))
    bom = tmp_path / "bom.properties"
    bom.write_bytes(b"\xef\xbb\xbfname=caf\\u00e9\n")
    for path in (utf8, latin1, bom):
        assert read_properties(str(path)) == {"name": "café"}


def test_read_error_names_the_file(tmp_path) -> None:
    path = tmp_path / "bad.properties"
    path.write_text("ok=1\nbad=\\u00\n")
    with pytest.raises(PropertiesError) as exc:
        read_properties(str(path))
    assert str(exc.value) == f"{path}: line 2: malformed \\uxxxx escape \\u00"


def test_missing_file_is_an_os_error(tmp_path) -> None:
    with pytest.raises(FileNotFoundError):
        read_properties(str(tmp_path / "nope.properties"))


def test_topic_config_file_written_by_the_old_code_loads_the_same(tmp_path) -> None:
    # what write_config_file wrote before it used Java's escaping: `\`, newline and `=`
    # escaped, everything else (`:`, `#`, non-ASCII as UTF-8) written as it is
    path = tmp_path / "orders.properties"
    old = (
        "#config overrides of topic orders\n"
        "cleanup.policy=compact,delete\n"
        "leader.replication.throttled.replicas=0:1,1:2\n"
        "message.format.version=caf\u00e9 #1 !\n"
        "weird=a\\=b\\\\c\\nd\n"
    )
    path.write_bytes(old.encode())
    assert read_topic_properties(str(path)) == {
        "cleanup.policy": "compact,delete",
        "leader.replication.throttled.replicas": "0:1,1:2",
        "message.format.version": "café #1 !",
        "weird": "a=b\\c\nd",
    }


def test_topic_config_write_read(tmp_path) -> None:
    path = str(tmp_path / "t.properties")
    write_config_file(path, {"retention.ms": "1000", "x": "é=1"}, header="topic t")
    with open(path, "rb") as f:
        assert f.read() == b"#topic t\nretention.ms=1000\nx=\\u00E9\\=1\n"
    assert read_topic_properties(path) == {"retention.ms": "1000", "x": "é=1"}
    assert os.listdir(tmp_path) == ["t.properties"]


def test_malformed_topic_config_is_invalid_config(tmp_path) -> None:
    path = tmp_path / "t.properties"
    path.write_text("retention.ms=\\uZZZZ\n")
    with pytest.raises(KafkaError) as exc:
        read_topic_properties(str(path))
    assert exc.value.code == ErrorCode.INVALID_CONFIG
    assert str(path) in str(exc.value)


def test_broker_properties_file(tmp_path) -> None:
    path = tmp_path / "server.properties"
    path.write_text(
        "# Kafka style\n"
        "num.partitions = 3\n"
        "listeners: PLAINTEXT://127.0.0.1:9092\n"
        "log.dirs /var/lib/strom\\\n"
        "         ,/mnt/strom\n"
        "auto.create.topics.enable\n"
    )
    assert read_properties_file(str(path)) == {
        "num.partitions": "3",
        "listeners": "PLAINTEXT://127.0.0.1:9092",
        "log.dirs": "/var/lib/strom,/mnt/strom",
        "auto.create.topics.enable": "",
    }


@pytest.mark.parametrize("text", ["a=\\u12\n", "ok=1\n = nameless\n"])
def test_broker_properties_file_errors_name_the_file(tmp_path, text: str) -> None:
    path = tmp_path / "server.properties"
    path.write_text(text)
    with pytest.raises(KafkaError) as exc:
        read_properties_file(str(path))
    assert exc.value.code == ErrorCode.INVALID_CONFIG
    assert str(path) in str(exc.value)


# -- atomic_write -------------------------------------------------------------------------


def test_atomic_write_replaces_the_file_whole(tmp_path) -> None:
    path = str(tmp_path / "f")
    atomic_write(path, b"x" * 10_000)
    with open(path, "rb") as old:
        atomic_write(path, b"short")
        assert old.read() == b"x" * 10_000  # a reader of the old file keeps the old file
    with open(path, "rb") as f:
        assert f.read() == b"short"
    assert os.listdir(tmp_path) == ["f"]


def test_atomic_write_encodes_str_as_utf8(tmp_path) -> None:
    path = tmp_path / "f"
    atomic_write(str(path), "café\n")
    assert path.read_bytes() == b"caf\xc3\xa9\n"


def test_atomic_write_overwrites_a_stale_temp_file(tmp_path) -> None:
    path = tmp_path / "f"
    (tmp_path / "f.tmp").write_bytes(b"left by a crash, and longer than the new data")
    atomic_write(str(path), b"new")
    assert path.read_bytes() == b"new"
    assert os.listdir(tmp_path) == ["f"]


def test_atomic_write_failure_keeps_the_old_file(tmp_path, monkeypatch) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"old")

    def failing_fsync(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(files.os, "fsync", failing_fsync)
    with pytest.raises(OSError, match="No space left"):
        atomic_write(str(path), b"new")
    assert path.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["f"]


def _record_syncs(monkeypatch) -> tuple[list[int], list[str]]:
    file_syncs: list[int] = []
    dir_syncs: list[str] = []
    monkeypatch.setattr(files.os, "fsync", file_syncs.append)
    monkeypatch.setattr(files, "fsync_dir", dir_syncs.append)
    return file_syncs, dir_syncs


def test_atomic_write_fsyncs_file_and_directory(tmp_path, monkeypatch) -> None:
    file_syncs, dir_syncs = _record_syncs(monkeypatch)
    atomic_write(str(tmp_path / "f"), b"data")
    assert len(file_syncs) == 1
    assert dir_syncs == [str(tmp_path)]


def test_atomic_write_relative_path_fsyncs_current_directory(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    _, dir_syncs = _record_syncs(monkeypatch)
    atomic_write("f", b"data")
    assert dir_syncs == ["."]
    assert (tmp_path / "f").read_bytes() == b"data"


def test_atomic_write_without_syncs(tmp_path, monkeypatch) -> None:
    file_syncs, dir_syncs = _record_syncs(monkeypatch)
    atomic_write(str(tmp_path / "f"), b"data", fsync_dir=False)
    assert (len(file_syncs), dir_syncs) == (1, [])
    atomic_write(str(tmp_path / "f"), b"more", fsync=False, fsync_dir=False)
    assert (len(file_syncs), dir_syncs) == (1, [])
    assert (tmp_path / "f").read_bytes() == b"more"
