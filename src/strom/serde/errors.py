"""The errors raised by strom.serde: bad bytes or objects, and schema registry failures."""

from __future__ import annotations


class SerializationError(Exception):
    """An object could not be serialized, or bytes could not be deserialized."""


class RegistryError(Exception):
    """The schema registry answered with an error (or could not be reached: status 0).

    ``status`` is the HTTP status, ``error_code`` Confluent's error code (such as 40401,
    subject not found), ``message`` the registry's message.
    """

    def __init__(self, status: int, error_code: int, message: str) -> None:
        super().__init__(f"schema registry error {error_code} (HTTP {status}): {message}")
        self.status = status
        self.error_code = error_code
        self.message = message
