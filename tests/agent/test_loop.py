"""The agent's cycle against the real admin API over HTTP (in process): heads-up, grace period,
enactment, cancellation, signoffs, and the robustness rules (per-change errors, retries,
idempotent enactment, notifier failures, stopping between changes)."""
from __future__ import annotations

import time
from datetime import datetime, timezone

from balrog_app.agent import Change
from balrog_engine import MetricsError, MetricsSource
from tests.agent.conftest import Recorder, cycle_until
from tests.agent.servers import ADMIN, ALICE, BOB, CAROL, call, now_ms, schedule, sign


def sc(admin, sc_id):
    return call(admin, "GET", f"/scheduled_changes/rules/{sc_id}")[1]["scheduled_change"]


def rule(admin, rule_id):
    return call(admin, "GET", f"/rules/{rule_id}")[1]


def test_time_change_with_signoffs_is_announced_then_enacted_on_time(admin, make_agent, decisions):
    when = now_ms(2.5)
    sc_id = schedule(admin, 1, when, mapping="Firefox-61.0-build1")
    sign(admin, sc_id, BOB, CAROL)
    recorder = Recorder()
    agent = make_agent(grace=1.0, notifiers=[recorder])
    cycle_until(agent, lambda: sc(admin, sc_id)["complete"])
    enacted_at = time.time()

    key = f"rules/{sc_id}"
    seen = decisions(key)
    assert seen[0] == "not_ready" and seen[-1] == "enacted"
    assert seen.count("heads_up") == 1 and seen.count("enacted") == 1
    assert seen.index("heads_up") < seen.index("waiting_grace") < seen.index("enacted")
    (sent, heads_up), = recorder.received
    # Seen ahead: announced for `when` exactly, sent by the last cycle (interval 0.5 s) a grace
    # period before it.
    assert heads_up.enact_at == datetime.fromtimestamp(when / 1000, timezone.utc)
    assert when / 1000 - 1.0 - 0.5 - 0.2 <= sent <= when / 1000 - 1.0
    assert heads_up.change == key and heads_up.scheduled_by == ALICE
    assert heads_up.signoffs == {BOB: "relman", CAROL: "relman"}
    assert heads_up.cancel == f"delete the scheduled change: DELETE {admin}/scheduled_changes/rules/{sc_id}" \
                              "?data_version=1"
    enacted = decisions.records(key)[-1]
    assert enacted.created >= when / 1000 and enacted.scheduled_by == ALICE

    # History: the change is the scheduler's (scheduled-changes-and-agent.md §4.4 step 6).
    latest = call(admin, "GET", "/rules/1/revisions")[1]["rules"][0]
    assert (latest["mapping"], latest["changed_by"]) == ("Firefox-61.0-build1", ALICE)
    assert when <= latest["timestamp"] <= enacted_at * 1000
    assert agent.stats.registry.get_sample_value("balrog_agent_decisions_total",
                                                 {"segment": "rules", "decision": "enacted"}) == 1
    assert agent.announced == {}


def test_change_lacking_signoffs_is_never_enacted(admin, make_agent, decisions):
    sc_id = schedule(admin, 3, now_ms(0.5), mapping="Firefox-61.0-build1")
    sign(admin, sc_id, BOB)
    recorder = Recorder()
    agent = make_agent(notifiers=[recorder])
    time.sleep(0.6)
    for _ in range(3):
        agent.cycle()
    assert decisions(f"rules/{sc_id}") == ["waiting_for_signoffs"] * 3
    assert decisions.records(f"rules/{sc_id}")[0].missing_signoffs == {"relman": 1}
    assert recorder.received == [] and not sc(admin, sc_id)["complete"]
    assert rule(admin, 3)["mapping"] == "Firefox-60.0-build1"


def test_change_cancelled_during_the_grace_period_is_not_enacted(admin, make_agent, decisions):
    sc_id = schedule(admin, 2, now_ms(0.3), backgroundRate=0)  # beta: no signoffs required
    recorder = Recorder()
    agent = make_agent(grace=1.5, notifiers=[recorder])
    time.sleep(0.4)
    agent.cycle()
    assert decisions(f"rules/{sc_id}") == ["heads_up"]
    status, _ = call(admin, "DELETE", f"/scheduled_changes/rules/{sc_id}?data_version=1", ALICE)
    assert status == 200
    agent.cycle()
    time.sleep(1.6)  # past the announced enactment time
    agent.cycle()
    assert decisions(f"rules/{sc_id}") == ["heads_up", "cancelled"]
    assert rule(admin, 2)["backgroundRate"] == 100


