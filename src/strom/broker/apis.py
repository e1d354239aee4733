"""The APIs this broker answers: for each API key, its handler and the versions it serves.

A handler module is imported when its API is first called, so start-up loads only what the
first requests need (the broker answers ApiVersions long before anyone joins a group)."""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from strom.broker.context import RequestContext, Services

Handler = Callable[[Services, RequestContext, object], Awaitable[object | None]]


@dataclass
class Api:
    module: str  # under strom.broker.handlers
    function: str
    min_version: int
    max_version: int
    _handler: Handler | None = field(default=None, repr=False, compare=False)

    @property
    def handler(self) -> Handler:
        if self._handler is None:
            module = importlib.import_module(f"strom.broker.handlers.{self.module}")
            self._handler = getattr(module, self.function)
        return self._handler


#: api key -> handler and the versions Strom answers.
APIS: dict[int, Api] = {
    0: Api("produce", "handle", 0, 11),
    1: Api("fetch", "handle", 4, 16),
    2: Api("offsets", "handle_list_offsets", 1, 9),
    3: Api("metadata", "handle", 0, 12),
    8: Api("groups", "handle_offset_commit", 0, 9),
    9: Api("groups", "handle_offset_fetch", 0, 9),
    10: Api("coordinator", "handle", 0, 5),
    11: Api("groups", "handle_join_group", 0, 9),
    12: Api("groups", "handle_heartbeat", 0, 4),
    13: Api("groups", "handle_leave_group", 0, 5),
    14: Api("groups", "handle_sync_group", 0, 5),
    15: Api("groups", "handle_describe_groups", 0, 5),
    16: Api("groups", "handle_list_groups", 0, 5),
    18: Api("api_versions", "handle", 0, 4),
    19: Api("topics", "handle_create_topics", 0, 7),
    20: Api("topics", "handle_delete_topics", 0, 6),
    21: Api("partitions_admin", "handle_delete_records", 0, 2),
    22: Api("producer_id", "handle", 0, 5),
    23: Api("offsets", "handle_offset_for_leader_epoch", 0, 4),
    24: Api("transactions", "handle_add_partitions_to_txn", 0, 5),
    25: Api("transactions", "handle_add_offsets_to_txn", 0, 4),
    26: Api("transactions", "handle_end_txn", 0, 4),
    27: Api("transactions", "handle_write_txn_markers", 0, 1),
    28: Api("transactions", "handle_txn_offset_commit", 0, 4),
    32: Api("configs", "handle_describe_configs", 0, 4),
    33: Api("configs", "handle_alter_configs", 0, 2),
    35: Api("cluster", "handle_describe_log_dirs", 0, 4),
    37: Api("partitions_admin", "handle_create_partitions", 0, 3),
    42: Api("groups", "handle_delete_groups", 0, 2),
    44: Api("configs", "handle_incremental_alter_configs", 0, 1),
    47: Api("groups", "handle_offset_delete", 0, 0),
    60: Api("cluster", "handle_describe_cluster", 0, 1),
    61: Api("transactions", "handle_describe_producers", 0, 0),
    65: Api("transactions", "handle_describe_transactions", 0, 0),
    66: Api("transactions", "handle_list_transactions", 0, 1),
    68: Api("groups", "handle_consumer_group_heartbeat", 0, 1),
    69: Api("groups", "handle_consumer_group_describe", 0, 0),
}


def supported_versions() -> dict[int, tuple[int, int]]:
    return {k: (a.min_version, a.max_version) for k, a in APIS.items()}
