"""Storage benchmark: append vs os.write, reads, recovery per GiB, opening 10,000 partitions."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator

import google_crc32c

from strom.protocol.records import BatchView, build_batch
from strom.storage.config import LogConfig
from strom.storage.log import Log
from strom.storage.manager import LogManager

MIB = 1024 * 1024
GIB = 1024 * MIB


def batch_of(total: int, record_size: int) -> bytearray:
    """One batch of about `total` bytes made of `record_size`-byte records."""
    n = max(1, total // (record_size + 10))
    value = os.urandom(record_size)
    return bytearray(build_batch([(b"key-%d" % i, value) for i in range(n)], timestamp=1))


def settle(*paths: str) -> None:
    """Write back dirty pages so one run does not pay for the previous one's writeback."""
    os.sync()
    for path in paths:
        with contextlib.suppress(OSError):
            fd = os.open(path, os.O_RDONLY)
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


def drop_cache(directory: str) -> None:
    """Evict our own files from the page cache (posix_fadvise DONTNEED after a sync)."""
    os.sync()
    for root, _dirs, files in os.walk(directory):
        for name in files:
            settle(os.path.join(root, name))


@contextlib.contextmanager
def no_fsync() -> Iterator[None]:
    """Setup only: skip fsync while building fixtures (never while measuring)."""
    real = os.fsync
    os.fsync = lambda fd: None  # type: ignore[assignment]
    try:
        yield
    finally:
        os.fsync = real  # type: ignore[assignment]


# -- append ----------------------------------------------------------------------------------


def plain_write(path: str, buf: bytearray, count: int) -> float:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        t0 = time.perf_counter()
        for _ in range(count):
            os.write(fd, buf)
        return time.perf_counter() - t0
    finally:
        os.close(fd)


def strom_append(directory: str, buf: bytearray, count: int) -> tuple[float, Log]:
    config = LogConfig.from_props({"max.message.bytes": str(4 * MIB)})
    log = Log(directory, config)
    log.load()
    t0 = time.perf_counter()
    for _ in range(count):
        log.append(buf)  # a writable buffer: offsets stamped in place, one write per call
    return time.perf_counter() - t0, log


def bench_append(work: str, total: int, rounds: int) -> dict[str, float]:
    buf = batch_of(MIB, 1024)
    count = total // len(buf)
    nbytes = count * len(buf)
    plain_times, strom_times = [], []
    plain_path = os.path.join(work, "plain.bin")
    for r in range(rounds):
        for which in ("plain", "strom") if r % 2 == 0 else ("strom", "plain"):
            if which == "strom":
                shutil.rmtree(os.path.join(work, "append-0"), ignore_errors=True)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(plain_path)
            settle()
            if which == "plain":
                plain_times.append(plain_write(plain_path, buf, count))
            else:
                elapsed, log = strom_append(os.path.join(work, "append-0"), buf, count)
                strom_times.append(elapsed)
                log.close(flush=False)
    ratios = [pt / st for st, pt in zip(strom_times, plain_times, strict=True)]
    plain = nbytes / statistics.median(plain_times) / MIB
    strom = nbytes / statistics.median(strom_times) / MIB
    # Where Log.append's extra time goes, per MiB: the batch check (CRC32C over a writable
    # buffer, which records.crc32c copies to bytes first) against the bare CRC of bytes.
    view = memoryview(buf)
    reps = 200
    t0 = time.perf_counter()
    for _ in range(reps):
        BatchView(view).validate()
    validate_us = (time.perf_counter() - t0) / reps * 1e6 * MIB / len(buf)
    data = bytes(buf[21:])
    t0 = time.perf_counter()
    for _ in range(reps):
        google_crc32c.value(data)
    crc_us = (time.perf_counter() - t0) / reps * 1e6 * MIB / len(buf)
    # Small batches: the per-append overhead.
    small = batch_of(4096, 100)
    log = Log(os.path.join(work, "small-0"))
    log.load()
    n_small = 20000
    t0 = time.perf_counter()
    for _ in range(n_small):
        log.append(small)
    small_rate = n_small / (time.perf_counter() - t0)
    log.close(flush=False)
    shutil.rmtree(os.path.join(work, "small-0"))
    return {
        "batch_bytes": len(buf),
        "total_mib": nbytes / MIB,
        "plain_mib_s": plain,
        "strom_mib_s": strom,
        # Each round times both methods back to back: the median of those paired ratios is
        # robust to other load on the machine, which hits both halves of a pair alike.
        "ratio": statistics.median(ratios),
        "ratios": ratios,
        "write_us_per_mib": 1e6 / plain,
        "append_us_per_mib": 1e6 / strom,
        "validate_us_per_mib": validate_us,
        "crc_us_per_mib": crc_us,
        "small_appends_s": small_rate,
        "small_batch_bytes": len(small),
    }


