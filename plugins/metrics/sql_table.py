"""The ``sql_table`` metrics source: read a number from a table in any SQLAlchemy database.

    [metrics_sources.health]
    type = "sql_table"
    url = "postgresql://reader@metrics-db/health"     # any SQLAlchemy URL
    table = "release_health"
    metric_column = "metric"        # long layout: one row per (labels, metric), the number in value_column
    value_column = "value"
    order_by = "measured_at"        # optional: the latest matching row wins

With ``metric_column = ""`` the layout is wide instead: one column per metric (``crash_rate``,
``uptake``, …) and the metric names the column to read. Every label (``product``, ``channel``,
``version``, …) must be a column; rows are matched on equality. No matching row, or a NULL,
means "no data". Names are checked against the reflected table and values are bound
parameters, so nothing from a scheduled change is ever spliced into SQL.
"""
from __future__ import annotations

from typing import Any, Mapping

import sqlalchemy as sa
from marshmallow import Schema, ValidationError, fields, validate

from balrog_engine import MetricsError, MetricsSource, hookimpl


class SqlTableSchema(Schema):
    url = fields.String(required=True, validate=validate.Length(min=1))
    table = fields.String(required=True, validate=validate.Length(min=1))
    metric_column = fields.String(load_default="metric")
    value_column = fields.String(load_default="value", validate=validate.Length(min=1))
    order_by = fields.String(load_default=None, allow_none=True)


class SqlTableSource(MetricsSource):
    name = "sql_table"
    schema = SqlTableSchema

    def __init__(self, config: Mapping[str, Any]):
        super().__init__(config)
        try:
            self.engine = sa.create_engine(self.config["url"], pool_pre_ping=True)
        except (sa.exc.ArgumentError, ImportError) as exc:
            # A bad URL is a configuration error: marshmallow-shaped so the agent names the field.
            raise ValidationError({"url": [str(exc)]}) from None
        self._table: sa.Table | None = None

    def table(self) -> sa.Table:
        # Reflected on first use (the database may not be up when the agent starts).
        if self._table is None:
            try:
                self._table = sa.Table(self.config["table"], sa.MetaData(), autoload_with=self.engine)
            except sa.exc.NoSuchTableError:
                raise MetricsError(f"table {self.config['table']!r} does not exist") from None
            except sa.exc.SQLAlchemyError as exc:
                raise MetricsError(f"cannot read table {self.config['table']!r}: {exc}") from None
        return self._table

    def column(self, table: sa.Table, name: str, what: str) -> sa.Column:
        if name not in table.c:
            raise MetricsError(f"table {table.name!r} has no column {name!r} ({what})")
        return table.c[name]

    def value(self, metric: str, labels: Mapping[str, str]) -> float | None:
        table = self.table()
        if self.config["metric_column"]:
            value = self.column(table, self.config["value_column"], "value_column")
            where = [self.column(table, self.config["metric_column"], "metric_column") == metric]
        else:
            value = self.column(table, metric, "the metric")
            where = []
        where += [self.column(table, name, "a label") == label for name, label in sorted(labels.items())]
        query = sa.select(value).where(*where).limit(1)
        if self.config["order_by"]:
            query = query.order_by(self.column(table, self.config["order_by"], "order_by").desc())
        try:
            with self.engine.connect() as connection:
                found = connection.execute(query).scalar()
        except sa.exc.SQLAlchemyError as exc:
            raise MetricsError(f"cannot read {metric!r} from {table.name!r}: {exc}") from None
        if found is None:
            return None
        try:
            return float(found)
        except (TypeError, ValueError):
            raise MetricsError(f"{table.name}.{value.name} holds {found!r}, not a number") from None

    def close(self) -> None:
        self.engine.dispose()


@hookimpl
def balrog_metrics_sources():
    return [SqlTableSource]
