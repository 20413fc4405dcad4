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
    """Two trajectories hold the two slots; a batch brings a new trajectory first and B's next step second. The
    new one shares more with B's cached prompt than with A's; together, B keeps its slot and the new one takes A's."""
    table = SlotTable(["planner"], lanes=2)
    a_1, b_1 = "apis: x, y. history: A1", "apis: search, z. history: B1 and a long history of B"
    with table.acquire_batch("planner", [a_1, b_1]) as (a, b):
        assert {a, b} == {0, 1}
    new, b_next = "apis: search, z. history: C1", b_1 + " B2"
    with table.acquire_batch("planner", [new, b_next]) as (got_new, got_b):
        assert got_b == b and got_new == a
    with table.acquire_batch("planner", ["p"]) as (only,):
        assert only in (0, 1)
    with pytest.raises(ValueError, match="3 prompts for 2 slot"):
        with table.acquire_batch("planner", ["a", "b", "c"]):
            pass


def test_a_shared_header_alone_does_not_take_a_conversations_slot() -> None:
    """Every α-UMi prompt opens with the same system text. A new trajectory sharing only that with a slot's cached
    conversation takes an unused slot (or the coldest), one call at a time as in a batch; a prompt going on from
    the cached one takes its slot again. Before, any shared character won: with 4 lanes every caller turn of four
    trajectories took the one slot holding the header, and the three others stayed empty."""
    header = "System: you are a tool-using agent with these APIs: "

    def trajectory(name: str) -> str:  # its tool documents and history: most of a real prompt
        return header + f"{name}'s tool documents and history. " * 8

    table = SlotTable(["caller"], lanes=4)
    with table.acquire("caller", trajectory("A")) as a:
        pass
    with table.acquire("caller", trajectory("B")) as b:
        assert b != a
    with table.acquire_batch("caller", [trajectory("C"), trajectory("D")]) as (c, d):
        assert len({a, b, c, d}) == 4
    with table.acquire("caller", trajectory("A") + "Then step 2.") as again:
        assert again == a