# -- read ------------------------------------------------------------------------------------


def bench_read(work: str) -> dict[str, float]:
    log = Log(os.path.join(work, "append-0"))
    end = log.log_end_offset
    total = log.size

    def sweep(consume) -> float:
        t0 = time.perf_counter()
        offset = 0
        got = 0
        while offset < end:
            r = log.read(offset, MIB)
            got += consume(r)
            offset = r.next_offset
        assert got == total, (got, total)
        return time.perf_counter() - t0

    devnull = os.open(os.devnull, os.O_WRONLY)

    def via_pread(r) -> int:
        return len(r.read_bytes())

    def via_sendfile(r) -> int:
        sent = 0
        with r.open() as fd:
            while sent < r.length:
                sent += os.sendfile(devnull, fd, r.position + sent, r.length - sent)
        return sent

    pread_s = sweep(via_pread)
    sendfile_s = sweep(via_sendfile)
    os.close(devnull)
    # Lookup cost alone: random offsets on a log of small batches.
    small = Log(os.path.join(work, "lookup-0"))
    with no_fsync():
        b = batch_of(1024, 100)
        for _ in range(50000):
            small.append(b)
    import random

    rng = random.Random(1)
    n = 20000
    small_end = small.log_end_offset
    t0 = time.perf_counter()
    for _ in range(n):
        small.read(rng.randrange(small_end), 64 * 1024)
    lookups = n / (time.perf_counter() - t0)
    small.close(flush=False)
    shutil.rmtree(os.path.join(work, "lookup-0"))
    log.close(flush=False)
    return {
        "pread_mib_s": total / pread_s / MIB,
        "sendfile_mib_s": total / sendfile_s / MIB,
        "lookups_s": lookups,
    }


# -- recovery --------------------------------------------------------------------------------


