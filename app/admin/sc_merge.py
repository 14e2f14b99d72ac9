"""Direct writes to a row that has pending scheduled changes (scheduled-changes-and-agent.md §4.5),
the same for every schedulable table.

* :func:`merge_update`: a direct *update* of the row is copied into each of its incomplete
  scheduled changes, as a regular edit of that change made on behalf of its ``scheduled_by``:
  the columns the update changes are written into the change's ``base_`` columns, its
  ``base_data_version`` follows the row, the change's and its conditions' versions go up by one,
  and every signoff but the scheduler's is dropped (an edit resets approvals, §4.2). The update is
  refused with 400 ``UpdateMergeError`` when a pending change also changes one of those columns
  to another value, and with 400 ``Unknown error`` / ``Cannot schedule changes in the past`` once
  a change's ``when`` has passed (the edit re-validates its conditions; the agent has not enacted
  it yet).
* :func:`refuse_delete`: a direct *delete* of the row is refused with 400
  ``ChangeScheduledError`` while any change of it is pending.

The caller has already made its own checks (permission, signoffs, data_version) and, for an
update, written the row: everything happens in the caller's session, so a refusal here rolls the
direct write back too.

Tables follow Balrog's naming: changes of ``T`` live in ``T_scheduled_changes`` (``base_<column>``
for each column of ``T``), with ``T_scheduled_changes_conditions`` and
``T_scheduled_changes_signoffs`` keyed by ``sc_id``.
"""
from __future__ import annotations

import time
from typing import Any, Mapping

from balrog_engine import Session

from .problems import Problem, bad_request, unknown_error


def _now_ms() -> int:
    return int(time.time() * 1000)


def _tables(table: str) -> tuple[str, str, str]:
    sc_table = f"{table}_scheduled_changes"
    return sc_table, f"{sc_table}_conditions", f"{sc_table}_signoffs"


def pending(session: Session, table: str, key: Mapping[str, Any]) -> list[dict]:
    """The incomplete scheduled changes of the ``table`` row with primary key ``key`` (every
    change type: an insert scheduled for the same key counts too)."""
    where = {f"base_{column}": value for column, value in key.items()}
    return session.rows(_tables(table)[0], {**where, "complete": False}, order_by=("sc_id",))


def has_pending(session: Session, table: str, key: Mapping[str, Any]) -> bool:
    where = {f"base_{column}": value for column, value in key.items()}
    return session.count(_tables(table)[0], {**where, "complete": False}) > 0


def change_scheduled(method: str) -> Problem:
    """400 ``ChangeScheduledError`` for a direct delete of a row with a pending change (§0.3)."""
    return bad_request("ChangeScheduledError", f"Couldn't perform the request {method} due a conflict with a "
                                               "scheduled change. Cannot delete rows that have changes scheduled.")


def merge_error(method: str) -> Problem:
    return bad_request("UpdateMergeError", f"Couldn't perform the request {method} due to merge error. "
                                           "Is there a scheduled change that conflicts with yours?")


def refuse_delete(session: Session, table: str, key: Mapping[str, Any], method: str = "DELETE") -> None:
    """Raise ``ChangeScheduledError`` if the row has a pending scheduled change."""
    if has_pending(session, table, key):
        raise change_scheduled(method)


def merge_update(session: Session, table: str, key: Mapping[str, Any], old_row: Mapping[str, Any],
                 new_values: Mapping[str, Any], new_data_version: int, method: str) -> None:
    """Copy a direct update of the row ``key`` of ``table`` (``old_row`` before it, ``new_values``
    the columns written, ``new_data_version`` its version now) into the row's pending scheduled
    changes. ``method`` names the request in the error texts."""
    changes = pending(session, table, key)
    if not changes:
        return
    # Only what the update really changes is merged (a client may resend unchanged values).
    changed = {column: value for column, value in new_values.items() if value != old_row.get(column)}
    # A column the pending change also changes, to something else, cannot take both values.
    # (Checked for every change before any is written, so a refusal leaves all of them as they were.)
    for sc in changes:
        for column, value in changed.items():
            scheduled = sc.get(f"base_{column}")
            if scheduled != old_row.get(column) and scheduled != value:
                raise merge_error(method)
    sc_table, conditions_table, signoffs_table = _tables(table)
    for sc in changes:
        conditions = session.get(conditions_table, {"sc_id": sc["sc_id"]})
        # The merge is an edit of the change, and an edit re-validates its conditions: one whose
        # time has passed (the agent has not enacted it yet) can no longer be edited.
        if conditions and conditions.get("when") is not None and conditions["when"] < _now_ms():
            raise unknown_error("Cannot schedule changes in the past")
        values = {f"base_{column}": value for column, value in changed.items()}
        values["base_data_version"] = new_data_version  # so the change still applies to the row at enactment
        # History records the edit as the scheduler's, who stays the change's owner.
        with session.acting_as(sc["scheduled_by"]):
            session.update(sc_table, {"sc_id": sc["sc_id"]}, values, sc["data_version"], merge=False)
            if conditions:  # kept in lock-step with the change's version (§2)
                session.update(conditions_table, {"sc_id": sc["sc_id"]}, {}, conditions["data_version"], merge=False)
            for signoff in session.rows(signoffs_table, {"sc_id": sc["sc_id"]}):
                if signoff["username"] != sc["scheduled_by"]:
                    session.delete(signoffs_table, {"sc_id": sc["sc_id"], "username": signoff["username"]},
                                   signoff["data_version"])


__all__ = ["change_scheduled", "has_pending", "merge_error", "merge_update", "pending", "refuse_delete"]
