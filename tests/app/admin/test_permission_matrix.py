"""The permission matrix of auth-and-permissions.md (§1.3 known users, §1.5 system accounts, §2.2–2.5
kinds, options and checks, §3 roles and signoffs; scheduled-changes-and-agent.md §5.1), through
HTTP against the admin app with every family mounted, on memory:// and a SQLite file.

Each row of :data:`MATRIX` is one (permission rows of the acting user, request, expected answer):
for every permission kind and option (``products``, ``actions``) at least one request it allows and
one it refuses. Refusals are compared with the whole body Balrog sends — the 403 ``Permission
Denied`` problem with its ``exception`` text — exactly where the spec or a recorded transcript
gives that text; where they only give its shape (``<user> is not allowed to ...``), the row says
so with :class:`Prefix`.

Every row starts from the same world (:func:`build_world`, made through the API by an admin and
restored into a fresh database): releases, rules, shutoffs, a pin, a requirement, and two
scheduled rule changes, one of them made by a user who has since lost the right to make it.
"""
from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field
from typing import Any, Mapping

import pytest
from falcon import testing

from balrog_app.admin.app import AdminContext, create_admin_app
from balrog_app.admin.auth import StaticTokens
from balrog_app.admin.testing import seed
from tests.app.admin.conftest import ADMIN, BACKENDS, REGISTRY

USER = "u@example.com"  # the acting user of most rows
OTHER = "other@example.com"  # holds relman and qa; signed off scheduled rule change 1; target of permission writes
FORMER = "former@example.com"  # scheduled rule change 2 (Thunderbird), then lost the Thunderbird grant
NEW = "new@example.com"  # nobody yet
NOBODY = "nobody@example.com"  # a human without any permission row: unknown
MACHINE = "some-client-id"  # a machine identity without any permission row
SYSTEM = "balrog-ffxbld"  # a system account
SYSTEM_ACCOUNTS = frozenset({"balrogagent", "balrog-ffxbld", "balrog-tbirdbld", "seabld", "balrog-xpibld"})
ALLOWLIST = {"download.mozilla.org": ["Firefox", "Thunderbird"], "archive.mozilla.org": ["Firefox", "Thunderbird"]}
IDENTITIES = (ADMIN, USER, OTHER, FORMER, NEW, NOBODY, MACHINE, SYSTEM)

WHEN = 4102444800000  # 2100-01-01
FX60, TB60 = "Firefox-60.0-build1", "Thunderbird-60.0-build1"
FX59 = "Firefox-59.0-build1"  # mapped by no rule: deletable
FX58 = "Firefox-58.0-build1"  # read-only
FX70 = "Firefox-70.0-build1"  # v2, pinned on Firefox/beta/70.
FX69 = "Firefox-69.0-build1"  # v2, neither mapped nor pinned: deletable
FX_RULE, TB_RULE = 2, 3  # Firefox/beta and Thunderbird/release; rule 1 (Firefox/release) has scheduled change 1


# --- bodies ----------------------------------------------------------------------------------------------
def v1_blob(name: str) -> str:
    locale = {"complete": {"filesize": 1000, "from": "*", "hashValue": "00000000000000000000000000000000000000ff",
                           "fileUrl": "http://download.mozilla.org/?product=complete&os=winnt&lang=en-US"}}
    return json.dumps({"name": name, "schema_version": 1, "hashFunction": "sha512", "appv": "60.0", "extv": "60.0",
                       "platforms": {"WINNT_x86-msvc": {"buildID": "20180501120000", "locales": {"en-US": locale}}}})


def v1_release(name: str, product: str = "Firefox", **extra) -> dict:
    return {"name": name, "product": product, "blob": v1_blob(name), **extra}


def v2_blob(name: str) -> dict:
    locale = {"buildID": "20190901000000", "appVersion": "70.0", "displayVersion": "70.0",
              "completes": [{"from": "*", "filesize": 50000000, "hashValue": "0" * 64,
                             "fileUrl": "https://archive.mozilla.org/pub/firefox/releases/70.0/en-US.complete.mar"}]}
    return {"name": name, "schema_version": 9, "hashFunction": "sha512", "appVersion": "70.0",
            "displayVersion": "70.0", "updateLine": [{"for": {}, "fields": {"type": "minor"}}],
            "platforms": {"WINNT_x86_64-msvc": {"locales": {"en-US": locale}}}}


V2_TREE = {".": 1, "platforms": {"WINNT_x86_64-msvc": {"locales": {"en-US": 1}}}}
LOCALE = {"product": "Firefox", "schema_version": 1, "data_version": 1,
          "data": json.dumps({"complete": {"filesize": 7, "from": "*", "hashValue": "0" * 38 + "aa",
                                           "fileUrl": "http://download.mozilla.org/?product=complete&lang=it"}})}
PARTIAL = {"product": "Firefox", "schema_version": 1, "hashFunction": "sha512", "data": json.dumps({"appv": "62.0"})}
RULE = {"priority": 1, "backgroundRate": 100, "update_type": "minor", "channel": "nightly"}
RULE_FX = {**RULE, "product": "Firefox", "mapping": FX60}
RULE_TB = {**RULE, "product": "Thunderbird", "mapping": TB60}
RULE_ANY_PRODUCT = {**RULE, "mapping": FX60}
SHUTOFF_FX = {"product": "Firefox", "channel": "aurora"}
SHUTOFF_TB = {"product": "Thunderbird", "channel": "aurora"}
PIN_NEW = {"product": "Firefox", "channel": "release", "version": "70."}
PIN_EXISTING = {"product": "Firefox", "channel": "beta", "version": "70."}
REQUIREMENT = {"product": "Firefox", "channel": "aurora", "role": "relman", "signoffs_required": 1}
OPTIONS_FX = json.dumps({"products": ["Firefox"]})


