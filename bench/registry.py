"""Schema registry and Avro serde benchmarks against a real `strom serve` with its registry on.

    .venv/bin/python bench/registry.py [--ids 100] [--records 1000] [--rounds 9]
                                       [--mb 512] [--produce-rounds 3] [--skip-produce]

Reports, against one fresh `strom serve --registry-listen 127.0.0.1:<free port>`:

1. schema lookups by id per second: uncached (plain GET /schemas/ids/{id} with one
   httpx.Client over --ids distinct ids, so nothing is cached on the client) and cached
   (strom.serde.RegistryClient.schema_by_id of an id it has already fetched);
2. registrations per second: POST /subjects/{s}/versions, one client, one at a time, of
   --ids distinct schemas under distinct subjects, and of successive versions of one subject
   (each adds an optional field, so the default BACKWARD check runs against the previous one);
3. Avro serialize and deserialize throughput of an ~10-field order record (strings, ints,
   a double, an enum, a nested record, an array, optional unions) through strom.serde's
   AvroSerializer/AvroDeserializer, against fastavro alone (schemaless_writer into a fresh
   BytesIO and getvalue(); schemaless_reader from a BytesIO of the payload; same parsed
   schema, no framing). The two take turns round by round; medians and their ratio. MB/s
   counts the Avro payload bytes on both sides (serde adds a 5-byte header per record).
   A breakdown of serde's own per-call steps follows;
4. broker produce throughput (1 KiB records, acks=1, one partition, confluent-kafka, as
   bench/broker.py) with the registry off and on: a fresh broker per run, --produce-rounds
   rounds alternating (ABBA order), with the registry process's CPU during the run and the
   idle CPU of broker and registry over 5 s before it.

Before each measurement the 1-minute load average is checked; above --max-load the script
waits (30 s at a time, up to 10 minutes) and prints the load it ran under. Client, broker and
registry share this machine.
"""

from __future__ import annotations

import argparse
import io
import json
import random
import shutil
import statistics
import tempfile
import time
import timeit

import fastavro
import httpx

from broker import CLK_TCK, RECORD, Broker, create_topic, produce
from strom.serde import AvroDeserializer, AvroSerializer, RegistryClient
from strom.serde.wire import frame, unframe

CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"
TOPIC = "orders"
IDLE_S = 5.0  # seconds of idle CPU measured before each produce run

ORDER_SCHEMA = json.dumps(
    {
        "type": "record",
        "name": "Order",
        "namespace": "bench.shop",
        "fields": [
            {"name": "order_id", "type": "string"},
            {"name": "customer_id", "type": "long"},
            {"name": "created_at_ms", "type": "long"},
            {
                "name": "status",
                "type": {
                    "type": "enum",
                    "name": "Status",
                    "symbols": ["NEW", "PAID", "SHIPPED", "DELIVERED", "CANCELLED"],
                },
            },
            {"name": "quantity", "type": "int"},
            {"name": "total", "type": "double"},
            {"name": "currency", "type": "string"},
            {
                "name": "shipping",
                "type": {
                    "type": "record",
                    "name": "Address",
                    "fields": [
                        {"name": "street", "type": "string"},
                        {"name": "city", "type": "string"},
                        {"name": "postcode", "type": "string"},
                        {"name": "country", "type": "string"},
                    ],
                },
            },
            {"name": "items", "type": {"type": "array", "items": "string"}},
            {"name": "coupon", "type": ["null", "string"], "default": None},
            {"name": "note", "type": ["null", "string"], "default": None},
        ],
    }
)

CITIES = ["Berlin", "Lisboa", "Kraków", "Nantes", "Göteborg", "Utrecht", "Bologna", "Cork"]
STATUSES = ["NEW", "PAID", "SHIPPED", "DELIVERED", "CANCELLED"]


def orders(n: int, seed: int = 7) -> list[dict]:
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        out.append(
            {
                "order_id": f"ord-{rnd.getrandbits(64):016x}",
                "customer_id": rnd.randrange(1, 10**9),
                "created_at_ms": 1_764_000_000_000 + i * 37,
                "status": rnd.choice(STATUSES),
                "quantity": rnd.randrange(1, 20),
                "total": round(rnd.uniform(1, 2000), 2),
                "currency": rnd.choice(["EUR", "USD", "GBP", "SEK"]),
                "shipping": {
                    "street": f"{rnd.randrange(1, 300)} {rnd.choice(['Main', 'Mill', 'Hill'])} St",
                    "city": rnd.choice(CITIES),
                    "postcode": f"{rnd.randrange(10000, 99999)}",
                    "country": rnd.choice(["DE", "PT", "PL", "FR", "SE", "NL", "IT", "IE"]),
                },
                "items": [f"sku-{rnd.randrange(10**6):06d}" for _ in range(rnd.randrange(1, 6))],
                "coupon": f"SAVE{rnd.randrange(5, 50)}" if rnd.random() < 0.3 else None,
                "note": "leave at the door" if rnd.random() < 0.1 else None,
            }
        )
    return out


