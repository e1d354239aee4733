"""Protocol codec micro-benchmarks: the per-request costs the broker pays before any I/O.

Run: .venv/bin/python bench/protocol.py [--quick]

Each figure is the time of one operation, from timeit-style repetition (R repeats of N calls;
median and minimum of the per-call times). Goals are from the protocol issue.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import struct
import sys
import timeit
import warnings
from collections.abc import Callable
from dataclasses import dataclass

from strom.protocol import messages
from strom.protocol.frames import decode_request, decode_response, encode_request, encode_response

MIB = 1 << 20
PRODUCE, FETCH, METADATA, API_VERSIONS = 0, 1, 3, 18


def record_batch(size: int) -> bytes:
    """One uncompressed RecordBatch v2 of about `size` bytes (1 KiB values)."""
    value = b"v" * 1000
    count = size // (len(value) + 12)
    try:
        from strom.protocol.records import build_batch
    except ImportError:
        build_batch = None
    if build_batch is not None:
        return build_batch([(None, value)] * count, timestamp=1_700_000_000_000)
    from kafka.record.default_records import DefaultRecordBatchBuilder

    builder = DefaultRecordBatchBuilder(
        magic=2, compression_type=0, is_transactional=0, producer_id=-1, producer_epoch=-1,
        base_sequence=-1, batch_size=size * 2,
    )  # fmt: skip
    for i in range(count):
        builder.append(i, timestamp=1_700_000_000_000, key=None, value=value, headers=[])
    return bytes(builder.build())


# --- the workloads ----------------------------------------------------------------------------


def produce_frame(batch: bytes) -> bytes:
    req = messages.REQUESTS[PRODUCE]
    body = req(
        transactional_id=None,
        acks=-1,
        timeout_ms=30000,
        topic_data=[
            req.TopicProduceData(
                name="bench-topic",
                partition_data=[req.PartitionProduceData(index=0, records=batch)],
            )
        ],
    )
    return encode_request(body, 9, correlation_id=1, client_id="bench")[4:]


def fetch_response(batches: list[bytes]) -> object:
    resp = messages.RESPONSES[FETCH]
    parts = [
        resp.PartitionData(
            partition_index=i,
            high_watermark=1_000_000,
            last_stable_offset=1_000_000,
            log_start_offset=0,
            records=b,
        )
        for i, b in enumerate(batches)
    ]
    return resp(
        throttle_time_ms=0,
        error_code=0,
        session_id=0,
        responses=[resp.FetchableTopicResponse(topic="bench-topic", partitions=parts)],
    )


def metadata_response(topics: int = 100, partitions: int = 10, replicas: int = 3) -> object:
    resp = messages.RESPONSES[METADATA]
    brokers = [
        resp.MetadataResponseBroker(node_id=i, host=f"broker-{i}.example.com", port=9092, rack=None)
        for i in range(replicas)
    ]
    topic_list = []
    for t in range(topics):
        parts = [
            resp.MetadataResponsePartition(
                error_code=0,
                partition_index=p,
                leader_id=p % replicas,
                leader_epoch=5,
                replica_nodes=[(p + r) % replicas for r in range(replicas)],
                isr_nodes=[(p + r) % replicas for r in range(replicas)],
                offline_replicas=[],
            )
            for p in range(partitions)
        ]
        topic_list.append(
            resp.MetadataResponseTopic(
                error_code=0,
                name=f"topic-{t:04d}",
                topic_id=t.to_bytes(16, "big"),
                is_internal=False,
                partitions=parts,
                topic_authorized_operations=-(2**31),
            )
        )
    return resp(
        throttle_time_ms=0,
        brokers=brokers,
        cluster_id="bench-cluster",
        controller_id=0,
        topics=topic_list,
    )


def api_versions_response() -> object:
    resp = messages.RESPONSES[API_VERSIONS]
    keys = [
        resp.ApiVersion(api_key=k, min_version=c.MIN_VERSION, max_version=c.MAX_VERSION)
        for k, c in sorted(messages.REQUESTS.items())
    ]
    return resp(error_code=0, api_keys=keys, throttle_time_ms=0)


# --- measuring ----------------------------------------------------------------------------------


@dataclass
class Result:
    name: str
    goal_us: float | None
    median_us: float
    min_us: float
    note: str = ""

    @property
    def verdict(self) -> str:
        if self.goal_us is None:
            return "reference"
        return "ok" if self.median_us <= self.goal_us else "MISSED"


def measure(fn: Callable[[], object], number: int, repeat: int) -> tuple[float, float]:
    fn()  # warm up
    times = timeit.Timer(fn).repeat(repeat=repeat, number=number)
    per_call = [t / number * 1e6 for t in times]
    return statistics.median(per_call), min(per_call)


def run(quick: bool) -> list[Result]:
    scale = 0.1 if quick else 1.0

    def n(k: int) -> int:
        return max(1, int(k * scale))

    results = []

    # (a) parse a ProduceRequest v9 frame carrying one 1 MiB record batch
    batch = record_batch(MIB)
    frame = produce_frame(batch)
    header, body = decode_request(frame)
    records = body.topic_data[0].partition_data[0].records
    assert isinstance(records, memoryview) and records.obj is frame, "records were copied"
    assert bytes(records) == batch
    med, low = measure(lambda: decode_request(frame), n(20000), 15)
    results.append(
        Result("(a) decode_request ProduceRequest v9, 1 MiB batch", 5, med, low,
               f"frame {len(frame)} B; records = memoryview into the frame")
    )  # fmt: skip

    # (b) encode a FetchResponse v12 with 10 partitions x 1 MiB as buffers
    batches = [record_batch(MIB) for _ in range(10)]
    fetch = fetch_response(batches)
    buffers = encode_response(fetch, 12, correlation_id=2)
    assert all(any(buf is b for buf in buffers) for b in batches), "record data was copied"
    total = sum(len(b) for b in buffers)
    assert struct.unpack_from(">i", buffers[0])[0] == total - 4
    med, low = measure(lambda: encode_response(fetch, 12, 2), n(20000), 15)
    results.append(
        Result("(b) encode_response FetchResponse v12, 10 x 1 MiB", 20, med, low,
               f"{len(buffers)} buffers, {total / MIB:.1f} MiB, record data not copied")
    )  # fmt: skip

    # (c) encode and (d) decode a MetadataResponse v12: 100 topics x 10 partitions x 3 replicas
    meta = metadata_response()
    meta_frame = b"".join(bytes(b) for b in encode_response(meta, 12, correlation_id=3))
    assert decode_response(meta_frame[4:], METADATA, 12) == (3, meta)
    med, low = measure(lambda: encode_response(meta, 12, 3), n(500), 15)
    results.append(
        Result("(c) encode_response MetadataResponse v12, 100 x 10 x 3", 1000, med, low,
               f"{len(meta_frame)} B")
    )  # fmt: skip
    body_view = memoryview(meta_frame)[4:]
    med, low = measure(lambda: decode_response(body_view, METADATA, 12), n(500), 15)
    results.append(
        Result("(d) decode_response MetadataResponse v12, 100 x 10 x 3", 1000, med, low,
               f"{len(meta_frame)} B")
    )  # fmt: skip

    # (e) ApiVersions round trip: client request -> broker decode -> broker answer -> client
    req_cls = messages.REQUESTS[API_VERSIONS]
    api_req = req_cls(client_software_name="bench", client_software_version="1.0")
    api_resp = api_versions_response()

    def api_versions_round_trip() -> None:
        raw = encode_request(api_req, 3, 4, "bench")
        hdr, _ = decode_request(memoryview(raw)[4:])
        out = b"".join(encode_response(api_resp, hdr.api_version, hdr.correlation_id))
        decode_response(memoryview(out)[4:], API_VERSIONS, 3)

    med, low = measure(api_versions_round_trip, n(5000), 15)
    results.append(
        Result("(e) ApiVersions v3 round trip (4 codec calls)", None, med, low,
               f"{len(messages.REQUESTS)} api keys in the answer")
    )  # fmt: skip

    # for scale: kafka-python 3.x's codec on the same Metadata bytes (its decode, its encode)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            from kafka.protocol.metadata import MetadataResponse as KpMetadataResponse
    except ImportError:
        return results
    kp_body = bytes(meta_frame[9:])  # size, correlation id, empty tag section
    kp_obj = KpMetadataResponse.decode(kp_body, version=12)
    kp_obj._header = None
    assert bytes(kp_obj.encode(version=12)) == kp_body
    med, low = measure(lambda: KpMetadataResponse.decode(kp_body, version=12), n(200), 9)
    results.append(Result("    kafka-python 3.0.12 decode, same Metadata", None, med, low))
    med, low = measure(lambda: kp_obj.encode(version=12), n(200), 9)
    results.append(Result("    kafka-python 3.0.12 encode, same Metadata", None, med, low))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer iterations (smoke run)")
    parser.add_argument("--strict", action="store_true", help="exit 1 if a goal is missed")
    args = parser.parse_args()
    print(f"CPython {platform.python_version()} on {platform.system()} {platform.machine()}")
    results = run(args.quick)
    width = max(len(r.name) for r in results)
    print(f"{'operation':<{width}}  {'goal µs':>8}  {'median µs':>10}  {'min µs':>9}  verdict")
    for r in results:
        goal = "-" if r.goal_us is None else f"< {r.goal_us:g}"
        print(
            f"{r.name:<{width}}  {goal:>8}  {r.median_us:>10.2f}  {r.min_us:>9.2f}  {r.verdict}"
            + (f"  ({r.note})" if r.note else "")
        )
    if args.strict and any(r.verdict == "MISSED" for r in results):
        sys.exit(1)


if __name__ == "__main__":
    main()
