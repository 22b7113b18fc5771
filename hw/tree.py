"""Balanced reduction trees for wide combinational reductions."""

__all__ = ["balanced"]


def balanced(values, combine):
    """Reduce ``values`` with ``combine(a, b)`` as a balanced binary tree of pairwise steps.

    The pairs are taken in order, ``combine(values[0], values[1])`` first, so an
    order-dependent ``combine`` (a priority choice) keeps the lowest index on the left. The
    depth is ``ceil(log2(len(values)))`` steps instead of a chain's ``len(values) - 1``: what
    keeps an array-wide OR, sum or choice off the critical path as the array grows.
    """
    values = list(values)
    if not values:
        raise ValueError("balanced() needs at least one value")
    while len(values) > 1:
        values = [combine(values[k], values[k + 1]) if k + 1 < len(values) else values[k]
                  for k in range(0, len(values), 2)]
    return values[0]
