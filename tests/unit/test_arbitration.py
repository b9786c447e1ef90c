"""The pure arbitration rule (the race-safety is tested against PostgreSQL in
tests/integration/test_arbitration_concurrency.py)."""

from __future__ import annotations

from botmgr.channels.arbitration import least_loaded


def test_no_bots() -> None:
    assert least_loaded([]) is None


def test_least_loaded_wins() -> None:
    assert least_loaded([(1, 5), (2, 3), (3, 4)]) == 2


def test_ties_go_to_the_lowest_id() -> None:
    assert least_loaded([(7, 2), (3, 2), (5, 2)]) == 3


def test_repeated_choice_spreads_evenly() -> None:
    loads = {bot: 0 for bot in (4, 1, 9, 2, 6)}
    for _ in range(53):
        chosen = least_loaded(loads.items())
        assert chosen is not None
        loads[chosen] += 1
    assert max(loads.values()) - min(loads.values()) <= 1
    assert loads[1] == 11  # the three extra bindings went to the lowest ids