def rule_change(rule_id: int, product: str, channel: str, mapping: str, **extra) -> dict:
    """A scheduled update of a rule: the complete new rule."""
    return {"change_type": "update", "when": WHEN, "rule_id": rule_id, "data_version": 1, "priority": 50,
            "backgroundRate": 100, "update_type": "minor", "product": product, "channel": channel,
            "mapping": mapping, **extra}


# --- expected answers ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Prefix:
    """A text of which the spec gives only the beginning."""

    start: str


@dataclass(frozen=True)
class Pattern:
    """A text the spec gives only a fragment of (matched with ``re.search``)."""

    regex: str


ANY = object()  # the body is not compared (a large listing)


def denied(message: Any) -> dict:
    """A failed permission check (auth-and-permissions.md §2.4)."""
    return {"type": "about:blank", "title": "Forbidden", "detail": "Permission Denied", "status": 403,
            "exception": message}


def not_allowed(verb: str) -> dict:
    """``<user> is not allowed to <verb>...``: the spec's shape, the rest of the wording not given."""
    return denied(Prefix(f"{USER} is not allowed to {verb}"))


VIEW_DENIED = denied("You are not authorized to view permissions of other users.")
ENACT_DENIED = denied(f"('%s is not allowed to enact scheduled changes', '{USER}')")
UNKNOWN_USER = {"type": "about:blank", "title": "Forbidden", "detail": "Authorization Required", "status": 403}


def matches(actual: Any, expected: Any) -> bool:
    if expected is ANY:
        return True
    if isinstance(expected, Prefix):
        return isinstance(actual, str) and actual.startswith(expected.start)
    if isinstance(expected, Pattern):
        return isinstance(actual, str) and re.search(expected.regex, actual) is not None
    if isinstance(expected, dict):
        return isinstance(actual, dict) and actual.keys() == expected.keys() and \
            all(matches(actual[k], v) for k, v in expected.items())
    return actual == expected


# --- the matrix ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Row:
    grants: Mapping[str, Any]  # the actor's permission rows: kind -> options
    method: str
    path: str
    body: Any
    status: int
    expect: Any  # the answer's JSON ("" for an empty body)
    actor: str = USER
    roles: tuple[str, ...] = field(default=())


def row(name: str, grants: Mapping[str, Any], method: str, path: str, body: Any, status: int, expect: Any,
        actor: str = USER, roles: tuple[str, ...] = ()):
    return pytest.param(Row(grants, method, path, body, status, expect, actor, roles), id=name)


FIREFOX = {"products": ["Firefox"]}
THUNDERBIRD = {"products": ["Thunderbird"]}


def actions(*names: str, **more) -> dict:
    return {"actions": list(names), **more}


