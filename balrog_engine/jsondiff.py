"""Structural diff, patch and three-way merge of JSON documents, and compact history.

Pure functions, no I/O. They are the core of two storage features:

* **compact history**: a full copy every N versions plus diffs, zlib-compressed
  (:class:`HistoryCodec`), any version read back byte-identically;
* **stale-write merging**: a write based on an old version is merged with what was
  written since (:func:`merge3`) unless both change the same JSON path differently.

Values
    The JSON values that :func:`json.loads` produces: ``dict`` (``str`` keys), ``list``,
    ``str``, ``int``, ``float``, ``bool`` and ``None``. Comparison is *strict*, i.e.
    "would :func:`json.dumps` print the same": ``1``, ``1.0`` and ``True`` all differ,
    ``0.0`` and ``-0.0`` differ, and two dicts with the same items in a different key
    order differ. NaN and infinities are not JSON and are not supported (NaN never
    compares equal, so it shows up as a change every time).

Paths
    A path addresses a value inside a document: a tuple of dict keys (``str``) and list
    indexes (``int``); ``()`` is the document itself. :func:`format_path` renders one for
    humans: ``platforms.WINNT_x86-msvc.locales.de.buildID``, ``partials[0].filesize``,
    ``fileUrls.*.partials["Firefox-66.0.2-build1"]``, ``$`` for the root.

Ops
    :func:`diff` returns a list of ops; each op is a plain JSON list so a list of ops can
    be stored with :func:`json.dumps` and used again after :func:`json.loads`:

    ``["set", path, value]``
        dict: add the key (appended at the end of the dict) or replace its value (which
        keeps its position); list: replace the item at the index, or append when the
        index equals the list's length; empty path: replace the whole document.
    ``["remove", path]``
        delete a dict key, or the list item at the index (later items shift down).
    ``["insert", path, value]``
        lists only: insert ``value`` before the index (``index == len`` appends).
    ``["order", path, keys]``
        reorder the dict at ``path`` to exactly ``keys`` (a permutation of its keys).

    Paths inside ops are lists (JSON has no tuples); :func:`patch` accepts both. Ops are
    applied in sequence, so list indexes refer to the list as it is when the op runs.

Key order
    Blobs are re-serialised, so a patched dict must get *the key order of the new
    value*, not just its items. :func:`diff` therefore emits an ``order`` op for every
    dict whose keys, after its ``remove``/``set`` ops (kept keys stay in place, added keys
    go to the end, in the order of ``new``), would not already be in ``new``'s order.
    Appending keys at the end and editing values never needs one; inserting a key in the
    middle (a new locale in a sorted ``locales`` dict) or moving keys does, and it lists
    that one dict's keys. :func:`merge3` defines the merged order in its docstring.
"""
from __future__ import annotations

import json
import math
import re
import zlib
from typing import Any, Callable, Iterable, Sequence

__all__ = [
    "MISSING", "Op", "Path", "HistoryCodec", "HistoryError", "PatchError", "diff", "encode_history",
    "format_path", "merge3", "patch", "same",
]

Key = str | int
Path = tuple[Key, ...]
#: ``["set", path, value]``, ``["remove", path]``, ``["insert", path, value]`` or ``["order", path, keys]``.
Op = list

SET, REMOVE, INSERT, ORDER = "set", "remove", "insert", "order"
_OP_ARITY = {SET: 3, REMOVE: 2, INSERT: 3, ORDER: 3}


