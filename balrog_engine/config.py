"""Server settings: one optional TOML file, overridden by ``BALROG_*`` environment variables.

Every setting has a default that makes ``balrog serve`` work out of the box.
"""
from __future__ import annotations

import json
import os
import tomllib
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, Mapping

DEFAULT_DB_URL = "sqlite:///balrog.db"


@dataclass(frozen=True)
class Settings:
    db: str = DEFAULT_DB_URL
    host: str = "127.0.0.1"
    port: int = 9010
    threads: int = 8
    # Deployment settings that change answers; None = use those stored with the data.
    allowlisted_domains: Mapping[str, Any] | None = None
    special_force_hosts: tuple[str, ...] | None = None
    cache_control: str = "public, max-age=90"
    strict_transport_security: str = "max-age=31536000;"
    content_type_options: str = "nosniff"
    content_security_policy: str = "default-src 'none'; frame-ancestors 'none'"
    block_plugins: tuple[str, ...] = ()
    refresh_interval: float = 1.0
    version_file: str = "version.json"
    load_demo_data: bool = True
    # Identical requests answered from memory until the next snapshot swap; 0 turns it off.
    response_cache_size: int = 20000
    access_log: bool = True
    log_format: str = "json"  # or "text"
    # --- the admin API (``balrog admin``) ---
    admin_port: int = 9011
    # Bearer tokens verified against an OIDC provider (Auth0: issuer https://<domain>/).
    auth_issuer: str | None = None
    auth_audience: str | None = None
    auth_jwks_url: str | None = None  # default: <issuer>.well-known/jwks.json
    auth_userinfo_url: str | None = None  # default: <issuer>userinfo
    # Development only: a JSON file {"<token>": "<username>"} of static tokens.
    admin_tokens_file: str | None = None
    # Machine-to-machine logins: the token's client id (``azp``) -> the username it acts as,
    # e.g. {"<automation client id>": "balrog-ffxbld", "<agent client id>": "balrogagent"}.
    auth_m2m_accounts: Mapping[str, str] | None = None
    system_accounts: tuple[str, ...] = ()
    # The system accounts (the agent) may only enact scheduled changes whose ``when`` has come;
    # false reproduces the reference, which lets them enact early.
    enact_due_only_for_system_accounts: bool = True
    cors_origins: tuple[str, ...] = ()
    max_body_bytes: int = 10 * 1024 * 1024

    def deployment_overrides(self) -> dict:
        return {"allowlisted_domains": self.allowlisted_domains, "special_force_hosts": self.special_force_hosts}


_ENV_PREFIX = "BALROG_"
_JSON_FIELDS = {"allowlisted_domains", "special_force_hosts", "block_plugins", "system_accounts", "cors_origins",
                "auth_m2m_accounts"}
_TUPLE_FIELDS = ("special_force_hosts", "block_plugins", "system_accounts", "cors_origins")


def _coerce(name: str, value: Any, kind: Any) -> Any:
    if name in _JSON_FIELDS and isinstance(value, str):
        value = json.loads(value) if value.strip().startswith(("[", "{")) else [v for v in value.split(",") if v]
    if name in _TUPLE_FIELDS and value is not None:
        return tuple(value)
    if kind in (int, "int"):
        return int(value)
    if kind in (float, "float"):
        return float(value)
    if kind in (bool, "bool") and isinstance(value, str):
        return value.lower() in ("1", "true", "yes", "on")
    return value


def load_settings(path: str | os.PathLike | None = None, env: Mapping[str, str] | None = None, **overrides) -> Settings:
    """Defaults < TOML file (``[balrog]`` table or top level) < environment < explicit overrides."""
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    path = path or env.get("BALROG_CONFIG")
    if path:
        data = tomllib.loads(Path(path).read_text())
        values.update(data.get("balrog", data))
    known = {f.name: f.type for f in fields(Settings)}
    for name in known:
        key = _ENV_PREFIX + name.upper()
        if key in env:
            values[name] = env[key]
    values.update({k: v for k, v in overrides.items() if v is not None})
    unknown = set(values) - set(known)
    if unknown:
        raise ValueError(f"unknown setting(s): {', '.join(sorted(unknown))}")
    settings = Settings()
    return replace(settings, **{k: _coerce(k, v, known[k]) for k, v in values.items()})
