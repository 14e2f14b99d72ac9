"""The ``http_json`` metrics source: read a number out of a JSON document served over HTTP(S).

    [metrics_sources.telemetry]
    type = "http_json"
    url = "https://metrics.example.com/v1/{metric}"      # {metric} and {<label>} are filled in
    value_path = "value"                                  # dotted path into the answer
    query = true                                          # also send metric and labels as ?metric=…&product=…
    headers = {Authorization = "Bearer …"}

One GET per evaluation; a non-2xx answer or a body that is not JSON is a
:class:`~balrog_engine.MetricsError`. A missing key or a ``null`` on the path means "no data"
(None). ``value_path`` may use placeholders too, so one static document can hold every value:
``value_path = "{metric}.{product}.{channel}.{version}"`` (a filled-in value is one key, dots and all).
"""
from __future__ import annotations

import json
import string
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Mapping

from marshmallow import Schema, fields, validate

from balrog_engine import HttpUrl, MetricsError, MetricsSource, hookimpl


class HttpJsonSchema(Schema):
    url = HttpUrl(required=True)
    value_path = fields.String(load_default="value", validate=validate.Length(min=1))
    query = fields.Boolean(load_default=True)
    headers = fields.Dict(keys=fields.String(), values=fields.String(), load_default=dict)
    timeout_seconds = fields.Float(load_default=10.0, validate=validate.Range(min=0.1))


def fill(template: str, values: Mapping[str, str], what: str, quote: bool) -> str:
    """``template`` with ``{name}`` placeholders replaced; a placeholder without a value is an error."""
    out = []
    for literal, name, _, _ in string.Formatter().parse(template):
        out.append(literal)
        if name is None:
            continue
        if name not in values:
            raise MetricsError(f"{what} needs {{{name}}}, which the condition does not give "
                               f"(it gives: {', '.join(sorted(values))})")
        out.append(urllib.parse.quote(values[name], safe="") if quote else values[name])
    return "".join(out)


def walk(document: Any, path: list[str]) -> Any:
    """Follow a path (object keys, list indexes); None where it leads nowhere."""
    node = document
    for part in path:
        if isinstance(node, dict):
            node = node.get(part)
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return None
    return node


class HttpJsonSource(MetricsSource):
    name = "http_json"
    schema = HttpJsonSchema

    def value(self, metric: str, labels: Mapping[str, str]) -> float | None:
        values = {"metric": metric, **labels}
        url = fill(self.config["url"], values, "url", quote=True)
        if self.config["query"]:
            url += ("&" if urllib.parse.urlsplit(url).query else "?") + urllib.parse.urlencode(values)
        request = urllib.request.Request(url, headers={"Accept": "application/json", **self.config["headers"]})
        try:
            with urllib.request.urlopen(request, timeout=self.config["timeout_seconds"]) as response:
                body = response.read()
        except urllib.error.HTTPError as exc:
            raise MetricsError(f"{url}: HTTP {exc.code}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise MetricsError(f"{url}: {getattr(exc, 'reason', exc)}") from None
        try:
            document = json.loads(body)
        except ValueError:
            raise MetricsError(f"{url}: the answer is not JSON") from None
        # Split before filling in: label values may contain dots ("61.0" is one key).
        path = [fill(part, values, "value_path", quote=False) for part in self.config["value_path"].split(".")]
        found = walk(document, path)
        if found is None:
            return None
        if isinstance(found, bool) or not isinstance(found, (int, float)):
            raise MetricsError(f"{url}: {'.'.join(path)} is {found!r}, not a number")
        return float(found)


@hookimpl
def balrog_metrics_sources():
    return [HttpJsonSource]
