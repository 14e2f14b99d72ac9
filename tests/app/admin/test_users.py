"""Users, permissions and roles (balrog_app.admin.users): the recorded transcript
``permissions-basic`` replayed in process on memory:// and a SQLite file, the permission matrix
(``has_permission``), and the rules the transcripts do not reach (permission requirements, the role
revocation guard, the last permission taking the roles with it, option validation).

The replay helper and fixtures are in ``conftest.py``."""
from __future__ import annotations

import pytest

from balrog_app.admin import permissions, users
from tests.app.admin.conftest import ADMIN, ALICE, BOB, CAROL, DAVE

# --- the transcript -----------------------------------------------------------------------------------
def test_permissions_basic_transcript(replay):
    assert len(replay("permissions-basic").run()) == 44


def test_auth_basics_steps_on_these_endpoints(replay):
    # 5: POST /emergency_shutoff, 6: PUT a permission, 18: unknown human user, 19: GET /users; the
    # other steps need the rules and releases families.
    replay("auth-basics").run([5, 6, 18, 19])


def test_reading_needs_login_and_view_except_for_oneself(app):
    assert app("GET", f"/users/{BOB}").status_code == 401
    assert app("GET", f"/users/{BOB}", BOB).status_code == 200
    assert app("GET", f"/users/{ALICE}/permissions", BOB).json["exception"] == users.VIEW_DENIED
    assert app("GET", f"/users/{BOB}/permissions/rule", CAROL).json["data_version"] == 1
    assert app("GET", "/users", CAROL).status_code == 200
    # A product-restricted admin fails every check made without a product, "view" included.
    assert app("GET", "/users", "restricted@example.com").status_code == 403
    head = app("HEAD", f"/users/{BOB}", ADMIN)
    assert head.status_code == 200 and head.text == ""
    assert app("HEAD", f"/users/{DAVE}", ADMIN).status_code == 404


def test_writes_need_the_matching_action(app):
    refused = app("PUT", f"/users/{DAVE}/permissions/rule", CAROL, {"options": None})
    assert refused.status_code == 403 and refused.json["exception"] == f"{CAROL} is not allowed to grant permissions"
    assert app("PUT", f"/users/{DAVE}/permissions/rule", ALICE, {"options": None}).status_code == 201
    refused = app("POST", f"/users/{DAVE}/permissions/rule", CAROL, {"options": None, "data_version": 1})
    assert refused.json["exception"] == f"{CAROL} is not allowed to modify permissions"
    refused = app("DELETE", f"/users/{DAVE}/permissions/rule", CAROL, query="data_version=1")
    assert refused.json["exception"] == f"{CAROL} is not allowed to revoke permissions"
    refused = app("PUT", f"/users/{DAVE}/roles/qa", CAROL)
    assert refused.status_code == 403 and refused.json["exception"] == f"{CAROL} is not allowed to grant user roles"
    # A stale version is never merged for permissions.
    assert app("POST", f"/users/{DAVE}/permissions/rule", ALICE,
               {"options": '{"products": ["Firefox"]}', "data_version": 1}).json == {"new_data_version": 2}
    stale = app("POST", f"/users/{DAVE}/permissions/rule", ALICE, {"options": None, "data_version": 1})
    assert stale.status_code == 400 and stale.json["detail"] == "OutdatedDataError"


@pytest.mark.parametrize("options, detail", [
    ("not json", "('Expecting value: line 1 column 1 (char 0)',)"),
    ('["products"]', "('Options for permission \"rule\" must be a JSON object',)"),
    ('{"products": "Firefox"}', "('Option \"products\" for permission \"rule\" must be a list of strings',)"),
    ('{"actions": ["create"], "colour": 1}', "('Unknown option \"colour\" for permission \"rule\"',)"),
])
def test_bad_options_are_400s(app, options, detail):
    answer = app("PUT", f"/users/{DAVE}/permissions/rule", ADMIN, {"options": options})
    assert (answer.status_code, answer.json["detail"]) == (400, detail)


