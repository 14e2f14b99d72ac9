"""``balrog agent``: assemble the agent from its configuration and run it until SIGTERM.

Exit status: 0 after a clean stop (SIGTERM/SIGINT: the current change is finished first) or a
``--once`` cycle without failures; 1 after a ``--once`` cycle in which something failed;
2 when the configuration is refused (every problem printed with its path).
"""
from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from typing import Mapping

from balrog_engine import PluginRegistry

from .client import AdminClient
from .config import AgentConfig, ConfigError, build_plugins, load_agent_config
from .loop import Agent
from .observability import AgentStats
from .tokens import make_tokens

log = logging.getLogger("balrog.agent")


def run(registry: PluginRegistry, config_path: str | None = None, shared_config: str | None = None,
        once: bool = False, env: Mapping[str, str] | None = None) -> int:
    env = os.environ if env is None else env
    try:
        config = load_agent_config(config_path or env.get("BALROG_AGENT_CONFIG"), env, shared_config)
        sources, notifiers = build_plugins(config, registry)
    except ConfigError as exc:
        print("balrog agent: refusing this configuration:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return 2
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda signum, frame: _stopping(stop, signum))
                for sig in (signal.SIGTERM, signal.SIGINT)}
    stats = AgentStats()
    server = stats.serve(config.metrics_host, config.metrics_port) if config.metrics_port is not None else None
    if server is not None:
        log.info("metrics on http://%s:%s/metrics", config.metrics_host, server.server_port,
                 extra={"event": "metrics_http", "port": server.server_port})
    try:
        agent = build_agent(config, registry, sources, notifiers, stats, stop)
        write = (lambda: stats.write_textfile(config.metrics_file)) if config.metrics_file else (lambda: None)
        return agent.run(once=once, after_cycle=write)
    finally:
        for source in sources.values():
            source.close()
        if server is not None:
            server.shutdown()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def build_agent(config: AgentConfig, registry: PluginRegistry, sources, notifiers, stats: AgentStats,
                stop: threading.Event) -> Agent:
    client = AdminClient(config.api_root, make_tokens(config.auth, config.timeout_seconds), retries=config.retries,
                         backoff=config.backoff_seconds, max_backoff=config.max_backoff_seconds,
                         timeout=config.timeout_seconds, stop=stop,
                         on_retry=lambda method, path, reason: _retrying(stats, method, path, reason))
    return Agent(client, registry, sources=sources, notifiers=notifiers, grace_seconds=config.grace_seconds,
                 interval=config.interval, stats=stats, stop=stop)


def _retrying(stats: AgentStats, method: str, path: str, reason: str) -> None:
    stats.api_retries.inc()
    log.warning("retrying %s %s: %s", method, path, reason,
                extra={"event": "api_retry", "method": method, "path": path, "reason": reason})


def _stopping(stop: threading.Event, signum: int) -> None:
    # Only set a flag: the loop finishes the change at hand, then exits with status 0.
    if not stop.is_set():
        log.info("stopping on %s", signal.Signals(signum).name, extra={"event": "stopping"})
    stop.set()
