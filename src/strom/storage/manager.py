"""All logs in a data dir: create, delete, retention, compaction, flushes, checkpoints."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from strom.protocol.errors import ErrorCode, KafkaError
from strom.storage.checkpoints import (
    HIGH_WATERMARK_CHECKPOINT,
    LOG_START_OFFSET_CHECKPOINT,
    RECOVERY_POINT_CHECKPOINT,
    CheckpointError,
    OffsetCheckpoint,
)
from strom.storage.config import LogConfig, read_config_file, write_config_file
from strom.storage.files import DEFAULT_MAX_OPEN_FILES, FileCache, fsync_dir
from strom.storage.log import Log, parse_topic_partition
from strom.storage.segment import IndexCache

if TYPE_CHECKING:  # the cleaner is imported when first needed (start-up does without it)
    from strom.storage.cleaner import CleanerStats, LogCleaner

logger = logging.getLogger(__name__)

CLEAN_SHUTDOWN_FILE = ".kafka_cleanshutdown"
LOCK_FILE = ".lock"
TOPIC_CONFIG_DIR = "topic-configs"
DELETE_DIR_SUFFIX = "-delete"

_LEGAL_TOPIC = re.compile(r"^[a-zA-Z0-9._-]{1,249}$")

TopicPartition = tuple[str, int]


@dataclass(frozen=True, slots=True)
class OpenStats:
    """How opening the data dir went."""

    logs: int
    clean_shutdown: bool
    seconds: float


def _rmtree(path: str, ignore_errors: bool = False) -> None:
    import shutil  # here: it imports bz2 and lzma, which `strom serve` starts without

    shutil.rmtree(path, ignore_errors=ignore_errors)


def validate_topic_name(topic: str) -> None:
    """Kafka's rules: 1-249 of [a-zA-Z0-9._-], not "." or ".."."""
    if topic in (".", "..") or not _LEGAL_TOPIC.match(topic):
        raise KafkaError(f"illegal topic name {topic!r}", code=ErrorCode.INVALID_TOPIC_EXCEPTION)


