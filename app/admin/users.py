"""Users, permissions and roles (admin-api.md §7, §9.2 ``/permissions/history``;
auth-and-permissions.md §2–§4).

Every endpoint here needs a login, reads included. Reading another user's permissions needs
``permission``/``view`` (a user may always read their own); the writes go through the same check
first, as the reference does (it reads the target's permissions before changing them), then need
``permission``/``create``, ``modify`` or ``delete``. Permission ``options`` travel as a JSON
*string*; ``"{}"`` is stored as null. Grants touched by a permissions requirement
(``permissions_req_signoffs``) cannot be made directly (400 ``Signoff Required``). Deleting a
user's last permission revokes their roles; a role is never revoked below the number of holders a
requirement needs. A permission with a pending scheduled change cannot be deleted, and a direct
update of it is merged into that change (:mod:`.sc_merge`).
"""
from __future__ import annotations

import json
from typing import Any, Iterable, Mapping

from balrog_engine import AlreadyExists, NotFound, Session, StaleVersion

from . import permissions, sc_merge, schemas, signoffs
from .app import AdminContext, Resource, send_empty, send_html_json, send_json
from .problems import bad_request, forbidden, invalid, not_found, outdated, unknown_error
from .required_signoffs import history_query, history_view, role_holders
from .requests import PAGING, check_encodable, check_query, json_object, list_page, required_query_int

VIEW_DENIED = "You are not authorized to view permissions of other users."

#: Key order of the path enum, as jsonschema prints the schema in its message (informative text).
_ENUM_SCHEMA = ("    {{'name': 'permission',\n     'in': 'path',\n     'description': 'permission name',\n"
                "     'type': 'string',\n     'enum': [{enum}],\n     'maxLength': 50}}")


def check_kind(kind: str) -> None:
    """The ``<permission>`` path segment must be one of the kinds (the framework's 400)."""
    if kind in permissions.KINDS:
        return
    listed = ", ".join(repr(k) for k in permissions.KINDS)
    enum = ",\n              ".join(repr(k) for k in permissions.KINDS)
    raise invalid(f"{kind!r} is not one of [{listed}]\n\nFailed validating 'enum' in schema:\n"
                  + _ENUM_SCHEMA.format(enum=enum) + f"\n\nOn instance:\n    {kind!r}")


def check_view(session: Session, user: str, username: str | None) -> None:
    """A user may read their own permissions; anyone else's (``username`` None: everybody's)
    needs ``permission``/``view``."""
    if user != username and not permissions.has_permission(permissions.load(session, user), "permission", "view", None):
        raise forbidden(VIEW_DENIED)


def require_action(session: Session, user: str, action: str, message: str) -> None:
    if not permissions.has_permission(permissions.load(session, user), "permission", action, None):
        raise forbidden(message)


def permission_rows(session: Session, username: str) -> dict[str, dict]:
    return {row["permission"]: {"options": row["options"], "data_version": row["data_version"]}
            for row in session.rows("permissions", {"username": username})}


def _not_found(kind: str, username: str):
    return not_found(f"Requested user permission {kind} not found for {username}")


def _value_error(message: str):
    """A ValueError the permission views catch themselves: its ``args`` tuple as the detail."""
    return bad_request(str((message,)))


# --- options -------------------------------------------------------------------------------------------
def check_body(body: Mapping[str, Any]) -> None:
    """The body schema: ``options`` a string or null, ``data_version`` an integer or null."""
    if "options" in body and body["options"] is not None and not isinstance(body["options"], str):
        raise invalid(f"options: {body['options']!r} is not of type 'string', 'null'")
    version = body.get("data_version")
    if version is not None and (isinstance(version, bool) or not isinstance(version, int)):
        raise invalid(f"data_version: {version!r} is not of type 'integer'")


def parse_options(kind: str, raw: str | None) -> dict | None:
    """The options JSON string as stored: None for absent, empty or ``{}``. Unknown keys and
    malformed documents are the views' ValueError 400s."""
    if not raw:
        return None
    try:
        options = json.loads(raw)
    except ValueError as exc:
        raise bad_request(str(exc.args)) from None
    check_encodable(options, "options")
    if options is None or (isinstance(options, (list, dict)) and not options):
        return None
    if not isinstance(options, dict):
        raise _value_error(f'Options for permission "{kind}" must be a JSON object')
    for key in permissions.unknown_option_keys(kind, options):
        raise _value_error(f'Unknown option "{key}" for permission "{kind}"')
    # Values are free strings (not checked against products or actions), but must be lists of
    # them: every permission check reads them as such.
    for key, value in options.items():
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise _value_error(f'Option "{key}" for permission "{kind}" must be a list of strings')
    return options