MATRIX = [
    # ---- admin: everything; with products only within them, and nothing checked without a product
    row("admin/rule", {"admin": None}, "POST", "/rules", RULE_TB, 200, 4),
    row("admin/view", {"admin": None}, "GET", f"/users/{OTHER}", None, 200, ANY),
    row("admin/grant", {"admin": None}, "PUT", f"/users/{NEW}/permissions/rule", {"options": None}, 201,
        {"new_data_version": 1}),
    row("admin/requirement", {"admin": None}, "POST", "/required_signoffs/product", REQUIREMENT, 201,
        {"new_data_version": 1}),
    row("admin/enact", {"admin": None}, "POST", "/scheduled_changes/rules/1/enact", None, 200, {}),
    row("admin[Firefox]/rule Firefox", {"admin": FIREFOX}, "POST", "/rules", RULE_FX, 200, 4),
    row("admin[Firefox]/rule Thunderbird", {"admin": FIREFOX}, "POST", "/rules", RULE_TB, 403,
        denied(f"{USER} is not allowed to create new rules for product Thunderbird")),
    row("admin[Firefox]/shutoff Firefox", {"admin": FIREFOX}, "POST", "/emergency_shutoff", SHUTOFF_FX, 201,
        {**SHUTOFF_FX, "comment": None, "data_version": 1}),
    row("admin[Firefox]/shutoff Thunderbird", {"admin": FIREFOX}, "POST", "/emergency_shutoff", SHUTOFF_TB, 403,
        denied(f"{USER} is not allowed to shut off updates for product Thunderbird")),
    row("admin[Firefox]/release Thunderbird", {"admin": FIREFOX}, "PUT", f"/releases/{TB60}",
        v1_release(TB60, "Thunderbird", data_version=1), 403,
        denied(f"{USER} is not allowed to modify releases for product Thunderbird")),
    row("admin[Firefox]/view", {"admin": FIREFOX}, "GET", f"/users/{OTHER}", None, 403, VIEW_DENIED),
    row("admin[Firefox]/grant own", {"admin": FIREFOX}, "PUT", f"/users/{USER}/permissions/rule", {"options": None},
        403, denied(f"{USER} is not allowed to grant permissions")),
    row("admin[Firefox]/role", {"admin": FIREFOX}, "PUT", f"/users/{OTHER}/roles/dev", None, 403,
        denied(f"{USER} is not allowed to grant user roles")),
    row("admin[Firefox]/requirement", {"admin": FIREFOX}, "POST", "/required_signoffs/product", REQUIREMENT, 403,
        denied(f"{USER} is not allowed to create new Required Signoffs.")),
    row("admin[Firefox]/enact", {"admin": FIREFOX}, "POST", "/scheduled_changes/rules/1/enact", None, 403,
        ENACT_DENIED),

    # ---- rule: create / modify / delete, per product (the current and the new one)
    row("rule/create", {"rule": None}, "POST", "/rules", RULE_TB, 200, 4),
    row("rule[create]/create", {"rule": actions("create")}, "POST", "/rules", RULE_FX, 200, 4),
    row("rule[create]/modify", {"rule": actions("create")}, "POST", f"/rules/{FX_RULE}",
        {"data_version": 1, "comment": "x"}, 403, denied(f"{USER} is not allowed to modify rules for product Firefox")),
    row("rule[create]/delete", {"rule": actions("create")}, "DELETE", f"/rules/{FX_RULE}?data_version=1", None, 403,
        denied(f"{USER} is not allowed to delete rules for product Firefox")),
    row("rule[modify]/modify", {"rule": actions("modify")}, "POST", f"/rules/{FX_RULE}",
        {"data_version": 1, "comment": "x"}, 200, {"new_data_version": 2}),
    row("rule[modify]/create", {"rule": actions("modify")}, "POST", "/rules", RULE_FX, 403,
        denied(f"{USER} is not allowed to create new rules for product Firefox")),
    row("rule[delete]/delete", {"rule": actions("delete")}, "DELETE", f"/rules/{FX_RULE}?data_version=1", None, 200,
        ""),
    row("rule[Firefox]/modify Firefox", {"rule": FIREFOX}, "PUT", f"/rules/{FX_RULE}",
        {"data_version": 1, "comment": "x"}, 200, {"new_data_version": 2}),
    row("rule[Firefox]/modify Thunderbird", {"rule": FIREFOX}, "POST", f"/rules/{TB_RULE}",
        {"data_version": 1, "comment": "x"}, 403,
        denied(f"{USER} is not allowed to modify rules for product Thunderbird")),
    row("rule[Firefox]/move to Thunderbird", {"rule": FIREFOX}, "POST", f"/rules/{FX_RULE}",
        {"data_version": 1, "product": "Thunderbird"}, 403,
        denied(f"{USER} is not allowed to modify rules for product Thunderbird")),
    row("rule[Firefox]/create without product", {"rule": FIREFOX}, "POST", "/rules", RULE_ANY_PRODUCT, 403,
        denied(f"{USER} is not allowed to create new rules for product None")),
    row("rule[Firefox]/delete Thunderbird", {"rule": FIREFOX}, "DELETE", f"/rules/{TB_RULE}?data_version=1", None,
        403, denied(f"{USER} is not allowed to delete rules for product Thunderbird")),
    # scheduling, and cancelling, a change needs what making it directly needs
    row("rule[Firefox]/schedule Firefox", {"rule": FIREFOX}, "POST", "/scheduled_changes/rules",
        rule_change(FX_RULE, "Firefox", "beta", FX60), 200, {"sc_id": 3, "signoffs": {}}),
    row("rule[Thunderbird]/schedule Firefox", {"rule": THUNDERBIRD}, "POST", "/scheduled_changes/rules",
        rule_change(FX_RULE, "Firefox", "beta", FX60), 403,
        denied(f"{USER} is not allowed to modify rules for product Firefox")),
    row("rule[modify,Firefox]/cancel Firefox change", {"rule": actions("modify", products=["Firefox"])}, "DELETE",
        "/scheduled_changes/rules/1?data_version=1", None, 200, {}),
    row("rule[Firefox]/edit Firefox change", {"rule": FIREFOX}, "POST", "/scheduled_changes/rules/1",
        {"sc_data_version": 1, "data_version": 1, "comment": "edited"}, 200, {"new_data_version": 2, "signoffs": {}}),
    row("rule[Thunderbird]/edit Firefox change", {"rule": THUNDERBIRD}, "POST", "/scheduled_changes/rules/1",
        {"sc_data_version": 1, "data_version": 1, "comment": "edited"}, 403,
        denied(f"{USER} is not allowed to modify rules for product Firefox")),
    row("rule[Thunderbird]/cancel Firefox change", {"rule": THUNDERBIRD}, "DELETE",
        "/scheduled_changes/rules/1?data_version=1", None, 403,
        denied(f"{USER} is not allowed to modify rules for product Firefox")),

    # ---- release (v1 and v2): create / modify / delete, per product
    row("release/create", {"release": None}, "PUT", "/releases/Firefox-61.0-build1",
        v1_release("Firefox-61.0-build1"), 201, ""),
    row("release[create]/create", {"release": actions("create")}, "POST", "/releases",
        v1_release("Firefox-61.0-build1"), 201, {"new_data_version": 1}),
    row("release[create]/modify", {"release": actions("create")}, "PUT", f"/releases/{FX60}",
        v1_release(FX60, data_version=1), 403, denied(f"{USER} is not allowed to modify releases for product Firefox")),
    row("release[create]/delete", {"release": actions("create")}, "DELETE", f"/releases/{FX59}?data_version=1", None,
        403, denied(f"{USER} is not allowed to delete releases for product Firefox")),
    row("release[modify]/modify", {"release": actions("modify")}, "PUT", f"/releases/{FX60}",
        v1_release(FX60, data_version=1), 200, {"new_data_version": 2}),
    row("release[modify]/create", {"release": actions("modify")}, "POST", "/releases",
        v1_release("Firefox-61.0-build1"), 403,
        denied(f"{USER} is not allowed to create releases for product Firefox")),
    row("release[delete]/delete", {"release": actions("delete")}, "DELETE", f"/releases/{FX59}?data_version=1",
        None, 200, ""),
    row("release[Firefox]/modify Thunderbird", {"release": FIREFOX}, "PUT", f"/releases/{TB60}",
        v1_release(TB60, "Thunderbird", data_version=1), 403,
        denied(f"{USER} is not allowed to modify releases for product Thunderbird")),
    row("release[Firefox]/move to Thunderbird", {"release": FIREFOX}, "PUT", f"/releases/{FX60}",
        v1_release(FX60, "Thunderbird", data_version=1), 403,
        denied(f"{USER} is not allowed to modify releases for product Thunderbird")),
    # a release created on the way (partial form, copyTo, locale of a new release) needs create too
    row("release/create by partial form", {"release": None}, "POST", "/releases/Firefox-62.0-build1", PARTIAL, 201,
        {"new_data_version": 2}),
    row("release[modify]/create by partial form", {"release": actions("modify")}, "POST",
        "/releases/Firefox-62.0-build1", PARTIAL, 403,
        denied(f"{USER} is not allowed to create releases for product Firefox")),
    row("release[modify]/copyTo a new release", {"release": actions("modify")}, "POST", f"/releases/{FX60}",
        {**PARTIAL, "data_version": 1, "copyTo": json.dumps(["Firefox-62.0-build1"])}, 403,
        denied(f"{USER} is not allowed to create releases for product Firefox")),
    row("release[Firefox]/v2 create Firefox", {"release": FIREFOX}, "PUT", "/v2/releases/Firefox-71.0-build1",
        {"blob": v2_blob("Firefox-71.0-build1"), "product": "Firefox"}, 200, V2_TREE),
    row("release[Firefox]/v2 create Thunderbird", {"release": FIREFOX}, "PUT", "/v2/releases/Thunderbird-71.0-build1",
        {"blob": v2_blob("Thunderbird-71.0-build1"), "product": "Thunderbird"}, 403,
        denied(f"{USER} is not allowed to create Thunderbird releases")),
    row("release[create]/v2 modify", {"release": actions("create")}, "POST", f"/v2/releases/{FX70}",
        {"blob": {"displayVersion": "70.0.1"}, "old_data_versions": {".": 1}}, 403, not_allowed("modify")),
    row("release[delete]/v2 delete", {"release": actions("delete")}, "DELETE", f"/v2/releases/{FX69}", None, 200, ""),
    row("release[create]/v2 delete", {"release": actions("create")}, "DELETE", f"/v2/releases/{FX69}", None, 403,
        not_allowed("delete")),

    # ---- release_locale: modify, and release/modify too
    row("release_locale+release/locale", {"release_locale": None, "release": None}, "PUT",
        f"/releases/{FX60}/builds/WINNT_x86-msvc/it", LOCALE, 201, {"new_data_version": 2}),
    row("release_locale only/locale", {"release_locale": None}, "PUT", f"/releases/{FX60}/builds/WINNT_x86-msvc/it",
        LOCALE, 403, denied(f"{USER} is not allowed to modify releases for product Firefox")),
    row("release only/locale", {"release": None}, "PUT", f"/releases/{FX60}/builds/WINNT_x86-msvc/it", LOCALE, 403,
        not_allowed("")),
    row("release_locale+release[modify]/locale of a new release", {"release_locale": None,
                                                                     "release": actions("modify")},
        "PUT", "/releases/Firefox-62.0-build1/builds/WINNT_x86-msvc/it", {**LOCALE, "hashFunction": "sha512"}, 403,
        denied(f"{USER} is not allowed to create releases for product Firefox")),
    row("release_locale[create]+release/locale", {"release_locale": actions("create"), "release": None}, "PUT",
        f"/releases/{FX60}/builds/WINNT_x86-msvc/it", LOCALE, 403, not_allowed("")),
    row("release_locale[Thunderbird]+release/locale", {"release_locale": THUNDERBIRD, "release": None}, "PUT",
        f"/releases/{FX60}/builds/WINNT_x86-msvc/it", LOCALE, 403, not_allowed("")),

    # ---- release_read_only: set (mark read-only) / unset (writable); inverted in v2 (§2.5)
    row("release_read_only[set]/set", {"release_read_only": actions("set")}, "PUT", f"/releases/{FX60}/read_only",
        {"read_only": True, "data_version": 1}, 201, {"new_data_version": 2}),
    row("release_read_only[set]/unset", {"release_read_only": actions("set")}, "PUT", f"/releases/{FX58}/read_only",
        {"read_only": False, "data_version": 2}, 403, not_allowed("unset")),
    row("release_read_only[unset]/unset", {"release_read_only": actions("unset")}, "PUT",
        f"/releases/{FX58}/read_only", {"read_only": False, "data_version": 2}, 201, {"new_data_version": 3}),
    row("release_read_only[unset]/set", {"release_read_only": actions("unset")}, "PUT", f"/releases/{FX60}/read_only",
        {"read_only": True, "data_version": 1}, 403, not_allowed("set")),
    row("release_read_only[Thunderbird]/set Firefox", {"release_read_only": THUNDERBIRD}, "PUT",
        f"/releases/{FX60}/read_only", {"read_only": True, "data_version": 1}, 403, not_allowed("")),
    row("release_read_only[unset]/v2 set", {"release_read_only": actions("unset")}, "PUT",
        f"/v2/releases/{FX70}/read_only", {"read_only": True, "old_data_version": 1}, 200, {".": 2}),
    # The spec quotes only "... is not allow to unset read_only ..." (sic); see the report of
    # this matrix: our text says "allowed" and "read only".
    row("release_read_only[set]/v2 set", {"release_read_only": actions("set")}, "PUT",
        f"/v2/releases/{FX70}/read_only", {"read_only": True, "old_data_version": 1}, 403,
        denied(Pattern(f"^{re.escape(USER)} is not allow(ed)? to unset read[_ ]only"))),
    row("release_read_only[set]/v2 unset", {"release_read_only": actions("set")}, "PUT",
        f"/v2/releases/{FX70}/read_only", {"read_only": False, "old_data_version": 1}, 200, {".": 2}),

    # ---- pinnable_release: create / modify a pin, per product (no actions option)
    row("pinnable_release/new pin", {"pinnable_release": None}, "PUT", f"/v2/releases/{FX70}/pinnable", PIN_NEW, 200,
        {".": 1}),
    row("pinnable_release[Firefox]/move pin", {"pinnable_release": FIREFOX}, "PUT", f"/v2/releases/{FX70}/pinnable",
        PIN_EXISTING, 200, {".": 2}),
    row("pinnable_release[Thunderbird]/new pin", {"pinnable_release": THUNDERBIRD}, "PUT",
        f"/v2/releases/{FX70}/pinnable", PIN_NEW, 403,
        denied(f"{USER} is not allowed to create pinnable releases for product Firefox")),
    row("pinnable_release[Thunderbird]/move pin", {"pinnable_release": THUNDERBIRD}, "PUT",
        f"/v2/releases/{FX70}/pinnable", PIN_EXISTING, 403,
        denied(f"{USER} is not allowed to modify pinnable releases for product Firefox")),

    # ---- emergency_shutoff: create / delete, per product; a scheduled deletion needs delete
    row("emergency_shutoff/create", {"emergency_shutoff": None}, "POST", "/emergency_shutoff", SHUTOFF_FX, 201,
        {**SHUTOFF_FX, "comment": None, "data_version": 1}),
    row("emergency_shutoff[create]/delete", {"emergency_shutoff": actions("create")}, "DELETE",
        "/emergency_shutoff/Firefox/beta?data_version=1", None, 403,
        denied(f"{USER} is not allowed to delete shutoffs for product Firefox")),
    row("emergency_shutoff[delete]/delete", {"emergency_shutoff": actions("delete")}, "DELETE",
        "/emergency_shutoff/Firefox/beta?data_version=1", None, 200, ""),
    row("emergency_shutoff[delete]/create", {"emergency_shutoff": actions("delete")}, "POST", "/emergency_shutoff",
        SHUTOFF_FX, 403, denied(f"{USER} is not allowed to shut off updates for product Firefox")),
    row("emergency_shutoff[Firefox]/create Thunderbird", {"emergency_shutoff": FIREFOX}, "POST", "/emergency_shutoff",
        SHUTOFF_TB, 403, denied(f"{USER} is not allowed to shut off updates for product Thunderbird")),
    row("emergency_shutoff[delete]/schedule deletion", {"emergency_shutoff": actions("delete")}, "POST",
        "/scheduled_changes/emergency_shutoff",
        {"change_type": "delete", "when": WHEN, "product": "Firefox", "channel": "beta", "data_version": 1}, 200,
        {"sc_id": 1, "signoffs": {}}),
    row("emergency_shutoff[create]/schedule deletion", {"emergency_shutoff": actions("create")}, "POST",
        "/scheduled_changes/emergency_shutoff",
        {"change_type": "delete", "when": WHEN, "product": "Firefox", "channel": "beta", "data_version": 1}, 403,
        denied(f"{USER} is not allowed to delete shutoffs for product Firefox")),

    # ---- permission: create / modify / delete / view (reading another user's rows comes first)
    row("permission/grant", {"permission": None}, "PUT", f"/users/{NEW}/permissions/rule", {"options": None}, 201,
        {"new_data_version": 1}),
    row("permission[create]/grant to another", {"permission": actions("create")}, "PUT",
        f"/users/{NEW}/permissions/rule", {"options": None}, 403, VIEW_DENIED),
    row("permission[create]/grant to oneself", {"permission": actions("create")}, "PUT",
        f"/users/{USER}/permissions/release", {"options": None}, 201, {"new_data_version": 1}),
    row("permission[view,create]/grant", {"permission": actions("view", "create")}, "PUT",
        f"/users/{NEW}/permissions/rule", {"options": None}, 201, {"new_data_version": 1}),
    row("permission[view,create]/change with PUT", {"permission": actions("view", "create")}, "PUT",
        f"/users/{OTHER}/permissions/rule", {"options": OPTIONS_FX, "data_version": 1}, 403,
        denied(f"{USER} is not allowed to modify permissions")),
    row("permission[view]/grant", {"permission": actions("view")}, "PUT", f"/users/{NEW}/permissions/rule",
        {"options": None}, 403, denied(f"{USER} is not allowed to grant permissions")),
    row("permission[view,modify]/change", {"permission": actions("view", "modify")}, "POST",
        f"/users/{OTHER}/permissions/rule", {"options": OPTIONS_FX, "data_version": 1}, 200, {"new_data_version": 2}),
    row("permission[view,modify]/revoke", {"permission": actions("view", "modify")}, "DELETE",
        f"/users/{OTHER}/permissions/rule?data_version=1", None, 403,
        denied(f"{USER} is not allowed to revoke permissions")),
    row("permission[view,delete]/revoke", {"permission": actions("view", "delete")}, "DELETE",
        f"/users/{OTHER}/permissions/rule?data_version=1", None, 200, ""),
    row("permission[view,delete]/change", {"permission": actions("view", "delete")}, "POST",
        f"/users/{OTHER}/permissions/rule", {"options": OPTIONS_FX, "data_version": 1}, 403,
        denied(f"{USER} is not allowed to modify permissions")),
    row("permission[create]/grant role", {"permission": actions("create")}, "PUT", f"/users/{OTHER}/roles/dev", None,
        201, {"new_data_version": 1}),
    row("permission[view]/grant role", {"permission": actions("view")}, "PUT", f"/users/{OTHER}/roles/dev", None, 403,
        denied(f"{USER} is not allowed to grant user roles")),
    row("permission[delete]/revoke role", {"permission": actions("delete")}, "DELETE",
        f"/users/{OTHER}/roles/qa?data_version=1", None, 200, ""),
    row("permission[view]/revoke role", {"permission": actions("view")}, "DELETE",
        f"/users/{OTHER}/roles/qa?data_version=1", None, 403, denied(f"{USER} is not allowed to revoke user roles")),
    row("permission[view]/read another", {"permission": actions("view")}, "GET", f"/users/{OTHER}", None, 200,
        {"username": OTHER, "roles": {"qa": {"data_version": 1}, "relman": {"data_version": 1}},
         "permissions": {"release": {"options": None, "data_version": 1},
                         "rule": {"options": None, "data_version": 1}}}),
    row("permission[view]/list users", {"permission": actions("view")}, "GET", "/users", None, 200, ANY),
    row("permission[view]/history", {"permission": actions("view")}, "GET", "/permissions/history", None, 200, ANY),
    row("permission[create]/read another", {"permission": actions("create")}, "GET",
        f"/users/{OTHER}/permissions", None, 403, VIEW_DENIED),
    row("permission[create]/history", {"permission": actions("create")}, "GET", "/permissions/history", None, 403,
        VIEW_DENIED),
    row("rule/read oneself", {"rule": FIREFOX}, "GET", f"/users/{USER}/permissions/rule", None, 200,
        {"options": FIREFOX, "data_version": 1}),
    row("permission/schedule grant", {"permission": None}, "POST", "/scheduled_changes/permissions",
        {"change_type": "insert", "when": WHEN, "permission": "rule", "username": NEW, "options": None}, 200,
        {"sc_id": 1, "signoffs": {}}),
    row("permission[view]/schedule grant", {"permission": actions("view")}, "POST", "/scheduled_changes/permissions",
        {"change_type": "insert", "when": WHEN, "permission": "rule", "username": NEW, "options": None}, 403,
        denied(f"{USER} is not allowed to grant permissions")),

    # ---- required_signoff: create / modify / delete, always checked without a product
    row("required_signoff/create product", {"required_signoff": None}, "POST", "/required_signoffs/product",
        REQUIREMENT, 201, {"new_data_version": 1}),
    row("required_signoff/create permissions", {"required_signoff": None}, "POST", "/required_signoffs/permissions",
        {"product": "Thunderbird", "role": "relman", "signoffs_required": 1}, 201, {"new_data_version": 1}),
    row("required_signoff[Firefox]/create", {"required_signoff": FIREFOX}, "POST", "/required_signoffs/product",
        REQUIREMENT, 403, denied(f"{USER} is not allowed to create new Required Signoffs.")),
    row("required_signoff/schedule change", {"required_signoff": None}, "POST",
        "/scheduled_changes/required_signoffs/product",
        {"change_type": "update", "when": WHEN, "product": "Fennec", "channel": "release", "role": "relman",
         "signoffs_required": 2, "data_version": 1}, 200, {"sc_id": 1, "signoffs": {}}),
    row("required_signoff[Fennec]/schedule change", {"required_signoff": {"products": ["Fennec"]}}, "POST",
        "/scheduled_changes/required_signoffs/product",
        {"change_type": "update", "when": WHEN, "product": "Fennec", "channel": "release", "role": "relman",
         "signoffs_required": 2, "data_version": 1}, 403, not_allowed("")),

    # ---- scheduled_change: enact (then the scheduler's own rights are checked again)
    row("scheduled_change[enact]/enact", {"scheduled_change": actions("enact")}, "POST",
        "/scheduled_changes/rules/1/enact", None, 200, {}),
    row("scheduled_change/enact", {"scheduled_change": None}, "POST", "/scheduled_changes/rules/1/enact", None, 200,
        {}),
    row("scheduled_change[create]/enact", {"scheduled_change": actions("create")}, "POST",
        "/scheduled_changes/rules/1/enact", None, 403, ENACT_DENIED),
    row("rule/enact", {"rule": None}, "POST", "/scheduled_changes/rules/1/enact", None, 403, ENACT_DENIED),
    row("scheduled_change[enact]/enact for a scheduler without the right", {"scheduled_change": actions("enact")},
        "POST", "/scheduled_changes/rules/2/enact", None, 403,
        denied(f"{FORMER} is not allowed to modify rules for product Thunderbird")),

    # ---- signoffs: roles, not permissions; never by system accounts (scheduled rule change 1)
    row("relman/sign off", {"rule": None}, "POST", "/scheduled_changes/rules/1/signoffs", {"role": "relman"}, 200, {},
        roles=("relman",)),
    row("no role/sign off", {"rule": None}, "POST", "/scheduled_changes/rules/1/signoffs", {"role": "relman"}, 403,
        denied(f"{USER} cannot signoff with role 'relman'")),
    row("relman/sign off for another", {"rule": None}, "POST", "/scheduled_changes/rules/1/signoffs",
        {"role": "relman", "username": OTHER}, 403, denied("Cannot signoff on behalf of another user"),
        roles=("relman",)),
    row("admin/sign off without the role", {"admin": None}, "POST", "/scheduled_changes/rules/1/signoffs",
        {"role": "relman"}, 403, denied(f"{USER} cannot signoff with role 'relman'")),
    row("system account/release", {"release": None}, "PUT", "/releases/Firefox-61.0-build1",
        v1_release("Firefox-61.0-build1"), 201, "", actor=SYSTEM),
    row("system account/rule", {"release": None}, "POST", "/rules", RULE_FX, 403,
        denied(f"{SYSTEM} is not allowed to create new rules for product Firefox"), actor=SYSTEM),
    row("system account/sign off", {"release": None}, "POST", "/scheduled_changes/rules/1/signoffs",
        {"role": "relman"}, 403, denied("System account cannot signoff"), actor=SYSTEM, roles=("relman",)),
    row("system account/revoke", {"release": None}, "DELETE",
        f"/scheduled_changes/rules/1/signoffs?username={OTHER}", None, 403,
        denied("System accounts cannot revoke a signoff"), actor=SYSTEM, roles=("relman",)),
    row("relman/revoke another relman's", {"rule": None}, "DELETE",
        f"/scheduled_changes/rules/1/signoffs?username={OTHER}", None, 200, {}, roles=("relman",)),
    row("qa/revoke a relman's", {"rule": None}, "DELETE", f"/scheduled_changes/rules/1/signoffs?username={OTHER}",
        None, 403, denied("Cannot revoke a signoff made by someone in a group you do not belong to"), roles=("qa",)),
    row("admin[Thunderbird]/revoke a relman's", {"admin": THUNDERBIRD}, "DELETE",
        f"/scheduled_changes/rules/1/signoffs?username={OTHER}", None, 200, {}),

    # ---- known users: a human needs at least one permission row; a machine identity does not
    row("no rows (human)/write", {}, "POST", "/rules", RULE_FX, 403, UNKNOWN_USER, actor=NOBODY),
    row("no rows (human)/read oneself", {}, "GET", f"/users/{NOBODY}", None, 403, UNKNOWN_USER, actor=NOBODY),
    row("no rows (machine)/write", {}, "POST", "/rules", RULE_FX, 403,
        denied(f"{MACHINE} is not allowed to create new rules for product Firefox"), actor=MACHINE),
    row("one row/read oneself", {"scheduled_change": actions("enact")}, "GET", f"/users/{USER}", None, 200,
        {"username": USER, "roles": {},
         "permissions": {"scheduled_change": {"options": actions("enact"), "data_version": 1}}}),
]


