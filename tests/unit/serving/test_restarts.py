"""The supervisor's restart policy: backoff, its reset, and when it gives up."""

from __future__ import annotations

from fulcrum.serving.restarts import RestartPolicy, Restarts

POLICY = RestartPolicy(first_delay=0.5, max_delay=30.0, stable_after=60.0, give_up_after=3)


def crash(
    restarts: Restarts, slot: int = 0, *, uptime: float = 5.0, others: int = 1
) -> float | None:
    return restarts.exited(slot, served=True, uptime=uptime, others_serving=others)


def test_a_process_that_keeps_crashing_waits_twice_as_long_each_time_up_to_the_cap() -> None:
    restarts = Restarts(POLICY)
    delays = [crash(restarts) for _ in range(9)]
    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]


def test_the_backoff_starts_again_after_a_process_served_for_the_stable_period() -> None:
    restarts = Restarts(POLICY)
    for _ in range(4):
        crash(restarts)
    assert crash(restarts, uptime=60.0) == 0.5
    assert crash(restarts) == 1.0


def test_slots_back_off_independently() -> None:
    restarts = Restarts(POLICY)
    for _ in range(3):
        crash(restarts, slot=0)
    assert crash(restarts, slot=1) == 0.5


def test_it_gives_up_when_processes_fail_to_start_in_a_row_and_none_serves() -> None:
    restarts = Restarts(POLICY)
    never = {"served": False, "uptime": 1.0, "others_serving": 0}
    assert restarts.exited(0, **never) == 0.5
    assert restarts.exited(0, **never) == 1.0
    assert restarts.exited(0, **never) is None
    assert restarts.start_failures(0) == 3


def test_it_keeps_trying_a_slot_that_cannot_start_while_others_serve() -> None:
    restarts = Restarts(POLICY)
    delays = [restarts.exited(0, served=False, uptime=1.0, others_serving=1) for _ in range(8)]
    assert None not in delays
    assert delays[-1] == 30.0


def test_a_process_that_served_resets_the_count_of_failed_starts() -> None:
    restarts = Restarts(POLICY)
    never = {"served": False, "uptime": 1.0, "others_serving": 0}
    restarts.exited(0, **never)
    restarts.exited(0, **never)
    restarts.exited(0, served=True, uptime=2.0, others_serving=0)  # crashed, but had served
    assert restarts.start_failures(0) == 0
    assert restarts.exited(0, **never) is not None
    assert restarts.exited(0, **never) is not None
    assert restarts.exited(0, **never) is None


def test_thousands_of_crashes_do_not_overflow_the_delay() -> None:
    restarts = Restarts(POLICY)
    for _ in range(5000):
        delay = crash(restarts)
    assert delay == 30.0