@pytest.mark.parametrize("body, status", [
    ({"options": None, "data_version": "1"}, 400), ({"options": 5}, 400), ([1], 400), ("x", 400),
    ({"options": '{"products": ["\\ud800"]}', "data_version": 1}, 400), ('{"options": null, "x": "\\ud800"}', 400),
])
def test_malformed_bodies_are_framework_400s(app, body, status):
    answer = app("PUT", f"/users/{BOB}/permissions/rule", ADMIN, body)
    assert answer.status_code == status and answer.headers["content-type"] == "application/problem+json"


def test_empty_options_are_stored_as_null(app):
    app("PUT", f"/users/{DAVE}/permissions/release", ADMIN, {"options": "{}"})
    assert app("GET", f"/users/{DAVE}/permissions/release", ADMIN).json == {"options": None, "data_version": 1}


def test_permission_requirements_refuse_direct_grants(app):
    assert app("POST", "/required_signoffs/permissions", ADMIN,
               {"product": "Firefox", "role": "relman", "signoffs_required": 1}).status_code == 201
    refused = app("PUT", f"/users/{DAVE}/permissions/rule", ADMIN, {"options": '{"products": ["Firefox"]}'})
    assert (refused.status_code, refused.json["exception"]) == (400, "No Signoffs given")
    # Unrestricted grants touch every product; kinds without a products option too.
    for kind in ("release", "permission"):
        refused = app("PUT", f"/users/{DAVE}/permissions/{kind}", ADMIN, {"options": None})
        assert refused.json["detail"] == "Signoff Required"
    assert app("PUT", f"/users/{DAVE}/permissions/rule", ADMIN,
               {"options": '{"products": ["Thunderbird"]}'}).status_code == 201
    # Moving the grant onto a protected product, or removing a protected one, is refused too.
    refused = app("POST", f"/users/{DAVE}/permissions/rule", ADMIN,
                  {"options": '{"products": ["Firefox"]}', "data_version": 1})
    assert refused.json["exception"] == "No Signoffs given"
    refused = app("DELETE", f"/users/{BOB}/permissions/rule", ADMIN, query="data_version=1")
    assert refused.json["exception"] == "No Signoffs given"


def test_the_last_permission_takes_the_roles_with_it(app):
    assert app("PUT", f"/users/{DAVE}/permissions/rule", ADMIN, {"options": None}).status_code == 201
    assert app("PUT", f"/users/{DAVE}/roles/qa", ADMIN).status_code == 201
    assert app("DELETE", f"/users/{DAVE}/permissions/rule", ADMIN, query="data_version=1").status_code == 200
    with app.storage.session() as s:
        assert s.rows("user_roles", {"username": DAVE}) == []
        assert [h["changed_by"] for h in s.history("user_roles", {"username": DAVE}, versions_only=False)] == \
            [ADMIN, ADMIN, ADMIN]


def test_roles_cannot_be_revoked_below_a_requirement(app):
    assert app("POST", "/required_signoffs/product", ADMIN,
               {"product": "Firefox", "channel": "release", "role": "relman", "signoffs_required": 2}).status_code == 201
    refused = app("DELETE", f"/users/{BOB}/roles/relman", ADMIN, query="data_version=1")
    assert refused.status_code == 400 and refused.json["detail"] == "Unknown error"
    assert refused.json["exception"] == ("Revoking relman role would make it impossible for Required Signoffs "
                                         "to be fulfilled")
    # Through the last permission: the view's own ValueError text, and nothing is written.
    refused = app("DELETE", f"/users/{BOB}/permissions/rule", ADMIN, query="data_version=1")
    assert refused.status_code == 400 and refused.json["detail"].startswith("('Revoking relman role")
    assert app("GET", f"/users/{BOB}/permissions/rule", ADMIN).status_code == 200


def test_deleting_a_permission_with_a_pending_scheduled_change_is_refused(app):
    with app.storage.session(ADMIN) as s:
        s.insert("permissions_scheduled_changes", {"scheduled_by": ADMIN, "complete": False, "change_type": "delete",
                                                   "base_username": BOB, "base_permission": "rule",
                                                   "base_data_version": 1})
    refused = app("DELETE", f"/users/{BOB}/permissions/rule", ADMIN, query="data_version=1")
    assert refused.status_code == 400 and refused.json["detail"] == "ChangeScheduledError"


