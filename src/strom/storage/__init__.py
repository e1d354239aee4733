"""Partition logs on disk: segments, indexes, retention, compaction, recovery."""

from strom.storage.cleaner import CleanableRange, CleanerStats, LogCleaner
from strom.storage.config import CONFIG_KEYS, InvalidConfigError, LogConfig
from strom.storage.log import (
    AppendOrigin,
    AppendResult,
    BatchInfo,
    LeaderEpochCache,
    Log,
    LogRecovery,
    ReadResult,
    TimestampOffset,
)
from strom.storage.manager import LogManager

__all__ = [
    "CONFIG_KEYS",
    "AppendOrigin",
    "AppendResult",
    "BatchInfo",
    "CleanableRange",
    "CleanerStats",
    "InvalidConfigError",
    "LeaderEpochCache",
    "Log",
    "LogCleaner",
    "LogConfig",
    "LogManager",
    "LogRecovery",
    "ReadResult",
    "TimestampOffset",
]
