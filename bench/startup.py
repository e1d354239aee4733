"""Start-up benchmark: from spawning `strom serve` to its first ApiVersions answer.

    .venv/bin/python bench/startup.py [--runs 15] [--partitions 1000] [--strom DIR]

Measures a fresh data dir and one holding a topic with `--partitions` partitions (written by
a first start, then shut down cleanly), spawning the broker the way a user does
(`python -m strom.cli.main serve`), and reports the median, lower quartile, min and max of
each (on a shared machine the quartile and min show the code; the median also shows the
neighbours). With `--strom DIR` it runs the `src/` of another checkout (a before/after
comparison), alternating run by run with this one, which goes first every other run, so that
both see the same machine.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


API_VERSIONS_V0 = struct.pack(">ihhi", 10, 18, 0, 1) + struct.pack(">h", 0)


def _api_versions(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
            s.sendall(API_VERSIONS_V0)
            head = s.recv(4)
            return len(head) == 4
    except OSError:
        return False


def time_to_answer(src: str, data_dir: str, extra: list[str] | None = None) -> float:
    """Seconds from spawn to the first ApiVersions answer; the broker is stopped after."""
    port = free_port()
    env = dict(os.environ, PYTHONPATH=src)
    with open(os.path.join(src, "strom", "cli", "serve.py")) as f:
        if "--registry-listen" in f.read():  # the broker alone, in checkouts that have one
            extra = [*(extra or []), "--registry-listen", "off"]
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "strom.cli.main", "serve", "--data-dir", data_dir]
        + ["--listen", f"127.0.0.1:{port}", "--log-level", "WARNING", *(extra or [])],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while not _api_versions(port):
            if proc.poll() is not None:
                raise RuntimeError(f"strom serve exited with {proc.returncode}")
            if time.perf_counter() - t0 > 60:
                raise RuntimeError("no answer within 60 s")
            time.sleep(0.002)
        return time.perf_counter() - t0
    finally:
        proc.terminate()
        proc.wait(30)


def make_partitions(src: str, data_dir: str, count: int) -> None:
    """A data dir holding one topic of `count` partitions, each with a few records."""
    script = f"""
import asyncio
from strom.broker.broker import Broker
from strom.broker.config import BrokerConfig
from strom.protocol.records import build_batch

async def main():
    b = Broker(BrokerConfig.from_props({{}}), {data_dir!r}, port=0)
    await b.start()
    made = b.controller.create_topic("many", {count})
    if asyncio.iscoroutine(made):  # an async controller (this checkout), or a sync one
        await made
    for p in range({count}):
        b.logs.get_log("many", p).append(bytearray(build_batch([(b"k", b"v" * 100)] * 10)))
    await b.stop()

asyncio.run(main())
"""
    subprocess.run([sys.executable, "-c", script], env=dict(os.environ, PYTHONPATH=src), check=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--partitions", type=int, default=1000)
    ap.add_argument("--strom", help="another checkout to compare with (its src/ is used)")
    args = ap.parse_args()
    sources = {"this": os.path.join(HERE, "src")}
    if args.strom:
        sources["other"] = os.path.join(os.path.abspath(args.strom), "src")
    for src in sources.values():  # bytecode written once, as an installed package has it
        subprocess.run([sys.executable, "-m", "compileall", "-q", src], check=True)
    root = tempfile.mkdtemp(prefix="strom-startup-")
    try:
        full = {}
        for name, src in sources.items():
            full[name] = os.path.join(root, f"full-{name}")
            make_partitions(src, full[name], args.partitions)
        results: dict[tuple[str, str], list[float]] = {}
        for i in range(args.runs):
            order = list(sources.items())
            if i % 2:  # neither checkout always runs first (after the other's shutdown)
                order.reverse()
            for name, src in order:
                fresh = os.path.join(root, f"fresh-{name}-{i}")
                results.setdefault((name, "fresh data dir"), []).append(time_to_answer(src, fresh))
                label = f"{args.partitions} partitions"
                results.setdefault((name, label), []).append(time_to_answer(src, full[name]))
        print(f"spawn -> first ApiVersions answer, {args.runs} runs each (seconds)")
        for (name, case), times in results.items():
            p25 = statistics.quantiles(times, n=4)[0] if len(times) > 1 else times[0]
            print(
                f"  {name:5} {case:18} median {statistics.median(times):.3f}  p25 {p25:.3f}"
                f"  min {min(times):.3f}  max {max(times):.3f}"
            )
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
