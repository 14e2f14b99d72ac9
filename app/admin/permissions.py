"""Who may do what (auth-and-permissions.md §2): the permission kinds, their option keys, and
the check every write makes. Pure functions over permission rows, so the matrix is tested
without a server; :func:`load` reads a user's rows in a storage session."""
from __future__ import annotations

from typing import Any, Iterable, Mapping

from balrog_engine import Session

from .problems import forbidden

#: Permission kind -> the option keys it accepts (§2.2).
OPTION_KEYS: dict[str, tuple[str, ...]] = {
    "admin": ("products",),
    "emergency_shutoff": ("actions", "products"),
    "rule": ("actions", "products"),
    "release": ("actions", "products"),
    "release_read_only": ("actions", "products"),
    "release_locale": ("actions", "products"),
    "required_signoff": ("products",),
    "permission": ("actions",),
    "scheduled_change": ("actions",),
    "pinnable_release": ("products",),
}

#: Every kind, in the order Balrog's schema lists them (it appears in error texts).
KINDS: tuple[str, ...] = tuple(OPTION_KEYS)

#: Permission rows of one user: kind -> options (a dict, or None).
Grants = Mapping[str, "Mapping[str, Any] | None"]


def load(session: Session, username: str) -> dict[str, Any]:
    """The user's permission rows as ``{kind: options}``."""
    return {row["permission"]: row["options"] for row in session.rows("permissions", {"username": username})}


def is_known_user(session: Session, username: str) -> bool:
    """A user "exists" exactly when they have at least one permission row."""
    return session.count("permissions", {"username": username}) > 0


def _listed(options: Mapping[str, Any] | None, key: str, value: Any) -> bool:
    """True unless ``options[key]`` is a non-empty list without ``value`` (None is never listed)."""
    allowed = (options or {}).get(key)
    return not allowed or value in allowed


def has_permission(grants: Grants, kind: str, action: str | None, product: str | None) -> bool:
    """§2.3: an admin row grants everything (within its products); else the row of ``kind``
    must allow the action and the product. Checks made without a product (``None``) fail any
    product restriction."""
    if "admin" in grants:
        return _listed(grants["admin"], "products", product)
    if kind not in grants:
        return False
    options = grants[kind]
    return _listed(options, "actions", action) and _listed(options, "products", product)


def is_admin(grants: Grants) -> bool:
    return "admin" in grants


def require(grants: Grants, kind: str, action: str | None, products: Iterable[str | None], message: str) -> None:
    """Raise the 403 ``Permission Denied`` unless every product is allowed. ``message`` is
    Balrog's text for the endpoint, with ``{product}`` standing for the refused product (the
    wording differs per endpoint, e.g. ``alice is not allowed to shut off updates for product
    {product}``)."""
    for product in products:
        if not has_permission(grants, kind, action, product):
            raise forbidden(message.format(product=product))


def unknown_option_keys(kind: str, options: Mapping[str, Any] | None) -> list[str]:
    """Option keys ``kind`` does not accept, in the order given."""
    allowed = OPTION_KEYS.get(kind, ())
    return [key for key in (options or {}) if key not in allowed]