class _Missing:
    """The type of :data:`MISSING`."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"

    def __reduce__(self) -> str:
        return "MISSING"


#: Stands for "no value here" (an absent dict key, or a removed one) in the values that
#: :func:`merge3` passes to its ``conflict`` callback. Distinct from ``None`` (JSON null).
MISSING: Any = _Missing()


class PatchError(ValueError):
    """An op does not apply to the value (missing key, index out of range, wrong container
    type, malformed op)."""


class HistoryError(ValueError):
    """History records that cannot be read (unknown kind, no full copy at or before the
    requested version, index out of range)."""


# ---------------------------------------------------------------------------- equality / copy

def same(a: Any, b: Any) -> bool:
    """Strict JSON equality: true iff ``json.dumps(a) == json.dumps(b)`` (for JSON values),
    i.e. ``==`` plus: same types (``1``/``1.0``/``True`` differ), same sign of zero, and
    the same key order in every dict."""
    if a is b:
        return True
    if isinstance(a, dict):
        if not isinstance(b, dict) or len(a) != len(b):
            return False
        for (ka, va), (kb, vb) in zip(a.items(), b.items()):
            if ka != kb or type(ka) is not type(kb) or not same(va, vb):
                return False
        return True
    if isinstance(a, list):
        if not isinstance(b, list) or len(a) != len(b):
            return False
        for va, vb in zip(a, b):
            if not same(va, vb):
                return False
        return True
    if type(a) is not type(b):
        return False
    if type(a) is float:
        return a == b and (a != 0.0 or math.copysign(1.0, a) == math.copysign(1.0, b))
    return a == b


def _copy(value: Any) -> Any:
    """Deep copy of a JSON value (much faster than :func:`copy.deepcopy`)."""
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


# ---------------------------------------------------------------------------- paths

_PLAIN_KEY = re.compile(r"[^.\[\]\"\s$][^.\[\]\"\s]*\Z")


def format_path(path: Sequence[Key]) -> str:
    """A readable rendering of ``path``: keys joined with ``.``, list indexes as ``[3]``,
    keys that would be ambiguous (empty, or containing ``.``, brackets, quotes, spaces, or
    starting with ``$``) as ``["json string"]``; the root is ``$``."""
    if not path:
        return "$"
    out = []
    for key in path:
        if isinstance(key, int) and not isinstance(key, bool):
            out.append(f"[{key}]")
        elif isinstance(key, str) and _PLAIN_KEY.match(key):
            out.append(f".{key}" if out else key)
        else:
            out.append(f"[{json.dumps(key, ensure_ascii=False)}]")
    return "".join(out)


# ---------------------------------------------------------------------------- diff

def diff(old: Any, new: Any) -> list[Op]:
    """Ops that turn ``old`` into ``new``: ``patch(old, diff(old, new))`` is strictly equal
    to ``new`` (see :func:`same`), key order included.

    Dicts are compared key by key, recursively, so a change deep inside one locale of a
    large blob gives one small op. Lists of the same length are compared index by index,
    recursively. Lists whose length changed lose their common prefix and suffix; the rest
    of the old list is removed and the rest of the new one inserted item by item (no
    move detection: appends, truncations and a single insertion or removal anywhere stay
    small; anything else costs about the size of the changed span). A value whose type
    changed is replaced whole. An empty list means ``old`` and ``new`` are the same.

    The ops reference sub-values of ``new`` (not copies): serialise them, or do not
    mutate ``new`` while you hold them.
    """
    ops: list[Op] = []
    _diff(old, new, [], ops)
    return ops


def _diff(old: Any, new: Any, path: list, ops: list[Op]) -> None:
    if isinstance(old, dict) and isinstance(new, dict):
        _diff_dict(old, new, path, ops)
    elif isinstance(old, list) and isinstance(new, list):
        _diff_list(old, new, path, ops)
    elif not same(old, new):
        ops.append([SET, list(path), new])


def _diff_dict(old: dict, new: dict, path: list, ops: list[Op]) -> None:
    for key in old:
        if key not in new:
            ops.append([REMOVE, path + [key]])
    added = False
    for key, value in new.items():
        if key in old:
            path.append(key)
            _diff(old[key], value, path, ops)
            path.pop()
        else:
            added = True
            ops.append([SET, path + [key], value])
    # After the ops above, the dict holds the kept keys in their old order, then the added
    # ones in new's order; say so explicitly when that is not new's order.
    natural = [key for key in old if key in new]
    if added:
        natural.extend(key for key in new if key not in old)
    if natural != list(new):
        ops.append([ORDER, list(path), list(new)])


def _diff_list(old: list, new: list, path: list, ops: list[Op]) -> None:
    lo, ln = len(old), len(new)
    if lo == ln:
        for index in range(lo):
            path.append(index)
            _diff(old[index], new[index], path, ops)
            path.pop()
        return
    shortest = min(lo, ln)
    prefix = 0
    while prefix < shortest and same(old[prefix], new[prefix]):
        prefix += 1
    suffix = 0
    while suffix < shortest - prefix and same(old[lo - 1 - suffix], new[ln - 1 - suffix]):
        suffix += 1
    removed, inserted = lo - prefix - suffix, ln - prefix - suffix
    for index in range(prefix + removed - 1, prefix - 1, -1):
        ops.append([REMOVE, path + [index]])
    for offset in range(inserted):
        ops.append([INSERT, path + [prefix + offset], new[prefix + offset]])


# ---------------------------------------------------------------------------- patch

def patch(value: Any, ops: Iterable[Op]) -> Any:
    """Apply ``ops`` (from :func:`diff`, possibly through JSON) to ``value`` and return the
    result. ``value`` and ``ops`` are not mutated, and the result shares no dict or list
    with either. Raises :class:`PatchError` if an op does not apply."""
    return _apply(_copy(value), ops, copy_values=True)


def _apply(root: Any, ops: Iterable[Op], copy_values: bool) -> Any:
    """Apply ``ops`` to ``root`` in place; returns the new root (changed by a root ``set``)."""
    for op in ops:
        if not isinstance(op, (list, tuple)) or not op or _OP_ARITY.get(op[0]) != len(op):
            raise PatchError(f"malformed op: {op!r}")
        kind, path = op[0], op[1]
        if not isinstance(path, (list, tuple)):
            raise PatchError(f"malformed path in op: {op!r}")
        if kind == ORDER:
            _reorder(_resolve(root, path, len(path)), op[2], path)
            continue
        if not path:
            if kind != SET:
                raise PatchError(f"{kind!r} needs a non-empty path")
            root = _copy(op[2]) if copy_values else op[2]
            continue
        parent = _resolve(root, path, len(path) - 1)
        key = path[-1]
        if isinstance(parent, dict):
            if kind == SET:
                parent[key] = _copy(op[2]) if copy_values else op[2]
            elif kind == REMOVE:
                if key not in parent:
                    raise PatchError(f"remove {format_path(path)}: no such key")
                del parent[key]
            else:
                raise PatchError(f"{kind} {format_path(path)}: not a list")
        elif isinstance(parent, list):
            if not isinstance(key, int) or isinstance(key, bool) or key < 0:
                raise PatchError(f"{kind} {format_path(path)}: bad list index {key!r}")
            size = len(parent)
            if kind == SET:
                if key < size:
                    parent[key] = _copy(op[2]) if copy_values else op[2]
                elif key == size:
                    parent.append(_copy(op[2]) if copy_values else op[2])
                else:
                    raise PatchError(f"set {format_path(path)}: index out of range ({size} items)")
            elif kind == REMOVE:
                if key >= size:
                    raise PatchError(f"remove {format_path(path)}: index out of range ({size} items)")
                del parent[key]
            else:  # INSERT
                if key > size:
                    raise PatchError(f"insert {format_path(path)}: index out of range ({size} items)")
                parent.insert(key, _copy(op[2]) if copy_values else op[2])
        else:
            raise PatchError(f"{kind} {format_path(path)}: parent is not a container")
    return root


def _resolve(root: Any, path: Sequence[Key], depth: int) -> Any:
    node = root
    for i in range(depth):
        key = path[i]
        if isinstance(node, dict):
            if key not in node:
                raise PatchError(f"{format_path(path[:i + 1])}: no such key")
        elif isinstance(node, list):
            if not isinstance(key, int) or isinstance(key, bool) or not 0 <= key < len(node):
                raise PatchError(f"{format_path(path[:i + 1])}: no such list item")
        else:
            raise PatchError(f"{format_path(path[:i + 1])}: parent is not a container")
        node = node[key]
    return node


def _reorder(target: Any, keys: Any, path: Sequence[Key]) -> None:
    if not isinstance(target, dict):
        raise PatchError(f"order {format_path(path)}: not a dict")
    try:
        valid = isinstance(keys, list) and len(keys) == len(target) and set(keys) == target.keys()
    except TypeError:
        valid = False
    if not valid:
        raise PatchError(f"order {format_path(path)}: keys are not a permutation of the dict's keys")
    items = [(key, target[key]) for key in keys]
    target.clear()
    target.update(items)


# ---------------------------------------------------------------------------- merge3

ConflictHook = Callable[[Path, Any, Any, Any], "bool | None"]


def merge3(base: Any, ours: Any, theirs: Any,
           conflict: ConflictHook | None = None) -> tuple[Any | None, list[str]]:
    """Three-way merge: apply the changes ``ours`` made to ``base`` on top of ``theirs``.

    ``ours`` is what a stale writer wants to store (it started from ``base``); ``theirs``
    is the value stored now. Returns ``(merged, [])``, or ``(None, conflicts)`` where
    ``conflicts`` lists the conflicting paths as :func:`format_path` strings, in document
    order. ``merged`` shares no dict or list with the inputs. Test ``conflicts``, not
    ``merged is None``: a document can be JSON null.

    Rules, applied top-down from the root to each path ``p``:

    * changed on one side only (strictly, see :func:`same`): that side's value wins;
    * changed on both sides to the same new value: no conflict;
    * changed on both sides differently: ask ``conflict`` (below); else if all three are
      dicts, merge key by key (a key absent
      on a side is :data:`MISSING` there: adding, removing and changing keys are changes
      like any other); else if all three are lists of one length, merge index by index,
      where an item changed on both sides is a conflict unless identical (items are
      *atomic*: an item moved by one side is never field-merged with another); anything
      else is a conflict at ``p``: two different scalars, a type change, lists whose
      length changed, a key removed on one side and changed (anywhere under it) on the
      other, the same new key added with different values.

    ``conflict(path, base, ours, theirs)`` lets a blob type refine this. It is called for
    every path that both sides changed, differently, top-down (the root first, then each
    path the default rules descend into), with the three values at that path (possibly
    :data:`MISSING`). ``True``: the path conflicts, even if the changes under it would
    have merged (e.g. make each locale entry atomic). ``False``: it does not; ``ours`` is
    taken whole at that path (the stale writer wins there). ``None``: the default rules.
    A path changed identically on both sides is never a conflict and is not asked about.

    Key order of a merged dict: the order of ``theirs``, unless ``theirs`` kept ``base``'s
    relative key order and ``ours`` changed it, then the order of ``ours``. Keys only
    the other side has (its additions) are inserted after the key that precedes them on
    that side, skipping over keys only the first side added that sort before them. So
    locales added concurrently to a sorted ``locales`` dict stay sorted, and a key
    appended by one side lands next to keys appended by the other in sorted order.
    """
    conflicts: list[Path] = []
    merged = _Merger(conflict, conflicts).merge((), base, ours, theirs, False)
    if conflicts:
        return None, [format_path(path) for path in conflicts]
    return _copy(merged), []


class _Merger:
    __slots__ = ("hook", "conflicts")

    def __init__(self, hook: ConflictHook | None, conflicts: list[Path]):
        self.hook = hook
        self.conflicts = conflicts

    def merge(self, path: Path, b: Any, o: Any, t: Any, atomic: bool) -> Any:
        if (self.hook is None and not atomic
                and isinstance(b, dict) and isinstance(o, dict) and isinstance(t, dict)):
            # Shortcut, same result: merging key by key gives what the rules below give
            # for three dicts (one side's value when only it changed, key order included),
            # and walks each subtree once instead of comparing it whole at every level.
            # With a hook, the whole comparisons are needed to know where to ask it.
            return self.merge_dict(path, b, o, t)
        if same(b, o):
            return t
        if same(b, t):
            return o
        if same(o, t):
            return o
        if self.hook is not None:
            verdict = self.hook(path, b, o, t)
            if verdict is True:
                self.conflicts.append(path)
                return o
            if verdict is False:
                return o
        if not atomic:
            if isinstance(b, dict) and isinstance(o, dict) and isinstance(t, dict):
                return self.merge_dict(path, b, o, t)
            if b is MISSING and isinstance(o, dict) and isinstance(t, dict):
                # Both sides added the same key (the first locales of a new platform from two
                # parallel jobs): their contents merge as two additions to an empty object.
                return self.merge_dict(path, {}, o, t)
            if (isinstance(b, list) and isinstance(o, list) and isinstance(t, list)
                    and len(b) == len(o) == len(t)):
                return [self.merge(path + (i,), b[i], o[i], t[i], True) for i in range(len(b))]
        self.conflicts.append(path)
        return o

    def merge_dict(self, path: Path, b: dict, o: dict, t: dict) -> dict:
        values: dict = {}
        keys = list(t)
        keys.extend(key for key in o if key not in t)
        keys.extend(key for key in b if key not in t and key not in o)
        for key in keys:
            value = self.merge(path + (key,), b.get(key, MISSING), o.get(key, MISSING),
                               t.get(key, MISSING), False)
            if value is not MISSING:
                values[key] = value
        return {key: values[key] for key in _merged_order(b, o, t, values)}


def _keeps_order(base: dict, side: dict) -> bool:
    """Whether the keys ``side`` shares with ``base`` are in ``base``'s relative order."""
    return [k for k in base if k in side] == [k for k in side if k in base]