def test_unknown_kinds_and_query_parameters(app):
    assert app("GET", f"/users/{BOB}/permissions/bogus").status_code == 400  # validation before login
    assert app("GET", "/users", ADMIN, query="x=1").json["title"] is None
    assert app("GET", "/permissions/history", ADMIN, query="page=0").status_code == 400
    assert app("GET", "/permissions/history", ADMIN, query="limit=abc").status_code == 400
    assert app("DELETE", f"/users/{BOB}/roles/relman", ADMIN, query="data_version=x").status_code == 400
    assert app("PATCH", f"/users/{BOB}", ADMIN).status_code == 405


# --- the permission matrix ------------------------------------------------------------------------------
ACTIONS = {"admin": (None,), "emergency_shutoff": ("create", "delete"), "rule": ("create", "modify", "delete"),
           "release": ("create", "modify", "delete"), "release_read_only": ("set", "unset"),
           "release_locale": ("modify",), "required_signoff": ("create", "modify", "delete"),
           "permission": ("create", "modify", "delete", "view"), "scheduled_change": ("enact",),
           "pinnable_release": ("create", "modify", "delete")}


@pytest.mark.parametrize("kind", permissions.KINDS)
def test_every_kind_grants_its_actions_and_nothing_else(kind):
    for action in ACTIONS[kind]:
        for product in ("Firefox", None):
            assert permissions.has_permission({kind: None}, kind, action, product)
            assert permissions.has_permission({kind: {}}, kind, action, product)
    for other in permissions.KINDS:
        if other not in (kind, "admin") and kind != "admin":
            assert not permissions.has_permission({kind: None}, other, ACTIONS[other][0], "Firefox")
    assert not permissions.has_permission({}, kind, ACTIONS[kind][0], "Firefox")


@pytest.mark.parametrize("kind", [k for k, keys in permissions.OPTION_KEYS.items() if "actions" in keys])
def test_actions_option_restricts(kind):
    first, *rest = ACTIONS[kind] + ("other",)
    grants = {kind: {"actions": [first]}}
    assert permissions.has_permission(grants, kind, first, "Firefox")
    for action in rest:
        assert not permissions.has_permission(grants, kind, action, "Firefox")


@pytest.mark.parametrize("kind", [k for k, keys in permissions.OPTION_KEYS.items() if "products" in keys])
def test_products_option_restricts_and_checks_without_product_fail(kind):
    grants = {kind: {"products": ["Firefox"]}}
    action = ACTIONS[kind][0]
    assert permissions.has_permission(grants, kind, action, "Firefox")
    assert not permissions.has_permission(grants, kind, action, "Thunderbird")
    assert not permissions.has_permission(grants, kind, action, None)


def test_admin_grants_everything_within_its_products():
    for kind in permissions.KINDS:
        for action in ACTIONS[kind]:
            assert permissions.has_permission({"admin": None}, kind, action, "Firefox")
            assert permissions.has_permission({"admin": None}, kind, action, None)
    restricted = {"admin": {"products": ["Firefox"]}, "permission": None}
    assert permissions.has_permission(restricted, "rule", "create", "Firefox")
    assert not permissions.has_permission(restricted, "rule", "create", "Thunderbird")
    # The admin row decides: product-less checks (permissions, required signoffs, enact) fail, even
    # with another row that would allow them.
    for kind, action in (("permission", "view"), ("required_signoff", "create"), ("scheduled_change", "enact")):
        assert not permissions.has_permission(restricted, kind, action, None)
    assert permissions.is_admin(restricted)


def test_required_signoff_restricted_to_products_never_grants():
    grants = {"required_signoff": {"products": ["Firefox"]}}
    assert not permissions.has_permission(grants, "required_signoff", "create", None)


def test_require_names_the_refused_product():
    grants = {"emergency_shutoff": {"products": ["Firefox"]}}
    permissions.require(grants, "emergency_shutoff", "create", ["Firefox"], "x {product}")
    with pytest.raises(Exception) as refused:
        permissions.require(grants, "emergency_shutoff", "create", ["Firefox", "Thunderbird"],
                            "alice is not allowed to shut off updates for product {product}")
    assert refused.value.exception == "alice is not allowed to shut off updates for product Thunderbird"
