"""Running the registry: read `_schemas` through a Kafka cluster, join the election of the
primary, then serve HTTP on uvicorn until SIGINT or SIGTERM."""

from __future__ import annotations

import logging
import signal

from strom.registry.api import make_app
from strom.registry.election import GROUP, PrimaryElection
from strom.registry.kafka_log import TOPIC, KafkaSchemaLog
from strom.registry.service import RegistryService

log = logging.getLogger(__name__)

#: how long start-up waits for the group to pick a primary before serving anyway
ELECTION_WAIT_S = 30.0


def _exit(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def serve(
    bootstrap: str,
    host: str,
    port: int,
    topic: str = TOPIC,
    url: str | None = None,
    group: str = GROUP,
) -> None:
    """Serve the registry of `topic` on the cluster at `bootstrap` at http://host:port; `url`
    is how the other registry processes reach this one (default http://host:port)."""
    import uvicorn

    url = url or f"http://{host}:{port}"
    schema_log = KafkaSchemaLog(bootstrap, topic)
    schema_log.start()
    election = PrimaryElection(bootstrap, topic, url, group)
    try:
        election.start()
        election.wait_primary(ELECTION_WAIT_S)
        app = make_app(RegistryService(schema_log), election)
        config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False)
        log.info(
            "registry: serving %s (Kafka at %s, %s)",
            url,
            bootstrap,
            "primary" if election.is_primary else f"primary {election.primary_url()}",
        )
        # uvicorn stops on SIGTERM, then raises the signal again once its own handler is
        # gone: with this one that ends in SystemExit, so the finally below still leaves the
        # group (another process takes over at once) and closes the clients
        signal.signal(signal.SIGTERM, _exit)
        uvicorn.Server(config).run()
    finally:
        election.close()
        schema_log.close()
