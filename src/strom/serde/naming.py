"""Subject name strategies: which registry subject a topic's key or value schema goes under."""

from __future__ import annotations

from collections.abc import Callable

from strom.serde.errors import SerializationError

SubjectNameStrategy = Callable[[str, bool, "str | None"], str]


def topic_name_strategy(topic: str, is_key: bool, record_name: str | None) -> str:
    """``{topic}-key`` or ``{topic}-value`` (Confluent's default)."""
    return f"{topic}-key" if is_key else f"{topic}-value"


def record_name_strategy(topic: str, is_key: bool, record_name: str | None) -> str:
    """The record's full name, whatever the topic."""
    return _require(record_name, "record_name_strategy")


def topic_record_name_strategy(topic: str, is_key: bool, record_name: str | None) -> str:
    """``{topic}-{record full name}``."""
    return f"{topic}-{_require(record_name, 'topic_record_name_strategy')}"


def _require(record_name: str | None, strategy: str) -> str:
    if not record_name:
        raise SerializationError(
            f"{strategy} needs a named schema (an Avro record, or a JSON schema with a title)"
        )
    return record_name
