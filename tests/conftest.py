"""Shared pytest fixtures: real `strom serve` processes on free loopback ports."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import settings

# CI runs the property tests with a fixed seed, so a red build is reproducible and a green one
# cannot turn red by chance; local runs keep exploring new examples.
settings.register_profile("ci", derandomize=True, deadline=None)
if os.environ.get("CI"):
    settings.load_profile("ci")

STROM = [sys.executable, "-m", "strom.cli.main"]
_LISTENING = re.compile(rb"listening on ([\d.]+):(\d+)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class StromProcess:
    """A `strom serve` subprocess; start/stop/kill it, and read its log."""

    data_dir: Path
    config: dict[str, str] = field(default_factory=dict)
    port: int = 0
    proc: subprocess.Popen | None = None
    log_path: Path | None = None
    registry_listen: str = "off"  # HOST:PORT for a schema registry beside the broker

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 20.0) -> StromProcess:
        if not self.port:
            self.port = free_port()
        args = [*STROM, "serve", "--data-dir", str(self.data_dir)]
        args += ["--listen", f"127.0.0.1:{self.port}", "--log-level", "INFO"]
        args += ["--registry-listen", self.registry_listen]
        if self.config:
            cfg = self.data_dir.parent / f"{self.data_dir.name}.properties"
            cfg.write_text("".join(f"{k}={v}\n" for k, v in self.config.items()))
            args += ["--config", str(cfg)]
        self.log_path = self.data_dir.parent / f"{self.data_dir.name}.log"
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child
        self.proc = subprocess.Popen(args, stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"strom serve exited early:\n{self.log()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"strom serve did not listen within {timeout}s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path else ""

    def stop(self, timeout: float = 20.0) -> int:
        """SIGTERM and wait: a clean shutdown."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        rc = self.proc.returncode
        self.proc = None
        return rc

    def kill(self) -> None:
        """SIGKILL: an unclean stop."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def rss_bytes(self) -> int:
        assert self.proc is not None
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        return 0


@pytest.fixture
def strom_factory(tmp_path: Path) -> Iterator:
    """Make (and always stop) strom processes: strom_factory(config={...}, name="b0")."""
    made: list[StromProcess] = []

    def make(config: dict[str, str] | None = None, name: str = "data") -> StromProcess:
        p = StromProcess(tmp_path / name, dict(config or {}))
        made.append(p)
        return p.start()

    yield make
    for p in made:
        p.kill() if os.environ.get("STROM_TEST_KILL") else p.stop()


@pytest.fixture
def strom(strom_factory) -> StromProcess:  # noqa: ANN001
    """One running single-node broker with a fresh data dir."""
    return strom_factory()


def require_kcat() -> str:
    path = shutil.which("kcat")
    if path is None:
        pytest.skip("kcat is not installed (scripts/setup.sh --test installs it)")
    return path
