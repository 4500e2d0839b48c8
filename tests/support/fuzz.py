"""Hypothesis helpers shared by the parser fuzz tests: arbitrary JSON, and a sample with one node replaced."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import strategies as st

# Integers past 64 bits too: a big literal must be a ParseError, never an OverflowError.
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-2**70, max_value=2**70) | st.floats(allow_nan=True)
    | st.text(max_size=30),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=12), children, max_size=6),
    max_leaves=30,
)


def node_paths(sample: Any) -> list[list]:
    """The path (keys and indexes) to every node of a JSON sample, the root ([]) first."""
    out: list[list] = []

    def walk(node, path):
        out.append(path)
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, path + [k])
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, path + [i])
    walk(sample, [])
    return out


def mutated(sample: Any, pick: int, value: Any) -> Any:
    """A deep copy of `sample` with node number `pick` (modulo their count) replaced by `value`."""
    sample = copy.deepcopy(sample)
    paths = node_paths(sample)
    path = paths[pick % len(paths)]
    if not path:
        return value
    node = sample
    for k in path[:-1]:
        node = node[k]
    node[path[-1]] = value
    return sample
