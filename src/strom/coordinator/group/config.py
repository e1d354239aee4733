"""The group coordinator's settings, by their Kafka broker property names."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from strom.protocol.errors import ErrorCode, KafkaError

ASSIGNORS = ("uniform", "range")


@dataclass
class GroupConfig:
    offsets_topic_partitions: int = 50
    offsets_topic_segment_bytes: int = 104857600
    offsets_retention_ms: int = 7 * 24 * 3600 * 1000
    offsets_retention_check_interval_ms: int = 600_000
    offsets_commit_timeout_ms: int = 5000
    offset_metadata_max_bytes: int = 4096
    initial_rebalance_delay_ms: int = 3000
    min_session_timeout_ms: int = 6000
    max_session_timeout_ms: int = 1_800_000
    max_size: int = 2_147_483_647
    # KIP-848 consumer groups
    consumer_session_timeout_ms: int = 45_000
    consumer_min_session_timeout_ms: int = 45_000
    consumer_max_session_timeout_ms: int = 60_000
    consumer_heartbeat_interval_ms: int = 5000
    consumer_max_size: int = 2_147_483_647
    consumer_assignors: list[str] = field(default_factory=lambda: list(ASSIGNORS))
    # Strom's own bounds on what one member may make the coordinator hold.
    max_member_metadata_bytes: int = 1 << 20  # all of one member's join protocols together
    max_pending_members: int = 10_000  # per group: member ids handed out, not yet joined
    max_pending_members_total: int = 50_000  # across all groups (~1.6 KB each at most)

    @classmethod
    def from_props(cls, props: Mapping[str, object]) -> GroupConfig:
        """Build from broker properties (Kafka names); unknown names are ignored."""
        c = cls()

        def get(name: str, default: int) -> int:
            raw = props.get(name)
            if raw is None:
                return default
            try:
                return int(str(raw).strip())
            except ValueError:
                raise KafkaError(
                    f"{name}: expected an integer, got {raw!r}", ErrorCode.INVALID_CONFIG
                ) from None

        c.offsets_topic_partitions = max(1, get("offsets.topic.num.partitions", 50))
        c.offsets_topic_segment_bytes = get("offsets.topic.segment.bytes", 104857600)
        c.offsets_retention_ms = get("offsets.retention.minutes", 10080) * 60_000
        c.offsets_retention_check_interval_ms = get("offsets.retention.check.interval.ms", 600_000)
        c.offsets_commit_timeout_ms = get("offsets.commit.timeout.ms", 5000)
        c.offset_metadata_max_bytes = get("offset.metadata.max.bytes", 4096)
        c.initial_rebalance_delay_ms = get("group.initial.rebalance.delay.ms", 3000)
        c.min_session_timeout_ms = get("group.min.session.timeout.ms", 6000)
        c.max_session_timeout_ms = get("group.max.session.timeout.ms", 1_800_000)
        c.max_size = get("group.max.size", 2_147_483_647)
        c.consumer_session_timeout_ms = get("group.consumer.session.timeout.ms", 45_000)
        c.consumer_min_session_timeout_ms = get(
            "group.consumer.min.session.timeout.ms", min(45_000, c.consumer_session_timeout_ms)
        )
        c.consumer_max_session_timeout_ms = get(
            "group.consumer.max.session.timeout.ms", max(60_000, c.consumer_session_timeout_ms)
        )
        c.consumer_heartbeat_interval_ms = get("group.consumer.heartbeat.interval.ms", 5000)
        c.consumer_max_size = get("group.consumer.max.size", 2_147_483_647)
        assignors = props.get("group.consumer.assignors")
        if assignors:
            names = []
            for item in str(assignors).split(","):
                name = item.strip().rsplit(".", 1)[-1]
                # Kafka's class names map to the assignor names.
                name = {"UniformAssignor": "uniform", "RangeAssignor": "range"}.get(name, name)
                if name not in ASSIGNORS:
                    raise KafkaError(
                        f"group.consumer.assignors: unknown assignor {item.strip()!r}",
                        ErrorCode.INVALID_CONFIG,
                    )
                names.append(name)
            c.consumer_assignors = names or list(ASSIGNORS)
        c.max_pending_members = get("strom.group.max.pending.members", 10_000)
        c.max_pending_members_total = get("strom.group.max.pending.members.total", 50_000)
        c.max_member_metadata_bytes = get("strom.group.max.member.metadata.bytes", 1 << 20)
        return c
