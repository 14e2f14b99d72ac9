"""The plugin guide's example condition package, pip-installed for real: discovered through its
entry point, validated by its schema, and gating a real enactment by the agent."""
from __future__ import annotations

import dataclasses
import importlib
import logging
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from balrog_app.agent import AgentConfig, AgentStats
from balrog_app.agent.changes import v1_change
from balrog_app.agent.main import build_agent
from balrog_engine import ConditionContext, load_plugins
from tests.agent.servers import AGENT, TOKENS, admin_api, call, firefox, now_ms, schedule

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "balrog-release-window-condition"
WEEKDAYS = {"days": ["mon", "tue", "wed", "thu"], "from_hour": 9, "until_hour": 17}
THURSDAY_NOON = datetime(2026, 3, 5, 12, tzinfo=timezone.utc)
FRIDAY_NOON = datetime(2026, 3, 6, 12, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def installed():
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", str(EXAMPLE)],
                   check=True)
    importlib.invalidate_caches()
    yield load_plugins()
    subprocess.run([sys.executable, "-m", "pip", "uninstall", "-q", "-y", "balrog-release-window-condition"],
                   check=True)


def test_installed_condition_is_discovered_and_evaluated(installed):
    window = installed.condition_types["release_window"](WEEKDAYS)
    assert window.is_met(ConditionContext(now=THURSDAY_NOON))
    assert not window.is_met(ConditionContext(now=FRIDAY_NOON))
    # Outside a window it names the next opening: Monday 09:00.
    assert window.holds_from(ConditionContext(now=FRIDAY_NOON)) == datetime(2026, 3, 9, 9, tzinfo=timezone.utc)
    assert "release_window" not in load_plugins(blocked=["release-window"]).condition_types


def test_installed_condition_validates_its_parameters(installed):
    with pytest.raises(Exception) as refused:
        installed.condition_types["release_window"]({"days": ["fri"], "from_hour": 17, "until_hour": 9})
    assert refused.value.messages == {"until_hour": ["must be later than from_hour"]}


def next_friday_noon() -> datetime:
    day = datetime.now(timezone.utc).replace(hour=12, minute=0, second=0, microsecond=0) + timedelta(days=1)
    return day + timedelta(days=(4 - day.weekday()) % 7)


def test_agent_enacts_only_inside_the_window(installed, caplog):
    caplog.set_level(logging.INFO, logger="balrog.agent")
    friday = next_friday_noon()  # after the change's `when`: only the window holds it back
    clock = [friday]
    with admin_api() as (base_url, _):
        firefox(base_url)
        sc_id = schedule(base_url, 2, now_ms(0.2), backgroundRate=25)
        time.sleep(0.3)
        config = AgentConfig(api_root=base_url, auth={"token": TOKENS[AGENT]}, grace_seconds=0, interval=1)
        agent = build_agent(config, installed, {}, [], AgentStats(), threading.Event())
        agent.clock = lambda: clock[0]  # the window is about the calendar: the agent's clock decides
        item = call(base_url, "GET", "/scheduled_changes/rules")[1]["scheduled_changes"][0]
        change = v1_change("rules", item)
        windowed = dataclasses.replace(change, conditions=change.conditions + (("release_window", WEEKDAYS),))

        agent.process(windowed)  # Friday: not before Monday 09:00
        assert call(base_url, "GET", "/rules/2")[1]["backgroundRate"] == 100
        clock[0] = friday + timedelta(days=6)  # the next Thursday, noon
        agent.process(windowed)
        assert call(base_url, "GET", "/rules/2")[1]["backgroundRate"] == 25
    decided = [(r.decision, getattr(r, "reason", None)) for r in caplog.records
               if getattr(r, "event", "") == "decision"]
    assert decided == [("not_ready", "heads-up not due"), ("heads_up", None), ("enacted", None)]
    assert sc_id == item["sc_id"]
