"""End to end: ``balrog admin`` and ``balrog agent`` as real processes on 127.0.0.1 (a SQLite
database, static development tokens), a local SMTP server receiving the heads-ups, a metrics
HTTP endpoint and a metrics table the conditions read.

Shown here: a time-based rule change with its required signoffs is announced by mail, then
enacted on time and recorded in history as the scheduler's change (scheduled-changes-and-agent.md
§4.4 step 6: ``changed_by`` = ``scheduled_by``, not the agent), while its enactment record names
the agent (``GET .../enactment``, ours); a change lacking signoffs is never
enacted; a change cancelled (deleted) during its grace period is not enacted; the agent's account
is refused (403) every write but enact; uptake and error-rate conditions enact when their metric
crosses the target (these need the admin API to accept the ``conditions`` extension).
"""
from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.agent.servers import (
    ADMIN, AGENT, ALICE, ALLOWLIST, BOB, CAROL, REGISTRY, TOKENS, HttpEndpoint, SmtpSink, call, firefox, now_ms,
    release_blob, schedule, seed_database, sign,
)

GRACE = 2.0
INTERVAL = 0.3


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Logs:
    """The agent's JSON log lines, read as they come (a thread drains its stdout)."""

    def __init__(self, stream):
        self.lines: list[dict] = []
        self.raw: list[str] = []
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self.thread.start()

    def _read(self, stream):
        for line in stream:
            with self.lock:
                self.raw.append(line)
                if line.startswith("{"):
                    self.lines.append({**json.loads(line), "_seen": time.time()})

    def decisions(self, key: str) -> list[dict]:
        with self.lock:
            return [line for line in self.lines if line.get("event") == "decision" and line["change"] == key]

    def wait_for(self, key: str, decision: str, timeout: float = 30.0) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.decisions(key):
                if line["decision"] == decision:
                    return line
            time.sleep(0.05)
        raise AssertionError(f"no {decision!r} decision for {key} within {timeout}s: "
                             f"{[d['decision'] for d in self.decisions(key)]}\n{''.join(self.raw[-20:])}")


class Stack:
    def __init__(self, base_url: str, logs: Logs, smtp: SmtpSink, uptake: dict, health_db: str):
        self.base_url, self.logs, self.smtp, self.uptake, self.health_db = base_url, logs, smtp, uptake, health_db


