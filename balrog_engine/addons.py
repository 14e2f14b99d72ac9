"""Add-on list blobs: the ``<addons>`` answer shared by GMP, SystemAddons and superblobs.

For blob-type plugin authors (built-in and third-party); the public names are
re-exported by :mod:`balrog_engine`. A blob whose document maps add-on ids to
``{"version", "platforms": {build target: download or {"alias": target}}}`` (blob-types.md
§5, §6) is indexed once with :func:`build_addon_index`; a request then only filters the
pre-formatted ``<addon>`` lines of its build target through the allowlist.

Subclass :class:`AddonListBlob` for such a blob type: a ``blobs`` superblob asks an
:class:`AddonListBlob` member for its lines directly (:meth:`AddonListBlob.addon_lines`)
instead of building a per-member query, whichever plugin provides the member's type.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Mapping

from marshmallow import fields

from .blob_fields import StrictNumber, StrictSchema, uri_field
from .blobs import BlobType, RenderContext

__all__ = ["ADDONS_FOOTER", "ADDONS_HEADER", "AddonFile", "AddonFileSchema", "AddonIndex", "AddonListBlob",
           "build_addon_index", "render_addons"]

#: ``XmlParts`` header and footer of an ``<addons>`` answer.
ADDONS_HEADER = "    <addons>"
ADDONS_FOOTER = "    </addons>"


class AddonFileSchema(StrictSchema):
    """One download of one add-on for one build target, as :func:`build_addon_index` reads it.
    Subclass it to allow more fields (GMP adds ``mirrorUrls``)."""

    fileUrl = uri_field(required=True)
    filesize = StrictNumber(required=True)
    hashValue = fields.String(required=True)


@dataclass(frozen=True, slots=True)
class AddonFile:
    """One add-on download for one build target, with its ``<addon>`` line already formatted.

    Only the allowlist verdicts are left for request time: they depend on the query's product.
    """

    url: str
    mirrors: tuple[str, ...]
    line: str  # self-closing form: <addon …/>
    open_line: str  # form followed by <mirror> children: <addon …>


def _addon_lines(addon_id: str, entry: Mapping[str, Any], hash_function: Any, version: Any) -> tuple[str, str]:
    head = (
        f'        <addon id="{addon_id}" URL="{entry["fileUrl"]}" hashFunction="{hash_function}" '
        f'hashValue="{entry["hashValue"]}" size="{entry["filesize"]}" version="{version}"'
    )
    return head + "/>", head + ">"


def _resolve_platform(platforms: Mapping[str, Any], key: str) -> Mapping[str, Any] | None:
    """The download entry for platform ``key``, following one ``alias`` hop.

    None when the entry is unusable (alias to a missing platform, alias chains, missing
    fields): the reference crashes on those; we leave the add-on out instead.
    """
    entry = platforms.get(key)
    if isinstance(entry, Mapping) and "alias" in entry:
        entry = platforms.get(entry["alias"])
        if isinstance(entry, Mapping) and "alias" in entry:
            return None
    if not isinstance(entry, Mapping) or not all(k in entry for k in ("fileUrl", "hashValue", "filesize")):
        return None
    return entry


def _addon_file(addon_id: str, entry: Mapping[str, Any] | None, hash_function: Any, version: Any,
                with_mirrors: bool) -> AddonFile | None:
    if entry is None or hash_function is None or version is None:
        return None
    line, open_line = _addon_lines(addon_id, entry, hash_function, version)
    mirrors = tuple(entry.get("mirrorUrls") or ()) if with_mirrors else ()
    return AddonFile(entry["fileUrl"], mirrors, line, open_line)


@dataclass(frozen=True, slots=True)
class AddonIndex:
    """Per build target, the candidate downloads in add-on id (code point) order.

    ``by_target`` has an entry for every build target named by any add-on; a target no
    add-on names gets ``fallback`` (the ``default`` downloads). A ``None`` candidate is never
    stored: add-ons whose specific entry is unusable are simply absent from that target's
    tuple — a specific entry hides ``default`` even when it cannot be served.
    """

    by_target: Mapping[str, tuple[AddonFile, ...]]
    fallback: tuple[AddonFile, ...]

    def candidates(self, build_target: str) -> tuple[AddonFile, ...]:
        return self.by_target.get(build_target, self.fallback)


def build_addon_index(addons: Mapping[str, Any] | None, hash_function: Any, with_mirrors: bool) -> AddonIndex:
    """Index ``{id: {"version", "platforms"}}`` once, so a request only filters by allowlist.

    ``with_mirrors`` keeps each download's ``mirrorUrls`` (rendered as ``<mirror>`` children).
    """
    addons = addons if isinstance(addons, Mapping) else {}
    prepared: list[tuple[dict[str, AddonFile | None], AddonFile | None]] = []
    targets: set[str] = set()
    for addon_id in sorted(addons):
        info = addons[addon_id]
        platforms = info.get("platforms") if isinstance(info, Mapping) else None
        if not isinstance(platforms, Mapping):
            continue  # a vendor without platforms: the reference crashes; we skip it
        version = info.get("version")
        specific = {
            key: _addon_file(addon_id, _resolve_platform(platforms, key), hash_function, version, with_mirrors)
            for key in platforms
        }
        default = specific.get("default")
        targets.update(specific)
        prepared.append((specific, default))

    def for_target(target: str | None) -> tuple[AddonFile, ...]:
        chosen = (specific[target] if target in specific else default for specific, default in prepared)
        return tuple(f for f in chosen if f is not None)

    return AddonIndex({t: for_target(t) for t in targets}, for_target(None))


def render_addons(index: AddonIndex, build_target: str, product: str | None,
                  ctx: RenderContext) -> tuple[str, ...]:
    """The ``<addon>`` lines (with allowed ``<mirror>`` children) for one query."""
    forbidden = ctx.is_forbidden
    lines: list[str] = []
    for f in index.candidates(build_target):
        if forbidden(f.url, product):
            continue
        mirrors = [m for m in f.mirrors if not forbidden(m, product)] if f.mirrors else None
        if mirrors:
            lines.append(f.open_line)
            lines.extend(f'            <mirror URL="{m}"/>' for m in mirrors)
            lines.append("        </addon>")
        else:
            lines.append(f.line)
    return tuple(lines)


class AddonListBlob(BlobType):
    """Base of blob types whose inner lines depend on nothing but (build target, product).

    A subclass names the document field that holds ``{id: {"version", "platforms"}}`` in
    ``addons_field`` and sets ``with_mirrors`` if downloads may list ``mirrorUrls``; the
    index is built once from that field and the top-level ``hashFunction`` (without one,
    no line can be printed — the reference crashes — so none are). ``render_xml`` then
    puts :meth:`addon_lines` inside ``ADDONS_HEADER``/``ADDONS_FOOTER``.

    A ``blobs`` superblob renders each member for another product; with this it can ask
    for the lines directly instead of building a per-member
    :class:`~balrog_engine.UpdateQuery`, so the ``lines`` of ``render_xml`` must be exactly
    ``addon_lines(query.buildTarget, query.product, ctx)``.
    """

    addons_field: ClassVar[str] = "addons"
    with_mirrors: ClassVar[bool] = False

    def __init__(self, name: str, data: Mapping[str, Any]):
        super().__init__(name, data)
        self._index = build_addon_index(data.get(self.addons_field), data.get("hashFunction"), self.with_mirrors)

    def addon_lines(self, build_target: str, product: str | None, ctx: RenderContext) -> tuple[str, ...]:
        return render_addons(self._index, build_target, product, ctx)

    @classmethod
    def merge_conflict(cls, path: tuple, base: Any, ours: Any, theirs: Any) -> bool | None:
        """A download entry (``<addons_field>.<id>.platforms.<platform>``) is atomic: it describes
        one file (URL, size, hash), and one writer's URL with the other's hash would be a
        download that fails its hash check. Aliases are entries too."""
        if len(path) == 4 and path[0] == cls.addons_field and path[2] == "platforms":
            return True
        return None
