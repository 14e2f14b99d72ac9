"""Hook specifications: every way a plugin can extend balrog-engine.

A plugin is any module or object with functions named like the hooks below and
decorated with :data:`balrog_engine.hookimpl`. Installed packages announce
their plugins under the ``balrog`` entry-point group; the built-in plugins are
declared there too (see ``setup.cfg``), so blocking or replacing one works the
same for built-ins and third parties.

All hooks are called **once**, when a :class:`~balrog_engine.plugins.PluginRegistry`
is built at start-up. Their results are frozen into plain dictionaries and
tuples; nothing here is called while a request is being answered.
"""
from __future__ import annotations

import pluggy

hookspec = pluggy.HookspecMarker("balrog")


@hookspec
def balrog_blob_types():
    """Contribute blob types (release formats).

    Called once at start-up, with no arguments.

    Return an iterable of :class:`balrog_engine.BlobType` subclasses. Each class
    declares the ``schema_version`` (or ``schema_versions``) it renders; releases
    whose document carries that ``schema_version`` are parsed with it. Two
    plugins claiming the same ``schema_version`` is a start-up error (block one
    of them to choose).
    """


@hookspec
def balrog_condition_types():
    """Contribute condition types for scheduled changes (used by the agent and the admin API).

    Called once at start-up, with no arguments.

    Return an iterable of :class:`balrog_engine.Condition` subclasses, each with a
    unique ``name`` (the key a scheduled change uses, e.g. ``"time"``) and a
    marshmallow ``schema`` validating its parameters. ``is_met(context)`` answers whether
    the condition holds; ``holds_from(context)`` may name the moment it will (see
    :class:`balrog_engine.Condition`). Conditions needing numbers read them through
    ``context.metric(...)`` (the agent's configured metrics sources).
    """


@hookspec
def balrog_metrics_sources():
    """Contribute metrics-source types: where conditions such as ``uptake`` read their numbers.

    Called once at start-up, with no arguments.

    Return an iterable of :class:`balrog_engine.MetricsSource` subclasses, each with a unique
    ``name`` (the ``type`` the agent's configuration uses, e.g. ``"http_json"``) and a
    marshmallow ``schema`` validating its configuration. The agent instantiates each
    configured source once with its configuration; ``value(metric, labels)`` must return a
    float, or None when there is no data, and raise :class:`balrog_engine.MetricsError` when
    it cannot answer. Two plugins claiming one ``name`` is a start-up error.
    """


@hookspec
def balrog_notifiers():
    """Contribute notifier types: how the agent warns humans before it enacts a change.

    Called once at start-up, with no arguments.

    Return an iterable of :class:`balrog_engine.Notifier` subclasses, each with a unique
    ``name`` (the ``type`` the agent's configuration uses, e.g. ``"smtp"``) and a marshmallow
    ``schema`` validating its configuration. The agent instantiates each configured notifier
    once; ``notify(heads_up)`` receives a :class:`balrog_engine.HeadsUp` and must return
    only once it is delivered (raise :class:`balrog_engine.NotifyError` otherwise: the agent
    retries and does not enact meanwhile). Two plugins claiming one ``name`` is a start-up error.
    """


@hookspec
def balrog_storage_backends():
    """Contribute storage backends.

    Called once at start-up, with no arguments.

    Return a mapping ``{url_scheme: factory}``. ``url_scheme`` is the part of a
    database URL before ``://`` (``"memory"``, ``"sqlite"``, ``"postgresql"``, …);
    ``factory(url: str)`` returns a :class:`balrog_engine.Storage`.
    """


@hookspec
def balrog_query_normalizers():
    """Contribute extra normalisation steps for update queries.

    Called once at start-up, with no arguments.

    Return an iterable of callables ``f(query: UpdateQuery) -> UpdateQuery``. After the
    built-in normalisation of every ``/update`` and ``/json`` request, the
    callables run in plugin registration order, each receiving the previous
    one's result (use ``query.replace(field=value)``). They must be pure and
    fast: they run on every request.
    """


@hookspec
def balrog_response_signers():
    """Contribute response signers (e.g. an Autograph content-signature client).

    Called once at start-up, with no arguments.

    Return an iterable of callables ``sign(query: UpdateQuery, body: bytes) ->
    tuple[str, str] | None``. For each successful update response, the signers
    are called in order; the first one that returns a ``(header_name,
    header_value)`` pair has its header added to the response. Return None to
    leave a response unsigned.
    """