# --- the world every row starts from ----------------------------------------------------------------------
def build_world() -> dict:
    """The database every row starts from, made through the API by the admin, as a dump."""
    storage = REGISTRY.storage_for("memory://")
    try:
        seed(storage, permissions=[
            {"username": ADMIN, "permission": "admin", "options": None},
            {"username": OTHER, "permission": "rule", "options": None},
            {"username": OTHER, "permission": "release", "options": None},
            {"username": FORMER, "permission": "rule", "options": None},
        ], roles=[{"username": ADMIN, "role": "releng"}, {"username": ADMIN, "role": "relman"},
                  {"username": OTHER, "role": "relman"}, {"username": OTHER, "role": "qa"}])
        call = client_for(storage)
        steps = [
            (ADMIN, "PUT", f"/releases/{FX60}", v1_release(FX60)),
            (ADMIN, "PUT", f"/releases/{TB60}", v1_release(TB60, "Thunderbird")),
            (ADMIN, "PUT", f"/releases/{FX59}", v1_release(FX59)),
            (ADMIN, "PUT", f"/releases/{FX58}", v1_release(FX58)),
            (ADMIN, "PUT", f"/releases/{FX58}/read_only", {"read_only": True, "data_version": 1}),
            (ADMIN, "PUT", f"/v2/releases/{FX70}", {"blob": v2_blob(FX70), "product": "Firefox"}),
            (ADMIN, "PUT", f"/v2/releases/{FX69}", {"blob": v2_blob(FX69), "product": "Firefox"}),
            (ADMIN, "PUT", f"/v2/releases/{FX70}/pinnable", PIN_EXISTING),
            (ADMIN, "POST", "/rules", {**RULE_FX, "channel": "release", "priority": 100}),  # rule 1
            (ADMIN, "POST", "/rules", {**RULE_FX, "channel": "beta", "priority": 90}),  # rule 2
            (ADMIN, "POST", "/rules", {**RULE_TB, "channel": "release", "priority": 80}),  # rule 3
            (ADMIN, "POST", "/emergency_shutoff", {"product": "Firefox", "channel": "beta"}),
            (ADMIN, "POST", "/emergency_shutoff", {"product": "Thunderbird", "channel": "beta"}),
            (ADMIN, "POST", "/required_signoffs/product",
             {"product": "Fennec", "channel": "release", "role": "relman", "signoffs_required": 1}),
            (ADMIN, "POST", "/scheduled_changes/rules", rule_change(1, "Firefox", "release", FX60)),  # sc 1
            (OTHER, "POST", "/scheduled_changes/rules/1/signoffs", {"role": "relman"}),
            (FORMER, "POST", "/scheduled_changes/rules", rule_change(TB_RULE, "Thunderbird", "release", TB60)),  # sc 2
            (ADMIN, "POST", f"/users/{FORMER}/permissions/rule", {"options": OPTIONS_FX, "data_version": 1}),
        ]
        for user, method, path, body in steps:
            answer = call(user, method, path, body)
            assert answer.status_code < 300, (method, path, answer.status_code, answer.text)
        return storage.dump()
    finally:
        storage.close()


