"""Slot selection (no model): each cache key owns its slots, a call finds its conversation's slot again, and a
busy group makes the next caller wait instead of borrowing another key's slot."""

from __future__ import annotations

import threading
import time

import pytest

from umi.models.slots import SlotTable


def test_each_key_owns_its_slots_and_unknown_keys_use_the_first_group() -> None:
    table = SlotTable(["planner", "caller", "summarizer"], lanes=2)
    assert table.total == 6
    assert table.groups == {"planner": [0, 1], "caller": [2, 3], "summarizer": [4, 5]}
    with table.acquire("caller", "x") as slot:
        assert slot in (2, 3)
    with table.acquire(None, "x") as slot:
        assert slot in (0, 1)
    with table.acquire("judge", "x") as slot:
        assert slot in (0, 1)
    assert SlotTable([]).groups == {"": [0]}


def test_a_conversation_finds_its_slot_again_and_a_new_one_takes_the_coldest() -> None:
    table = SlotTable(["planner"], lanes=2)
    with table.acquire("planner", "trajectory A step 1") as a, table.acquire("planner", "trajectory B step 1") as b:
        assert {a, b} == {0, 1}
    with table.acquire("planner", "trajectory B step 1 and step 2") as again:
        assert again == b
    with table.acquire("planner", "trajectory A step 1 and step 2") as again:
        assert again == a
    with table.acquire("planner", "a new conversation") as fresh:  # shares nothing: the least recently used slot
        assert fresh == b


def test_a_busy_group_waits_rather_than_using_another_keys_slot() -> None:
    table = SlotTable(["planner", "caller"])
    got: list[int] = []
    with table.acquire("planner", "p") as held:
        worker = threading.Thread(target=lambda: got.append(table.acquire("planner", "q").__enter__()))
        worker.start()
        time.sleep(0.2)
        assert got == [] and held == 0  # waiting: the caller's free slot 1 is not taken
    worker.join(5)
    assert got == [0]


def test_a_batch_takes_its_slots_together_so_no_trajectory_loses_its_history() -> None:
    """Two trajectories hold the two slots; a batch brings a new trajectory (sharing only the boilerplate with A)
    first and B's next step second. One by one, the new one would take B's slot (it shares more with B than with
    A) and B would lose its history; together, B keeps its slot and the new one takes A's."""
    table = SlotTable(["planner"], lanes=2)
    with table.acquire_batch("planner", ["apis: x, y. history: A1", "apis: search. history: B1"]) as (a, b):
        assert {a, b} == {0, 1}
    new, b_next = "apis: search, z. history: C1", "apis: search. history: B1 B2"
    assert table._best([a, b], new) == b  # what a one-at-a-time choice would do
    with table.acquire_batch("planner", [new, b_next]) as (got_new, got_b):
        assert got_b == b and got_new == a
    with table.acquire_batch("planner", ["p"]) as (only,):
        assert only in (0, 1)
    with pytest.raises(ValueError, match="3 prompts for 2 slot"):
        with table.acquire_batch("planner", ["a", "b", "c"]):
            pass
