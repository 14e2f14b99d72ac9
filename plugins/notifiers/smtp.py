"""The ``smtp`` notifier: heads-ups by e-mail.

    [[notifiers]]
    type = "smtp"
    host = "smtp.example.com"
    port = 587
    security = "starttls"            # "none" (default), "starttls" or "ssl"
    username = "balrog-agent"        # optional; with password
    password = "…"
    from_addr = "balrog-agent@example.com"
    to_addrs = ["releng@example.com"]
    subject_prefix = "[balrog] "

One message per heads-up, plain text (:meth:`HeadsUp.text`). Any SMTP refusal or connection
error is a :class:`~balrog_engine.NotifyError`: the agent tries again on its next cycle.
"""
from __future__ import annotations

import smtplib
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from balrog_engine import HeadsUp, Notifier, NotifyError, hookimpl


class SmtpSchema(Schema):
    host = fields.String(required=True, validate=validate.Length(min=1))
    port = fields.Integer(load_default=None, allow_none=True, validate=validate.Range(min=1, max=65535))
    security = fields.String(load_default="none", validate=validate.OneOf(("none", "starttls", "ssl")))
    username = fields.String(load_default=None, allow_none=True)
    password = fields.String(load_default=None, allow_none=True)
    from_addr = fields.Email(required=True)
    to_addrs = fields.List(fields.Email(), required=True, validate=validate.Length(min=1))
    subject_prefix = fields.String(load_default="")
    timeout_seconds = fields.Float(load_default=30.0, validate=validate.Range(min=0.1))

    @validates_schema
    def _login_pair(self, data, **_):
        if (data.get("username") is None) != (data.get("password") is None):
            raise ValidationError("username and password go together", "password")


class SmtpNotifier(Notifier):
    name = "smtp"
    schema = SmtpSchema

    def message(self, heads_up: HeadsUp) -> EmailMessage:
        message = EmailMessage()
        message["Subject"] = self.config["subject_prefix"] + heads_up.subject()
        message["From"] = self.config["from_addr"]
        message["To"] = ", ".join(self.config["to_addrs"])
        message["Date"] = formatdate(localtime=False)
        message["Message-ID"] = make_msgid("balrog-agent")
        message.set_content(heads_up.text())
        return message

    def notify(self, heads_up: HeadsUp) -> None:
        config = self.config
        ssl = config["security"] == "ssl"
        port = config["port"] or (465 if ssl else 25)
        connect = smtplib.SMTP_SSL if ssl else smtplib.SMTP
        try:
            with connect(config["host"], port, timeout=config["timeout_seconds"]) as smtp:
                if config["security"] == "starttls":
                    smtp.starttls()
                if config["username"] is not None:
                    smtp.login(config["username"], config["password"])
                smtp.send_message(self.message(heads_up), config["from_addr"], config["to_addrs"])
        except (smtplib.SMTPException, OSError) as exc:
            raise NotifyError(f"smtp {config['host']}:{port}: {exc}") from None


@hookimpl
def balrog_notifiers():
    return [SmtpNotifier]
