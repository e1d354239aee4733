"""The `partition.metadata` file of a log directory: the topic id the log belongs to."""

from __future__ import annotations

import os

from strom.storage.files import atomic_write
from strom.storage.properties import read_properties

PARTITION_METADATA = "partition.metadata"


def read_topic_id(directory: str) -> str | None:
    """The topic id (Kafka's base64 text) recorded in `directory`, or None."""
    try:
        return read_properties(os.path.join(directory, PARTITION_METADATA)).get("topic_id")
    except (OSError, ValueError):
        return None


def has_topic_id(directory: str) -> bool:
    """Whether `directory` has a `partition.metadata` file (start-up asks for every log)."""
    try:
        os.stat(f"{directory}/{PARTITION_METADATA}")
    except (OSError, ValueError):
        return False
    return True


def write_topic_id(directory: str, topic_id: str) -> None:
    """Record the topic id of the log in `directory` (durably, replacing any older file)."""
    atomic_write(os.path.join(directory, PARTITION_METADATA), f"version: 0\ntopic_id: {topic_id}\n")
