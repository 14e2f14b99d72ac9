"""The plugin manager façade: the only place that talks to pluggy.

:func:`load_plugins` loads the ``balrog`` entry-point group (built-ins and third
parties alike), honours blocked names, checks every implementation against the
hookspecs and resolves the hooks once into a :class:`PluginRegistry` of plain,
typed mappings. Core code reads the registry; it never calls ``pm.hook``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

import pluggy

from . import hookspecs

ENTRY_POINT_GROUP = "balrog"
hookimpl = pluggy.HookimplMarker("balrog")


class PluginError(RuntimeError):
    """A plugin set that cannot work together (duplicate schema_version, bad return value, …)."""


@dataclass(frozen=True)
class PluginRegistry:
    blob_types: Mapping[int, type] = field(default_factory=dict)
    condition_types: Mapping[str, type] = field(default_factory=dict)
    storage_backends: Mapping[str, Callable[[str], Any]] = field(default_factory=dict)
    query_normalizers: tuple[Callable, ...] = ()
    response_signers: tuple[Callable, ...] = ()
    plugin_names: tuple[str, ...] = ()
    metrics_sources: Mapping[str, type] = field(default_factory=dict)
    notifiers: Mapping[str, type] = field(default_factory=dict)

    def blob_type(self, schema_version: Any) -> type | None:
        return self.blob_types.get(schema_version) if isinstance(schema_version, int) else None

    def storage_for(self, url: str):
        scheme = url.split("://", 1)[0].split("+", 1)[0] if "://" in url else url
        try:
            factory = self.storage_backends[scheme]
        except KeyError:
            known = ", ".join(sorted(self.storage_backends)) or "none"
            raise PluginError(f"no storage backend for {url!r} (known schemes: {known})") from None
        return factory(url)


def make_plugin_manager(blocked: Iterable[str] = (), extra: Iterable[Any] = (), entry_points: bool = True):
    pm = pluggy.PluginManager("balrog")
    pm.add_hookspecs(hookspecs)
    for name in blocked:
        pm.set_blocked(name)
    if entry_points:
        pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
    for plugin in extra:
        pm.register(plugin)
    pm.check_pending()
    return pm


def load_plugins(blocked: Iterable[str] = (), extra: Iterable[Any] = (), entry_points: bool = True) -> PluginRegistry:
    """Build the registry once. ``extra`` registers plugin objects directly (tests, embedding)."""
    pm = make_plugin_manager(blocked, extra, entry_points)
    return resolve(pm)


def resolve(pm: pluggy.PluginManager) -> PluginRegistry:
    blob_types: dict[int, type] = {}
    owners: dict[int, str] = {}
    for impl, result in _call_with_owner(pm, "balrog_blob_types"):
        for cls in result or ():
            versions = cls.handled_versions() if hasattr(cls, "handled_versions") else ()
            if not versions:
                raise PluginError(f"blob type {cls!r} from plugin {impl} declares no schema_version")
            for version in versions:
                if version in blob_types and blob_types[version] is not cls:
                    raise PluginError(
                        f"schema_version {version} is claimed by plugins {owners[version]!r} and {impl!r}; block one"
                    )
                blob_types[version] = cls
                owners[version] = impl
    conditions = _named_types(pm, "balrog_condition_types", "condition type")
    sources = _named_types(pm, "balrog_metrics_sources", "metrics source")
    notifiers = _named_types(pm, "balrog_notifiers", "notifier")
    backends: dict[str, Callable] = {}
    for impl, result in _call_with_owner(pm, "balrog_storage_backends"):
        for scheme, factory in (result or {}).items():
            if scheme in backends and backends[scheme] is not factory:
                raise PluginError(f"storage scheme {scheme!r} is claimed twice (plugin {impl!r})")
            backends[scheme] = factory
    normalizers = tuple(f for _, result in _call_with_owner(pm, "balrog_query_normalizers") for f in (result or ()))
    signers = tuple(f for _, result in _call_with_owner(pm, "balrog_response_signers") for f in (result or ()))
    names = tuple(sorted(name for name, plugin in pm.list_name_plugin() if name and plugin is not None))
    return PluginRegistry(blob_types, conditions, backends, normalizers, signers, names,
                          metrics_sources=sources, notifiers=notifiers)


def _named_types(pm: pluggy.PluginManager, hook_name: str, what: str) -> dict[str, type]:
    """Classes keyed by their ``name`` (conditions, metrics sources, notifiers); one owner per name."""
    found: dict[str, type] = {}
    owners: dict[str, str] = {}
    for impl, result in _call_with_owner(pm, hook_name):
        for cls in result or ():
            name = getattr(cls, "name", "")
            if not isinstance(name, str) or not name:
                raise PluginError(f"{what} {cls!r} from plugin {impl!r} has no name")
            if name in found and found[name] is not cls:
                raise PluginError(f"{what} {name!r} is claimed by plugins {owners[name]!r} and {impl!r}; block one")
            found[name], owners[name] = cls, impl
    return found


def _call_with_owner(pm: pluggy.PluginManager, hook_name: str):
    """Call each implementation separately so errors can name the plugin that caused them."""
    hook = getattr(pm.hook, hook_name)
    for impl in hook.get_hookimpls():  # registration order
        yield impl.plugin_name, impl.function()
