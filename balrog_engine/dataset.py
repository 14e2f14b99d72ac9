"""Reading datasets in the scenario format (shared/conformance/README.md) and validating them.

An invalid rule or release is refused with a message naming the file, the
object and the field, e.g.
``bench.json: releases[3] 'Firefox-66.0-build1': platforms.WINNT.locales.de.completes[0].hashValue: Missing data``.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator, Mapping

from marshmallow import ValidationError

from .blobs import BlobValidationError, flatten_errors
from .plugins import PluginRegistry
from .schemas import ConfigSchema, PinSchema, ReleaseRecordSchema, RuleSchema, ShutoffSchema
from .storage import Dataset, StoredRelease, normalise_rule

IGNORED_KEYS = frozenset({"name", "description", "source", "requests"})


class DatasetError(ValueError):
    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


def _describe(section: str, index: int, record: Any, key: str) -> str:
    label = record.get(key) if isinstance(record, Mapping) else None
    return f"{section}[{index}]" + (f" {label!r}" if label is not None else "")


def _errors(where: str, errors: Any) -> list[str]:
    return [f"{where}: {path}: {message}" for path, message in flatten_errors(errors)]


def parse_dataset(doc: Mapping[str, Any], registry: PluginRegistry, source: str = "dataset",
                  validate_blobs: bool = True) -> Dataset:
    """Validate a scenario-format document and return a :class:`Dataset`; raise DatasetError listing every problem."""
    if not isinstance(doc, Mapping):
        raise DatasetError([f"{source}: top level must be a JSON object"])
    problems: list[str] = []
    unknown = set(doc) - IGNORED_KEYS - {"rules", "releases", "pins", "emergency_shutoffs", "config"}
    if unknown:
        problems.append(f"{source}: unknown top-level key(s): {', '.join(sorted(unknown))}")

    rules = []
    seen_ids: set[int] = set()
    for where, loaded in _load_each(doc.get("rules") or [], RuleSchema, "rules", "rule_id", source, problems):
        if loaded["rule_id"] in seen_ids:
            problems.append(f"{where}: rule_id: duplicate")
        seen_ids.add(loaded["rule_id"])
        rules.append(normalise_rule(loaded))

    releases = []
    names: set[str] = set()
    for where, loaded in _load_each(doc.get("releases") or [], ReleaseRecordSchema, "releases", "name", source,
                                    problems):
        if loaded["name"] in names:
            problems.append(f"{where}: name: duplicate")
        names.add(loaded["name"])
        data = loaded["data"]
        blob_type = registry.blob_type(data.get("schema_version"))
        if blob_type is None:
            problems.append(f"{where}: data.schema_version: no blob type for {data.get('schema_version')!r}")
            continue
        if validate_blobs:
            try:
                blob_type.validate(data)
            except BlobValidationError as exc:
                problems.extend(_errors(where, exc.errors))
                continue
        releases.append(StoredRelease(loaded["name"], loaded.get("product"), data, loaded["data_version"],
                                      loaded["read_only"]))

    pins = [pin for _, pin in _load_each(doc.get("pins") or [], PinSchema, "pins", "mapping", source, problems)]
    shutoffs = [shutoff for _, shutoff in _load_each(doc.get("emergency_shutoffs") or [], ShutoffSchema,
                                                     "emergency_shutoffs", "product", source, problems)]
    for shutoff in shutoffs:
        shutoff.setdefault("comment", None)
    try:
        config = ConfigSchema().load(doc.get("config") or {})
    except ValidationError as exc:
        problems.extend(_errors(f"{source}: config", exc.messages))
        config = {}
    if problems:
        raise DatasetError(problems)
    return Dataset(rules=rules, releases=releases, pins=pins, emergency_shutoffs=shutoffs, config=config)


def _load_each(rows, schema, section: str, key: str, source: str, problems: list[str]) -> Iterator[tuple[str, dict]]:
    """``(where, loaded)`` for each row ``schema`` accepts; the errors of the others go to ``problems``.
    ``where`` names the row (``source: section[i] 'key value'``) for further problems."""
    for i, row in enumerate(rows):
        where = f"{source}: {_describe(section, i, row, key)}"
        try:
            loaded = schema().load(row)
        except ValidationError as exc:
            problems.extend(_errors(where, exc.messages))
            continue
        yield where, loaded


def load_dataset_file(path: str | Path, registry: PluginRegistry, validate_blobs: bool = True) -> Dataset:
    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DatasetError([f"{path.name}: cannot read JSON: {exc}"]) from None
    return parse_dataset(doc, registry, source=path.name, validate_blobs=validate_blobs)
