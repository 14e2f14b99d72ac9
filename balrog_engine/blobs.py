"""The contract between the core and blob-type plugins.

A *release* is a named JSON document; its ``schema_version`` selects a
:class:`BlobType` subclass contributed by a plugin through the
``balrog_blob_types`` hook. The core never looks inside a blob: it asks the blob
whether to serve a query (:meth:`BlobType.should_serve`) and how to render it
(:meth:`BlobType.render_xml` / :meth:`BlobType.render_json`).

A blob object is built once per snapshot (``__init__`` gets the parsed JSON
document) and then answers many requests concurrently: do the expensive work —
indexing platforms and locales, resolving aliases, pre-formatting lines — in
``__init__``, keep the per-request methods cheap, and never mutate ``self``
after construction.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Iterable, Mapping, Protocol, Sequence

if TYPE_CHECKING:  # pragma: no cover
    import marshmallow

    from .query import UpdateQuery


class Serve(enum.Enum):
    """Answer of a serve check (rule-matching.md §7)."""

    NO = "no"
    YES = "yes"
    MAYBE = "maybe"  # servable, but newer than the client's pin: consult the pin table


class BadRequest(Exception):
    """Client input a blob cannot answer; the public API replies 400 text/plain with this message."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class BlobValidationError(ValueError):
    """A blob refused by its schema. ``errors`` maps a field path to its message(s).

    Paths use dots for object keys and ``[i]`` for list indexes, e.g.
    ``platforms.WINNT_x86-msvc.locales.de.partials[0].hashValue``.
    """

    def __init__(self, errors: Mapping[str, Any], release: str | None = None):
        self.errors = dict(errors)
        self.release = release
        detail = "; ".join(f"{path}: {msg}" for path, msg in flatten_errors(self.errors))
        prefix = f"release {release!r}: " if release else ""
        super().__init__(prefix + (detail or "invalid blob"))


def flatten_errors(errors: Any, prefix: str = "") -> list[tuple[str, str]]:
    """Flatten marshmallow's nested error dicts into (path, message) pairs."""
    out: list[tuple[str, str]] = []
    if isinstance(errors, Mapping):
        for key, value in errors.items():
            if isinstance(key, int):
                path = f"{prefix}[{key}]"
            elif key == "_schema":
                path = prefix
            else:
                path = f"{prefix}.{key}" if prefix else str(key)
            out.extend(flatten_errors(value, path))
    elif isinstance(errors, (list, tuple)):
        if all(isinstance(e, str) for e in errors):
            out.append((prefix or "(blob)", " ".join(errors)))
        else:
            for e in errors:
                out.extend(flatten_errors(e, prefix))
    else:
        out.append((prefix or "(blob)", str(errors)))
    return out


@dataclass(frozen=True, slots=True)
class XmlParts:
    """The inner part of an ``<updates>`` document (blob-types.md §9).

    The document is ``<?xml…?>``, ``<updates>``, ``header``, each of ``lines``,
    ``footer``, ``</updates>`` joined with newlines. Superblobs concatenate the
    ``lines`` of the releases they aggregate.
    """

    header: str
    lines: tuple[str, ...]
    footer: str


@dataclass(frozen=True, slots=True)
class Release:
    """A stored release as the snapshot holds it: identity plus its parsed blob."""

    name: str
    product: str | None
    data_version: int
    blob: "BlobType"
    read_only: bool = False


@dataclass(frozen=True, slots=True)
class Evaluation:
    """Outcome of rule evaluation for one query: what to serve (maybe nothing) and the deciding rule."""

    release: Release | None
    update_type: str | None = None
    rule_id: str = "unknown"
    rule_data_version: str = "unknown"


class RenderContext(Protocol):
    """What a blob may consult while deciding and rendering. Provided by the snapshot."""

    special_force_hosts: Sequence[str]

    def release(self, name: str) -> Release | None:
        """Another release by name (partial ``from`` releases, superblob members); None if unknown."""

    def evaluate(self, query: "UpdateQuery") -> Evaluation:
        """Run the whole rules evaluation for another query (products superblobs)."""

    def is_forbidden(self, url: str, product: str) -> bool:
        """True when ``url``'s domain (and path) is not allowlisted for ``product`` (rule-matching.md §12.1)."""


