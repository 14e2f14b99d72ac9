"""The ``webhook`` notifier: heads-ups POSTed as JSON to a URL (chat, incident tools, your own service).

    [[notifiers]]
    type = "webhook"
    url = "https://hooks.example.com/balrog"
    headers = {Authorization = "Bearer …"}

The body is :meth:`HeadsUp.as_json`: the change, ``enact_at``, how to cancel, the conditions
and signoffs, and a ready-made ``text`` (which chat webhooks such as Slack's display as is).
Anything but a 2xx answer is a :class:`~balrog_engine.NotifyError`.
"""
from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request

from marshmallow import Schema, fields, validate

from balrog_engine import HttpUrl, HeadsUp, Notifier, NotifyError, hookimpl


class WebhookSchema(Schema):
    url = HttpUrl(required=True)
    headers = fields.Dict(keys=fields.String(), values=fields.String(), load_default=dict)
    timeout_seconds = fields.Float(load_default=10.0, validate=validate.Range(min=0.1))


class WebhookNotifier(Notifier):
    name = "webhook"
    schema = WebhookSchema

    def notify(self, heads_up: HeadsUp) -> None:
        url = self.config["url"]
        body = json.dumps(heads_up.as_json(), default=str).encode("utf-8")
        request = urllib.request.Request(url, data=body, method="POST",
                                         headers={"Content-Type": "application/json", **self.config["headers"]})
        try:
            with urllib.request.urlopen(request, timeout=self.config["timeout_seconds"]) as response:
                response.read()
        except urllib.error.HTTPError as exc:
            raise NotifyError(f"webhook {url}: HTTP {exc.code}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise NotifyError(f"webhook {url}: {getattr(exc, 'reason', exc)}") from None


@hookimpl
def balrog_notifiers():
    return [WebhookNotifier]
