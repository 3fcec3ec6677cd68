"""Lifecycle governance: the use-cases that move versions between stages and aliases.

The doors call them through this module; each lives with its concept:

- ``promotions``: ``promote`` through the policy gates, ``approve``, ``reject``,
  ``get_promotion``, ``list_promotions``;
- ``aliases``: ``set_alias`` and ``delete_alias`` (a protected alias moves by a promotion);
- ``rollback``: ``rollback``, the emergency brake;
- ``holders``: who holds a target now (``current_holder``), at a moment (``holder_at``,
  ``version_at``), and the ``history`` of every move;
- ``moves``: the row writes (stage changes and alias moves, with history and audit) they share.

A target is a ``names.Target`` (a stage or ``@alias``), read once where text comes in.
"""

from __future__ import annotations

from modelreg.services.aliases import delete_alias, set_alias
from modelreg.services.holders import current_holder, history, holder_at, version_at
from modelreg.services.promotions import (
    approve,
    counted_approvers,
    get_promotion,
    list_promotions,
    promote,
    reject,
)
from modelreg.services.rollback import rollback

__all__ = [
    "approve",
    "counted_approvers",
    "current_holder",
    "delete_alias",
    "get_promotion",
    "history",
    "holder_at",
    "list_promotions",
    "promote",
    "reject",
    "rollback",
    "set_alias",
    "version_at",
]