class LogManager:
    """Owns every partition log under one data directory.

    Opening is cheap: the directory is listed and the checkpoints read, but no segment or
    index is touched until a log is first used (then, after an unclean shutdown, that log is
    recovered from its recovery point before it serves anything). The periodic work is
    exposed as plain methods for the broker's loop: run_retention, run_cleaner, flush_due,
    checkpoint. close() flushes, checkpoints and writes the clean-shutdown marker.
    """

    def __init__(
        self,
        data_dir: str,
        default_config: LogConfig | None = None,
        *,
        max_open_files: int = DEFAULT_MAX_OPEN_FILES,
        max_loaded_indexes: int = 4096,
        cleaner: LogCleaner | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.data_dir = os.path.abspath(data_dir)
        self.default_config = default_config if default_config is not None else LogConfig()
        self.files = FileCache(max_open_files)
        self.indexes = IndexCache(max_loaded_indexes)
        self._cleaner = cleaner
        self._clock = clock
        self._lock = threading.RLock()
        self._logs: dict[TopicPartition, Log] = {}
        self._topic_overrides: dict[str, dict[str, str]] = {}
        self._topic_configs: dict[str, LogConfig] = {}
        self._closed = False
        self._lock_fd: int | None = None
        self.had_clean_shutdown = False
        self.open_stats = self._open()

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    @property
    def cleaner(self) -> LogCleaner:
        """The compactor (a default LogCleaner, made on first use, unless one was given)."""
        if self._cleaner is None:
            with self._lock:
                if self._cleaner is None:
                    from strom.storage.cleaner import LogCleaner

                    self._cleaner = LogCleaner()
        return self._cleaner

    @cleaner.setter
    def cleaner(self, cleaner: LogCleaner) -> None:
        self._cleaner = cleaner

    # -- opening -----------------------------------------------------------------------------

    def _path(self, name: str) -> str:
        return os.path.join(self.data_dir, name)

    def _open(self) -> OpenStats:
        t0 = time.monotonic()
        try:
            os.makedirs(self._path(TOPIC_CONFIG_DIR), exist_ok=True)
            self._take_lock()
        except OSError as e:
            raise KafkaError(
                f"cannot open data dir {self.data_dir}: {e}", code=ErrorCode.KAFKA_STORAGE_ERROR
            ) from e
        marker = self._path(CLEAN_SHUTDOWN_FILE)
        clean = os.path.exists(marker)
        self.had_clean_shutdown = clean
        recovery_points = self._read_checkpoint(RECOVERY_POINT_CHECKPOINT)
        log_starts = self._read_checkpoint(LOG_START_OFFSET_CHECKPOINT)
        watermarks = self._read_checkpoint(HIGH_WATERMARK_CHECKPOINT)
        self._load_topic_configs()
        with os.scandir(self.data_dir) as entries:
            for entry in entries:
                if not entry.is_dir(follow_symlinks=False):
                    continue
                name = entry.name
                if name.endswith(DELETE_DIR_SUFFIX):
                    logger.info("removing log directory %s left by an earlier delete", name)
                    _rmtree(entry.path, ignore_errors=True)
                    continue
                tp = parse_topic_partition(name)
                if tp is None:
                    continue
                self._logs[tp] = Log(
                    entry.path,
                    self._config_for(tp[0]),
                    files=self.files,
                    indexes=self.indexes,
                    recovery_point=recovery_points.get(tp, 0),
                    log_start_offset=log_starts.get(tp, 0),
                    high_watermark=watermarks.get(tp, 0),
                    needs_recovery=not clean,
                    clock=self._clock,
                    name=name,
                )
        if clean:
            os.unlink(marker)  # from now on a crash is an unclean shutdown
            fsync_dir(self.data_dir)
        stats = OpenStats(len(self._logs), clean, time.monotonic() - t0)
        logger.info(
            "opened data dir %s: %d logs, %s shutdown, %.3f s%s",
            self.data_dir,
            stats.logs,
            "clean" if clean else "unclean",
            stats.seconds,
            "" if clean else " (each log recovers from its recovery point on first use)",
        )
        return stats

    def _take_lock(self) -> None:
        fd = os.open(self._path(LOCK_FILE), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise KafkaError(
                f"data dir {self.data_dir} is in use by another process",
                code=ErrorCode.KAFKA_STORAGE_ERROR,
            ) from None
        self._lock_fd = fd

    def _read_checkpoint(self, name: str) -> dict[TopicPartition, int]:
        try:
            return OffsetCheckpoint(self._path(name)).read()
        except CheckpointError as e:
            logger.warning("ignoring unreadable checkpoint %s: %s", name, e)
            return {}

    def _load_topic_configs(self) -> None:
        config_dir = self._path(TOPIC_CONFIG_DIR)
        for name in os.listdir(config_dir):
            if not name.endswith(".properties"):
                if name.endswith(".tmp"):
                    os.unlink(os.path.join(config_dir, name))
                continue
            topic = name[: -len(".properties")]
            try:
                overrides = read_config_file(os.path.join(config_dir, name))
                config = LogConfig.from_props(overrides, self.default_config)
            except (OSError, KafkaError) as e:
                logger.error("topic %s: unreadable config file (%s); using defaults", topic, e)
                continue
            self._topic_overrides[topic] = dict(overrides)
            self._topic_configs[topic] = config

    def _config_for(self, topic: str) -> LogConfig:
        return self._topic_configs.get(topic, self.default_config)

    # -- logs --------------------------------------------------------------------------------

    def get_log(self, topic: str, partition: int) -> Log | None:
        """The log of a partition, or None if this data dir has none."""
        return self._logs.get((topic, partition))

    def logs(self) -> list[Log]:
        """Every log, in no particular order."""
        return list(self._logs.values())

    def partitions(self) -> list[TopicPartition]:
        return list(self._logs)

    def topics(self) -> set[str]:
        return {t for t, _ in self._logs}

    def __len__(self) -> int:
        return len(self._logs)

    def create_log(
        self,
        topic: str,
        partition: int,
        config: LogConfig | Mapping[str, object] | None = None,
    ) -> Log:
        """Create (or return the existing) log of a partition. `config` holds the topic's
        overrides (Kafka names) or a whole LogConfig; given, it becomes the topic's config."""
        validate_topic_name(topic)
        if partition < 0:
            raise KafkaError(f"invalid partition {partition}", code=ErrorCode.INVALID_PARTITIONS)
        with self._lock:
            self._check_open()
            if config is not None:
                overrides = dict(config.overrides) if isinstance(config, LogConfig) else config
                normalized = LogConfig.normalize(overrides)
                if normalized != self._topic_overrides.get(topic):
                    self.set_topic_config(topic, normalized)
            existing = self._logs.get((topic, partition))
            if existing is not None:
                return existing
            path = self._path(f"{topic}-{partition}")
            try:
                os.makedirs(path, exist_ok=True)
            except OSError as e:
                raise KafkaError(
                    f"cannot create log {topic}-{partition}: {e}",
                    code=ErrorCode.KAFKA_STORAGE_ERROR,
                ) from e
            log = Log(
                path,
                self._config_for(topic),
                files=self.files,
                indexes=self.indexes,
                clock=self._clock,
            )
            log.load()
            self._logs[(topic, partition)] = log
            logger.info("created log %s-%d", topic, partition)
            return log

    def delete_log(self, topic: str, partition: int) -> bool:
        """Delete a partition's log: rename its directory to `...-delete`, then remove it."""
        with self._lock:
            log = self._logs.pop((topic, partition), None)
        if log is None:
            return False
        log.close(flush=False)
        doomed = self._path(f"{topic}-{partition}.{uuid.uuid4().hex}{DELETE_DIR_SUFFIX}")
        try:
            os.replace(log.dir, doomed)
            fsync_dir(self.data_dir)
        except OSError as e:
            raise KafkaError(
                f"cannot delete log {topic}-{partition}: {e}", code=ErrorCode.KAFKA_STORAGE_ERROR
            ) from e
        _rmtree(doomed, ignore_errors=True)
        logger.info("deleted log %s-%d", topic, partition)
        return True

    def delete_topic(self, topic: str) -> int:
        """Delete every partition of a topic and its persisted config."""
        with self._lock:
            parts = [p for t, p in self._logs if t == topic]
        for p in parts:
            self.delete_log(topic, p)
        with self._lock:
            self._topic_overrides.pop(topic, None)
            self._topic_configs.pop(topic, None)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._topic_config_path(topic))
        return len(parts)

    # -- topic configs -----------------------------------------------------------------------

    def _topic_config_path(self, topic: str) -> str:
        return os.path.join(self.data_dir, TOPIC_CONFIG_DIR, f"{topic}.properties")

    def topic_config(self, topic: str) -> LogConfig:
        """The effective config of a topic (defaults plus its overrides)."""
        return self._config_for(topic)

    def topic_overrides(self, topic: str) -> dict[str, str]:
        return dict(self._topic_overrides.get(topic, {}))

    def set_topic_config(self, topic: str, overrides: Mapping[str, object]) -> LogConfig:
        """Replace a topic's overrides (validated like Kafka: INVALID_CONFIG), persist them,
        and apply them to the topic's logs."""
        validate_topic_name(topic)
        normalized = LogConfig.normalize(overrides)
        config = LogConfig.from_props(normalized, self.default_config)
        with self._lock:
            try:
                write_config_file(
                    self._topic_config_path(topic),
                    normalized,
                    header=f"config overrides of topic {topic}",
                )
            except OSError as e:
                raise KafkaError(
                    f"cannot persist config of {topic}: {e}", code=ErrorCode.KAFKA_STORAGE_ERROR
                ) from e
            self._topic_overrides[topic] = normalized
            self._topic_configs[topic] = config
            for (t, _p), log in self._logs.items():
                if t == topic:
                    log.config = config
        return config

    def alter_topic_config(
        self, topic: str, set_: Mapping[str, object] | None = None, delete: list[str] | None = None
    ) -> LogConfig:
        """Incrementally change a topic's overrides (IncrementalAlterConfigs)."""
        overrides: dict[str, object] = dict(self._topic_overrides.get(topic, {}))
        for name in delete or ():
            overrides.pop(name, None)
        overrides.update(set_ or {})
        return self.set_topic_config(topic, overrides)

    def set_default_config(self, config: LogConfig) -> None:
        """New broker-level defaults; every topic's effective config is recomputed."""
        with self._lock:
            self.default_config = config
            for topic, overrides in self._topic_overrides.items():
                self._topic_configs[topic] = LogConfig.from_props(overrides, config)
            for (topic, _p), log in self._logs.items():
                log.config = self._config_for(topic)

    # -- periodic work -----------------------------------------------------------------------

    def run_retention(self, now_ms: int | None = None) -> int:
        """Delete segments past retention (and below log start offsets) in every log, and
        remove deleted files whose delay has passed. Returns segments deleted."""
        now = self._now_ms() if now_ms is None else now_ms
        deleted = 0
        for log in self.logs():
            if log.closed:
                continue
            try:
                deleted += log.delete_old_segments(now)
                log.delete_expired_files(now)
            except KafkaError as e:
                logger.error("%s: retention failed: %s", log.name, e)
        return deleted

    def run_cleaner(self, now_ms: int | None = None, max_logs: int = 1) -> list[CleanerStats]:
        """Compact up to `max_logs` logs, dirtiest first, among those that need it."""
        now = self._now_ms() if now_ms is None else now_ms
        candidates = []
        for log in self.logs():
            if log.closed or not log.config.compact:
                continue
            try:
                rng = self.cleaner.needs_cleaning(log, now)
            except (KafkaError, OSError) as e:
                logger.error("%s: cannot assess for cleaning: %s", log.name, e)
                continue
            if rng is not None:
                candidates.append((rng.must_clean, rng.dirty_ratio, log))
        candidates.sort(key=lambda c: (c[0], c[1]), reverse=True)
        results = []
        for _must, _ratio, log in candidates[:max_logs]:
            try:
                stats = self.cleaner.clean(log, now)
            except (KafkaError, OSError) as e:
                logger.error("%s: cleaning failed: %s", log.name, e)
                continue
            if stats is not None:
                results.append(stats)
        return results

    def flush_due(self, now_ms: int | None = None) -> int:
        """Flush every log whose flush.ms has passed or that rolled a segment since its last
        flush. Returns how many logs were flushed."""
        now = self._now_ms() if now_ms is None else now_ms
        flushed = 0
        for log in self.logs():
            try:
                if log.flush_due(now):
                    flushed += 1
            except KafkaError as e:
                logger.error("%s: flush failed: %s", log.name, e)
        return flushed

    def checkpoint(self) -> None:
        """Write the recovery-point, log-start-offset and high-watermark checkpoints."""
        logs = list(self._logs.items())
        recovery = {tp: log.recovery_point for tp, log in logs}
        starts = {tp: log.log_start_offset for tp, log in logs}
        watermarks = {tp: log.high_watermark for tp, log in logs}
        OffsetCheckpoint(self._path(RECOVERY_POINT_CHECKPOINT)).write(recovery)
        OffsetCheckpoint(self._path(LOG_START_OFFSET_CHECKPOINT)).write(starts)
        OffsetCheckpoint(self._path(HIGH_WATERMARK_CHECKPOINT)).write(watermarks)

    def recover_all(self) -> int:
        """Open (and, after an unclean shutdown, recover) every log now. Returns the count."""
        for log in self.logs():
            log.load()
        return len(self._logs)

    # -- shutdown ----------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise KafkaError("log manager is closed", code=ErrorCode.KAFKA_STORAGE_ERROR)

    def close(self) -> None:
        """Flush and close every log, write the checkpoints, then the clean-shutdown marker
        (left out if some log was never recovered, so the next start still recovers it)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            pending = 0
            failed = False
            for log in self._logs.values():
                if log.needs_recovery and not log.loaded:
                    pending += 1
                try:
                    log.close(flush=True)
                except (KafkaError, OSError) as e:
                    failed = True
                    logger.error("%s: close failed: %s", log.name, e)
            try:
                self.checkpoint()
            except KafkaError as e:
                failed = True
                logger.error("cannot write checkpoints on close: %s", e)
            self.files.close_all()
            if pending or failed:
                logger.warning(
                    "not marking a clean shutdown: %d log(s) unrecovered, errors: %s",
                    pending,
                    failed,
                )
            else:
                fd = os.open(
                    self._path(CLEAN_SHUTDOWN_FILE), os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644
                )
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
                fsync_dir(self.data_dir)
            if self._lock_fd is not None:
                os.close(self._lock_fd)
                self._lock_fd = None
            logger.info("closed data dir %s (%d logs)", self.data_dir, len(self._logs))

    def __enter__(self) -> LogManager:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
