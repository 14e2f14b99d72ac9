"""Required signoffs (admin-api.md §5, §9.2; auth-and-permissions.md §4; scheduled-changes-and-agent.md
§5.2): ``/required_signoffs/product`` and ``/required_signoffs/permissions`` with their ``/revisions``
and ``/history`` views.

The first requirement of a (product, channel) — or of a product, for permissions — may be created
directly; anything else is protected by the rows that already exist and has to go through the
scheduled changes (not this module). ``DELETE`` always refuses, without authenticating.

This module also holds the history helpers the other families of this package share (the plain and
the scheduled-change halves of the aggregate ``.../history`` views, and the creation order the
reference lists unfiltered tables in); see :func:`history_view`.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

from balrog_engine import AlreadyExists, Session

from . import permissions, schemas
from .app import AdminContext, Resource, send_html_json, send_json
from .problems import bad_request, forbidden, invalid, not_found, signoff_required
from .requests import INT32, PAGING, check_query, check_encodable, check_string, integer_like, json_object, \
    list_page, query_int, query_value, require_query

# --- history helpers shared by the families of this package -----------------------------------------
def in_creation_order(session: Session, table: str, rows: list[dict], key: Sequence[str]) -> list[dict]:
    """``rows`` in the order their current life began, as the reference (SQLite, no ORDER BY, a
    full scan in rowid order) lists an unfiltered table. Rows without history (seeded) come first,
    in key order."""
    created: dict[tuple, int] = {}
    for entry in session.history(table, {"data_version": 1}):  # newest first: the latest insert wins
        created.setdefault(tuple(entry[c] for c in key), entry["change_id"])
    return sorted(rows, key=lambda row: created.get(tuple(row[c] for c in key), 0))


def history_half(session: Session, table: str, where: Mapping[str, Any], since: int | None, until: int | None,
                 page: int, limit: int) -> tuple[int, list[dict]]:
    """One page of a base table's history (versions only, newest first) and the total count."""
    count = session.history_count(table, where, since, until)
    rows = session.history(table, where, since, until, limit=limit, offset=(page - 1) * limit)
    return count, rows


def sc_revision(session: Session, table: str, row: Mapping[str, Any]) -> dict:
    """A ``<table>_scheduled_changes`` history row as the API shows it: ``base_`` prefixes stripped
    (so ``data_version`` is the target row's), the SC version as ``sc_data_version``, and the
    conditions of the same version (``when``) joined in (admin-api.md §9.2)."""
    revision: dict[str, Any] = {}
    for name, value in row.items():
        if name == "data_version":
            revision["sc_data_version"] = value
        elif name.startswith("base_"):
            revision[name[5:]] = value
        else:
            revision[name] = value
    conditions = session.history(f"{table}_scheduled_changes_conditions",
                                 {"sc_id": row["sc_id"], "data_version": row["data_version"]}, limit=1)
    found = conditions[0] if conditions else {}
    for name, value in found.items():
        if name not in ("sc_id", "data_version", "change_id", "changed_by", "timestamp"):
            revision[name] = value
    # Plugin conditions (scheduled_changes.PLUGIN_CONDITIONS) appear only when a change has some,
    # as in the change's own JSON: the reference's rows (and the recordings) have no such member.
    if revision.get("conditions") is None:
        revision.pop("conditions", None)
    revision.setdefault("when", None)
    return revision


def sc_history_half(session: Session, table: str, where: Mapping[str, Any], since: int | None, until: int | None,
                    page: int, limit: int) -> tuple[int, list[dict]]:
    sc_table = f"{table}_scheduled_changes"
    count = session.history_count(sc_table, where, since, until)
    rows = session.history(sc_table, where, since, until, limit=limit, offset=(page - 1) * limit)
    return count, [sc_revision(session, table, row) for row in rows]


#: Query parameters every aggregate history view takes, and the integer ones among them.
HISTORY_PARAMS = ("page", "limit", "changed_by", "change_id", "data_version", "timestamp_from", "timestamp_to")
_INT_FILTERS = ("change_id", "data_version")


def history_query(req, plain_filters: Sequence[str] = ()) -> dict:
    """The query of an aggregate ``.../history`` view, validated (call it before authenticating:
    validation comes first on v1)."""
    check_query(req, HISTORY_PARAMS + tuple(plain_filters))
    common: dict[str, Any] = {}
    if query_value(req, "changed_by") is not None:
        common["changed_by"] = query_value(req, "changed_by")
    for name in _INT_FILTERS:
        value = query_int(req, name)
        if value is not None:
            common[name] = value
    plain = dict(common)
    for name in plain_filters:
        if query_value(req, name) is not None:
            plain[name] = query_value(req, name)
    return {"page": query_int(req, "page", 1, minimum=1, maximum=INT32[1]),
            "limit": query_int(req, "limit", None, minimum=1, maximum=INT32[1]),
            "since": query_int(req, "timestamp_from"), "until": query_int(req, "timestamp_to"),
            "plain": plain, "sc": common}


def history_view(session: Session, table: str, query: Mapping[str, Any], plain_title: str, plain_key: str,
                 sc_title: str, plain_limit: int = 10, sc_limit: int = 10) -> dict:
    """The aggregate ``.../history`` document: ``{plain_title: {"count", plain_key: [...]},
    sc_title: {"count", "revisions": [...]}}``, both halves paged independently (§9.2). The
    product/channel/role filters apply to the plain half only, as in the reference."""
    page, limit, since, until = query["page"], query["limit"], query["since"], query["until"]
    count, rows = history_half(session, table, query["plain"], since, until, page, limit or plain_limit)
    sc_count, revisions = sc_history_half(session, table, query["sc"], since, until, page, limit or sc_limit)
    return {plain_title: {"count": count, plain_key: rows}, sc_title: {"count": sc_count, "revisions": revisions}}


