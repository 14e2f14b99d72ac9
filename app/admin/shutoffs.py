"""Emergency shutoff (admin-api.md §6): stopping updates for a product/channel is always allowed to
holders of ``emergency_shutoff``/``create``; re-enabling them (deleting the row) needs the signoffs
of the product requirements matching the channel (scheduled-changes-and-agent.md §5.2), so a
protected shutoff can only be lifted through a scheduled change (not this module), and a shutoff
with such a change pending cannot be deleted directly (:mod:`.sc_merge`). Shutoffs are never
updated, so there is nothing to merge into their scheduled changes."""
from __future__ import annotations

from balrog_engine import AlreadyExists, NotFound, StaleVersion

from . import permissions, sc_merge, schemas, signoffs
from .app import AdminContext, Resource, send_empty, send_json
from .problems import PROBLEM_JSON, Problem, outdated
from .required_signoffs import in_creation_order
from .requests import PAGING, check_encodable, check_query, check_string, json_object, list_page, required_query_int

TABLE = "emergency_shutoffs"
KEY = ("product", "channel")


def _duplicate() -> Problem:
    return Problem(400, "Bad Request", "Invalid Emergency shutoff data",
                   "Emergency shutoff for product/channel already exists.", content_type=PROBLEM_JSON)


def _missing_on_read() -> Problem:
    return Problem(404, "Not Found", "Requested emergency shutoff wasn't found", "Requested shutoff does not exist",
                   content_type=PROBLEM_JSON)


def _missing_on_delete() -> Problem:
    return Problem(404, "Not Found", "Shutoff wasn't found", "Shutoff does not exist", content_type=PROBLEM_JSON)


def _row(row: dict) -> dict:
    return {"product": row["product"], "channel": row["channel"], "comment": row["comment"],
            "data_version": row["data_version"]}


class Shutoffs(Resource):
    """``/emergency_shutoff``."""

    def on_get(self, req, resp):
        check_query(req, PAGING)
        with self.ctx.reading() as session:
            rows = in_creation_order(session, TABLE, session.rows(TABLE), KEY)
        send_json(resp, {"count": len(rows), "shutoffs": [_row(r) for r in list_page(req, resp, rows)]})

    def on_post(self, req, resp):
        check_query(req)
        body = json_object(req)
        check_encodable(body)
        check_string(body, "product")
        check_string(body, "channel")
        check_string(body, "comment", required=False, nullable=True)
        schemas.load(schemas.NewShutoffSchema, body)
        values = {"product": body["product"], "channel": body["channel"], "comment": body.get("comment")}
        user = self.ctx.user(req)
        with self.ctx.writing(user) as session:
            if session.get(TABLE, {"product": values["product"], "channel": values["channel"]}) is not None:
                raise _duplicate()
            permissions.require(permissions.load(session, user), "emergency_shutoff", "create", [values["product"]],
                                f"{user} is not allowed to shut off updates for product {{product}}")
            # Stopping updates never needs a signoff (auth-and-permissions.md §4).
            try:
                session.insert(TABLE, values)
            except AlreadyExists:
                raise _duplicate() from None
        send_json(resp, {**values, "data_version": 1}, 201)


class Shutoff(Resource):
    """``/emergency_shutoff/{product}/{channel}``."""

    def on_get(self, req, resp, product, channel):
        check_query(req)
        with self.ctx.reading() as session:
            row = session.get(TABLE, {"product": product, "channel": channel})
        if row is None:
            raise _missing_on_read()
        resp.set_header("X-Data-Version", str(row["data_version"]))
        send_json(resp, _row(row))

    def on_delete(self, req, resp, product, channel):
        check_query(req, ("data_version",))
        data_version = required_query_int(req, "data_version")
        user = self.ctx.user(req)
        key = {"product": product, "channel": channel}
        with self.ctx.writing(user) as session:
            row = session.get(TABLE, key)
            if row is None:
                raise _missing_on_delete()
            permissions.require(permissions.load(session, user), "emergency_shutoff", "delete", [product],
                                f"{user} is not allowed to delete shutoffs for product {{product}}")
            signoffs.verify(signoffs.for_product_channel(session, product, channel), {})
            sc_merge.refuse_delete(session, TABLE, key)
            try:
                session.delete(TABLE, key, data_version)
            except StaleVersion:
                raise outdated("DELETE") from None
            except NotFound:
                raise _missing_on_delete() from None
        send_empty(resp)


def routes(ctx: AdminContext) -> list:
    return [("/emergency_shutoff", Shutoffs(ctx)), ("/emergency_shutoff/{product}/{channel}", Shutoff(ctx))]
