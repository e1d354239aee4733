"""The JSON of each znode as Kafka 3.x writes it in ZooKeeper mode, decoded strictly."""

# Decoding accepts the versions listed per znode and ignores keys it does not know (as Kafka
# does, so newer writers stay readable); anything malformed (not JSON, a missing field, a wrong
# type, an unknown version) raises CodecError naming the znode and the field.

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from strom.cluster.coordination.errors import CodecError
from strom.cluster.metadata import topic_id_from_str, topic_id_str

LEADER_RECOVERED = 0
LEADER_RECOVERING = 1


# ---- the data ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One listener of a broker, written as "LISTENER://host:port"."""

    listener: str
    host: str
    port: int

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.listener}://{host}:{self.port}"


@dataclass(frozen=True, slots=True)
class FeatureRange:
    min_version: int
    max_version: int


@dataclass(frozen=True)
class BrokerRegistration:
    """/brokers/ids/N (ephemeral). The broker id is the znode's name, not part of the JSON."""

    broker_id: int
    endpoints: tuple[Endpoint, ...]
    #: listener name -> security protocol, e.g. {"PLAINTEXT": "PLAINTEXT"}
    security_protocols: Mapping[str, str]
    rack: str | None = None
    jmx_port: int = -1
    timestamp_ms: int = 0
    features: Mapping[str, FeatureRange] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ControllerRecord:
    """/controller (ephemeral): who the controller is."""

    broker_id: int
    timestamp_ms: int
    kraft_controller_epoch: int = -1  # -1: a ZooKeeper-mode controller


