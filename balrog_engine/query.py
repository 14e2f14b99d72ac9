"""Turning a client's URL into an :class:`UpdateQuery` (public-api.md §3, §5).

The request path is split into segments against the protocol templates; the
query string is validated strictly; then the normalisations of §3.4 are applied
in order. Everything here is pure: no I/O, no global state.
"""
from __future__ import annotations

import dataclasses
import enum
import re
from dataclasses import dataclass
from urllib.parse import unquote, unquote_to_bytes

from .matching import fallback_channel


class Force(enum.Enum):
    MAIN = "1"  # force=1: always the main mapping
    FALLBACK = "-1"  # force=-1: always the losing branch


@dataclass(frozen=True, slots=True)
class UpdateQuery:
    """One normalised update request. Hashable, so identical requests can share a cached answer.

    Field conventions follow the reference: a field a protocol version does not
    carry is ``None`` where rules must see "absent" (``distVersion``,
    ``headerArchitecture``, ``buildID``/``locale`` on JSON) and ``""`` where rules
    compare it as an empty string (``osVersion`` on v1, ``instructionSet`` below v6).
    """

    product: str
    version: str
    buildTarget: str
    channel: str
    buildID: str | None = None
    locale: str | None = None
    osVersion: str | None = ""
    distribution: str | None = ""
    distVersion: str | None = None
    instructionSet: str | None = ""
    memory: int | None = None
    jaws: bool | None = None
    mig64: bool | None = None
    headerArchitecture: str | None = None
    force: Force | None = None
    pin: str | None = None
    queryVersion: int = 0
    kind: str = "xml"  # "xml" for /update, "json" for /json
    fallbackChannel: str = dataclasses.field(default="", compare=False)

    def __post_init__(self):
        object.__setattr__(self, "fallbackChannel", fallback_channel(self.channel))

    def replace(self, **changes) -> "UpdateQuery":
        """A copy with some fields changed (products superblobs do this on every request, so
        it avoids dataclasses.replace's per-call introspection)."""
        clone = object.__new__(UpdateQuery)
        for name in _FIELD_NAMES:
            object.__setattr__(clone, name, changes[name] if name in changes else getattr(self, name))
        if "channel" in changes:
            object.__setattr__(clone, "fallbackChannel", fallback_channel(clone.channel))
        return clone


_FIELD_NAMES = tuple(f.name for f in dataclasses.fields(UpdateQuery))


class QueryError(Exception):
    """A request the public API refuses before evaluation (problem+json 400)."""

    def __init__(self, detail: str, title: str | None = None):
        super().__init__(detail)
        self.detail = detail
        self.title = title


# --- path templates -------------------------------------------------------------------

# Segment names per /update/<N>/ protocol (without the trailing update.xml).
UPDATE_TEMPLATES: dict[str, tuple[str, ...]] = {
    "1": ("product", "version", "buildID", "buildTarget", "locale", "channel"),
    "2": ("product", "version", "buildID", "buildTarget", "locale", "channel", "osVersion"),
    "3": ("product", "version", "buildID", "buildTarget", "locale", "channel", "osVersion", "distribution", "distVersion"),
    "4": ("product", "version", "buildID", "buildTarget", "locale", "channel", "osVersion", "distribution", "distVersion",
          "platformVersion"),
    "5": ("product", "version", "buildID", "buildTarget", "locale", "channel", "osVersion", "distribution", "distVersion",
          "IMEI"),
    "6": ("product", "version", "buildID", "buildTarget", "locale", "channel", "osVersion", "systemCapabilities",
          "distribution", "distVersion"),
}
JSON_TEMPLATES: dict[str, tuple[str, ...]] = {
    "1": ("product", "version", "buildTarget", "channel"),
    "2": ("product", "version", "buildTarget", "channel", "osVersion"),
}
UPDATE_PARAMS = frozenset({"force", "mig64", "avast", "pin"})
UPDATE_V2_PARAMS = frozenset({"force", "mig64", "avast"})
JSON_PARAMS = frozenset({"force"})


def params_for(kind: str, protocol: str) -> frozenset[str]:
    if kind == "json":
        return JSON_PARAMS
    return UPDATE_V2_PARAMS if protocol == "2" else UPDATE_PARAMS


def match_update_path(segments: list[str]) -> tuple[str, dict[str, str]] | None:
    """``segments`` are the decoded path parts after ``/update/``; None when no template fits."""
    if len(segments) < 2 or segments[-1] != "update.xml":
        return None
    protocol, fields = segments[0], segments[1:-1]
    names = UPDATE_TEMPLATES.get(protocol)
    if names is None or len(fields) != len(names) or not all(fields):
        return None
    values = dict(zip(names, fields))
    if protocol == "3" and values["version"].endswith("esrpre"):
        stripped = values["version"][: -len("esrpre")]
        if stripped:
            values["version"] = stripped
    return protocol, values


def match_json_path(segments: list[str]) -> tuple[str, dict[str, str]] | None:
    if len(segments) < 2 or segments[-1] != "update.json":
        return None
    protocol, fields = segments[0], segments[1:-1]
    names = JSON_TEMPLATES.get(protocol)
    if names is None or len(fields) != len(names) or not all(fields):
        return None
    return protocol, dict(zip(names, fields))


def decode_path(raw_path: str) -> str | None:
    """Percent-decode a path as sent on the wire (UTF-8); None when the bytes are not UTF-8."""
    try:
        return unquote_to_bytes(raw_path).decode("utf-8")
    except UnicodeDecodeError:
        return None


