"""The packing of a PostgreSQL index's postings, in parts: ranges of term numbers that leave none out."""

from __future__ import annotations

from rag.store.pg_packed import term_ranges


def covered(ranges) -> bool:
    """Whether ranges follow each other without gap or overlap from the lowest to the highest int32."""
    return ranges[0][0] == -2**31 and ranges[-1][1] == 2**31 - 1 and all(
        a[1] + 1 == b[0] and a[0] <= a[1] for a, b in zip(ranges, ranges[1:]))


def test_term_ranges_hold_about_a_batch_of_postings_each_and_cover_every_term_number():
    counts = [(1, 3), (2, 0), (5, 10), (9, 1), (12, 2)]
    ranges = term_ranges(counts, batch=4)
    assert ranges == [(-2**31, 2), (3, 5), (6, 2**31 - 1)]
    assert covered(ranges)


def test_wrong_or_missing_counters_never_leave_a_term_out():
    assert term_ranges([], batch=10) == [(-2**31, 2**31 - 1)]
    assert covered(term_ranges([(i, -5) for i in range(100)], batch=7))  # counters off: still every number
    assert len(term_ranges([(i, 1) for i in range(100)], batch=10)) == 11
