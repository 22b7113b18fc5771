"""Balanced reduction trees for wide combinational reductions."""

from amaranth import Mux, Value

__all__ = ["balanced", "shift_add_product"]


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


def shift_add_product(a, b):
    """``a * b`` for unsigned values as a balanced sum of ``len(b)`` shifted copies of ``a``.

    For the narrow products of control logic (a few bits by a few bits): FPGA synthesis maps a
    ``*`` of any width onto a DSP multiplier, whose combinational delay (about 3.9 ns on ECP5,
    plus the routing to and from the block) exceeds that of a few LUT levels and a short
    carry chain. The result is ``len(a) + len(b)`` bits wide, so it never wraps. Put the
    narrower operand in ``b``.
    """
    a, b = Value.cast(a), Value.cast(b)
    if a.shape().signed or b.shape().signed:
        raise TypeError("shift_add_product() takes unsigned values")
    width = len(a) + len(b)
    terms = [Mux(b[i], a << i, 0) for i in range(len(b))]
    if not terms:
        return Value.cast(0)
    return balanced(terms, lambda x, y: x + y)[:width]