def client_for(storage):
    ctx = AdminContext(storage, REGISTRY, StaticTokens({f"t-{name}": name for name in IDENTITIES}),
                       system_accounts=SYSTEM_ACCOUNTS, allowlisted_domains=ALLOWLIST)
    client = testing.TestClient(create_admin_app(ctx))

    def call(user, method, target, body=None):
        path, _, query = target.partition("?")
        headers = {"Authorization": f"Bearer t-{user}"} if user else {}
        return client.simulate_request(method, path, headers=headers, json=body, query_string=query or None)

    return call


@pytest.fixture(scope="module")
def world() -> dict:
    return build_world()


@pytest.fixture(params=BACKENDS)
def start(request, tmp_path, world):
    """``start(grants, roles, actor)``: the world plus the actor's rows, in a fresh database; returns a caller."""
    opened = []

    def start_(grants: Mapping[str, Any], roles=(), actor: str = USER):
        document = copy.deepcopy(world)
        tables = document["tables"]
        tables["permissions"] += [{"permission": kind, "username": actor, "options": options, "data_version": 1}
                                  for kind, options in grants.items()]
        tables["user_roles"] += [{"username": actor, "role": role, "data_version": 1} for role in roles]
        storage = REGISTRY.storage_for(request.param.format(tmp=tmp_path))
        opened.append(storage)
        storage.restore(document)
        return client_for(storage)

    yield start_
    for storage in opened:
        storage.close()