def test_change_edited_after_its_heads_up_is_announced_again(admin, make_agent, decisions):
    sc_id = schedule(admin, 2, now_ms(0.3), backgroundRate=50)
    recorder = Recorder()
    agent = make_agent(grace=1.0, notifiers=[recorder])
    time.sleep(0.4)
    agent.cycle()
    status, answer = call(admin, "POST", f"/scheduled_changes/rules/{sc_id}", ALICE,
                          {"sc_data_version": 1, "when": now_ms(0.2), "backgroundRate": 25, "data_version": 1})
    assert status == 200, answer
    cycle_until(agent, lambda: sc(admin, sc_id)["complete"])
    assert [h.details["sc_data_version"] for _, h in recorder.received] == [1, 2]
    assert [h.details["backgroundRate"] for _, h in recorder.received] == [50, 25]
    assert decisions(f"rules/{sc_id}").count("heads_up") == 2
    assert rule(admin, 2)["backgroundRate"] == 25


def test_one_failing_change_does_not_stop_the_others(admin, make_agent, decisions):
    failing = schedule(admin, 4, now_ms(0.4), user=ALICE, backgroundRate=10)  # later `when`: processed first
    working = schedule(admin, 5, now_ms(0.3), user=BOB, backgroundRate=20)
    # Alice loses her permission: enacting her change (made as her, §4.4) is now refused.
    status, perm = call(admin, "GET", f"/users/{ALICE}/permissions/rule", ADMIN)
    status, _ = call(admin, "DELETE", f"/users/{ALICE}/permissions/rule?data_version={perm['data_version']}", ADMIN)
    assert status == 200
    agent = make_agent()
    time.sleep(0.5)
    report = agent.cycle()
    # (no grace period: the heads-up and the enactment come in the same cycle)
    assert decisions(f"rules/{failing}") == ["heads_up", "failed"]
    assert decisions(f"rules/{working}") == ["heads_up", "enacted"]
    failed = decisions.records(f"rules/{failing}")[-1]
    assert (failed.stage, failed.status) == ("enact", 403) and "not allowed" in failed.reason
    assert report.errors == 1 and not report.ok
    assert rule(admin, 5)["backgroundRate"] == 20 and rule(admin, 4)["backgroundRate"] == 100
    agent.cycle()  # retried every cycle, logged once (repeats at DEBUG), counted every time
    assert agent.stats.registry.get_sample_value("balrog_agent_decisions_total",
                                                 {"segment": "rules", "decision": "failed"}) == 2


def test_transient_api_errors_are_retried_with_backoff(admin, make_agent, faults, decisions):
    sc_id = schedule(admin, 2, now_ms(0.2), backgroundRate=30)
    time.sleep(0.3)
    faults.add("GET", "/scheduled_changes/rules", "unavailable", times=2)
    faults.add("POST", f"/rules/{sc_id}/enact", "unavailable")
    agent = make_agent(retries=2)
    report = agent.cycle()
    assert report.ok and decisions(f"rules/{sc_id}") == ["heads_up", "enacted"]
    assert agent.stats.registry.get_sample_value("balrog_agent_api_retries_total") == 3
    assert rule(admin, 2)["backgroundRate"] == 30


def test_exhausted_retries_fail_one_segment_not_the_cycle(admin, make_agent, faults):
    faults.add("GET", "/scheduled_changes/rules", "unavailable", times=3)
    agent = make_agent(retries=2)
    report = agent.cycle()
    assert report.errors == 1
    listed = [path for method, path, fault in faults.seen if method == "GET" and fault is None]
    assert listed == ["/scheduled_changes/releases", "/scheduled_changes/permissions",
                      "/scheduled_changes/emergency_shutoff", "/scheduled_changes/required_signoffs/product",
                      "/scheduled_changes/required_signoffs/permissions", "/scheduled_changes/pinnable_releases",
                      "/v2/releases"]
    assert agent.stats.registry.get_sample_value("balrog_agent_listing_failures_total", {"segment": "rules"}) == 1


