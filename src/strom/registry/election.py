"""Which registry process writes: the members of one consumer group share the single
partition of `_schemas`, and the member holding it is the primary. Each member's client id
carries its URL, so the others find the primary (DescribeGroups) and forward writes to it."""

from __future__ import annotations

import logging
import threading
import time

from confluent_kafka import Consumer, KafkaException
from confluent_kafka.admin import AdminClient

log = logging.getLogger(__name__)

GROUP = "schema-registry"
CLIENT_PREFIX = "strom-registry|"


class PrimaryElection:
    """Joins the group and keeps polling (so the membership stays alive); `is_primary` says
    whether this process holds the partition, `primary_url()` who does."""

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        url: str,
        group: str = GROUP,
        client_config: dict[str, object] | None = None,
    ) -> None:
        self.topic = topic
        self.url = url
        self.group = group
        self._base = {"bootstrap.servers": bootstrap, **(client_config or {})}
        self._primary = threading.Event()
        self._stop = threading.Event()
        self._cached: tuple[float, str | None] = (0.0, None)
        self._consumer = Consumer(
            {
                **self._base,
                "group.id": group,
                "client.id": CLIENT_PREFIX + url,
                "enable.auto.commit": False,
                "session.timeout.ms": 10_000,
                "heartbeat.interval.ms": 1_000,
            }
        )
        self._admin = AdminClient(self._base)
        self._thread = threading.Thread(target=self._run, name="registry-election", daemon=True)

    @property
    def is_primary(self) -> bool:
        return self._primary.is_set()

    def start(self) -> None:
        self._consumer.subscribe(
            [self.topic], on_assign=self._assigned, on_revoke=self._revoked, on_lost=self._revoked
        )
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)
        try:
            self._consumer.close()  # leaves the group: another member takes over at once
        except KafkaException as e:
            log.info("registry: leaving group %s: %s", self.group, e)

    def wait_primary(self, timeout: float) -> str | None:
        """The primary's URL once some member is primary (this one, or another: a member
        that went away may still be listed under this one's URL until its session ends), or
        None when the time is up."""
        deadline = time.monotonic() + timeout
        while True:
            url = self.primary_url(fresh=True)
            if self.is_primary or (url is not None and url != self.url):
                return url
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.2)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._consumer.poll(0.2)
            except KafkaException as e:
                log.warning("registry: election poll failed: %s", e)
                time.sleep(0.5)

    def _assigned(self, consumer: Consumer, partitions: list) -> None:
        if partitions:
            log.info("registry: %s is now the primary", self.url)
            self._primary.set()
            consumer.pause(partitions)  # holding it is the point, not reading it

    def _revoked(self, _consumer: Consumer, partitions: list) -> None:
        if partitions and self.is_primary:
            log.info("registry: %s is no longer the primary", self.url)
        self._primary.clear()

    def primary_url(self, fresh: bool = False) -> str | None:
        """The primary's URL (None if none is known); looked up at most once a second."""
        if self.is_primary:
            return self.url
        at, url = self._cached
        if not fresh and time.monotonic() - at < 1.0:
            return url
        url = None
        try:
            futures = self._admin.describe_consumer_groups([self.group], request_timeout=5)
            description = futures[self.group].result(10)
        except KafkaException as e:
            log.info("registry: cannot describe group %s: %s", self.group, e)
        else:
            for member in description.members:
                assignment = member.assignment.topic_partitions if member.assignment else []
                if any(tp.topic == self.topic for tp in assignment):
                    client_id = member.client_id or ""
                    if client_id.startswith(CLIENT_PREFIX):
                        url = client_id[len(CLIENT_PREFIX) :]
        self._cached = (time.monotonic(), url)
        return url
