"""Partition logs on disk: segments, indexes, retention, compaction, recovery.

The names below are loaded from their modules on first use, so that importing one module of
the package (`strom serve` does without the cleaner, say) does not import them all.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
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

_MODULE_OF = {
    "CleanableRange": "cleaner",
    "CleanerStats": "cleaner",
    "LogCleaner": "cleaner",
    "CONFIG_KEYS": "config",
    "InvalidConfigError": "config",
    "LogConfig": "config",
    "AppendOrigin": "log",
    "AppendResult": "log",
    "BatchInfo": "log",
    "LeaderEpochCache": "log",
    "Log": "log",
    "LogRecovery": "log",
    "ReadResult": "log",
    "TimestampOffset": "log",
    "LogManager": "manager",
}

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


def __getattr__(name: str) -> object:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_MODULE_OF})
