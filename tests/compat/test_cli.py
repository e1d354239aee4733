"""`strom topics|produce|consume` run as processes against a real `strom serve`, checked with kcat."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.conftest import StromProcess, free_port, require_kcat

CLI = [sys.executable, "-m", "strom.cli.main"]
FIELDS = "%p\\t%o\\t%k\\t%v"


def cli(
    bootstrap: str, *args: str, stdin: str | None = None, timeout: float = 40
) -> subprocess.CompletedProcess:
    """Run `strom ARGS --bootstrap BOOTSTRAP`; text in, text out."""
    return subprocess.run(
        [*CLI, *args, "--bootstrap", bootstrap],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=None if stdin is not None else subprocess.DEVNULL,
    )


def ok(bootstrap: str, *args: str, stdin: str | None = None) -> str:
    r = cli(bootstrap, *args, stdin=stdin)
    assert r.returncode == 0, f"strom {' '.join(args)} -> {r.returncode}\n{r.stderr}"
    return r.stdout


def one_line_error(r: subprocess.CompletedProcess, *needles: str, code: int = 1) -> str:
    """Assert a non-zero exit with a single readable `strom: error:` line on stderr."""
    assert r.returncode == code, (r.returncode, r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("strom: error: "), r.stderr
    assert "Traceback" not in r.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def tables(text: str) -> list[list[list[str]]]:
    """The cells of each table's rows: a header, a rule, rows up to a blank line."""
    found: list[list[list[str]]] = []
    inside = False
    for line in text.splitlines():
        if line.startswith("─"):
            found.append([])
            inside = True
        elif not line.strip():
            inside = False
        elif inside:
            found[-1].append(line.split())
    return found


def table_rows(text: str) -> list[list[str]]:
    """The rows of the first table in `text`."""
    return (tables(text) or [[]])[0]


def records(text: str) -> list[tuple[int, int, str, str]]:
    """(partition, offset, key, value) per line of `--format FIELDS` output."""
    out = []
    for line in text.splitlines():
        p, o, k, v = line.split("\t")
        out.append((int(p), int(o), k, v))
    return out


def test_topics_create_list_describe(strom_factory: Callable[..., StromProcess]) -> None:
    b = strom_factory(config={"num.partitions": "5"}).bootstrap
    out = ok(
        b,
        "topics",
        "create",
        "orders",
        "--partitions",
        "3",
        "--replication-factor",
        "1",
        "--config",
        "retention.ms=3600000",
        "--config",
        "cleanup.policy=compact",
    )
    assert "created topic orders" in out
    ok(b, "topics", "create", "plain")  # broker defaults: num.partitions=5
    one_line_error(cli(b, "topics", "create", "orders", "-p", "3"), "TOPIC_ALREADY_EXISTS")
    assert "already exists" in ok(b, "topics", "create", "orders", "-p", "3", "--if-not-exists")
    r = cli(b, "topics", "create", "bad", "-p", "1", "-c", "retention.ms=soon")
    one_line_error(r, "INVALID_CONFIG", "retention.ms")

    rows = table_rows(ok(b, "topics", "list"))
    assert rows == [["orders", "3", "1", "no"], ["plain", "5", "1", "no"]]

    r = cli(b, "topics", "describe", "orders")
    assert r.returncode == 0, r.stderr
    assert "partitions 3" in r.stdout.splitlines()[0]
    parts = table_rows(r.stdout)
    assert [row[0] for row in parts] == ["0", "1", "2"]
    for _, leader, replicas, isr, low, high in parts:
        assert replicas == isr == leader and low == high == "0"
    one_line_error(cli(b, "topics", "describe", "missing"), "'missing' does not exist")
    configs = {row[0]: row[1] for row in tables(r.stdout)[1]}
    assert configs == {"cleanup.policy": "compact", "retention.ms": "3600000"}
    every = {
        row[0]: row for row in tables(ok(b, "topics", "describe", "orders", "--all-configs"))[1]
    }
    assert every["retention.ms"][1:] == ["3600000", "dynamic_topic_config"]
    assert every["segment.bytes"][2] != "dynamic_topic_config"