class BlobType:
    """Base class of every blob type. Subclass it in a plugin and return the class from
    the ``balrog_blob_types`` hook.

    Class attributes a subclass sets:

    * ``schema_version`` — the value of the blob's ``schema_version`` field it handles.
      One class may serve several versions by listing them in ``schema_versions``.
    * ``content`` — ``"xml"`` for blobs served on ``/update`` or ``"json"`` for ``/json``.
    * ``schema`` — a marshmallow ``Schema`` class that validates a whole document.
    """

    schema_version: ClassVar[int | None] = None
    schema_versions: ClassVar[tuple[int, ...]] = ()
    content: ClassVar[str] = "xml"
    schema: ClassVar[type["marshmallow.Schema"] | None] = None

    def __init__(self, name: str, data: Mapping[str, Any]):
        self.name = name
        self.data = data

    # --- write side -----------------------------------------------------------------------
    @classmethod
    def handled_versions(cls) -> tuple[int, ...]:
        if cls.schema_versions:
            return tuple(cls.schema_versions)
        return () if cls.schema_version is None else (cls.schema_version,)

    @classmethod
    def validate(cls, data: Mapping[str, Any]) -> None:
        """Raise :class:`BlobValidationError` naming every bad field; return None when valid.

        The default runs ``cls.schema``; override to add cross-field checks.
        """
        if cls.schema is None:
            return
        errors = cls.schema().validate(data)
        if errors:
            raise BlobValidationError(errors, release=data.get("name") if isinstance(data, Mapping) else None)

    @classmethod
    def merge_conflict(cls, path: tuple, base: Any, ours: Any, theirs: Any) -> bool | None:
        """Refine what counts as a conflict when a stale write of a release of this type is
        merged (:func:`balrog_engine.jsondiff.merge3`'s ``conflict`` callback).

        Called for each path that both sides changed, differently, top-down. ``path`` is a
        tuple of keys and list indexes relative to the blob root (``()`` is the blob);
        ``base``/``ours``/``theirs`` are the values there — the common ancestor, the stale
        write, the stored blob — any of which may be ``balrog_engine.jsondiff.MISSING``
        (absent). Return ``True``: conflict at ``path``, even if the changes under it would
        have merged (makes the entry atomic); ``False``: no conflict, the stale write's
        value wins whole there; ``None``: the default JSON-path rules. Default: ``None``.
        """
        return None

    # --- snapshot building ----------------------------------------------------------------
    def referenced_releases(self) -> Iterable[str]:
        """Names of other releases this blob needs while serving (partial ``from``s, superblob
        ``blobs``). The snapshot loads them too. Default: none."""
        return ()

    def build_id(self, platform: str, locale: str | None) -> str | None:
        """The build ID this release has for a build target and locale (aliases resolved), or None.

        Used when another release's partial names this one as its ``from``. Non-application
        blobs return None."""
        return None

    # --- request path ---------------------------------------------------------------------
    def should_serve(self, query: "UpdateQuery", ctx: RenderContext) -> Serve:
        """Decide whether this release is an update for ``query`` (no downgrades etc.).

        May raise :class:`BadRequest` for inputs the reference answers with 400. Default: YES.
        """
        return Serve.YES

    def render_xml(self, query: "UpdateQuery", update_type: str | None, ctx: RenderContext) -> XmlParts:
        """Render the inner XML for ``query``. ``update_type`` is the deciding rule's ``update_type``.

        Must not raise for anything the reference serves with 200; may raise :class:`BadRequest`.
        XML blobs must override this."""
        raise BadRequest("Wrong blob type")

    def render_json(self, query: "UpdateQuery", ctx: RenderContext) -> str:
        """Render the JSON body (exact text) for ``/json`` queries. JSON blobs must override this."""
        raise NotImplementedError