def _sorts_before(a: Any, b: Any) -> bool:
    try:
        return a < b
    except TypeError:
        return False


def _merged_order(b: dict, o: dict, t: dict, present: dict) -> list:
    if _keeps_order(b, t) and not _keeps_order(b, o):
        primary, secondary = o, t
    else:
        primary, secondary = t, o
    order = [key for key in primary if key in present]
    if len(order) == len(present):
        return order
    placed = set(order)
    anchor = None
    for key in secondary:
        if key in placed:
            anchor = key
            continue
        if key not in present:
            continue
        position = order.index(anchor) + 1 if anchor is not None else 0
        while (position < len(order) and order[position] not in secondary
               and _sorts_before(order[position], key)):
            position += 1
        order.insert(position, key)
        placed.add(key)
        anchor = key
    return order


# ---------------------------------------------------------------------------- history

class HistoryCodec:
    """Compact, exact history of a document: one ``(kind, payload)`` record per version.

    ``("full", zlib(JSON of the document))`` or ``("diff", zlib(JSON of diff(previous,
    document)))``. A storage backend stores one row per version (``kind`` as a short
    string, ``payload`` as bytes) and hands the rows back in version order.

    Version ``i`` is stored full when ``i % snapshot_every == 0`` (so version 0 always is),
    and also whenever a diff would not be smaller than the full copy (a rewrite of most of
    the document; checked for diffs of more than 256 compressed bytes). Reading version ``i`` decodes the nearest full copy at or before ``i``
    and applies the diffs after it: at most ``snapshot_every - 1`` small patches. The
    reader looks for the full copy rather than computing where it should be, so a history
    written with another ``snapshot_every`` (or mixed ones) reads the same.

    Reading is exact: the document comes back strictly equal (:func:`same`), so any
    :func:`json.dumps` of it is byte-identical to the same dumps of the original. The
    payloads hold compact JSON (``ensure_ascii=False``, UTF-8, lone surrogates kept with
    ``surrogatepass``). Documents must be JSON values with ``str`` dict keys.
    """

    FULL = "full"
    DIFF = "diff"

    def __init__(self, snapshot_every: int = 50, level: int = 9):
        if snapshot_every < 1:
            raise ValueError("snapshot_every must be at least 1")
        self.snapshot_every = snapshot_every
        self.level = level

    # -- encoding

    def record(self, index: int, previous: Any, document: Any) -> tuple[str, bytes]:
        """The record for version ``index`` (``document``), given version ``index - 1``
        (``previous``; ignored for a full record, may be ``None`` when ``index == 0``)."""
        if index % self.snapshot_every == 0:
            return self.FULL, self._pack(document)
        text = _dumps(diff(previous, document))
        payload = zlib.compress(text.encode("utf-8", "surrogatepass"), self.level)
        if len(payload) > 256:  # only then can a full copy possibly be smaller
            full = self._pack(document)
            if len(full) <= len(payload):
                return self.FULL, full
        return self.DIFF, payload

    def encode(self, versions: Iterable[Any]) -> list[tuple[str, bytes]]:
        """Records for the successive documents ``versions`` (version 0 first)."""
        records: list[tuple[str, bytes]] = []
        previous = None
        for index, document in enumerate(versions):
            records.append(self.record(index, previous, document))
            previous = document
        return records

    def _pack(self, value: Any) -> bytes:
        return zlib.compress(_dumps(value).encode("utf-8", "surrogatepass"), self.level)

    # -- decoding

    def read(self, records: Sequence[tuple[str, bytes]], version_index: int) -> Any:
        """Version ``version_index`` (0-based; ``records[i]`` is version ``i``)."""
        if not 0 <= version_index < len(records):
            raise HistoryError(f"no version {version_index} (history has {len(records)})")
        start = version_index
        while records[start][0] != self.FULL:
            if records[start][0] != self.DIFF:
                raise HistoryError(f"version {start}: unknown record kind {records[start][0]!r}")
            if start == 0:
                raise HistoryError(f"no full copy at or before version {version_index}")
            start -= 1
        document = _unpack(records[start][1])
        for index in range(start + 1, version_index + 1):
            try:
                document = _apply(document, _unpack(records[index][1]), copy_values=False)
            except PatchError as error:
                raise HistoryError(f"version {index}: {error}") from error
        return document

    @staticmethod
    def serialize(document: Any) -> bytes:
        """The uncompressed bytes a full record holds (compact JSON, UTF-8)."""
        return _dumps(document).encode("utf-8", "surrogatepass")


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _unpack(payload: bytes) -> Any:
    return json.loads(zlib.decompress(payload).decode("utf-8", "surrogatepass"))


def encode_history(versions: Iterable[Any], snapshot_every: int = 50) -> list[tuple[str, bytes]]:
    """Shortcut for ``HistoryCodec(snapshot_every).encode(versions)``."""
    return HistoryCodec(snapshot_every).encode(versions)