def test_produce_consume_1000_keyed_lines(strom: StromProcess, tmp_path: Path) -> None:
    b = strom.bootstrap
    ok(b, "topics", "create", "events", "-p", "4")
    lines = [(f"k{i % 37}", f"value {i}") for i in range(1000)]
    src = tmp_path / "in.txt"
    src.write_text("".join(f"{k}|{v}\n" for k, v in lines))
    r = cli(b, "produce", "events", "--file", str(src), "--key-separator", "|", "--acks", "all")
    assert r.returncode == 0, r.stderr
    assert r.stderr.startswith("produced 1000 records"), r.stderr

    got = records(
        ok(
            b,
            "consume",
            "events",
            "--from-beginning",
            "--max-messages",
            "1000",
            "--timeout",
            "10",
            "--format",
            FIELDS,
        )
    )
    assert sorted((k, v) for _, _, k, v in got) == sorted(lines)
    by_partition: dict[int, list[tuple[int, str, str]]] = defaultdict(list)
    for p, o, k, v in got:
        by_partition[p].append((o, k, v))
    key_home: dict[str, int] = {}
    for p, recs in by_partition.items():
        assert [o for o, _, _ in recs] == list(range(len(recs)))  # complete, in offset order
        numbers = [int(v.split()[1]) for _, _, v in recs]
        assert numbers == sorted(numbers)  # the order the lines were written in
        for _, k, _ in recs:
            assert key_home.setdefault(k, p) == p  # one key, one partition
    assert len(by_partition) > 1

    marks = {int(row[0]): int(row[5]) for row in table_rows(ok(b, "topics", "describe", "events"))}
    assert marks == {p: len(by_partition.get(p, [])) for p in range(4)}

    kcat = require_kcat()
    seen = subprocess.run(
        [kcat, "-b", b, "-C", "-t", "events", "-e", "-q", "-f", "%p\t%o\t%k\t%s\n"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    assert sorted(records(seen)) == sorted(got)

    assert ok(b, "consume", "events", "--timeout", "1") == ""  # default: from the end
    first = [
        json.loads(x)
        for x in ok(
            b, "consume", "events", "--from-beginning", "-p", "0", "-n", "2", "--format", "json"
        ).splitlines()
    ]
    assert [(m["partition"], m["offset"], m["key"]) for m in first] == [
        (0, o, k) for o, k, _ in by_partition[0][:2]
    ]
    text = ok(b, "consume", "events", "--from-beginning", "-p", "0", "-n", "1", "-K", "=")
    assert text == "{1}={2}\n".format(*by_partition[0][0])


def test_compression_headers_and_kcat(strom: StromProcess) -> None:
    b = strom.bootstrap
    ok(b, "topics", "create", "codecs", "-p", "1")
    codecs = ["none", "gzip", "snappy", "lz4", "zstd"]
    for codec in codecs:
        lines = f"{codec}:first\n{codec}:second\n"
        ok(
            b,
            "produce",
            "codecs",
            "-z",
            codec,
            "--acks",
            "1",
            "-K",
            ":",
            "-H",
            f"codec={codec}",
            "-H",
            "src=cli",
            stdin=lines,
        )
    out = ok(b, "consume", "codecs", "--from-beginning", "-n", "10", "-F", "%o %k %v %h")
    expected = [
        f"{2 * i + j} {c} {w} codec={c},src=cli"
        for i, c in enumerate(codecs)
        for j, w in enumerate(["first", "second"])
    ]
    assert out.splitlines() == expected
    seen = subprocess.run(
        [require_kcat(), "-b", b, "-C", "-t", "codecs", "-e", "-q", "-f", "%k %s\n"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    assert seen.splitlines() == [" ".join(e.split()[1:3]) for e in expected]


def test_consume_from_offset_and_timestamp(strom: StromProcess) -> None:
    b = strom.bootstrap
    ok(b, "topics", "create", "times", "-p", "2")
    ok(b, "produce", "times", "-K", "=", stdin="".join(f"k{i}=old{i}\n" for i in range(20)))
    time.sleep(0.05)  # every later record gets a strictly later timestamp
    ok(b, "produce", "times", "-K", "=", stdin="".join(f"k{i}=new{i}\n" for i in range(20)))
    everything = [
        json.loads(x)
        for x in ok(
            b, "consume", "times", "--from-beginning", "-n", "40", "-F", "json"
        ).splitlines()
    ]
    old = [m for m in everything if m["value"].startswith("old")]
    new = [m for m in everything if m["value"].startswith("new")]
    since = min(m["timestamp"] for m in new)
    assert max(m["timestamp"] for m in old) < since

    def start(*args: str, n: int) -> list[tuple[int, int, str, str]]:
        """The first n records from a start position (-t: give up if fewer arrive)."""
        out = ok(
            b, "consume", "times", *args, "-n", str(n), "-t", "3" if n else "0.5", "-F", FIELDS
        )
        return sorted(records(out))

    want = sorted((m["partition"], m["offset"], m["key"], m["value"]) for m in new)
    assert start("--timestamp", str(since), n=len(new)) == want
    iso = datetime.fromtimestamp(since / 1000, UTC).isoformat(timespec="milliseconds")
    assert start("--timestamp", iso, n=len(new)) == want
    assert start("--timestamp", str(since + 60_000), n=0) == []  # after the last record: the end

    p0 = sorted((m["offset"], m["key"], m["value"]) for m in everything if m["partition"] == 0)
    assert len(p0) > 4
    assert start("--partition", "0", "--offset", "3", n=len(p0) - 3) == [(0, *r) for r in p0[3:]]
    assert start("--partition", "0", "--offset", "-2", n=2) == [(0, *r) for r in p0[-2:]]
    one_line_error(cli(b, "consume", "times", "-p", "7", "-t", "1"), "no partition 7")
    one_line_error(cli(b, "consume", "missing", "-t", "1"), "'missing' does not exist")
    r = cli(b, "consume", "times", "--from-beginning", "--offset", "1")
    one_line_error(r, "choose one of", code=2)


def test_alter_and_delete(strom: StromProcess) -> None:
    b = strom.bootstrap
    configs = ["-c", "retention.ms=100000", "-c", "cleanup.policy=compact"]
    ok(b, "topics", "create", "grow", "-p", "2", *configs)
    one_line_error(cli(b, "topics", "alter", "grow", "--partitions", "2"), "has 2 partitions")
    one_line_error(cli(b, "topics", "alter", "grow"), "nothing to alter", code=2)

    assert "2 -> 4 partitions" in ok(b, "topics", "alter", "grow", "--partitions", "4")
    assert table_rows(ok(b, "topics", "list")) == [["grow", "4", "1", "no"]]
    r = cli(b, "produce", "grow", "-p", "3", "-q", stdin="no key\n")
    one_line_error(r, "1 record(s) failed", "INVALID_RECORD")  # compacted: keys required
    ok(b, "produce", "grow", "-p", "3", "-K", "=", stdin="k=to the new partition\n")
    out = ok(b, "consume", "grow", "-p", "3", "--offset", "0", "-n", "1", "-K", "=")
    assert out == "k=to the new partition\n"

    ok(b, "topics", "alter", "grow", "-c", "retention.ms=5000", "--delete-config", "cleanup.policy")
    described = tables(ok(b, "topics", "describe", "grow"))
    assert {row[0]: row[1] for row in described[1]} == {"retention.ms": "5000"}
    r = cli(b, "topics", "alter", "grow", "-c", "retention.ms=later")
    one_line_error(r, "INVALID_CONFIG", "retention.ms")

    one_line_error(cli(b, "topics", "delete", "grow"), "without --yes", code=2)
    assert [row[0] for row in table_rows(ok(b, "topics", "list"))] == ["grow"]
    assert "deleted topic grow" in ok(b, "topics", "delete", "grow", "--yes")
    assert table_rows(ok(b, "topics", "list")) == []
    one_line_error(cli(b, "consume", "grow", "-t", "1"), "does not exist")
    one_line_error(cli(b, "topics", "delete", "grow", "--yes"), "UNKNOWN_TOPIC_OR_PART")
    ok(b, "topics", "delete", "grow", "--yes", "--if-exists")


@pytest.mark.parametrize(
    "args",
    [
        ["topics", "list"],
        ["topics", "describe", "t"],
        ["topics", "create", "t", "-p", "1"],
        ["produce", "t"],
        ["consume", "t", "--timeout", "1"],
    ],
    ids=lambda a: " ".join(a[:2]),
)
def test_unreachable_broker_is_one_line(args: list[str]) -> None:
    started = time.monotonic()
    r = cli(f"127.0.0.1:{free_port()}", *args, stdin="a line\n")
    one_line_error(r, "cannot reach a Kafka broker at 127.0.0.1:")
    assert time.monotonic() - started < 8  # refused connections end the wait early


def test_transactions_list_and_describe(strom: StromProcess) -> None:
    from confluent_kafka import Producer

    ok(strom.bootstrap, "topics", "create", "txn-cli", "--partitions", "2")
    open_one = Producer({"bootstrap.servers": strom.bootstrap, "transactional.id": "cli-open"})
    open_one.init_transactions(30)
    open_one.begin_transaction()
    open_one.produce("txn-cli", b"x", partition=1)
    assert open_one.flush(30) == 0
    done = Producer({"bootstrap.servers": strom.bootstrap, "transactional.id": "cli-done"})
    done.init_transactions(30)
    done.begin_transaction()
    done.produce("txn-cli", b"y", partition=0)
    done.commit_transaction(30)
    rows = table_rows(ok(strom.bootstrap, "transactions", "list"))
    assert [(r[0], r[3]) for r in rows] == [("cli-done", "CompleteCommit"), ("cli-open", "Ongoing")]
    rows = table_rows(ok(strom.bootstrap, "transactions", "list", "--state", "Ongoing"))
    assert [r[0] for r in rows] == ["cli-open"]
    described = table_rows(ok(strom.bootstrap, "transactions", "describe", "cli-open"))
    fields = {" ".join(r[:-1]): r[-1] for r in described}
    assert fields["state"] == "Ongoing" and fields["partitions"] == "txn-cli-1"
    one_line_error(
        cli(strom.bootstrap, "transactions", "describe", "nobody"), "TRANSACTIONAL_ID_NOT_FOUND"
    )
