"""The Kafka broker: connections, request routing and the handlers of each API."""