def bench_recovery(work: str, total: int) -> dict[str, float]:
    results: dict[str, float] = {}
    for label, batch_size in (("1mib", MIB), ("16kib", 16 * 1024)):
        path = os.path.join(work, f"recover-{label}-0")
        config = LogConfig.from_props({"max.message.bytes": str(4 * MIB)})
        log = Log(path, config)
        buf = batch_of(batch_size, 1024 if batch_size >= 64 * 1024 else 200)
        with no_fsync():
            for _ in range(total // len(buf)):
                log.append(buf)
        size = log.size
        log._files.close_all()  # an unclean stop: no flush, no index written, no marker
        for cache in ("warm", "cold"):
            if cache == "cold":
                drop_cache(path)
            fresh = Log(path, config, needs_recovery=True, recovery_point=0)
            t0 = time.perf_counter()
            fresh.load()
            elapsed = time.perf_counter() - t0
            assert fresh.last_recovery is not None and fresh.last_recovery.truncated_bytes == 0
            results[f"{label}_{cache}_s_per_gib"] = elapsed / (size / GIB)
            fresh._files.close_all()
        shutil.rmtree(path)
    return results


# -- open many partitions --------------------------------------------------------------------


def bench_open(work: str, partitions: int) -> dict[str, float]:
    data = os.path.join(work, "many")
    batch = batch_of(2048, 100)
    t0 = time.perf_counter()
    with no_fsync():
        m = LogManager(data, max_open_files=512)
        for p in range(partitions):
            log = m.create_log(f"topic-{p % 100}", p // 100)
            log.append(batch)
            log.append(batch)
        m.close()
    setup = time.perf_counter() - t0
    opens = []
    for _ in range(3):
        t0 = time.perf_counter()
        m = LogManager(data, max_open_files=512)
        opens.append(time.perf_counter() - t0)
        assert len(m) == partitions
        m.close()
    # Unclean: the open is as lazy; each log recovers on first use.
    m = LogManager(data, max_open_files=512)
    m._lock_fd and os.close(m._lock_fd)  # a crash: no close, no marker
    t0 = time.perf_counter()
    m2 = LogManager(data, max_open_files=512)
    unclean_open = time.perf_counter() - t0
    t0 = time.perf_counter()
    m2.recover_all()
    recover_all = time.perf_counter() - t0
    t0 = time.perf_counter()
    for log in m2.logs():
        log.append(batch)
    first_appends = time.perf_counter() - t0
    fds = m2.files.open_count
    with no_fsync():
        m2.close()
    m3 = LogManager(data, max_open_files=512)
    t0 = time.perf_counter()
    for log in m3.logs():
        log.load()
    clean_load_all = time.perf_counter() - t0
    with no_fsync():
        m3.close()
    shutil.rmtree(data)
    return {
        "partitions": partitions,
        "setup_s": setup,
        "open_best_s": min(opens),
        "open_median_s": statistics.median(opens),
        "unclean_open_s": unclean_open,
        "recover_all_s": recover_all,
        "clean_load_all_s": clean_load_all,
        "first_append_each_s": first_appends,
        "open_fds": fds,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dir", default=tempfile.gettempdir(), help="where to put test data")
    parser.add_argument("--size-mib", type=int, default=1024, help="bytes per append run")
    parser.add_argument("--rounds", type=int, default=7, help="append runs per method")
    parser.add_argument("--partitions", type=int, default=10000)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    work = tempfile.mkdtemp(prefix="strom-bench-storage-", dir=args.dir)
    try:
        print(f"python {platform.python_version()}, {os.cpu_count()} cores, data in {work}")
        a = bench_append(work, args.size_mib * MIB, args.rounds)
        print(
            f"append, {a['batch_bytes'] / MIB:.2f} MiB batches, {a['total_mib']:.0f} MiB per run: "
            f"os.write {a['plain_mib_s']:.0f} MiB/s, Log.append {a['strom_mib_s']:.0f} MiB/s, "
            f"ratio {a['ratio']:.2f} (median of paired rounds; goal >= 0.8)"
        )
        print(
            f"  per-round ratios {', '.join(f'{x:.2f}' for x in a['ratios'])}; per MiB: "
            f"os.write {a['write_us_per_mib']:.0f} us, Log.append {a['append_us_per_mib']:.0f} us, "
            f"of which batch validation {a['validate_us_per_mib']:.0f} us "
            f"(a bare CRC32C of bytes: {a['crc_us_per_mib']:.0f} us)"
        )
        print(f"append, {a['small_batch_bytes']} B batches: {a['small_appends_s']:.0f} appends/s")
        r = bench_read(work)
        print(
            f"read (1 MiB fetches, sequential): pread {r['pread_mib_s']:.0f} MiB/s, "
            f"sendfile {r['sendfile_mib_s']:.0f} MiB/s; "
            f"random-offset Log.read lookups {r['lookups_s']:.0f}/s"
        )
        shutil.rmtree(os.path.join(work, "append-0"), ignore_errors=True)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(work, "plain.bin"))
        rec = bench_recovery(work, args.size_mib * MIB)
        print(
            "recovery after unclean shutdown (full scan + CRC + index rebuild): "
            f"1 MiB batches {rec['1mib_warm_s_per_gib']:.2f} s/GiB warm, "
            f"{rec['1mib_cold_s_per_gib']:.2f} s/GiB cold; "
            f"16 KiB batches {rec['16kib_warm_s_per_gib']:.2f} s/GiB warm, "
            f"{rec['16kib_cold_s_per_gib']:.2f} s/GiB cold"
        )
        o = bench_open(work, args.partitions)
        print(
            f"open data dir with {o['partitions']} partitions: "
            f"{o['open_best_s']:.3f} s best, {o['open_median_s']:.3f} s median (goal < 2 s); "
            f"unclean open {o['unclean_open_s']:.3f} s; then recovering all "
            f"{o['recover_all_s']:.2f} s; loading all after a clean open "
            f"{o['clean_load_all_s']:.2f} s; first append to each {o['first_append_each_s']:.2f} s "
            f"with {o['open_fds']} fds open (limit 512)"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
