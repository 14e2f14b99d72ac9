"""The agent's configuration: one JSON or TOML file, overridden by environment variables,
validated with marshmallow (every problem reported with its path).

    api_root = "https://admin.balrog.example.com/api"
    interval = 30                 # seconds between cycles
    grace_seconds = 300           # heads-up -> enactment
    metrics_file = "/var/lib/node_exporter/balrog_agent.prom"   # optional
    metrics_port = 9102                                          # optional /metrics

    [auth]                        # either a static token (development) ...
    token = "…"
    # ... or Auth0 client credentials (client-compat.md §2):
    # domain = "auth.example.com"; audience = "balrog"; client_id = "…"; client_secret = "…"

    [metrics_sources.telemetry]   # {name: {type, …}}: conditions read their numbers here
    type = "http_json"
    url = "https://metrics.example.com/{metric}"

    [[notifiers]]                 # [{type, …}]: who hears about a change before it is enacted
    type = "smtp"
    host = "smtp.example.com"
    from_addr = "balrog-agent@example.com"
    to_addrs = ["releng@example.com"]

Keys may also sit under an ``[agent]`` table (so one file can hold the server's ``[balrog]``
settings too). The environment wins over the file: the reference agent's variables
(``BALROG_API_ROOT``, ``AUTH0_DOMAIN``, ``AUTH0_AUDIENCE``, ``AUTH0_M2M_CLIENT_ID``,
``AUTH0_M2M_CLIENT_SECRET``), then ``BALROG_AGENT_<KEY>`` for every top-level key
(``BALROG_AGENT_TOKEN`` for a static token; JSON for ``METRICS_SOURCES`` and ``NOTIFIERS``).
The ``type`` of a metrics source or notifier picks its plugin, whose own schema validates the
remaining keys (:func:`build_plugins`).
"""
from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import urlsplit

from marshmallow import Schema, ValidationError, fields, validate, validates, validates_schema

from balrog_engine import MetricsSource, Notifier, PluginRegistry, flatten_errors


class ConfigError(ValueError):
    """The configuration cannot work; ``problems`` are ``"path: message"`` lines."""

    def __init__(self, problems: list[str]):
        super().__init__("; ".join(problems))
        self.problems = problems


def _http_url(value: str) -> None:
    parsed = urlsplit(value)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ValidationError("must be an http:// or https:// URL")


class AuthSchema(Schema):
    token = fields.String(validate=validate.Length(min=1))
    domain = fields.String(validate=validate.Length(min=1))
    # Overrides https://<domain>/oauth/token (e.g. a local identity provider in development).
    token_url = fields.String()
    audience = fields.String(validate=validate.Length(min=1))
    client_id = fields.String(validate=validate.Length(min=1))
    client_secret = fields.String(validate=validate.Length(min=1))

    @validates("token_url")
    def _token_url(self, value: str, **_: Any) -> None:
        _http_url(value)

    @validates_schema
    def _one_way(self, data: Mapping[str, Any], **_: Any) -> None:
        credentials = ("domain", "token_url", "audience", "client_id", "client_secret")
        if "token" in data:
            extra = [name for name in credentials if name in data]
            if extra:
                raise ValidationError(f"a static token excludes client credentials ({', '.join(extra)})")
            return
        missing = [name for name in ("audience", "client_id", "client_secret") if name not in data]
        if "domain" not in data and "token_url" not in data:
            missing.insert(0, "domain")
        if missing:
            raise ValidationError("give either token, or domain (or token_url), audience, client_id and "
                                  f"client_secret (missing: {', '.join(missing)})")


class PluginConfigSchema(Schema):
    """Only the ``type``; the plugin's schema checks the rest (:func:`build_plugins`)."""

    class Meta:
        unknown = "include"

    type = fields.String(required=True, validate=validate.Length(min=1))


class AgentSchema(Schema):
    api_root = fields.String(required=True)
    auth = fields.Nested(AuthSchema, required=True)
    interval = fields.Float(load_default=30.0, validate=validate.Range(min=0.01))
    grace_seconds = fields.Float(load_default=300.0, validate=validate.Range(min=0))
    retries = fields.Integer(load_default=3, validate=validate.Range(min=0, max=20))
    backoff_seconds = fields.Float(load_default=0.5, validate=validate.Range(min=0))
    max_backoff_seconds = fields.Float(load_default=10.0, validate=validate.Range(min=0))
    timeout_seconds = fields.Float(load_default=30.0, validate=validate.Range(min=0.1))
    metrics_sources = fields.Dict(keys=fields.String(validate=validate.Length(min=1)),
                                  values=fields.Nested(PluginConfigSchema), load_default=dict)
    notifiers = fields.List(fields.Nested(PluginConfigSchema), load_default=list)
    metrics_file = fields.String(load_default=None, allow_none=True)
    metrics_port = fields.Integer(load_default=None, allow_none=True, validate=validate.Range(min=0, max=65535))
    metrics_host = fields.String(load_default="127.0.0.1")

    @validates("api_root")
    def _api_root(self, value: str, **_: Any) -> None:
        _http_url(value)


