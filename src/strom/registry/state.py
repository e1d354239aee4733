"""The registry's state in memory: subjects, versions, ids, configs and modes, as the records
of the `_schemas` topic leave them (`RegistryState.apply`, in topic order)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace

from strom.registry import records as rec
from strom.registry.records import Record, SchemaValue

log = logging.getLogger(__name__)

#: what an id stands for: the same (type, stored text, references) always gets the same id
IdentityKey = tuple[str, str, tuple[rec.Reference, ...]]


def identity(value: SchemaValue) -> IdentityKey:
    return (value.schema_type, value.schema, value.references)


@dataclass
class RegistryState:
    """Everything the registry serves, rebuilt from the topic by every registry process."""

    subjects: dict[str, dict[int, SchemaValue]] = field(default_factory=dict)
    schemas: dict[int, SchemaValue] = field(default_factory=dict)  # id -> its first version
    ids: dict[IdentityKey, int] = field(default_factory=dict)
    max_id: int = 0
    global_config: str | None = None
    configs: dict[str, str] = field(default_factory=dict)
    global_mode: str | None = None
    modes: dict[str, str] = field(default_factory=dict)

    # -- applying records ------------------------------------------------------------------

    def apply(self, record: Record) -> None:
        """Apply one record; a record this registry cannot use is logged and skipped."""
        try:
            handler = _HANDLERS.get(record.keytype)
            if handler is None:
                log.warning("_schemas: unknown record type %s skipped", record.keytype)
                return
            handler(self, record)
        except rec.MalformedRecord as e:
            log.warning("_schemas: malformed %s record skipped: %s", record.keytype, e)

    def _apply_schema(self, record: Record) -> None:
        assert record.subject is not None and record.version is not None
        versions = self.subjects.setdefault(record.subject, {})
        if record.value is None:  # a hard delete
            old = versions.pop(record.version, None)
            if not versions:
                del self.subjects[record.subject]
            if old is not None:
                self._forget_if_unused(old)
            return
        value = rec.schema_value(record.value)
        versions[record.version] = value
        self.max_id = max(self.max_id, value.id)
        key = identity(value)
        self.ids.setdefault(key, value.id)
        self.schemas.setdefault(value.id, value)

    def _forget_if_unused(self, old: SchemaValue) -> None:
        for versions in self.subjects.values():
            for v in versions.values():
                if v.id == old.id:
                    return
        self.schemas.pop(old.id, None)
        key = identity(old)
        if self.ids.get(key) == old.id:
            del self.ids[key]

    def _apply_config(self, record: Record) -> None:
        level = None if record.value is None else record.value.get("compatibilityLevel")
        if level is not None and not isinstance(level, str):
            raise rec.MalformedRecord(f"compatibilityLevel {level!r}")
        if record.subject is None:
            self.global_config = level
        elif level is None:
            self.configs.pop(record.subject, None)
        else:
            self.configs[record.subject] = level

    def _apply_mode(self, record: Record) -> None:
        mode = None if record.value is None else record.value.get("mode")
        if mode is not None and not isinstance(mode, str):
            raise rec.MalformedRecord(f"mode {mode!r}")
        if record.subject is None:
            self.global_mode = mode
        elif mode is None:
            self.modes.pop(record.subject, None)
        else:
            self.modes[record.subject] = mode

    def _apply_delete_subject(self, record: Record) -> None:
        """Soft-delete the subject's versions up to the one named (Confluent writes it)."""
        if record.value is None or record.subject is None:
            return
        upto = record.value.get("version")
        versions = self.subjects.get(record.subject, {})
        for number, value in list(versions.items()):
            if not isinstance(upto, int) or number <= upto:
                versions[number] = replace(value, deleted=True)

    def _apply_clear_subject(self, record: Record) -> None:
        """Drop the subject's soft-deleted versions (a permanent delete)."""
        if record.subject is None or record.subject not in self.subjects:
            return
        versions = self.subjects[record.subject]
        for number, value in list(versions.items()):
            if value.deleted:
                del versions[number]
                self._forget_if_unused(value)
        if not versions:
            del self.subjects[record.subject]

    # -- reading ---------------------------------------------------------------------------

    def versions(self, subject: str, deleted: bool = False) -> list[SchemaValue]:
        """The subject's versions, oldest first (soft-deleted ones only if `deleted`)."""
        versions = self.subjects.get(subject, {})
        return [versions[n] for n in sorted(versions) if deleted or not versions[n].deleted]

    def subject_names(self, deleted: bool = False) -> list[str]:
        return sorted(s for s in self.subjects if self.versions(s, deleted))

    def next_version(self, subject: str) -> int:
        versions = self.subjects.get(subject)
        return max(versions) + 1 if versions else 1

    def referenced_by(self, subject: str, version: int) -> list[int]:
        """Ids of the live schemas that reference this subject version."""
        out = set()
        for versions in self.subjects.values():
            for v in versions.values():
                if v.deleted:
                    continue
                if any(r.subject == subject and r.version == version for r in v.references):
                    out.add(v.id)
        return sorted(out)

    def uses_of(self, schema_id: int, deleted: bool = False) -> list[SchemaValue]:
        """Every subject version registered with this id."""
        return [
            v
            for name in sorted(self.subjects)
            for v in self.versions(name, deleted)
            if v.id == schema_id
        ]


_HANDLERS = {
    rec.SCHEMA: RegistryState._apply_schema,
    rec.CONFIG: RegistryState._apply_config,
    rec.MODE: RegistryState._apply_mode,
    rec.DELETE_SUBJECT: RegistryState._apply_delete_subject,
    rec.CLEAR_SUBJECT: RegistryState._apply_clear_subject,
    rec.NOOP: lambda state, record: None,
}
