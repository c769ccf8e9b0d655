"""Which actions a search compares at a decision: the base's choice and its runners-up.

The base's choice always comes first (ties go to it), then the choices of the search's
portfolio heuristics (when it has one). A base that ranks its actions (a checkpoint:
`ranked_actions`, its top (job, node) pairs by logit under the mask) gives its
runners-up itself. Otherwise: each window job that fits somewhere, on the node the
base's own placement would give it, in the base's order when the base has one (a
composed heuristic or `tuned`: these are its next-best choices), else in window order on
the fastest node; optionally the same jobs on GPUs of other speeds, and on the
placement's next-best nodes (its choice among the nodes not offered yet), which is all a
placement-only decision (one pod, no WAIT) can vary. WAIT comes last where the belief
allows it.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from worker.sim.heuristics.composed import ComposedHeuristic
from worker.sim.heuristics.placements import PLACEMENTS, Placement
from worker.sim.policy import DecisionView, Policy


def composition_of(policy: Policy) -> ComposedHeuristic | None:
    """The composed heuristic a base runs (itself, or what `tuned` chose), if any."""
    inner = getattr(policy, "inner", policy)
    return inner if isinstance(inner, ComposedHeuristic) else None


def action_ranking(policy: Policy) -> Callable[[DecisionView], np.ndarray] | None:
    """The `ranked_actions` of a base that ranks its actions. A search ranks as its own base
    does, so a search over a search over a checkpoint (`depth` > 1) offers the checkpoint's
    top pairs at every level."""
    current: Policy | None = policy
    while current is not None:
        ranking = getattr(current, "ranked_actions", None)
        if ranking is not None:
            return ranking
        current = getattr(current, "base", None)
    return None


def ranked_slots(view: DecisionView, base: Policy) -> np.ndarray:
    """Window slots that fit some node now, best first by the base's order."""
    slots = np.flatnonzero(view.fits.any(axis=1))
    composed = composition_of(base)
    if composed is None or not len(slots):
        return slots
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        keys = np.asarray(composed.order.key(view), dtype=np.float64)[slots]
    keys = np.where(np.isnan(keys), np.inf, keys)
    return slots[np.argsort(keys, kind="stable")]


def candidate_actions(
    view: DecisionView,
    base: Policy,
    base_action: int,
    limit: int,
    wait_allowed: bool,
    other_speeds: bool = False,
    nodes_per_job: int = 1,
    others: list[int] | None = None,
) -> list[int]:
    """At most `limit` distinct actions, the base's choice first (see the module docstring).
    With `other_speeds` and a base that does not rank its actions, after every job on its
    node come the ranked jobs on the base's placement among the nodes of each other GPU
    speed they fit (a slower GPU that still makes the deadline keeps the fast ones free).
    With `nodes_per_job` k > 1 (and a base that does not rank), then come the ranked jobs
    on the placement's second-best node, and so on to its k-th. A ranking base's pairs
    already span the nodes it prefers."""
    wait = view.wait_action
    offer_wait = wait_allowed and base_action != wait and limit > 1
    room = limit - int(offer_wait)
    actions = [base_action]
    for other in others or ():
        if other not in actions and other != wait and len(actions) < room:
            actions.append(other)
    ranking = action_ranking(base)
    if ranking is not None:
        runners_up = [a for a in ranking(view).tolist() if a not in actions]
        actions += runners_up[: room - len(actions)]
        return [*actions, wait] if offer_wait else actions
    n = view.fits.shape[1]
    composed = composition_of(base)
    placement: Placement = composed.placement if composed is not None else PLACEMENTS["fastest"]
    slots = [int(slot) for slot in ranked_slots(view, base)]
    for slot in slots:
        if len(actions) >= room:
            break
        action = slot * n + placement.place(view, slot, view.fits[slot])
        if action not in actions:
            actions.append(action)
    for slot in slots if other_speeds else ():
        fits, speed = view.fits[slot], view.speed[slot]
        taken = {speed[a % n] for a in actions if a != wait and a // n == slot}
        for other in np.unique(speed[fits]):
            if len(actions) >= room:
                break
            if other not in taken:
                actions.append(slot * n + placement.place(view, slot, fits & (speed == other)))
    for _ in range(nodes_per_job - 1):
        for slot in slots:
            if len(actions) >= room:
                break
            offered = {a % n for a in actions if a != wait and a // n == slot}
            left = view.fits[slot].copy()
            left[list(offered)] = False
            if left.any():
                actions.append(slot * n + placement.place(view, slot, left))
    if offer_wait:
        actions.append(wait)
    return actions