def test_enactment_is_idempotent_when_its_answer_is_lost(admin, make_agent, faults, decisions):
    sc_id = schedule(admin, 2, now_ms(0.2), backgroundRate=40)
    time.sleep(0.3)
    faults.add("POST", f"/rules/{sc_id}/enact", "lose_answer")
    agent = make_agent()
    assert agent.cycle().ok
    record = decisions.records(f"rules/{sc_id}")[-1]
    assert (record.decision, record.already) == ("enacted", True)
    enacts = [fault for method, path, fault in faults.seen if path.endswith("/enact")]
    assert enacts == ["lose_answer", None]  # the retry was refused as complete: treated as done
    revisions = call(admin, "GET", "/rules/2/revisions")[1]
    assert revisions["count"] == 2 and revisions["rules"][0]["backgroundRate"] == 40  # enacted once


def test_no_enactment_until_every_notifier_delivered_the_heads_up(admin, make_agent, decisions):
    sc_id = schedule(admin, 2, now_ms(0.2), backgroundRate=60)
    time.sleep(0.3)
    steady, flaky = Recorder(), Recorder(fail=2)
    agent = make_agent(grace=0.0, notifiers=[steady, flaky])
    for _ in range(2):
        agent.cycle()
        assert rule(admin, 2)["backgroundRate"] == 100
    agent.cycle()
    assert decisions(f"rules/{sc_id}") == ["failed", "failed", "heads_up", "enacted"]
    assert decisions.records(f"rules/{sc_id}")[0].stage == "notify"
    assert len(steady.received) == 1 and len(flaky.received) == 1  # nobody is told twice
    assert agent.stats.registry.get_sample_value("balrog_agent_notifications_total",
                                                 {"notifier": "recorder", "outcome": "failed"}) == 2
    assert rule(admin, 2)["backgroundRate"] == 60


def test_stop_is_honoured_between_changes(admin, make_agent, decisions):
    # Both times from one clock reading, so a slow machine cannot reorder them: the agent takes
    # the latest `when` first.
    base = now_ms(0)
    first = schedule(admin, 4, base + 1000, backgroundRate=1)
    second = schedule(admin, 5, base + 900, backgroundRate=2)
    time.sleep(max(0.0, (base + 1100) / 1000 - time.time()))
    agent = make_agent()

    class StopOnHeadsUp(Recorder):
        def notify(self, heads_up):
            super().notify(heads_up)
            agent.stop.set()  # SIGTERM arrives while the first change is being handled

    agent.notifiers = [StopOnHeadsUp()]
    report = agent.cycle()
    assert report.stopped
    assert decisions(f"rules/{first}") == ["heads_up", "enacted"]  # the current change is finished
    assert decisions(f"rules/{second}") == []
    assert rule(admin, 5)["backgroundRate"] == 100
    assert agent.run() == 0  # already stopping: no cycle, clean exit


# --- decisions that need no server answer ------------------------------------------------------------------
def change(*conditions, missing=None):
    return Change(segment="rules", ident=99, version=1, conditions=tuple(conditions), missing_signoffs=missing or {})


class Broken(MetricsSource):
    name = "broken"

    def value(self, metric, labels):
        raise MetricsError("metrics backend unreachable")


def test_changes_the_agent_cannot_evaluate_are_never_enacted(make_agent, decisions, faults):
    agent = make_agent(sources={"health": Broken({})})
    agent.process(change())
    agent.process(change(("nonsense", {})))
    agent.process(change(("uptake", {"product": "Firefox", "channel": "release", "target": "lots"})))
    agent.process(change(("error_rate", {"metric": "crash_rate", "threshold": 1})))
    records = decisions.records("rules/99")
    assert [(r.decision, getattr(r, "stage", None)) for r in records] == [
        ("not_ready", None), ("failed", "conditions"), ("failed", "conditions"), ("failed", "metrics")]
    assert records[0].reason == "no conditions"
    assert records[1].reason.startswith("unknown condition 'nonsense' (installed: error_rate, time, uptake")
    assert records[2].reason == "uptake.target: Not a valid number."
    assert records[3].reason == "metrics backend unreachable"
    assert not [path for _, path, _ in faults.seen if path.endswith("/enact")]


def test_heads_up_waits_for_the_slowest_foreseeable_condition(make_agent, decisions):
    agent = make_agent(grace=60, interval=30)
    later = now_ms(3600)
    agent.process(change(("time", {"when": later}), ("time", {"when": now_ms(-1)})))
    record = decisions.records("rules/99")[0]
    assert (record.decision, record.reason) == ("not_ready", "heads-up not due")
    assert record.ready_at == datetime.fromtimestamp(later / 1000, timezone.utc).isoformat()
