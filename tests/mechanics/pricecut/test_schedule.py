"""The cut schedules: exact sums, bounds, and the floor exactly at the last needed helper."""

from hypothesis import given, settings
from hypothesis import strategies as st

from mechanics.pricecut.schedule import cut_for, planned_cuts, schedule_findings


def run(schedule, total, helpers, min_cut=None, max_cut=None, seed="s") -> list[int]:
    cuts, remaining = [], total
    for k in range(1, helpers + 1):
        cut = cut_for(
            schedule=schedule,
            total=total,
            helpers=helpers,
            k=k,
            remaining=remaining,
            min_cut=min_cut,
            max_cut=max_cut,
            seed=seed,
        )
        cuts.append(cut)
        remaining -= cut
    return cuts


@st.composite
def random_terms(draw):
    helpers = draw(st.integers(1, 100))
    min_cut = draw(st.integers(1, 5000))
    max_cut = draw(st.integers(min_cut, min_cut + 20000))
    total = draw(st.integers(helpers * min_cut, helpers * max_cut))
    return total, helpers, min_cut, max_cut, draw(st.text(min_size=1, max_size=32))


@settings(max_examples=400, deadline=None)
@given(random_terms())
def test_random_cuts_stay_in_their_bounds_and_end_exactly_at_the_floor(terms):
    total, helpers, min_cut, max_cut, seed = terms
    assert (
        schedule_findings(schedule="random", total=total, helpers=helpers, min_cut=min_cut, max_cut=max_cut)
        == []
    )
    cuts = run("random", total, helpers, min_cut, max_cut, seed)
    assert sum(cuts) == total
    assert all(min_cut <= c <= max_cut for c in cuts)
    # reproducible from the seed
    assert cuts == run("random", total, helpers, min_cut, max_cut, seed)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["equal", "decreasing"]), st.integers(1, 100), st.integers(1, 10_000_000))
def test_deterministic_cuts_add_up_and_each_cuts_something(schedule, helpers, total):
    if schedule_findings(schedule=schedule, total=total, helpers=helpers, min_cut=None, max_cut=None):
        return  # refused configurations are not run
    cuts = planned_cuts(schedule=schedule, total=total, helpers=helpers)
    assert sum(cuts) == total and len(cuts) == helpers and min(cuts) >= 1
    if schedule == "equal":
        assert max(cuts) - min(cuts) <= 1
    else:
        assert cuts[0] >= cuts[-1]


def test_refused_schedules_name_their_reason():
    def codes(**terms):
        return [f.split("]")[0] + "]" for f in schedule_findings(**terms)]

    assert codes(schedule="random", total=1000, helpers=3, min_cut=None, max_cut=None) == [
        "[random_needs_bounds]"
    ]
    assert codes(schedule="random", total=1000, helpers=3, min_cut=400, max_cut=500) == [
        "[random_bounds_unreachable]"
    ]
    assert codes(schedule="random", total=1000, helpers=3, min_cut=100, max_cut=200) == [
        "[random_bounds_unreachable]"
    ]
    assert codes(schedule="equal", total=2, helpers=3, min_cut=None, max_cut=None) == ["[cut_too_small]"]
    assert codes(schedule="decreasing", total=5, helpers=3, min_cut=None, max_cut=None) == ["[cut_too_small]"]
    assert codes(schedule="equal", total=1000, helpers=3, min_cut=1, max_cut=2) == [
        "[bounds_only_for_random]"
    ]
    assert planned_cuts(schedule="decreasing", total=600, helpers=3) == [300, 200, 100]
