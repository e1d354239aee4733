"""The Kafka wire protocol, sans-IO: bytes in, objects out, and back."""
