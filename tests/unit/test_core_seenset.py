"""core.SeenSet (seeding, counting once, retention pruning) and core.latest_per_key."""

from obs_bridges.core import SeenSet, latest_per_key
from tests.support.clock import FakeClock


def test_first_poll_of_a_scope_seeds_without_counting():
    s = SeenSet(retention=3600)
    assert not s.seeded("repo")
    assert s.process("repo", [("a", True, 1.0), ("b", True, 2.0)]) == []
    assert s.seeded("repo") and len(s) == 2
    # the seeded ids are never counted later; a new final one is, once
    assert s.process("repo", [("a", True, 1.0), ("c", True, 3.0)]) == ["c"]
    assert s.process("repo", [("c", True, 3.0)]) == []


def test_seeding_is_per_scope():
    s = SeenSet(retention=3600)
    s.process("one", [("x", True, 1.0)])
    # another scope's first poll seeds too, even though "one" is seeded
    assert s.process("two", [("y", True, 1.0)]) == []
    assert s.process("two", [("z", True, 2.0)]) == ["z"]


def test_an_empty_first_poll_still_seeds_the_scope():
    s = SeenSet(retention=3600)
    assert s.process("p", []) == []
    assert s.seeded("p")
    assert s.process("p", [("new", True, 5.0)]) == ["new"]


def test_in_progress_items_are_counted_when_first_final():
    s = SeenSet(retention=3600)
    # seen in progress during the seeding poll: not recorded, so counted when it completes
    assert s.process("p", [("run", False, 1.0)]) == []
    assert len(s) == 0
    assert s.process("p", [("run", False, 1.0)]) == []
    assert s.process("p", [("run", True, 1.0)]) == ["run"]
    assert s.process("p", [("run", True, 1.0)]) == []


def test_prune_drops_only_ids_older_than_the_retention():
    clock = FakeClock()
    now = clock()
    s = SeenSet(retention=100)
    s.process("p", [("old", True, now - 150), ("edge", True, now - 100), ("young", True, now - 10)])
    s.prune(clock())
    assert len(s) == 2  # "old" left; "edge" is exactly at the cutoff and stays
    # a pruned id that reappears is new again (it had left every look-back window)
    assert s.process("p", [("old", True, now - 150), ("edge", True, now - 100)]) == ["old"]
    clock.advance(85)  # cutoff now - 15: "old" and "edge" (re-added) go, "young" (now - 10) stays
    s.prune(clock())
    assert len(s) == 1
    assert s.process("p", [("young", True, now - 10)]) == []


def test_latest_per_key_first_listed_wins_a_tie_within_a_poll():
    out = latest_per_key({}, [("k", 10.0, "newest-listed"), ("k", 10.0, "second"), ("k", 9.0, "older")])
    assert out == {"k": (10.0, "newest-listed")}


def test_latest_per_key_takes_the_newest_whatever_the_order():
    out = latest_per_key({}, [("k", 5.0, "a"), ("k", 7.0, "b"), ("k", 6.0, "c")])
    assert out["k"] == (7.0, "b")


def test_latest_per_key_keeps_unlisted_keys_and_never_goes_back_in_time():
    prev = {"gone": (1.0, "SUCCESS"), "k": (10.0, "READY")}
    out = latest_per_key(prev, [("k", 9.0, "ERROR")])
    assert out == prev  # older than what is known: ignored; "gone" kept
    out = latest_per_key(prev, [("k", 10.0, "ERROR")])
    assert out["k"] == (10.0, "ERROR")  # same time: the fresh poll's state replaces the old one
    out = latest_per_key(prev, [("k", 11.0, "BUILDING"), ("new", 2.0, "QUEUED")])
    assert out == {"gone": (1.0, "SUCCESS"), "k": (11.0, "BUILDING"), "new": (2.0, "QUEUED")}
    assert prev == {"gone": (1.0, "SUCCESS"), "k": (10.0, "READY")}  # the input is not mutated