def wait_until(predicate, timeout: float = 30.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"{what} not reached within {timeout}s"
        time.sleep(0.1)


def stop(process: subprocess.Popen) -> int:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    tmp: Path = tmp_path_factory.mktemp("e2e")
    db = f"sqlite:///{tmp}/balrog.db"
    storage = REGISTRY.storage_for(db)
    seed_database(storage)
    storage.close()
    tokens = tmp / "tokens.json"
    tokens.write_text(json.dumps({token: user for user, token in TOKENS.items()}))
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    admin_env = {"PATH": "/usr/bin:/bin", "BALROG_ADMIN_TOKENS_FILE": str(tokens),
                 "BALROG_SYSTEM_ACCOUNTS": AGENT, "BALROG_ALLOWLISTED_DOMAINS": json.dumps(ALLOWLIST)}
    admin = subprocess.Popen([sys.executable, "-m", "balrog_app.cli", "admin", "--db", db, "--port", str(port)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=admin_env)
    uptake: dict[str, float] = {}
    health_db = f"sqlite:///{tmp}/health.db"
    engine = sa.create_engine(health_db)
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE health (product TEXT, channel TEXT, version TEXT, metric TEXT, "
                                   "value REAL, measured_at INTEGER)")
    engine.dispose()
    with SmtpSink() as smtp, HttpEndpoint(lambda r: (200, {"value": uptake.get(r.query.get("version"))})) as metrics:
        agent = None
        try:
            wait_until(lambda: _reachable(base_url) or admin.poll() is not None, what="balrog admin")
            assert admin.poll() is None, admin.stderr.read()
            firefox(base_url)
            config = tmp / "agent.toml"
            config.write_text(f"""
api_root = "{base_url}"
interval = {INTERVAL}
grace_seconds = {GRACE}
retries = 2
backoff_seconds = 0.1
metrics_file = "{tmp}/agent.prom"

[metrics_sources.telemetry]
type = "http_json"
url = "{metrics.url}/uptake"

[metrics_sources.health]
type = "sql_table"
url = "{health_db}"
table = "health"
order_by = "measured_at"

[[notifiers]]
type = "smtp"
host = "127.0.0.1"
port = {smtp.port}
from_addr = "balrog-agent@example.com"
to_addrs = ["releng@example.com"]
subject_prefix = "[balrog] "
""")
            # The token comes from the environment, as a deployment would pass a secret.
            agent = subprocess.Popen([sys.executable, "-m", "balrog_app.cli", "agent", "--agent-config", str(config)],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     env={"PATH": "/usr/bin:/bin", "BALROG_AGENT_TOKEN": TOKENS[AGENT]})
            yield Stack(base_url, Logs(agent.stdout), smtp, uptake, health_db)
            assert stop(agent) == 0  # SIGTERM: the current step is finished, exit status 0
            assert (tmp / "agent.prom").read_text().count("balrog_agent_decisions_total") > 1
        finally:
            if agent is not None:
                stop(agent)
            admin.terminate()
            admin.wait(20)


def _reachable(base_url: str) -> bool:
    try:
        return call(base_url, "GET", "/scheduled_changes/rules")[0] == 200
    except OSError:
        return False


def sc(stack, sc_id):
    return call(stack.base_url, "GET", f"/scheduled_changes/rules/{sc_id}")[1]["scheduled_change"]


def rule(stack, rule_id):
    return call(stack.base_url, "GET", f"/rules/{rule_id}")[1]


def test_time_based_changes_signoffs_heads_up_and_cancel(stack):
    base = stack.base_url
    when = now_ms(6)
    signed = schedule(base, 1, when, mapping="Firefox-61.0-build1")
    sign(base, signed, BOB, CAROL)
    unsigned = schedule(base, 3, now_ms(2), mapping="Firefox-61.0-build1")
    sign(base, unsigned, BOB)  # 2 relman signoffs required: one is missing
    cancelled_when = now_ms(4)
    cancelled = schedule(base, 2, cancelled_when, backgroundRate=0)  # beta: no signoffs required

    # The heads-up of the change to cancel arrives a grace period before it is due; a human deletes it.
    stack.smtp.wait_for(lambda m: f"rules/{cancelled} " in m.subject)
    status, _ = call(base, "DELETE", f"/scheduled_changes/rules/{cancelled}?data_version=1", ALICE)
    assert status == 200

    # The signed change: announced by mail, then enacted at its time.
    wait_until(lambda: sc(stack, signed)["complete"], what="enactment of the signed change")
    heads_up = stack.smtp.wait_for(lambda m: f"rules/{signed} " in m.subject)
    assert heads_up.recipients == ["releng@example.com"]
    assert heads_up.subject.startswith(f"[balrog] balrog: rules/{signed} will be enacted at ")
    assert f"DELETE {base}/scheduled_changes/rules/{signed}?data_version=1" in heads_up.body
    enacted = stack.logs.wait_for(f"rules/{signed}", "enacted")
    revision = call(base, "GET", "/rules/1/revisions")[1]["rules"][0]
    assert revision["mapping"] == "Firefox-61.0-build1"
    # Recorded as the scheduler's change, as the reference records an agent's enactment.
    assert revision["changed_by"] == ALICE
    assert heads_up.received * 1000 < revision["timestamp"]  # the mail came before the change
    assert revision["timestamp"] >= when  # and the change came on time, not before
    assert [d["decision"] for d in stack.logs.decisions(f"rules/{signed}")][-3:] == \
        ["heads_up", "waiting_grace", "enacted"]
    assert enacted["scheduled_by"] == ALICE
    sc_revision = call(base, "GET", f"/scheduled_changes/rules/{signed}/revisions")[1]["revisions"][0]
    assert (sc_revision["complete"], sc_revision["changed_by"]) == (True, ALICE)
    # Who enacted it is recorded apart: the agent's account.
    status, enactment = call(base, "GET", f"/scheduled_changes/rules/{signed}/enactment")
    assert (status, enactment["sc_id"], enactment["segment"], enactment["enacted_by"]) == \
        (200, signed, "rules", AGENT)
    assert enactment["timestamp"] >= when

    # The unsigned change is past due and still not enacted, nor announced.
    waiting = stack.logs.wait_for(f"rules/{unsigned}", "waiting_for_signoffs")
    assert waiting["missing_signoffs"] == {"relman": 1}
    assert not sc(stack, unsigned)["complete"] and rule(stack, 3)["mapping"] == "Firefox-60.0-build1"
    assert not [m for m in stack.smtp.mails if f"rules/{unsigned} " in m.subject]

    # The cancelled change: reported, and never enacted, even after its announced time.
    stack.logs.wait_for(f"rules/{cancelled}", "cancelled")
    wait_until(lambda: time.time() > cancelled_when / 1000 + GRACE + 2 * INTERVAL, what="the cancelled change's time")
    assert rule(stack, 2)["backgroundRate"] == 100
    assert "enacted" not in [d["decision"] for d in stack.logs.decisions(f"rules/{cancelled}")]
    assert call(base, "GET", f"/scheduled_changes/rules/{cancelled}/enactment")[0] == 404


def test_agent_account_may_enact_and_nothing_else(stack):
    base = stack.base_url
    pending = schedule(base, 2, now_ms(3600), backgroundRate=10)
    rule5 = rule(stack, 5)
    writes = [
        ("POST", "/rules", {"priority": 1, "backgroundRate": 100, "update_type": "minor", "product": "Firefox",
                            "channel": "nightly", "mapping": "Firefox-60.0-build1"}),
        ("POST", "/rules/5", {"data_version": rule5["data_version"], "backgroundRate": 0}),
        ("DELETE", f"/rules/5?data_version={rule5['data_version']}", None),
        ("PUT", "/releases/Firefox-62.0-build1", {"name": "Firefox-62.0-build1", "product": "Firefox",
                                                  "blob": release_blob("Firefox-62.0-build1", "62.0")}),
        ("POST", "/scheduled_changes/rules", {"change_type": "update", "rule_id": 5,
                                              "data_version": rule5["data_version"], "when": now_ms(3600),
                                              "priority": 60, "backgroundRate": 0, "update_type": "minor",
                                              "product": "Firefox", "channel": "beta",
                                              "mapping": "Firefox-60.0-build1"}),
        ("POST", f"/scheduled_changes/rules/{pending}", {"sc_data_version": 1, "when": now_ms(7200),
                                                         "data_version": rule(stack, 2)["data_version"]}),
        ("DELETE", f"/scheduled_changes/rules/{pending}?data_version=1", None),
        ("POST", f"/scheduled_changes/rules/{pending}/signoffs", {"role": "relman"}),
        ("PUT", f"/users/{AGENT}/permissions/admin", {"options": None}),
        ("PUT", f"/users/{AGENT}/roles/relman", {}),
        ("POST", "/required_signoffs/product", {"product": "Firefox", "channel": "beta", "role": "relman",
                                                "signoffs_required": 1}),
        ("POST", "/emergency_shutoff", {"product": "Firefox", "channel": "beta"}),
    ]
    answers = {f"{method} {path.split('?')[0]}": call(base, method, path, AGENT, body)[0]
               for method, path, body in writes}
    assert answers == {key: 403 for key in answers}
    # What it may do: enact (here an unknown change: 404, not 403).
    assert call(base, "POST", "/scheduled_changes/rules/4242/enact", AGENT)[0] == 404
    status, _ = call(base, "DELETE", f"/scheduled_changes/rules/{pending}?data_version=1", ADMIN)
    assert status == 200


# --- conditions beyond time: need the admin API to accept the `conditions` extension ----------------------
def test_uptake_condition_enacts_when_the_target_share_is_reached(stack):
    base = stack.base_url
    stack.uptake["61.0"] = 10.0
    sc_id = schedule(base, 4, None, mapping="Firefox-61.0-build1", conditions={
        "uptake": {"product": "Firefox", "channel": "beta", "version": "61.0", "target": 50, "source": "telemetry"}})
    not_ready = stack.logs.wait_for(f"rules/{sc_id}", "not_ready")
    assert not_ready["conditions"] == ["uptake"]
    time.sleep(GRACE + 3 * INTERVAL)
    assert rule(stack, 4)["mapping"] == "Firefox-60.0-build1"

    stack.uptake["61.0"] = 64.5
    mail = stack.smtp.wait_for(lambda m: f"rules/{sc_id} " in m.subject)
    assert "uptake" in mail.body
    wait_until(lambda: sc(stack, sc_id)["complete"], what="enactment on uptake")
    revision = call(base, "GET", "/rules/4/revisions")[1]["rules"][0]
    assert (revision["mapping"], revision["changed_by"]) == ("Firefox-61.0-build1", ALICE)
    assert mail.received * 1000 < revision["timestamp"]


def test_error_rate_condition_enacts_the_prepared_halt(stack):
    base = stack.base_url
    engine = sa.create_engine(stack.health_db)

    def measure(rate: float, at: int) -> None:
        with engine.begin() as connection:
            connection.execute(sa.text("INSERT INTO health VALUES ('Firefox', 'beta', '61.0', 'crash_rate', "
                                       ":rate, :at)"), {"rate": rate, "at": at})

    measure(0.8, 1)
    # Prepared in advance and ready to go: stop offering the release when crashes spike.
    sc_id = schedule(base, 5, None, backgroundRate=0, conditions={
        "error_rate": {"metric": "crash_rate", "threshold": 5, "product": "Firefox", "channel": "beta",
                       "version": "61.0", "source": "health"}})
    assert stack.logs.wait_for(f"rules/{sc_id}", "not_ready")["conditions"] == ["error_rate"]
    time.sleep(GRACE + 3 * INTERVAL)
    assert rule(stack, 5)["backgroundRate"] == 100

    measure(7.5, 2)
    stack.smtp.wait_for(lambda m: f"rules/{sc_id} " in m.subject)
    wait_until(lambda: sc(stack, sc_id)["complete"], what="the halt")
    assert rule(stack, 5)["backgroundRate"] == 0
    engine.dispose()
