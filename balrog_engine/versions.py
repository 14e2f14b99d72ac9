"""Version parsing and ordering exactly as Balrog's clients see it.

Three families (rule-matching.md §11):

* Mozilla versions for every product but FirefoxVPN/Guardian. Four textual
  classes (modern, post-modern, glob, ancient) fold into one comparable key.
* Loose versions for FirefoxVPN and Guardian (digit/letter runs compared as a list).
* Pin versions (``102.`` / ``102.1.``) compared against truncated Mozilla versions.

Parsing is memoised: the same few hundred version strings arrive millions of times.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache


class InvalidVersion(ValueError):
    """A version string that Balrog would refuse; the message is the wire text."""

    def __init__(self, text: str):
        super().__init__(f"Version number {text} is invalid.")
        self.text = text


class InvalidPin(ValueError):
    def __init__(self, text: str):
        super().__init__(f"Version Pin String '{text}' is invalid.")
        self.text = text


_POST_MODERN = re.compile(r"^(\d+)\.(\d+)(?:\.(\d+))?(?:(a)(\d+))?$")
_GLOB = re.compile(r"^(\d+)\.(?:(\d+)\.)?\*$")
_MODERN = re.compile(r"^(\d+)\.(\d+)(?:\.(\d+))?(?:([a-zA-Z])[a-zA-Z]*(\d+))?$")
_ANCIENT = re.compile(r"^(\d+)\.(\d+)\.\d(?:\.(\d+))(?:([a-zA-Z])[a-zA-Z]*(\d+))?$")
_MAJOR = re.compile(r"^(\d+)\.")


@dataclass(frozen=True, slots=True)
class MozillaVersion:
    """A parsed Mozilla version; instances order and compare like Balrog's."""

    major: int
    minor: int
    patch: int
    tag: str  # "" when untagged, else the single tag letter
    tag_number: int
    key: tuple  # precomputed ordering key
    canonical: str  # used by glob matching

    def __lt__(self, other: "MozillaVersion") -> bool:
        return self.key < other.key

    def __le__(self, other: "MozillaVersion") -> bool:
        return self.key <= other.key

    def __gt__(self, other: "MozillaVersion") -> bool:
        return self.key > other.key

    def __ge__(self, other: "MozillaVersion") -> bool:
        return self.key >= other.key

    def __eq__(self, other: object) -> bool:
        return isinstance(other, MozillaVersion) and self.key == other.key

    def __hash__(self) -> int:
        return hash(self.key)

    @property
    def numbers(self) -> tuple[int, int, int]:
        return (self.major, self.minor, self.patch)


@dataclass(frozen=True, slots=True)
class GlobVersion:
    """A rule-side ``78.*`` / ``78.8.*`` pattern (majors above 4 only)."""

    prefix_text: str  # glob text without the trailing "*"
    numbers: tuple[int, ...]

    def matches(self, version: MozillaVersion) -> bool:
        if version.canonical.startswith(self.prefix_text):
            return True
        return not version.tag and version.numbers[: len(self.numbers)] == self.numbers


def _make(major: int, minor: int, patch: int, tag: str, tag_number: int) -> MozillaVersion:
    # Untagged sorts above any tag of the same numbers: 60.0a1 < 60.0.
    key = (major, minor, patch, 0 if tag else 1, tag, tag_number)
    canonical = f"{major}.{minor}" + (f".{patch}" if patch else "") + (f"{tag}{tag_number}" if tag else "")
    return MozillaVersion(major, minor, patch, tag, tag_number, key, canonical)


@lru_cache(maxsize=8192)
def _parse_mozilla(text: str) -> MozillaVersion | GlobVersion | None:
    dots = text.count(".")
    if dots in (1, 2):
        head = _MAJOR.match(text)
        if head is None:
            return None
        if int(head.group(1)) > 4:
            if text.endswith(".*"):
                glob = _GLOB.match(text)
                if glob is None:
                    return None
                numbers = tuple(int(g) for g in glob.groups() if g is not None)
                return GlobVersion(text[:-1], numbers)
            m = _POST_MODERN.match(text)
        else:
            m = _MODERN.match(text)
        if m is None:
            return None
        major, minor, patch, tag, num = m.groups()
        return _make(int(major), int(minor), int(patch or 0), tag or "", int(num or 0))
    m = _ANCIENT.match(text)
    if m is None:
        return None
    # The third numeric part is dropped: 1.5.0.12 is (1, 5, 12).
    major, minor, last, tag, num = m.groups()
    return _make(int(major), int(minor), int(last), tag or "", int(num or 0))


def parse_mozilla(text: str) -> MozillaVersion:
    """Parse a concrete (non-glob) Mozilla version or raise InvalidVersion."""
    v = _parse_mozilla(text)
    if not isinstance(v, MozillaVersion):
        raise InvalidVersion(text)
    return v


def parse_mozilla_or_glob(text: str) -> MozillaVersion | GlobVersion:
    v = _parse_mozilla(text)
    if v is None:
        raise InvalidVersion(text)
    return v


_LOOSE = re.compile(r"\d+|[a-z]+|\.")


@lru_cache(maxsize=4096)
def parse_loose(text: str) -> tuple:
    """Loose version components: digit runs as ints, lowercase runs as strings.

    Characters matching neither stay glued into string components, like the
    reference's LooseVersion. Comparing an int with a str component raises
    TypeError (the reference's 500); callers treat that as "not comparable".
    """
    parts: list = []
    pos = 0
    for m in _LOOSE.finditer(text):
        if m.start() > pos:
            parts.append(text[pos : m.start()])
        token = m.group()
        if token != ".":
            parts.append(int(token) if token.isdigit() else token)
        pos = m.end()
    if pos < len(text):
        parts.append(text[pos:])
    return tuple(parts)


_PIN = re.compile(r"^(\d+)\.(?:(\d+)\.)?$")


@lru_cache(maxsize=1024)
def parse_pin(text: str) -> tuple[int, ...]:
    """``102.`` -> (102,); ``102.1.`` -> (102, 1); anything else raises InvalidPin."""
    m = _PIN.match(text)
    if m is None:
        raise InvalidPin(text)
    return tuple(int(g) for g in m.groups() if g is not None)


def canonical_pin(pin: tuple[int, ...]) -> str:
    return "".join(f"{n}." for n in pin)


def compare_to_pin(version: MozillaVersion, pin: tuple[int, ...]) -> int:
    """-1, 0 or 1 as the version is below, within or beyond the pin (tags ignored)."""
    head = version.numbers[: len(pin)]
    return (head > pin) - (head < pin)