@dataclass(frozen=True)
class AgentConfig:
    api_root: str
    auth: Mapping[str, str]
    interval: float = 30.0
    grace_seconds: float = 300.0
    retries: int = 3
    backoff_seconds: float = 0.5
    max_backoff_seconds: float = 10.0
    timeout_seconds: float = 30.0
    metrics_sources: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    notifiers: tuple[Mapping[str, Any], ...] = ()
    metrics_file: str | None = None
    metrics_port: int | None = None
    metrics_host: str = "127.0.0.1"


#: The reference agent's environment (scheduled-changes-and-agent.md §8.1): top-level or auth keys.
REFERENCE_ENV = {"BALROG_API_ROOT": ("api_root",), "AUTH0_DOMAIN": ("auth", "domain"),
                 "AUTH0_AUDIENCE": ("auth", "audience"), "AUTH0_M2M_CLIENT_ID": ("auth", "client_id"),
                 "AUTH0_M2M_CLIENT_SECRET": ("auth", "client_secret")}
ENV_PREFIX = "BALROG_AGENT_"
JSON_KEYS = ("metrics_sources", "notifiers")


def read_file(path: str | Path, table_only: bool = False) -> dict:
    """The file's agent keys: its ``[agent]`` table if it has one, else its top level
    (unless ``table_only``: a shared settings file contributes its ``[agent]`` table only)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read: {exc.strerror or exc}"]) from None
    try:
        data = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except ValueError as exc:  # json.JSONDecodeError and tomllib.TOMLDecodeError both are
        raise ConfigError([f"{path}: not valid {'JSON' if path.suffix == '.json' else 'TOML'}: {exc}"]) from None
    if not isinstance(data, dict):
        raise ConfigError([f"{path}: the configuration must be an object"])
    if isinstance(data.get("agent"), dict):
        return dict(data["agent"])
    return {} if table_only else data


def apply_env(values: dict, env: Mapping[str, str]) -> dict:
    """The reference agent's variables, then ``BALROG_AGENT_*`` ones, over the file's values.
    Credentials from the environment replace the file's ``auth`` as a whole (never a mix)."""
    values = dict(values)
    if "BALROG_API_ROOT" in env:
        values["api_root"] = env["BALROG_API_ROOT"]
    reference_auth = {path[1]: env[name] for name, path in REFERENCE_ENV.items() if path[0] == "auth" and name in env}
    if reference_auth:
        values["auth"] = reference_auth
    for name in AgentSchema().fields:
        key = ENV_PREFIX + name.upper()
        if name == "auth" or key not in env:
            continue
        raw = env[key]
        if name in JSON_KEYS:
            try:
                values[name] = json.loads(raw)
            except ValueError:
                raise ConfigError([f"{key}: not valid JSON"]) from None
        else:
            values[name] = raw if raw != "" else None
    if ENV_PREFIX + "TOKEN" in env:
        values["auth"] = {"token": env[ENV_PREFIX + "TOKEN"]}
    if ENV_PREFIX + "TOKEN_URL" in env and isinstance(values.get("auth"), dict):
        values["auth"] = {**values["auth"], "token_url": env[ENV_PREFIX + "TOKEN_URL"]}
    return values


def load_agent_config(path: str | Path | None = None, env: Mapping[str, str] | None = None,
                      shared_path: str | Path | None = None) -> AgentConfig:
    """File (``path``, or the ``[agent]`` table of the shared settings file) < environment."""
    env = {} if env is None else env
    if path:
        values = read_file(path)
    elif shared_path:
        values = read_file(shared_path, table_only=True)
    else:
        values = {}
    values = apply_env(values, env)
    try:
        loaded = AgentSchema().load(values)
    except ValidationError as exc:
        raise ConfigError([f"{where}: {message}" for where, message in flatten_errors(exc.messages)]) from None
    loaded["notifiers"] = tuple(loaded["notifiers"])
    return AgentConfig(**loaded)


def _instantiate(kinds: Mapping[str, type], entry: Mapping[str, Any], where: str, what: str, problems: list[str]):
    settings = dict(entry)
    kind = settings.pop("type")
    cls = kinds.get(kind)
    if cls is None:
        known = ", ".join(sorted(kinds)) or "none installed"
        problems.append(f"{where}.type: unknown {what} type {kind!r} (known: {known})")
        return None
    try:
        return cls(settings)
    except ValidationError as exc:
        problems.extend(f"{path}: {message}" for path, message in flatten_errors(exc.messages, where))
        return None


def build_plugins(config: AgentConfig, registry: PluginRegistry) -> tuple[dict[str, MetricsSource], list[Notifier]]:
    """Instantiate the configured metrics sources and notifiers with their plugins' schemas."""
    problems: list[str] = []
    sources = {}
    for name, entry in config.metrics_sources.items():
        source = _instantiate(registry.metrics_sources, entry, f"metrics_sources.{name}", "metrics source", problems)
        if source is not None:
            sources[name] = source
    notifiers = []
    for index, entry in enumerate(config.notifiers):
        notifier = _instantiate(registry.notifiers, entry, f"notifiers[{index}]", "notifier", problems)
        if notifier is not None:
            notifiers.append(notifier)
    if problems:
        for source in sources.values():
            source.close()
        raise ConfigError(problems)
    return sources, notifiers