# --- required signoffs of permission rows ---------------------------------------------------------------
def requirements(session: Session, grants: Iterable[tuple[str, Mapping | None]]) -> dict[str, int]:
    """§5.2 for permission rows: a row restricted to products is protected by those products'
    requirements; any other row by every requirement. Max per role over all rows."""
    needed: dict[str, int] = {}
    every = None
    for kind, options in grants:
        products = (options or {}).get("products") if "products" in permissions.OPTION_KEYS.get(kind, ()) else None
        if products:
            rows = [row for product in products for row in session.rows("permissions_req_signoffs",
                                                                         {"product": product})]
        else:
            every = session.rows("permissions_req_signoffs") if every is None else every
            rows = every
        for row in rows:
            needed[row["role"]] = max(needed.get(row["role"], 0), row["signoffs_required"])
    return needed


# --- roles ------------------------------------------------------------------------------------------------
class RevocationRefused(ValueError):
    pass


def revoke_role(session: Session, username: str, role: str, data_version: int) -> None:
    """Revoke unless it would leave fewer holders than a requirement of the role needs (§3)."""
    needed = [row["signoffs_required"] for table in ("product_req_signoffs", "permissions_req_signoffs")
              for row in session.rows(table, {"role": role})]
    if needed and role_holders(session, role) - 1 < max(needed):
        raise RevocationRefused(f"Revoking {role} role would make it impossible for Required Signoffs to be fulfilled")
    session.delete("user_roles", {"username": username, "role": role}, data_version)


# --- resources --------------------------------------------------------------------------------------------
class Users(Resource):
    """``/users``: every user with at least one permission (``?page=``/``?limit=`` page the users)."""

    def on_get(self, req, resp):
        check_query(req, PAGING)
        user = self.ctx.user(req)
        with self.ctx.reading() as session:
            check_view(session, user, None)
            users: dict[str, dict] = {}
            for row in session.rows("permissions"):
                entry = users.setdefault(row["username"], {"permissions": {}, "roles": []})
                entry["permissions"][row["permission"]] = {"options": row["options"],
                                                           "data_version": row["data_version"]}
            for row in session.rows("user_roles"):
                if row["username"] in users:
                    users[row["username"]]["roles"].append({"role": row["role"], "data_version": row["data_version"]})
        send_json(resp, dict(list_page(req, resp, list(users.items()))))


class User(Resource):
    """``/users/{username}``."""

    def on_get(self, req, resp, username):
        check_query(req)
        user = self.ctx.user(req)
        with self.ctx.reading() as session:
            check_view(session, user, username)
            granted = permission_rows(session, username)
            if not granted:
                raise not_found(f"No permission found for username {username}")
            roles = {row["role"]: {"data_version": row["data_version"]}
                     for row in session.rows("user_roles", {"username": username})}
        send_json(resp, {"username": username, "permissions": granted, "roles": roles})


class UserPermissions(Resource):
    """``/users/{username}/permissions``."""

    def on_get(self, req, resp, username):
        check_query(req)
        user = self.ctx.user(req)
        with self.ctx.reading() as session:
            check_view(session, user, username)
            granted = permission_rows(session, username)
        send_json(resp, granted)