# --- required signoffs ------------------------------------------------------------------------------

DIRECT_DELETE = "Required Signoffs cannot be directly deleted."


class _Kind:
    """What differs between the product and the permissions requirement tables."""

    def __init__(self, table: str, decision: tuple[str, ...], history_title: str, new_schema: type):
        self.table = table
        self.new_schema = new_schema  # the body of POST
        self.decision = decision  # product[, channel]
        self.key = decision + ("role",)
        self.history_title = history_title


PRODUCT = _Kind("product_req_signoffs", ("product", "channel"), "Product Required Signoffs",
               schemas.NewProductRSSchema)
PERMISSIONS = _Kind("permissions_req_signoffs", ("product",), "Permissions Required Signoffs",
                   schemas.NewPermissionsRSSchema)


def role_holders(session: Session, role: str) -> int:
    return session.count("user_roles", {"role": role})


class RequiredSignoffs(Resource):
    """``/required_signoffs/<product|permissions>``."""

    def __init__(self, ctx: AdminContext, kind: _Kind):
        super().__init__(ctx)
        self.kind = kind

    def on_get(self, req, resp):
        check_query(req, self.kind.decision + PAGING)
        where = {name: query_value(req, name) for name in self.kind.decision if query_value(req, name) is not None}
        with self.ctx.reading() as session:
            rows = session.rows(self.kind.table, where or None)
            if not where:
                rows = in_creation_order(session, self.kind.table, rows, self.kind.key)
        send_json(resp, {"count": len(rows), "required_signoffs": list_page(req, resp, rows)})

    def on_post(self, req, resp):
        check_query(req)
        body = json_object(req)
        check_encodable(body)
        for name in self.kind.key:
            check_string(body, name)
        if "signoffs_required" not in body:
            raise invalid("'signoffs_required' is a required property")
        needed = integer_like(body["signoffs_required"], "signoffs_required", minimum=1)
        schemas.load(self.kind.new_schema, body)
        values = {name: body[name] for name in self.kind.key}
        user = self.ctx.user(req)
        with self.ctx.writing(user) as session:
            if session.get(self.kind.table, values) is not None:
                raise signoff_required("Required Signoffs cannot be directly modified")
            grants = permissions.load(session, user)
            if not permissions.has_permission(grants, "required_signoff", "create", None):
                raise forbidden(f"{user} is not allowed to create new Required Signoffs.")
            # The rows that already protect this product(+channel): any role (§5.2).
            existing = session.rows(self.kind.table, {name: values[name] for name in self.kind.decision})
            if existing:
                raise signoff_required("No Signoffs given")
            holders = role_holders(session, values["role"])
            if needed > holders:
                target = ", ".join(values[name] for name in self.kind.decision)
                message = (f"Cannot require {needed} signoffs for {target} - only {holders} users hold the "
                           f"{values['role']} role")
                raise bad_request(str((message,)))
            try:
                session.insert(self.kind.table, {**values, "signoffs_required": needed})
            except AlreadyExists:
                raise signoff_required("Required Signoffs cannot be directly modified") from None
        send_html_json(resp, {"new_data_version": 1}, 201)

    def on_delete(self, req, resp):
        # No authentication, no validation: the reference always refuses (admin-api.md §5).
        raise signoff_required(DIRECT_DELETE)


class Revisions(Resource):
    """``/required_signoffs/<kind>/revisions?product=&[channel=&]role=``: one requirement's versions."""

    def __init__(self, ctx: AdminContext, kind: _Kind):
        super().__init__(ctx)
        self.kind = kind

    def on_get(self, req, resp):
        check_query(req, self.kind.key + ("page", "limit"))
        key = require_query(req, self.kind.key)
        page = query_int(req, "page", 1, minimum=1, maximum=INT32[1])
        limit = query_int(req, "limit", 100, minimum=1, maximum=INT32[1])
        with self.ctx.reading() as session:
            if session.get(self.kind.table, key) is None:
                raise not_found("Requested Required Signoff does not exist")
            count, rows = history_half(session, self.kind.table, key, None, None, page, limit)
        send_json(resp, {"count": count, "required_signoffs": rows})


class History(Resource):
    """``/required_signoffs/<kind>/history``: the table's and its scheduled changes' history."""

    def __init__(self, ctx: AdminContext, kind: _Kind):
        super().__init__(ctx)
        self.kind = kind

    def on_get(self, req, resp):
        query = history_query(req, self.kind.key)
        with self.ctx.reading() as session:
            document = history_view(session, self.kind.table, query, self.kind.history_title, "required_signoffs",
                                    f"{self.kind.history_title} Scheduled Change", plain_limit=100)
        send_json(resp, document)


def routes(ctx: AdminContext) -> list:
    found = []
    for segment, kind in (("product", PRODUCT), ("permissions", PERMISSIONS)):
        found += [
            (f"/required_signoffs/{segment}", RequiredSignoffs(ctx, kind)),
            (f"/required_signoffs/{segment}/revisions", Revisions(ctx, kind)),
            (f"/required_signoffs/{segment}/history", History(ctx, kind)),
        ]
    return found


__all__ = ["routes", "history_query", "history_view", "in_creation_order", "sc_revision", "role_holders"]