def answer_json(answer) -> Any:
    return answer.json if answer.text else ""


@pytest.mark.parametrize("case", MATRIX)
def test_permission_matrix(start, case: Row):
    call = start(case.grants, case.roles, case.actor)
    answer = call(case.actor, case.method, case.path, case.body)
    assert answer.status_code == case.status, answer.text
    assert matches(answer_json(answer), case.expect), answer.text


# --- known users, over time ---------------------------------------------------------------------------------
def test_losing_the_last_permission_makes_a_user_unknown(start):
    call = start({"rule": None}, roles=("qa",))
    assert call(USER, "GET", f"/users/{USER}").status_code == 200
    assert call(ADMIN, "DELETE", f"/users/{USER}/permissions/rule?data_version=1").status_code == 200
    for method, path, body in (("GET", f"/users/{USER}", None), ("POST", "/rules", RULE_FX)):
        answer = call(USER, method, path, body)
        assert (answer.status_code, answer.json) == (403, UNKNOWN_USER)
    # ...and the roles went with the permission: granting one back needs a permission first.
    assert call(ADMIN, "GET", f"/users/{USER}").status_code == 404
    answer = call(ADMIN, "PUT", f"/users/{USER}/roles/qa")
    assert (answer.status_code, answer.json["exception"]) == (400, "Cannot grant a role to a user without any "
                                                                   "permissions")
    assert call(ADMIN, "PUT", f"/users/{USER}/permissions/rule", {"options": None}).status_code == 201
    assert call(USER, "GET", f"/users/{USER}").status_code == 200


def test_every_permission_kind_and_option_is_in_the_matrix():
    """Each kind of §2.2 has an allowed and a refused row; each option key it takes is exercised."""
    from balrog_app.admin.permissions import OPTION_KEYS

    seen: dict[str, set] = {}
    for param in MATRIX:
        case: Row = param.values[0]
        for kind, options in case.grants.items():
            outcome = "allowed" if case.status < 300 else "refused"
            seen.setdefault(kind, set()).update({outcome, *(options or {})})
    for kind, keys in OPTION_KEYS.items():
        assert {"allowed", "refused", *keys} <= seen.get(kind, set()), kind