@dataclass(frozen=True)
class TopicAssignment:
    """/brokers/topics/T: the replicas of each partition (and those being reassigned)."""

    topic_id: bytes | None
    partitions: Mapping[int, tuple[int, ...]]
    adding_replicas: Mapping[int, tuple[int, ...]] = field(default_factory=dict)
    removing_replicas: Mapping[int, tuple[int, ...]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PartitionState:
    """/brokers/topics/T/partitions/P/state. Its znode version is the partition epoch."""

    leader: int
    leader_epoch: int
    isr: tuple[int, ...]
    controller_epoch: int
    leader_recovery_state: int = LEADER_RECOVERED


@dataclass(frozen=True, slots=True)
class ProducerIdBlock:
    """/latest_producer_id_block: the last block handed out, both ends inclusive."""

    broker_id: int
    block_start: int
    block_end: int

    @property
    def size(self) -> int:
        return self.block_end - self.block_start + 1


@dataclass(frozen=True, slots=True)
class ConfigChange:
    """One /config/changes/config_change_NNNNNNNNNN notification."""

    sequence: int
    entity_type: str  # "topics" or "brokers"
    entity_name: str


# ---- strict reading helpers ----------------------------------------------------------------


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def _object(data: bytes | None, where: str) -> dict[str, Any]:
    if not data:
        raise CodecError(f"{where}: empty znode, expected a JSON object")
    try:
        obj = json.loads(data)
    except (UnicodeDecodeError, ValueError) as exc:
        raise CodecError(f"{where}: not JSON ({exc})") from None
    if not isinstance(obj, dict):
        raise CodecError(f"{where}: expected a JSON object, got {type(obj).__name__}")
    return obj


def _get(obj: Mapping[str, Any], key: str, where: str) -> Any:
    if key not in obj:
        raise CodecError(f"{where}: missing field {key!r}")
    return obj[key]


def _int(value: Any, where: str, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise CodecError(f"{where}: field {key!r} must be an integer, got {value!r}")
    return value


def _str(value: Any, where: str, key: str) -> str:
    if not isinstance(value, str):
        raise CodecError(f"{where}: field {key!r} must be a string, got {value!r}")
    return value


def _int_text(value: Any, where: str, key: str) -> int:
    """A long Kafka writes as a decimal string (timestamps, producer ids)."""
    text = _str(value, where, key)
    try:
        return int(text, 10)
    except ValueError:
        raise CodecError(f"{where}: field {key!r} must be a decimal number, got {text!r}") from None


def _int_list(value: Any, where: str, key: str) -> tuple[int, ...]:
    if not isinstance(value, list):
        raise CodecError(f"{where}: field {key!r} must be a list of integers, got {value!r}")
    return tuple(_int(v, where, key) for v in value)


def _version(obj: Mapping[str, Any], allowed: tuple[int, ...], where: str) -> int:
    version = _int(_get(obj, "version", where), where, "version")
    if version not in allowed:
        raise CodecError(f"{where}: unsupported version {version} (supported: {allowed})")
    return version


def _replica_map(value: Any, where: str, key: str) -> dict[int, tuple[int, ...]]:
    if not isinstance(value, dict):
        raise CodecError(f"{where}: field {key!r} must be an object, got {value!r}")
    out: dict[int, tuple[int, ...]] = {}
    for name, replicas in value.items():
        if not name.isdigit():
            raise CodecError(f"{where}: {key!r} has a non-numeric partition {name!r}")
        out[int(name)] = _int_list(replicas, where, f"{key}.{name}")
    return dict(sorted(out.items()))


def _replica_json(replicas: Mapping[int, tuple[int, ...]]) -> dict[str, list[int]]:
    return {str(p): list(r) for p, r in sorted(replicas.items())}


# ---- /brokers/ids/N ------------------------------------------------------------------------


def parse_endpoint(text: str, where: str = "endpoint") -> Endpoint:
    """ "LISTENER://host:port" (an IPv6 host in brackets) as an Endpoint."""
    listener, sep, rest = text.partition("://")
    host, colon, port = rest.rpartition(":")
    if not sep or not listener or not colon or not port.lstrip("-").isdigit():
        raise CodecError(f"{where}: malformed endpoint {text!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return Endpoint(listener, host, int(port))


def encode_broker(reg: BrokerRegistration) -> bytes:
    """Version 5 (Kafka 2.7+): host/port are the PLAINTEXT endpoint's, or null/-1."""
    plain = next(
        (e for e in reg.endpoints if reg.security_protocols.get(e.listener) == "PLAINTEXT"), None
    )
    return _dumps(
        {
            "version": 5,
            "host": plain.host if plain else None,
            "port": plain.port if plain else -1,
            "endpoints": [str(e) for e in reg.endpoints],
            "listener_security_protocol_map": dict(reg.security_protocols),
            "rack": reg.rack,
            "jmx_port": reg.jmx_port,
            "timestamp": str(reg.timestamp_ms),
            "features": {
                name: {"min_version": r.min_version, "max_version": r.max_version}
                for name, r in reg.features.items()
            },
        }
    )


def decode_broker(broker_id: int, data: bytes | None) -> BrokerRegistration:
    """Versions 4 and 5 (every broker since Kafka 0.10.1 writes the listener map)."""
    where = f"/brokers/ids/{broker_id}"
    obj = _object(data, where)
    version = _version(obj, (4, 5), where)
    raw_endpoints = _get(obj, "endpoints", where)
    if not isinstance(raw_endpoints, list):
        raise CodecError(f"{where}: field 'endpoints' must be a list, got {raw_endpoints!r}")
    endpoints = tuple(parse_endpoint(_str(e, where, "endpoints"), where) for e in raw_endpoints)
    protocols = _get(obj, "listener_security_protocol_map", where)
    if not isinstance(protocols, dict):
        raise CodecError(f"{where}: 'listener_security_protocol_map' must be an object")
    protocols = {
        k: _str(v, where, f"listener_security_protocol_map.{k}") for k, v in protocols.items()
    }
    for e in endpoints:
        if e.listener not in protocols:
            raise CodecError(f"{where}: listener {e.listener!r} has no security protocol")
    rack = obj.get("rack")
    if rack is not None:
        rack = _str(rack, where, "rack")
    features: dict[str, FeatureRange] = {}
    if version >= 5:
        raw_features = obj.get("features", {})
        if not isinstance(raw_features, dict):
            raise CodecError(f"{where}: field 'features' must be an object")
        for name, r in raw_features.items():
            key = f"features.{name}"
            if not isinstance(r, dict):
                raise CodecError(f"{where}: field {key!r} must be an object")
            features[name] = FeatureRange(
                _int(_get(r, "min_version", where), where, key),
                _int(_get(r, "max_version", where), where, key),
            )
    return BrokerRegistration(
        broker_id=broker_id,
        endpoints=endpoints,
        security_protocols=protocols,
        rack=rack,
        jmx_port=_int(obj.get("jmx_port", -1), where, "jmx_port"),
        timestamp_ms=_int_text(_get(obj, "timestamp", where), where, "timestamp"),
        features=features,
    )


# ---- /controller and /controller_epoch -----------------------------------------------------


def encode_controller(record: ControllerRecord) -> bytes:
    """Version 2 (Kafka 3.4+, which added kraftControllerEpoch; -1 from a ZooKeeper broker)."""
    return _dumps(
        {
            "version": 2,
            "brokerid": record.broker_id,
            "timestamp": str(record.timestamp_ms),
            "kraftControllerEpoch": record.kraft_controller_epoch,
        }
    )


def decode_controller(data: bytes | None) -> ControllerRecord:
    """Versions 1 (Kafka before 3.4) and 2."""
    where = "/controller"
    obj = _object(data, where)
    _version(obj, (1, 2), where)
    return ControllerRecord(
        broker_id=_int(_get(obj, "brokerid", where), where, "brokerid"),
        timestamp_ms=_int_text(_get(obj, "timestamp", where), where, "timestamp"),
        kraft_controller_epoch=_int(
            obj.get("kraftControllerEpoch", -1), where, "kraftControllerEpoch"
        ),
    )


def encode_controller_epoch(epoch: int) -> bytes:
    """A bare decimal number, not JSON."""
    return str(epoch).encode()


def decode_controller_epoch(data: bytes | None) -> int:
    text = (data or b"").decode("ascii", "replace")
    if not text.isdigit():
        raise CodecError(f"/controller_epoch: expected a decimal number, got {text!r}")
    return int(text)


# ---- /brokers/topics/T and its partition states --------------------------------------------


def encode_topic(assignment: TopicAssignment) -> bytes:
    """Version 3 (Kafka 2.8+: topic ids); version 2 added the reassignment maps."""
    obj: dict[str, Any] = {"version": 3}
    if assignment.topic_id is not None:
        obj["topic_id"] = topic_id_str(assignment.topic_id)
    obj["partitions"] = _replica_json(assignment.partitions)
    obj["adding_replicas"] = _replica_json(assignment.adding_replicas)
    obj["removing_replicas"] = _replica_json(assignment.removing_replicas)
    return _dumps(obj)


def decode_topic(name: str, data: bytes | None) -> TopicAssignment:
    """Versions 1 to 3; the topic id is None when an older writer left it out."""
    where = f"/brokers/topics/{name}"
    obj = _object(data, where)
    _version(obj, (1, 2, 3), where)
    topic_id = None
    if "topic_id" in obj:
        text = _str(obj["topic_id"], where, "topic_id")
        try:
            topic_id = topic_id_from_str(text)
        except ValueError:
            raise CodecError(f"{where}: malformed topic_id {text!r}") from None
    return TopicAssignment(
        topic_id=topic_id,
        partitions=_replica_map(_get(obj, "partitions", where), where, "partitions"),
        adding_replicas=_replica_map(obj.get("adding_replicas", {}), where, "adding_replicas"),
        removing_replicas=_replica_map(
            obj.get("removing_replicas", {}), where, "removing_replicas"
        ),
    )


def encode_partition_state(state: PartitionState) -> bytes:
    """Version 1; like Kafka, leader_recovery_state is written only when not RECOVERED (0)."""
    obj: dict[str, Any] = {
        "version": 1,
        "leader": state.leader,
        "leader_epoch": state.leader_epoch,
        "controller_epoch": state.controller_epoch,
        "isr": list(state.isr),
    }
    if state.leader_recovery_state != LEADER_RECOVERED:
        obj["leader_recovery_state"] = state.leader_recovery_state
    return _dumps(obj)


def decode_partition_state(where: str, data: bytes | None) -> PartitionState:
    obj = _object(data, where)
    _version(obj, (1,), where)
    recovery = _int(
        obj.get("leader_recovery_state", LEADER_RECOVERED), where, "leader_recovery_state"
    )
    if recovery not in (LEADER_RECOVERED, LEADER_RECOVERING):
        raise CodecError(f"{where}: unknown leader_recovery_state {recovery}")
    return PartitionState(
        leader=_int(_get(obj, "leader", where), where, "leader"),
        leader_epoch=_int(_get(obj, "leader_epoch", where), where, "leader_epoch"),
        isr=_int_list(_get(obj, "isr", where), where, "isr"),
        controller_epoch=_int(_get(obj, "controller_epoch", where), where, "controller_epoch"),
        leader_recovery_state=recovery,
    )


# ---- /latest_producer_id_block -------------------------------------------------------------


def encode_producer_id_block(block: ProducerIdBlock) -> bytes:
    """Version 1; Kafka writes the two ends as decimal strings."""
    return _dumps(
        {
            "version": 1,
            "broker": block.broker_id,
            "block_start": str(block.block_start),
            "block_end": str(block.block_end),
        }
    )


def decode_producer_id_block(data: bytes | None) -> ProducerIdBlock:
    where = "/latest_producer_id_block"
    obj = _object(data, where)
    _version(obj, (1,), where)
    block = ProducerIdBlock(
        broker_id=_int(_get(obj, "broker", where), where, "broker"),
        block_start=_int_text(_get(obj, "block_start", where), where, "block_start"),
        block_end=_int_text(_get(obj, "block_end", where), where, "block_end"),
    )
    if not 0 <= block.block_start <= block.block_end:
        raise CodecError(f"{where}: empty or negative block {block}")
    return block


# ---- /config -------------------------------------------------------------------------------


def encode_config(config: Mapping[str, str]) -> bytes:
    """/config/<type>/<name>: version 1, every value a string."""
    return _dumps({"version": 1, "config": {k: str(v) for k, v in sorted(config.items())}})


def decode_config(where: str, data: bytes | None) -> dict[str, str]:
    obj = _object(data, where)
    _version(obj, (1,), where)
    config = _get(obj, "config", where)
    if not isinstance(config, dict):
        raise CodecError(f"{where}: field 'config' must be an object, got {config!r}")
    return {k: _str(v, where, f"config.{k}") for k, v in config.items()}


def encode_config_change(entity_type: str, entity_name: str) -> bytes:
    """Version 2: {"entity_path": "<type>/<name>"}."""
    return _dumps({"version": 2, "entity_path": f"{entity_type}/{entity_name}"})


def decode_config_change(sequence: int, where: str, data: bytes | None) -> ConfigChange:
    """Versions 1 (entity_type + entity_name) and 2 (entity_path)."""
    obj = _object(data, where)
    version = _version(obj, (1, 2), where)
    if version == 1:
        entity_type = _str(_get(obj, "entity_type", where), where, "entity_type")
        entity_name = _str(_get(obj, "entity_name", where), where, "entity_name")
    else:
        path = _str(_get(obj, "entity_path", where), where, "entity_path")
        entity_type, sep, entity_name = path.partition("/")
        if not sep or not entity_type or not entity_name:
            raise CodecError(f"{where}: malformed entity_path {path!r}")
    return ConfigChange(sequence, entity_type, entity_name)


# ---- /cluster/id ---------------------------------------------------------------------------


def encode_cluster_id(cluster_id: str) -> bytes:
    """{"version": "1", "id": ...}: Kafka writes this version as a string."""
    return _dumps({"version": "1", "id": cluster_id})


def decode_cluster_id(data: bytes | None) -> str:
    where = "/cluster/id"
    obj = _object(data, where)
    version = _get(obj, "version", where)
    if version not in ("1", 1):
        raise CodecError(f"{where}: unsupported version {version!r}")
    cluster_id = _str(_get(obj, "id", where), where, "id")
    if not cluster_id:
        raise CodecError(f"{where}: empty cluster id")
    return cluster_id