class UserPermission(Resource):
    """``/users/{username}/permissions/{permission}``."""

    def on_get(self, req, resp, username, permission):
        check_kind(permission)
        check_query(req)
        user = self.ctx.user(req)
        with self.ctx.reading() as session:
            check_view(session, user, username)
            found = permission_rows(session, username).get(permission)
        if found is None:
            raise _not_found(permission, username)
        send_json(resp, found)

    def on_put(self, req, resp, username, permission):
        self._write(req, resp, username, permission, create=True)

    def on_post(self, req, resp, username, permission):
        self._write(req, resp, username, permission, create=False)

    def _write(self, req, resp, username, kind, create: bool):
        check_kind(kind)
        check_query(req)
        body = json_object(req)
        check_encodable(body)
        check_body(body)
        user = self.ctx.user(req)
        key = {"permission": kind, "username": username}
        with self.ctx.writing(user) as session:
            check_view(session, user, username)
            current = session.get("permissions", key)
            if current is None and not create:
                raise _not_found(kind, username)
            if current is None:
                options = parse_options(kind, body.get("options"))
                schemas.load(schemas.PermissionPutSchema, body)
                require_action(session, user, "create", f"{user} is not allowed to grant permissions")
                signoffs.verify(requirements(session, [(kind, options)]), {})
                session.insert("permissions", {**key, "options": options})
                send_html_json(resp, {"new_data_version": 1}, 201)
                return
            if not body.get("data_version"):
                raise bad_request("'data_version' is missing from request body")
            options = parse_options(kind, body.get("options"))
            schemas.load(schemas.PermissionPutSchema if create else schemas.PermissionPostSchema, body)
            require_action(session, user, "modify", f"{user} is not allowed to modify permissions")
            signoffs.verify(requirements(session, [(kind, current["options"]), (kind, options)]), {})
            try:
                version = session.update("permissions", key, {"options": options}, body["data_version"], merge=False)
            except StaleVersion:
                raise outdated(req.method) from None
            sc_merge.merge_update(session, "permissions", key, current, {"options": options}, version, req.method)
        send_json(resp, {"new_data_version": version})

    def on_delete(self, req, resp, username, permission):
        check_kind(permission)
        check_query(req, ("data_version",))
        data_version = required_query_int(req, "data_version")
        user = self.ctx.user(req)
        key = {"permission": permission, "username": username}
        with self.ctx.writing(user) as session:
            check_view(session, user, username)
            current = session.get("permissions", key)
            if current is None:
                raise _not_found(permission, username)
            require_action(session, user, "delete", f"{user} is not allowed to revoke permissions")
            signoffs.verify(requirements(session, [(permission, current["options"])]), {})
            sc_merge.refuse_delete(session, "permissions", key)
            try:
                session.delete("permissions", key, data_version)
            except StaleVersion:
                raise outdated("DELETE") from None
            except NotFound:
                raise _not_found(permission, username) from None
            if not session.count("permissions", {"username": username}):
                for role in session.rows("user_roles", {"username": username}):
                    try:
                        revoke_role(session, username, role["role"], role["data_version"])
                    except RevocationRefused as refused:
                        raise _value_error(str(refused)) from None
        send_empty(resp)


class UserRole(Resource):
    """``/users/{username}/roles/{role}``: grant (PUT, no body) and revoke."""

    def on_put(self, req, resp, username, role):
        check_query(req)
        user = self.ctx.user(req)
        with self.ctx.writing(user) as session:
            require_action(session, user, "create", f"{user} is not allowed to grant user roles")
            held = session.get("user_roles", {"username": username, "role": role})
            if held is not None:
                send_html_json(resp, {"new_data_version": held["data_version"]})
                return
            if not session.count("permissions", {"username": username}):
                raise unknown_error("Cannot grant a role to a user without any permissions")
            try:
                session.insert("user_roles", {"username": username, "role": role})
            except AlreadyExists:  # granted concurrently: as if it had been held
                pass
        send_html_json(resp, {"new_data_version": 1}, 201)

    def on_delete(self, req, resp, username, role):
        check_query(req, ("data_version",))
        data_version = required_query_int(req, "data_version")
        user = self.ctx.user(req)
        with self.ctx.writing(user) as session:
            if session.get("user_roles", {"username": username, "role": role}) is None:
                raise not_found("Role not found", f"No role '{role}' found for username '{username}'")
            require_action(session, user, "delete", f"{user} is not allowed to revoke user roles")
            try:
                revoke_role(session, username, role, data_version)
            except RevocationRefused as refused:
                raise unknown_error(str(refused)) from None
            except StaleVersion:
                raise outdated("DELETE") from None
            except NotFound:
                raise not_found("Role not found", f"No role '{role}' found for username '{username}'") from None
        send_empty(resp)


class PermissionsHistory(Resource):
    """``/permissions/history``: login and ``permission``/``view``."""

    def on_get(self, req, resp):
        query = history_query(req)
        user = self.ctx.user(req)
        with self.ctx.reading() as session:
            check_view(session, user, None)
            document = history_view(session, "permissions", query, "Permissions", "revisions",
                                    "Permissions Scheduled Change")
        send_json(resp, document)


def routes(ctx: AdminContext) -> list:
    return [
        ("/users", Users(ctx)),
        ("/users/{username}", User(ctx)),
        ("/users/{username}/permissions", UserPermissions(ctx)),
        ("/users/{username}/permissions/{permission}", UserPermission(ctx)),
        ("/users/{username}/roles/{role}", UserRole(ctx)),
        ("/permissions/history", PermissionsHistory(ctx)),
    ]
