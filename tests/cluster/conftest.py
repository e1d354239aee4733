"""Fixtures for the cluster tests: a real standalone ZooKeeper on a free loopback port."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from kazoo.client import KazooClient

from strom.cluster.coordination import ZkSession
from tests.conftest import free_port

ZOOKEEPER_JAR = Path("/usr/share/java/zookeeper.jar")
TICK_MS = 500  # sessions may then time out in 1 to 10 s (2 to 20 ticks)


@dataclass
class ZooKeeperServer:
    """A standalone ZooKeeper (Debian's jar) bound to 127.0.0.1; start/stop it, keeping its
    port and data dir so a restart resumes the same sessions."""

    data_dir: Path
    port: int = 0
    proc: subprocess.Popen | None = None

    @property
    def hosts(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> ZooKeeperServer:
        if not self.port:
            self.port = free_port()
        config = self.data_dir / "zoo.cfg"
        config.write_text(
            f"dataDir={self.data_dir / 'data'}\n"
            f"clientPort={self.port}\n"
            "clientPortAddress=127.0.0.1\n"
            f"tickTime={TICK_MS}\n"
            "maxClientCnxns=0\n"
            "maxSessionTimeout=60000\n"  # tests that outlive a server restart ask for long ones
            "admin.enableServer=false\n"
            "4lw.commands.whitelist=srvr,ruok\n"
        )
        log = open(self.data_dir / "zookeeper.log", "ab")  # noqa: SIM115 (owned by the process)
        self.proc = subprocess.Popen(
            [
                "java",
                "-Xmx128m",
                "-XX:+UseSerialGC",
                "-Dzookeeper.admin.enableServer=false",
                "-cp",
                str(ZOOKEEPER_JAR),
                "org.apache.zookeeper.server.ZooKeeperServerMain",
                str(config),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"zookeeper exited with {self.proc.returncode}: {self.log()[-2000:]}"
                )
            if self.answers():
                return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"zookeeper did not answer within {timeout} s: {self.log()[-2000:]}")

    def answers(self) -> bool:
        """True if the server says it is serving (the `srvr` four-letter command)."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                sock.sendall(b"srvr")
                reply = b""
                while chunk := sock.recv(4096):
                    reply += chunk
        except OSError:
            return False
        return b"Mode: standalone" in reply

    def log(self) -> str:
        path = self.data_dir / "zookeeper.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self, timeout: float = 10.0) -> None:
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout)

    def connect(self) -> str:
        """A connect string with a chroot of its own, so each test sees only its znodes."""
        return f"{self.hosts}/strom-test-{uuid.uuid4().hex[:12]}"


def start_zookeeper() -> tuple[ZooKeeperServer, Path]:
    if shutil.which("java") is None or not ZOOKEEPER_JAR.exists():
        pytest.skip(
            f"ZooKeeper is not installed ({ZOOKEEPER_JAR} or java missing): "
            "run scripts/setup.sh --test"
        )
    root = Path(tempfile.mkdtemp(prefix="strom-zk-"))
    try:
        return ZooKeeperServer(root).start(), root
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise


@pytest.fixture(scope="session")
def zookeeper() -> Iterator[ZooKeeperServer]:
    """One ZooKeeper for the whole run (tests stay apart through chroots)."""
    server, root = start_zookeeper()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def own_zookeeper() -> Iterator[ZooKeeperServer]:
    """A ZooKeeper for one test only, which it may stop and restart."""
    server, root = start_zookeeper()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def zk_connect(zookeeper: ZooKeeperServer) -> str:
    """A fresh connect string (own chroot) on the shared server."""
    return zookeeper.connect()


@pytest.fixture
def new_session(zk_connect: str) -> Iterator[Callable[..., ZkSession]]:
    """Start sessions in this test's chroot; all are closed at the end of the test."""
    sessions: list[ZkSession] = []

    def make(connect: str | None = None, **kwargs: int) -> ZkSession:
        session = ZkSession(connect or zk_connect, **kwargs)
        sessions.append(session)
        session.start()
        return session

    yield make
    for session in sessions:
        session.close()


def expire_session(session: ZkSession) -> None:
    """Make the server expire `session` now (as a long partition would): a second client
    joins the same session and closes it."""
    session_id, password = session.client.client_id
    thief = KazooClient(hosts=session.connect.hosts, client_id=(session_id, password))
    thief.start(timeout=10)
    thief.stop()
    thief.close()


def eventually(condition: Callable[[], object], timeout: float = 10.0, what: str = "") -> None:
    """Wait until `condition()` is true."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or condition}")
        time.sleep(0.02)
