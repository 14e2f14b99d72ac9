from __future__ import annotations

from collections import defaultdict

TALLY: dict[str, dict[str, set]] = defaultdict(lambda: {"all": set(), "ok": set(), "divergent": set()})


def record(backend: str, key: tuple, status: str) -> None:
    TALLY[backend]["all"].add(key)
    if status in ("ok", "divergent"):
        TALLY[backend][status].add(key)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if not TALLY:
        return
    backends = sorted(TALLY)
    keys = set().union(*(t["all"] for t in TALLY.values()))
    matched = {k for k in keys if all(k in TALLY[b]["ok"] for b in backends)}
    divergent = {k for k in keys if k not in matched and all(k in TALLY[b]["ok"] | TALLY[b]["divergent"]
                                                             for b in backends)}
    per_backend = ", ".join(f"{b} {len(TALLY[b]['ok'])}/{len(TALLY[b]['all'])}" for b in backends)
    extra = f", {len(divergent)} intended divergence(s)" if divergent else ""
    terminalreporter.write_line(f"conformance: {len(matched)}/{len(keys)} requests match{extra} ({per_backend})")
