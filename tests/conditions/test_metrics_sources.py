"""The built-in metrics sources against real peers: ``http_json`` over HTTP, ``sql_table`` on a
SQLite file through SQLAlchemy."""
from __future__ import annotations

import sqlalchemy as sa
import pytest
from marshmallow import ValidationError

from balrog_engine import MetricsError, load_plugins
from tests.agent.servers import HttpEndpoint

REGISTRY = load_plugins()
LABELS = {"product": "Firefox", "channel": "release", "version": "61.0"}


# --- http_json ------------------------------------------------------------------------------------------------
def test_http_json_sends_metric_and_labels_and_reads_the_value():
    with HttpEndpoint(lambda r: (200, {"value": 42.5, "unit": "%"})) as endpoint:
        source = REGISTRY.metrics_sources["http_json"]({"url": endpoint.url + "/v1/{metric}",
                                                        "headers": {"Authorization": "Bearer m"}})
        assert source.value("uptake", LABELS) == 42.5
    request = endpoint.requests[0]
    assert request.path == "/v1/uptake"
    assert request.query == {"metric": "uptake", **LABELS}
    assert request.headers["Authorization"] == "Bearer m"


def test_http_json_reads_one_document_by_path():
    document = {"uptake": {"Firefox": {"release": {"61.0": 71, "62.0": None}}}, "broken": {"x": "lots"}}
    with HttpEndpoint(lambda r: (200, document)) as endpoint:
        source = REGISTRY.metrics_sources["http_json"]({"url": endpoint.url + "/all.json", "query": False,
                                                        "value_path": "{metric}.{product}.{channel}.{version}"})
        assert source.value("uptake", LABELS) == 71.0
        assert source.value("uptake", {**LABELS, "version": "62.0"}) is None  # null: no data
        assert source.value("uptake", {**LABELS, "version": "63.0"}) is None  # missing: no data
        with pytest.raises(MetricsError, match="broken.x is 'lots', not a number"):
            REGISTRY.metrics_sources["http_json"]({"url": endpoint.url, "value_path": "broken.x"}).value("m", {})
        with pytest.raises(MetricsError, match=r"value_path needs \{version\}"):
            source.value("uptake", {"product": "Firefox", "channel": "release"})
    assert endpoint.requests[0].query == {}


@pytest.mark.parametrize("status, body, message", [
    (503, {"error": "down"}, "HTTP 503"),
    (200, b"<html>", "not JSON"),
])
def test_http_json_failures_are_metrics_errors(status, body, message):
    with HttpEndpoint(lambda r: (status, body)) as endpoint:
        source = REGISTRY.metrics_sources["http_json"]({"url": endpoint.url})
        with pytest.raises(MetricsError, match=message):
            source.value("uptake", LABELS)


def test_http_json_unreachable_is_a_metrics_error():
    with HttpEndpoint(lambda r: (200, {})) as endpoint:
        url = endpoint.url
    source = REGISTRY.metrics_sources["http_json"]({"url": url, "timeout_seconds": 2})
    with pytest.raises(MetricsError, match=url):
        source.value("uptake", LABELS)


@pytest.mark.parametrize("config, field", [
    ({}, "url"), ({"url": "ftp://x/y"}, "url"), ({"url": "http://x", "timeout_seconds": 0}, "timeout_seconds"),
    ({"url": "http://x", "extra": 1}, "extra"),
])
def test_http_json_configuration_is_validated(config, field):
    with pytest.raises(ValidationError) as caught:
        REGISTRY.metrics_sources["http_json"](config)
    assert field in caught.value.messages


# --- sql_table --------------------------------------------------------------------------------------------------
@pytest.fixture
def database(tmp_path):
    url = f"sqlite:///{tmp_path}/health.db"
    engine = sa.create_engine(url)
    with engine.begin() as db:
        db.exec_driver_sql("CREATE TABLE health (product TEXT, channel TEXT, version TEXT, metric TEXT, "
                           "value REAL, measured_at INTEGER)")
        db.exec_driver_sql("INSERT INTO health VALUES ('Firefox', 'release', '61.0', 'crash_rate', 1.5, 1), "
                           "('Firefox', 'release', '61.0', 'crash_rate', 3.25, 2), "
                           "('Firefox', 'release', '61.0', 'uptake', NULL, 2), "
                           "('Firefox', 'beta', '61.0', 'crash_rate', 9, 3)")
        db.exec_driver_sql("CREATE TABLE wide (product TEXT, channel TEXT, version TEXT, uptake REAL, crash_rate REAL)")
        db.exec_driver_sql("INSERT INTO wide VALUES ('Firefox', 'release', '61.0', 64, 0.5)")
    engine.dispose()
    return url


def test_sql_table_long_layout_latest_row_wins(database):
    source = REGISTRY.metrics_sources["sql_table"]({"url": database, "table": "health", "order_by": "measured_at"})
    try:
        assert source.value("crash_rate", LABELS) == 3.25
        assert source.value("crash_rate", {**LABELS, "channel": "beta"}) == 9.0
        assert source.value("uptake", LABELS) is None  # NULL: no data
        assert source.value("crash_rate", {**LABELS, "version": "62.0"}) is None  # no row: no data
        with pytest.raises(MetricsError, match="no column 'os' \\(a label\\)"):
            source.value("crash_rate", {**LABELS, "os": "win"})
    finally:
        source.close()


def test_sql_table_wide_layout_one_column_per_metric(database):
    source = REGISTRY.metrics_sources["sql_table"]({"url": database, "table": "wide", "metric_column": ""})
    try:
        assert source.value("uptake", LABELS) == 64.0
        assert source.value("crash_rate", LABELS) == 0.5
        # The metric names a column, checked against the table: nothing is spliced into SQL.
        with pytest.raises(MetricsError, match="no column 'uptake; DROP TABLE wide'"):
            source.value("uptake; DROP TABLE wide", LABELS)
    finally:
        source.close()


def test_sql_table_missing_table_is_a_metrics_error(database):
    source = REGISTRY.metrics_sources["sql_table"]({"url": database, "table": "nope"})
    with pytest.raises(MetricsError, match="table 'nope' does not exist"):
        source.value("uptake", LABELS)


@pytest.mark.parametrize("config, field", [
    ({"table": "t"}, "url"), ({"url": "sqlite://"}, "table"), ({"url": "not a url", "table": "t"}, "url"),
])
def test_sql_table_configuration_is_validated(config, field):
    with pytest.raises(ValidationError) as caught:
        REGISTRY.metrics_sources["sql_table"](config)
    assert field in caught.value.messages
