"""Which download URLs may appear in an answer (rule-matching.md §12).

Checked for every URL of every response, so verdicts are memoised per
(url, product): the set of URLs is bounded by the releases in the snapshot.
"""
from __future__ import annotations

import re
from typing import Any, Mapping, Sequence
from urllib.parse import urlsplit

from .query import Force


class Allowlist:
    MEMO_LIMIT = 100_000

    def __init__(self, domains: Mapping[str, Any] | None):
        self._domains: dict[str, Any] = {}
        for domain, entry in (domains or {}).items():
            if isinstance(entry, Mapping):
                entry = tuple((re.compile(pattern), frozenset(products)) for pattern, products in entry.items())
            elif isinstance(entry, (list, tuple)):
                entry = frozenset(entry)
            else:
                entry = None  # any other shape forbids everything
            self._domains[domain] = entry
        self._memo: dict[tuple[str, str], bool] = {}

    def is_forbidden(self, url: str, product: str) -> bool:
        key = (url, product)
        verdict = self._memo.get(key)
        if verdict is None:
            verdict = self._decide(url, product)
            if len(self._memo) >= self.MEMO_LIMIT:
                self._memo.clear()
            self._memo[key] = verdict
        return verdict

    def _decide(self, url: str, product: str) -> bool:
        try:
            parts = urlsplit(url)
        except ValueError:
            return True
        entry = self._domains.get(parts.netloc)
        if isinstance(entry, frozenset):
            return product not in entry
        if isinstance(entry, tuple):
            for pattern, products in entry:
                if pattern.fullmatch(parts.path):
                    return product not in products
        return True


def apply_force(url: str, force: Force | None, special_hosts: Sequence[str]) -> str:
    """Append force=1/-1 to URLs on special force hosts (app-release patches only)."""
    if force is None:
        return url
    for host in special_hosts:
        if url.startswith(host):
            return f"{url}{'&' if '?' in url else '?'}force={force.value}"
    return url
