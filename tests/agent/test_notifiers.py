"""The built-in notifiers against real peers: ``smtp`` to a local SMTP server, ``webhook`` to a
local HTTP endpoint."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest
from marshmallow import ValidationError

from balrog_engine import HeadsUp, NotifyError, load_plugins
from tests.agent.servers import HttpEndpoint, SmtpSink

REGISTRY = load_plugins()
HEADS_UP = HeadsUp(
    change="rules/4", enact_at=datetime(2026, 5, 1, 9, 30, tzinfo=timezone.utc),
    url="http://admin.example.com/api/scheduled_changes/rules/4",
    cancel="delete the scheduled change: DELETE http://admin.example.com/api/scheduled_changes/rules/4?data_version=2",
    change_type="update", scheduled_by="alice@example.com",
    conditions=(("time", {"when": 1777627800000}), ("uptake", {"product": "Firefox", "target": 50})),
    signoffs={"bob@example.com": "relman", "carol@example.com": "relman"},
    details={"rule_id": 4, "mapping": "Firefox-61.0-build1"})


def smtp(sink, **config):
    return REGISTRY.notifiers["smtp"]({"host": "127.0.0.1", "port": sink.port, "from_addr": "agent@example.com",
                                       "to_addrs": ["releng@example.com", "qa@example.com"], **config})


def test_smtp_sends_the_heads_up():
    with SmtpSink() as sink:
        smtp(sink, subject_prefix="[balrog] ").notify(HEADS_UP)
    (mail,) = sink.mails
    assert mail.sender == "agent@example.com"
    assert mail.recipients == ["releng@example.com", "qa@example.com"]
    assert mail.subject == "[balrog] balrog: rules/4 will be enacted at 2026-05-01T09:30:00+00:00"
    assert mail.message["To"] == "releng@example.com, qa@example.com"
    body = mail.body
    assert "The Balrog agent will enact rules/4 at 2026-05-01T09:30:00+00:00." in body
    assert "Scheduled by: alice@example.com" in body
    assert "bob@example.com (relman), carol@example.com (relman)" in body
    assert 'uptake {"product": "Firefox", "target": 50}' in body
    assert "To stop it: delete the scheduled change: DELETE http://admin.example.com/api/scheduled_changes/rules/4" \
           "?data_version=2" in body
    assert '"mapping": "Firefox-61.0-build1"' in body


def test_smtp_refusal_and_unreachable_server_are_notify_errors():
    with SmtpSink() as sink:
        sink.refuse = True
        with pytest.raises(NotifyError, match="554"):
            smtp(sink).notify(HEADS_UP)
        port = sink.port
    with pytest.raises(NotifyError, match=f"127.0.0.1:{port}"):
        REGISTRY.notifiers["smtp"]({"host": "127.0.0.1", "port": port, "from_addr": "agent@example.com",
                                    "to_addrs": ["r@example.com"], "timeout_seconds": 2}).notify(HEADS_UP)


@pytest.mark.parametrize("config, field", [
    ({"from_addr": "a@example.com", "to_addrs": ["b@example.com"]}, "host"),
    ({"host": "h", "from_addr": "a@example.com", "to_addrs": []}, "to_addrs"),
    ({"host": "h", "from_addr": "not an address", "to_addrs": ["b@example.com"]}, "from_addr"),
    ({"host": "h", "from_addr": "a@example.com", "to_addrs": ["b@example.com"], "security": "tls?"}, "security"),
    ({"host": "h", "from_addr": "a@example.com", "to_addrs": ["b@example.com"], "username": "u"}, "password"),
])
def test_smtp_configuration_is_validated(config, field):
    with pytest.raises(ValidationError) as caught:
        REGISTRY.notifiers["smtp"](config)
    assert field in caught.value.messages


def test_webhook_posts_the_heads_up_as_json():
    with HttpEndpoint(lambda r: (204, b"")) as endpoint:
        REGISTRY.notifiers["webhook"]({"url": endpoint.url + "/hooks/balrog",
                                       "headers": {"X-Token": "s3cret"}}).notify(HEADS_UP)
    (request,) = endpoint.requests
    assert (request.method, request.path, request.headers["X-Token"]) == ("POST", "/hooks/balrog", "s3cret")
    assert request.body["event"] == "heads_up"
    assert request.body["change"] == "rules/4"
    assert request.body["enact_at"] == "2026-05-01T09:30:00+00:00"
    assert request.body["conditions"][1] == {"name": "uptake", "params": {"product": "Firefox", "target": 50}}
    assert request.body["signoffs"] == {"bob@example.com": "relman", "carol@example.com": "relman"}
    assert request.body["text"].startswith("balrog: rules/4 will be enacted at 2026-05-01T09:30:00+00:00\n")


def test_webhook_failure_is_a_notify_error():
    with HttpEndpoint(lambda r: (500, {"error": "boom"})) as endpoint:
        with pytest.raises(NotifyError, match="HTTP 500"):
            REGISTRY.notifiers["webhook"]({"url": endpoint.url}).notify(HEADS_UP)
    with pytest.raises(ValidationError) as caught:
        REGISTRY.notifiers["webhook"]({"url": "mailto:x@example.com"})
    assert "url" in caught.value.messages
