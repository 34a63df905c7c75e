"""``fast``: iterative stratification (Sechidis, Tsoumakas, Vlahavas 2011) for target ratios directly.

The algorithm: while labelled examples remain, take the label with the fewest remaining examples; give each
of its examples to the split that most wants that label (ties: the split that wants the most examples,
then a random priority), and update every split's wants.  This module computes the same greedy choices in
bulk instead of one example at a time:

* desired counts are exact integers: ratio ``r_j`` is written ``w_j / K`` (``0.6/0.2/0.2`` -> ``3/5, 1/5,
  1/5``), so a split's want for label ``l`` is ``count_l * w_j`` and each assignment takes ``K`` off it;
* inside one label step only that label's wants and the split sizes steer the choices, so the sequence of
  chosen splits is computed first, in runs ("split j wins the next n examples") and whole rounds ("the open
  splits take one each, in this order, R times"), then handed to the step's examples in shuffled order;
* the other labels' wants are updated once per step with one matrix sum.

Ties are broken deterministically: the rarest label is the one with the fewest remaining examples, then the
lowest label index; between splits, the larger label want, then the larger remaining size, then a random
priority permutation drawn from the seed at each label step.  Example order is a seeded shuffle.

One deliberate change from the paper: a split that has reached its target size is closed, so split sizes
equal the targets exactly (largest-remainder rounding); iterstrat's 5-fold merge drifted by up to 150 rows on
the real reBEN labels (``bench/split.py``).
Examples with no label fill the remaining room of each split.
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction

import numpy as np

from . import target_sizes


def integer_weights(ratios: Sequence[float], max_denominator: int = 1_000_000) -> tuple[list[int], int]:
    """``ratios`` as integer weights over a common denominator: (0.6, 0.2, 0.2) -> ([3, 1, 1], 5)."""
    fractions = [Fraction(r).limit_denominator(max_denominator) for r in ratios]
    denominator = int(np.lcm.reduce([f.denominator for f in fractions]))
    return [int(f * denominator) for f in fractions], denominator


def _key(D: list[int], t: list[int], p: list[int], j: int) -> tuple[int, int, int]:
    return (D[j], t[j], p[j])


def _run_length(D: list[int], t: list[int], p: list[int], K: int, best: int, other: int) -> int:
    """How many consecutive examples ``best`` wins against ``other`` (at least 1)."""
    gap = D[best] - D[other]
    runs = -(-gap // K) if gap > 0 else 0
    if gap >= 0 and gap % K == 0 and (t[best] - gap // K, p[best]) > (t[other], p[other]):
        runs += 1
    return max(runs, 1)


def _stable_round(D: list[int], t: list[int], p: list[int], K: int, order: list[int]) -> bool:
    """Whether one example each, in ``order``, is what the greedy does and leaves the same order."""
    d, s = list(D), list(t)
    for j in order:
        if max(order, key=lambda i: (d[i], s[i], p[i])) != j:
            return False
        d[j] -= K
        s[j] -= 1
    return sorted(order, key=lambda i: (d[i], s[i], p[i]), reverse=True) == order


def label_step_choices(D: list[int], t: list[int], p: list[int], K: int, m: int) -> np.ndarray:
    """The splits chosen, in order, for ``m`` examples of one label; updates ``D`` and ``t`` in place."""
    parts: list[np.ndarray] = []
    while m > 0:
        order = sorted((j for j in range(len(t)) if t[j] > 0), key=lambda j: _key(D, t, p, j), reverse=True)
        if len(order) > 1 and m >= len(order) and _stable_round(D, t, p, K, order):
            rounds = min(m // len(order), min(t[j] for j in order))
            parts.append(np.tile(np.asarray(order, dtype=np.int8), rounds))
            for j in order:
                D[j] -= K * rounds
                t[j] -= rounds
            m -= rounds * len(order)
            continue
        best = order[0]
        take = min(m, t[best], min((_run_length(D, t, p, K, best, o) for o in order[1:]), default=m))
        parts.append(np.full(take, best, dtype=np.int8))
        D[best] -= K * take
        t[best] -= take
        m -= take
    return np.concatenate(parts) if parts else np.empty(0, dtype=np.int8)


def fast_split(Y: np.ndarray, ratios: Sequence[float], seed: int) -> np.ndarray:
    """Iterative stratification of a boolean ``(n, q)`` label matrix into ``len(ratios)`` splits."""
    n = Y.shape[0]
    rng = np.random.default_rng(seed)
    weights, K = integer_weights(ratios)
    k = len(weights)
    order = rng.permutation(n)
    Ys = np.ascontiguousarray(Y[order], dtype=bool)
    counts = Ys.sum(axis=0).astype(np.int64)
    wants = counts[:, None] * np.asarray(weights, dtype=np.int64)[None, :]  # (q, k), in units of 1/K
    room = target_sizes(n, ratios).astype(np.int64).tolist()
    out = np.full(n, -1, dtype=np.int8)
    remaining = counts.copy()
    free = np.ones(n, dtype=bool)
    while True:
        candidates = np.flatnonzero(remaining > 0)
        if not len(candidates):
            break
        label = int(candidates[np.argmin(remaining[candidates])])
        rows = np.flatnonzero(free & Ys[:, label])
        D = wants[label].tolist()
        priority = rng.permutation(k).tolist()
        choice = label_step_choices(D, room, priority, K, len(rows))
        out[rows] = choice
        free[rows] = False
        block = Ys[rows]
        remaining -= block.sum(axis=0)
        for j in range(k):
            wants[:, j] -= K * block[choice == j].sum(axis=0)
    rest = np.flatnonzero(free)
    out[rest] = np.repeat(np.arange(k, dtype=np.int8), room)[: len(rest)]
    result = np.empty(n, dtype=np.int8)
    result[order] = out
    return result
