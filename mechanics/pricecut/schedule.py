"""The cut schedule: how much the k-th helper cuts. Pure functions over integer fen.

Every schedule cuts exactly `total` (start − floor) over exactly `helpers` helps, each at
least one fen, so the price reaches the floor at the last needed helper and never before:

- equal: total ÷ helpers, the first (total mod helpers) helpers one fen more;
- decreasing: in proportion to helpers, helpers − 1, …, 1 (the first helpers cut most);
- random: each cut uniform within the published [min, max], narrowed so that what remains
  can still be cut by the remaining helpers within the same bounds; the last helper cuts
  the rest, which the narrowing keeps within the bounds. It is drawn from the task's seed,
  so any cut can be recomputed when a participant asks.
"""

import hashlib

EQUAL, DECREASING, RANDOM = "equal", "decreasing", "random"


def cut_for(
    *,
    schedule: str,
    total: int,
    helpers: int,
    k: int,
    remaining: int,
    min_cut: int | None = None,
    max_cut: int | None = None,
    seed: str = "",
) -> int:
    """The cut of the k-th helper (1-based) when `remaining` fen are left to cut."""
    left = helpers - k + 1  # helpers still to come, this one included
    if left <= 1:
        return remaining
    if schedule == EQUAL:
        return total // helpers + (1 if k <= total % helpers else 0)
    if schedule == DECREASING:
        return _decreasing_cum(total, helpers, k) - _decreasing_cum(total, helpers, k - 1)
    low = max(min_cut, remaining - (left - 1) * max_cut)
    high = min(max_cut, remaining - (left - 1) * min_cut)
    draw = int.from_bytes(hashlib.sha256(f"{seed}:{k}".encode()).digest()[:8], "big")
    return low + draw % (high - low + 1)


def _decreasing_cum(total: int, helpers: int, k: int) -> int:
    weights = k * helpers - k * (k - 1) // 2  # helpers + (helpers − 1) + … for k helpers
    return total * weights // (helpers * (helpers + 1) // 2)


def planned_cuts(*, schedule: str, total: int, helpers: int) -> list[int]:
    """Every cut of a deterministic schedule, in order (what the rules may publish)."""
    cuts, remaining = [], total
    for k in range(1, helpers + 1):
        cut = cut_for(schedule=schedule, total=total, helpers=helpers, k=k, remaining=remaining)
        cuts.append(cut)
        remaining -= cut
    return cuts


def schedule_findings(
    *, schedule: str, total: int, helpers: int, min_cut: int | None, max_cut: int | None
) -> list[str]:
    """Why this schedule cannot work (or hides its randomness), as messages naming the check."""
    if total <= 0 or helpers <= 0:
        return ["[cut_needs_room] The floor price must be below the start price, with at least one helper."]
    if schedule == EQUAL and total < helpers:
        return [f"[cut_too_small] {helpers} helpers cannot each cut at least ¥0.01 off ¥{total / 100:.2f}."]
    if schedule == DECREASING and total < helpers * (helpers + 1) // 2:
        need = helpers * (helpers + 1) // 2
        return [
            f"[cut_too_small] A decreasing schedule for {helpers} helpers needs at least ¥{need / 100:.2f}."
        ]
    if schedule == RANDOM:
        if min_cut is None or max_cut is None or not 0 < min_cut <= max_cut:
            return ["[random_needs_bounds] A random cut must publish its bounds: from > 0 and to ≥ from."]
        if not helpers * min_cut <= total <= helpers * max_cut:
            return [
                f"[random_bounds_unreachable] {helpers} cuts between ¥{min_cut / 100:.2f} and "
                f"¥{max_cut / 100:.2f} cannot add up to exactly ¥{total / 100:.2f}."
            ]
    elif min_cut is not None or max_cut is not None:
        return ["[bounds_only_for_random] Cut bounds apply to the random schedule only; clear them."]
    return []
