"""The errors the coordination layer raises; callers never see kazoo's own exceptions."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from kazoo.exceptions import (
    ConnectionClosedError,
    ConnectionLoss,
    KazooException,
    OperationTimeoutError,
    RolledBackError,
    RuntimeInconsistency,
    SessionExpiredError,
)
from kazoo.retry import RetryFailedError


class CoordinationError(Exception):
    """Base of every error raised by `strom.cluster.coordination`."""


class ZkUnavailableError(CoordinationError):
    """ZooKeeper could not be reached (connection lost, session expired, timed out): the
    operation may or may not have been applied; re-read before acting on it."""


class CodecError(CoordinationError, ValueError):
    """A znode's content is not what Kafka's ZooKeeper layout says it should be."""


class BrokerIdTakenError(CoordinationError):
    """Another live session has registered this broker id."""


class TopicExistsError(CoordinationError):
    """The topic's assignment znode already exists."""


class NoSuchTopicError(CoordinationError):
    """The topic has no assignment znode."""


class StaleStateError(CoordinationError):
    """A compare-and-set found a different znode version than expected: someone else changed
    the state first. Nothing was written."""


class ControllerMovedError(CoordinationError):
    """A write fenced by a controller epoch was refused: another controller has been elected
    since. Nothing was written."""


@contextmanager
def translate(what: str) -> Iterator[None]:
    """Turn kazoo's exceptions raised inside the block into this module's errors; `what`
    names the operation for the message."""
    try:
        yield
    except CoordinationError:
        raise
    except (
        ConnectionLoss,
        ConnectionClosedError,
        SessionExpiredError,
        OperationTimeoutError,
        RetryFailedError,
    ) as exc:
        raise ZkUnavailableError(f"{what}: ZooKeeper unavailable ({type(exc).__name__})") from exc
    except KazooException as exc:
        raise CoordinationError(f"{what}: {type(exc).__name__}: {exc}") from exc


def first_error(results: list[object]) -> Exception | None:
    """The error that failed a kazoo transaction (the other ops only say they were rolled
    back), or None if it was committed."""
    errors = [r for r in results if isinstance(r, Exception)]
    real = [e for e in errors if not isinstance(e, RolledBackError | RuntimeInconsistency)]
    return (real or errors or [None])[0]
