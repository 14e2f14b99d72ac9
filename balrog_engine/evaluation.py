"""From a query to "which release, if any" (rule-matching.md §1).

Pure over a snapshot: shutoffs, the winning rule, throttling, the release's
serve check and pinning. Rendering is the caller's business.
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from .blobs import Evaluation, Serve
from .query import Force, UpdateQuery
from .versions import canonical_pin, parse_pin

if TYPE_CHECKING:  # pragma: no cover
    from .snapshot import Snapshot

log = logging.getLogger("balrog.evaluation")
NOTHING = Evaluation(None)


def evaluate(snapshot: "Snapshot", query: UpdateQuery) -> Evaluation:
    """Raises RuleError (unparsable versions) or BadRequest (blob serve checks): both are 400s."""
    if snapshot.is_shut_off(query.product, query.channel, query.fallbackChannel):
        return NOTHING
    rule = snapshot.index.select(query)
    if rule is None:
        return NOTHING
    rule_id, data_version = str(rule.rule_id), str(rule.data_version)
    nothing = Evaluation(None, rule.update_type, rule_id, data_version)
    if rule.mapping is None:
        return nothing
    mapping = rule.mapping
    if query.force is not Force.MAIN and rule.background_rate < 100:
        # A rate of 0 always loses: no dice needed, so the answer stays cacheable.
        if query.force is Force.FALLBACK or rule.background_rate <= 0 or snapshot.roll() >= rule.background_rate:
            if rule.fallback_mapping is None:
                return nothing
            mapping = rule.fallback_mapping
    release = snapshot.release(mapping)
    if release is None:
        # The reference crashes here (500); a missing release is simply nothing to serve.
        log.warning("rule %s maps to unknown release %r", rule_id, mapping)
        return nothing
    verdict = release.blob.should_serve(query, snapshot)
    if verdict is Serve.NO:
        return nothing
    if verdict is Serve.MAYBE:
        # The release is beyond the client's pin: the pin table decides, if it knows the pin.
        pin = canonical_pin(parse_pin(query.pin))
        name = snapshot.pinned_release(query.product, query.fallbackChannel, pin)
        if name is not None:
            pinned = snapshot.release(name)
            if pinned is None:
                log.warning("pin %s/%s/%s maps to unknown release %r", query.product, query.fallbackChannel, pin, name)
                return nothing
            if pinned.blob.should_serve(query, snapshot) is Serve.NO:
                return nothing
            release = pinned
    return Evaluation(release, rule.update_type, rule_id, data_version)
