"""The Balrog agent (``balrog agent``): enacts scheduled changes when their conditions hold
(scheduled-changes-and-agent.md §8; docs/agent.md).

A separate process holding only an agent account: it talks to the admin API over HTTP, never
to the database, and can do nothing but list pending changes and enact them.

- :mod:`.config` — the configuration file and environment, validated.
- :mod:`.tokens` — static token or Auth0 client credentials.
- :mod:`.client` — the admin API calls, with bounded retries and backoff.
- :mod:`.changes` — reading the API's scheduled changes: conditions, missing signoffs.
- :mod:`.loop` — the cycle and the per-change decisions (heads-up, grace, enactment).
- :mod:`.observability` — decision counters (Prometheus text file and/or ``/metrics``).
- :mod:`.main` — the command: assembly, signals, exit status.
"""
from .changes import Change
from .client import SEGMENTS, AdminClient, ApiError, ApiUnavailable
from .config import AgentConfig, ConfigError, build_plugins, load_agent_config
from .loop import Agent, CycleReport
from .observability import DECISIONS, AgentStats

__all__ = ["Agent", "AgentConfig", "AgentStats", "AdminClient", "ApiError", "ApiUnavailable", "Change",
           "ConfigError", "CycleReport", "DECISIONS", "SEGMENTS", "build_plugins", "load_agent_config"]