# -- machine load ----------------------------------------------------------------------------


def load1() -> float:
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def wait_quiet(label: str, max_load: float, loads: dict[str, float]) -> None:
    """Wait (30 s at a time, at most 10 minutes) until the 1-minute load is below max_load."""
    deadline = time.monotonic() + 600
    load = load1()
    while load > max_load and time.monotonic() < deadline:
        print(f"  load {load:.2f} > {max_load}: waiting 30 s before {label}", flush=True)
        time.sleep(30)
        load = load1()
    loads[label] = load
    print(f"[{label}] load average (1 min) {load:.2f}", flush=True)


# -- registry helpers ------------------------------------------------------------------------


def wait_registry(url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/subjects", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"the registry at {url} did not answer")


def registry_pid(broker_pid: int) -> int | None:
    """The registry process `strom serve` started (its only child), if there is one."""
    try:
        with open(f"/proc/{broker_pid}/task/{broker_pid}/children") as f:
            children = f.read().split()
    except OSError:
        return None
    return int(children[0]) if children else None


def cpu_seconds(pid: int | None) -> float:
    if pid is None:
        return 0.0
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def distinct_schema(i: int) -> str:
    return json.dumps(
        {
            "type": "record",
            "name": f"Rec{i}",
            "namespace": "bench.reg",
            "fields": [
                {"name": "id", "type": "long"},
                {"name": "name", "type": "string"},
                {"name": f"extra_{i}", "type": ["null", "int"], "default": None},
            ],
        }
    )


def evolving_schema(version: int) -> str:
    fields = [{"name": "id", "type": "long"}]
    fields += [
        {"name": f"f{k}", "type": ["null", "string"], "default": None} for k in range(version)
    ]
    return json.dumps({"type": "record", "name": "Evolving", "fields": fields})


def register_all(http: httpx.Client, items: list[tuple[str, str]]) -> tuple[float, list[int]]:
    """Seconds to register (subject, schema) pairs one after another; their ids."""
    ids = []
    t0 = time.perf_counter()
    for subject, schema in items:
        r = http.post(
            f"/subjects/{subject}/versions",
            content=json.dumps({"schema": schema}),
            headers={"Content-Type": CONTENT_TYPE},
        )
        r.raise_for_status()
        ids.append(r.json()["id"])
    return time.perf_counter() - t0, ids


def lookup_pass(http: httpx.Client, ids: list[int]) -> float:
    t0 = time.perf_counter()
    for schema_id in ids:
        r = http.get(f"/schemas/ids/{schema_id}")
        if r.status_code != 200:
            raise RuntimeError(f"GET /schemas/ids/{schema_id}: {r.status_code}")
        r.json()
    return time.perf_counter() - t0


# -- the sections ----------------------------------------------------------------------------


def bench_registry(url: str, n_ids: int, rows: list, lat: dict) -> None:
    with httpx.Client(base_url=url, timeout=30) as http:
        http.get("/subjects").raise_for_status()  # the connection is open
        secs, ids = register_all(
            http, [(f"bench-distinct-{i}-value", distinct_schema(i)) for i in range(n_ids)]
        )
        lat["register distinct"] = secs / n_ids
        rows.append(
            (
                f"registrations, {n_ids} distinct subjects, sequential",
                f"{n_ids / secs:,.0f}/s ({secs / n_ids * 1e3:.2f} ms each)",
            )
        )
        n_versions = max(10, n_ids // 2)
        secs, _ = register_all(
            http, [("bench-evolving-value", evolving_schema(v)) for v in range(n_versions)]
        )
        rows.append(
            (
                f"registrations, {n_versions} versions of one subject (BACKWARD check)",
                f"{n_versions / secs:,.0f}/s ({secs / n_versions * 1e3:.2f} ms each)",
            )
        )
        passes = [lookup_pass(http, ids) for _ in range(3)]
        best, med = min(passes), statistics.median(passes)
        rows.append(
            (
                f"lookups by id, uncached (raw GET, {len(ids)} distinct ids, 3 passes)",
                f"{len(ids) / med:,.0f}/s median, {len(ids) / best:,.0f}/s best "
                f"({med / len(ids) * 1e3:.2f} ms each)",
            )
        )
    with RegistryClient(url) as client:
        first = client.schema_by_id(ids[0])
        assert first.schema
        call = client.schema_by_id
        schema_id = ids[0]
        timer = timeit.Timer(lambda: call(schema_id))
        n = 200_000
        per = min(timer.repeat(5, n)) / n
        rows.append(
            (
                "lookups by id, cached (RegistryClient.schema_by_id, best of 5 × 200k)",
                f"{1 / per / 1e6:.2f} M/s ({per * 1e6:.3f} µs each)",
            )
        )


def bench_serde(url: str, n_records: int, rounds: int, rows: list) -> dict[str, float]:
    records = orders(n_records)
    parsed = fastavro.parse_schema(json.loads(ORDER_SCHEMA))
    client = RegistryClient(url)
    ser = AvroSerializer(client, ORDER_SCHEMA)
    des = AvroDeserializer(client)
    framed = [ser(r, TOPIC) for r in records]  # registers the schema, warms the caches
    payloads = [bytes(unframe(f)[1]) for f in framed]
    for r, p in zip(records, payloads, strict=True):
        buf = io.BytesIO()
        fastavro.schemaless_writer(buf, parsed, r)
        assert buf.getvalue() == p, "serde and fastavro wrote different bytes"
    assert des(framed[0], TOPIC) == fastavro.schemaless_reader(io.BytesIO(payloads[0]), parsed)
    payload_bytes = sum(len(p) for p in payloads)
    repeat = max(1, 20_000 // n_records)  # ~20k records per timed round
    BytesIO = io.BytesIO
    writer = fastavro.schemaless_writer
    reader = fastavro.schemaless_reader

    def fa_write() -> None:
        for _ in range(repeat):
            for r in records:
                buf = BytesIO()
                writer(buf, parsed, r)
                buf.getvalue()

    def serde_write() -> None:
        for _ in range(repeat):
            for r in records:
                ser(r, TOPIC)

    def fa_read() -> None:
        for _ in range(repeat):
            for p in payloads:
                reader(BytesIO(p), parsed)

    def serde_read() -> None:
        for _ in range(repeat):
            for f in framed:
                des(f, TOPIC)

    fns = {"fa_write": fa_write, "serde_write": serde_write, "fa_read": fa_read}
    fns["serde_read"] = serde_read
    times: dict[str, list[float]] = {k: [] for k in fns}
    for i in range(rounds):
        order = list(fns) if i % 2 == 0 else list(reversed(fns))
        for name in order:
            t0 = time.perf_counter()
            fns[name]()
            times[name].append(time.perf_counter() - t0)
    n = repeat * n_records
    per = {k: statistics.median(v) / n for k, v in times.items()}
    best = {k: min(v) / n for k, v in times.items()}
    mb = payload_bytes * repeat / 1e6
    avg = payload_bytes / n_records
    for op, fa, sd in (
        ("serialize", "fa_write", "serde_write"),
        ("deserialize", "fa_read", "serde_read"),
    ):
        for label, key in (("fastavro alone", fa), ("strom.serde", sd)):
            secs = per[key] * n
            rows.append(
                (
                    f"Avro {op}, {label} ({avg:.0f}-byte records)",
                    f"{n / secs / 1e3:,.0f}k rec/s, {mb / secs:.1f} MB/s "
                    f"({per[key] * 1e6:.2f} µs median, {best[key] * 1e6:.2f} best)",
                )
            )
        rows.append(
            (
                f"Avro {op}, strom.serde / fastavro time",
                f"{per[sd] / per[fa]:.3f} median, {best[sd] / best[fa]:.3f} best (goal ≤ 1.10)",
            )
        )
    breakdown(ser, des, records[0], framed[0], payloads[0], parsed, rows)
    client.close()
    return per


def breakdown(ser, des, record, framed, payload, parsed, rows: list) -> None:
    """What serde does per call besides fastavro's own work, each step timed alone."""
    n = 200_000

    def t(fn) -> float:
        return min(timeit.Timer(fn).repeat(5, n)) / n * 1e6

    schema_id, view = unframe(framed)
    empty = t(lambda: None)
    steps = [
        (
            "  serialize: _writer_for(topic) (strategy, record_name, id dict)",
            lambda: ser._writer_for(TOPIC),
        ),
        (
            "  serialize: frame(id, payload) (header pack + concat)",
            lambda: frame(schema_id, payload),
        ),
        (
            "  serialize: io.BytesIO() + getvalue() (fastavro alone does it too)",
            lambda: io.BytesIO().getvalue(),
        ),
        ("  deserialize: unframe(data) (memoryview, checks, slice)", lambda: unframe(framed)),
        (
            "  deserialize: _writer(id) + _reader_parsed()",
            lambda: (des._writer(schema_id), des._reader_parsed()),
        ),
        ("  deserialize: io.BytesIO(memoryview payload) (copies)", lambda: io.BytesIO(view)),
        (
            "  deserialize: io.BytesIO(bytes payload) (fastavro alone; shares)",
            lambda: io.BytesIO(payload),
        ),
    ]
    for name, fn in steps:
        rows.append((name, f"{t(fn) - empty:.3f} µs (call overhead of the timer subtracted)"))


def bench_produce(volume: int, rounds: int, max_load: float, loads: dict, rows: list) -> None:
    results: dict[bool, list[float]] = {False: [], True: []}
    broker_cpu: dict[bool, list[float]] = {False: [], True: []}
    reg_cpu: list[float] = []
    idle: dict[bool, list[float]] = {False: [], True: []}
    for i in range(rounds):
        order = (False, True) if i % 2 == 0 else (True, False)
        for registry in order:
            wait_quiet(
                f"produce round {i + 1}, registry {'on' if registry else 'off'}", max_load, loads
            )
            tmp = tempfile.mkdtemp(prefix="strom-bench-")
            b = Broker(tmp, registry)
            try:
                if b.registry_url:
                    wait_registry(b.registry_url)
                time.sleep(2)  # both settle the same time (the registry's group and topic)
                rpid = registry_pid(b.proc.pid) if registry else None
                cpu0, rcpu0 = b.cpu_seconds(), cpu_seconds(rpid)
                time.sleep(IDLE_S)
                idle_cpu = b.cpu_seconds() - cpu0 + cpu_seconds(rpid) - rcpu0
                idle[registry].append(idle_cpu / IDLE_S)
                create_topic(b.bootstrap, "p", 1)
                cpu0, rcpu0 = b.cpu_seconds(), cpu_seconds(rpid)
                secs, n = produce(b.bootstrap, "p", volume, "1")
                cpu, rcpu = b.cpu_seconds() - cpu0, cpu_seconds(rpid) - rcpu0
            finally:
                b.stop()
                shutil.rmtree(tmp, ignore_errors=True)
            rate = n * RECORD / secs / 1e6
            results[registry].append(rate)
            broker_cpu[registry].append(cpu / (n * RECORD / 1e9))
            if registry:
                reg_cpu.append(rcpu)
            print(
                f"  produce registry {'on ' if registry else 'off'}: {rate:.0f} MB/s, "
                f"broker CPU {cpu / (n * RECORD / 1e9):.2f} s/GB, "
                f"idle CPU (broker + registry) {idle_cpu / IDLE_S:.1%}"
                + (f", registry CPU {rcpu:.2f} s in {secs:.2f} s" if registry else ""),
                flush=True,
            )
    mb = volume >> 20
    for registry in (False, True):
        runs = ", ".join(f"{r:.0f}" for r in results[registry])
        rows.append(
            (
                f"produce acks=1, 1 partition, {mb} MB, registry {'on' if registry else 'off'}",
                f"{statistics.median(results[registry]):.0f} MB/s median (runs {runs}), "
                f"broker CPU {statistics.median(broker_cpu[registry]):.2f} s/GB; idle, "
                f"broker + registry CPU {statistics.median(idle[registry]):.2%} of a core",
            )
        )
    rows.append(
        (
            "produce, registry on / off (medians)",
            f"{statistics.median(results[True]) / statistics.median(results[False]):.3f}; "
            f"registry process CPU during the runs {max(reg_cpu):.2f} s at most",
        )
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ids", type=int, default=100, help="distinct schemas to register/look up")
    ap.add_argument("--records", type=int, default=1000, help="distinct records for serde")
    ap.add_argument("--rounds", type=int, default=9, help="alternating serde rounds")
    ap.add_argument("--mb", type=int, default=512, help="MB per produce run")
    ap.add_argument("--produce-rounds", type=int, default=3)
    ap.add_argument("--skip-produce", action="store_true")
    ap.add_argument("--max-load", type=float, default=1.5, help="wait while load1 is above")
    args = ap.parse_args()
    loads: dict[str, float] = {}
    rows: list[tuple[str, str]] = []
    tmp = tempfile.mkdtemp(prefix="strom-bench-")
    b = Broker(tmp, registry=True)
    try:
        assert b.registry_url
        wait_registry(b.registry_url)
        wait_quiet("registry", args.max_load, loads)
        bench_registry(b.registry_url, args.ids, rows, {})
        wait_quiet("serde", args.max_load, loads)
        bench_serde(b.registry_url, args.records, args.rounds, rows)
    finally:
        b.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    if not args.skip_produce:
        bench_produce(args.mb << 20, args.produce_rounds, args.max_load, loads, rows)
    width = max(len(r[0]) for r in rows)
    print()
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    print("load average (1 min) before each part: " + ", ".join(f"{v:.2f}" for v in loads.values()))


if __name__ == "__main__":
    main()