def decode_wsgi_path(path_info: str) -> str | None:
    """WSGI servers hand over the decoded path as latin-1 text; recover the UTF-8 text."""
    try:
        return path_info.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return None


# --- query string ---------------------------------------------------------------------

def parse_query_string(qs: str) -> dict[str, str]:
    """Last occurrence wins. Names keep latin-1 decoding (the reference lists them that way in errors)."""
    params: dict[str, str] = {}
    if not qs:
        return params
    for pair in qs.split("&"):
        if not pair:
            continue
        name, _, value = pair.partition("=")
        name = unquote(name.replace("+", " "), encoding="latin-1")
        value = unquote(value.replace("+", " "), encoding="utf-8", errors="replace")
        params[name] = value
    return params


def validate_params(params: dict[str, str], allowed: frozenset[str]) -> None:
    extra = sorted(name for name in params if name not in allowed)
    if extra:
        raise QueryError(f"Extra query parameter(s) {', '.join(extra)} not in spec")
    if "pin" in params and params["pin"] == "":
        raise QueryError(EMPTY_PIN_DETAIL, title="Bad Request")


EMPTY_PIN_DETAIL = (
    "'' should be non-empty\n\nFailed validating 'minLength' in schema:\n"
    "    {'name': 'pin',\n     'in': 'query',\n     'description': 'pin',\n"
    "     'required': False,\n     'schema': {'type': 'string', 'minLength': 1}}\n\n"
    "On instance:\n    ''"
)


# --- normalisation (public-api.md §3.4) ------------------------------------------------

_NON_ASCII = re.compile(r"[^\x00-\x7f]")


def ascii_only(value: str) -> str:
    return _NON_ASCII.sub("?", value) if not value.isascii() else value


def parse_force(value: str | None) -> Force | None:
    if value is None:
        return None
    if "avast" in value:
        # Antivirus software glues "?avast=1" onto "force=1".
        cut = value.find("?")
        if cut < 0:
            cut = value.find("%3F")
        if cut >= 0:
            value = value[:cut]
    if value == "1":
        return Force.MAIN
    if value == "-1":
        return Force.FALLBACK
    return None


def _to_int(text: str) -> int | None:
    text = text.strip()
    if re.fullmatch(r"[+-]?\d+", text):
        return int(text)
    return None


def parse_system_capabilities(raw: str) -> tuple[str | None, int | None, bool | None]:
    """``ISET:SSE3,MEM:8096,JAWS:0`` (or the old ``SSE3,8095`` form) -> (instructionSet, memory, jaws)."""
    iset: str | None = None
    memory: int | None = None
    jaws: bool | None = None
    if raw.startswith("ISET:"):
        for part in raw.split(","):
            if ":" not in part:
                continue
            key, _, value = part.partition(":")
            if key == "ISET":
                iset = value
            elif key == "MEM":
                memory = _to_int(value)
            elif key == "JAWS":
                number = _to_int(value)
                jaws = None if number is None else number != 0
        return iset, memory, jaws
    parts = raw.split(",")
    if len(parts) == 1:
        iset = parts[0]
    elif len(parts) == 2:
        iset, memory = parts[0], _to_int(parts[1])
    return iset, memory, jaws


def build_update_query(protocol: str, fields: dict[str, str], params: dict[str, str], user_agent: str) -> UpdateQuery:
    """Apply §3.4 to matched path fields and validated parameters."""
    clean = {k: ascii_only(v) for k, v in fields.items()}
    force = parse_force(ascii_only(params["force"]) if "force" in params else None)
    locale = clean["locale"].replace("x86 ", "")
    build_target = clean["buildTarget"]
    iset: str | None = ""
    memory = jaws = None
    if protocol == "6":
        # The capabilities parser sees the raw (unsanitised) text.
        iset, memory, jaws = parse_system_capabilities(fields["systemCapabilities"])
        if iset is not None:
            iset = ascii_only(iset)
    mig64 = None if "mig64" not in params else params["mig64"] == "1"
    header_arch = "PPC" if build_target.startswith("Darwin") and "PPC" in user_agent else "Intel"
    pin = ascii_only(params["pin"]) if "pin" in params else None
    return UpdateQuery(
        product=clean["product"],
        version=clean["version"],
        buildID=clean["buildID"],
        buildTarget=build_target,
        locale=locale,
        channel=clean["channel"],
        osVersion="" if protocol == "1" else clean.get("osVersion", ""),
        distribution=clean.get("distribution", ""),
        distVersion=clean.get("distVersion"),
        instructionSet=iset,
        memory=memory,
        jaws=jaws,
        mig64=mig64,
        headerArchitecture=header_arch,
        force=force,
        pin=pin,
        queryVersion=int(protocol),
        kind="xml",
    )


def build_json_query(protocol: str, fields: dict[str, str], params: dict[str, str]) -> UpdateQuery:
    """JSON protocol: no sanitising, and the fields it lacks stay absent."""
    return UpdateQuery(
        product=fields["product"],
        version=fields["version"],
        buildTarget=fields["buildTarget"],
        channel=fields["channel"],
        buildID=None,
        locale=None,
        osVersion=fields.get("osVersion", ""),
        distribution=None,
        distVersion=None,
        instructionSet=None,
        headerArchitecture=None,
        force=parse_force(params.get("force")),
        queryVersion=int(protocol),
        kind="json",
    )
