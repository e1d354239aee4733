"""An in-memory stand-in for the schema registry, with RegistryClient's methods, for the
serializer tests (the real registry is tested end to end in tests/compat/test_registry.py)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from strom.serde import RegisteredSchema, RegistryError
from strom.serde.client import as_references


class InMemoryRegistry:
    """Test double with RegistryClient's methods; counts the calls it answers."""

    def __init__(self) -> None:
        self.schemas: dict[int, RegisteredSchema] = {}
        self.subjects: dict[str, list[int]] = {}
        self.calls: list[tuple[str, object]] = []

    def register(
        self,
        subject: str,
        schema: str,
        schema_type: str = "AVRO",
        references: Sequence[tuple[str, str, int]] = (),
        normalize: bool = False,
    ) -> int:
        self.calls.append(("register", subject))
        refs = as_references(references)
        schema_id = next(
            (
                i
                for i, s in self.schemas.items()
                if (s.schema, s.schema_type, s.references) == (schema, schema_type, refs)
            ),
            len(self.schemas) + 1,
        )
        self.schemas.setdefault(schema_id, RegisteredSchema(schema_id, schema, schema_type, refs))
        versions = self.subjects.setdefault(subject, [])
        if schema_id not in versions:
            versions.append(schema_id)
        return schema_id

    def lookup(
        self,
        subject: str,
        schema: str,
        schema_type: str = "AVRO",
        references: Sequence[tuple[str, str, int]] = (),
        normalize: bool = False,
    ) -> RegisteredSchema | None:
        self.calls.append(("lookup", subject))
        for number, schema_id in enumerate(self.subjects.get(subject, ()), start=1):
            found = self.schemas[schema_id]
            if (found.schema, found.schema_type) == (schema, schema_type):
                return dataclasses.replace(found, subject=subject, version=number)
        return None

    def schema_by_id(self, schema_id: int) -> RegisteredSchema:
        self.calls.append(("schema_by_id", schema_id))
        if schema_id not in self.schemas:
            raise RegistryError(404, 40403, "Schema not found")
        return self.schemas[schema_id]

    def latest(self, subject: str) -> RegisteredSchema:
        self.calls.append(("latest", subject))
        return self._version(subject, len(self.subjects.get(subject, ())))

    def version(self, subject: str, version: int | str) -> RegisteredSchema:
        self.calls.append(("version", (subject, version)))
        if version == "latest":
            return self._version(subject, len(self.subjects.get(subject, ())))
        return self._version(subject, int(version))

    def _version(self, subject: str, number: int) -> RegisteredSchema:
        versions = self.subjects.get(subject)
        if not versions:
            raise RegistryError(404, 40401, f"Subject '{subject}' not found.")
        if not 1 <= number <= len(versions):
            raise RegistryError(404, 40402, "Version not found.")
        return dataclasses.replace(
            self.schemas[versions[number - 1]], subject=subject, version=number
        )

    def count(self, method: str) -> int:
        return sum(1 for name, _ in self.calls if name == method)
