"""Serializers in the Confluent wire format (Avro, JSON Schema) and plain Kafka serializers."""

from strom.serde.avro import AvroDeserializer, AvroSerializer
from strom.serde.client import RegisteredSchema, RegistryClient, SchemaReference, SchemaRegistry
from strom.serde.errors import RegistryError, SerializationError
from strom.serde.json_schema import JSONDeserializer, JSONSerializer
from strom.serde.naming import (
    record_name_strategy,
    topic_name_strategy,
    topic_record_name_strategy,
)
from strom.serde.strings import (
    DoubleDeserializer,
    DoubleSerializer,
    IntegerDeserializer,
    IntegerSerializer,
    LongDeserializer,
    LongSerializer,
    StringDeserializer,
    StringSerializer,
)
from strom.serde.wire import frame, unframe

__all__ = [
    "AvroDeserializer",
    "AvroSerializer",
    "DoubleDeserializer",
    "DoubleSerializer",
    "IntegerDeserializer",
    "IntegerSerializer",
    "JSONDeserializer",
    "JSONSerializer",
    "LongDeserializer",
    "LongSerializer",
    "RegisteredSchema",
    "RegistryClient",
    "RegistryError",
    "SchemaReference",
    "SchemaRegistry",
    "SerializationError",
    "StringDeserializer",
    "StringSerializer",
    "frame",
    "record_name_strategy",
    "topic_name_strategy",
    "topic_record_name_strategy",
    "unframe",
]
