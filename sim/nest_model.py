"""Golden model of the loop-nest generator and helpers to build descriptors (numpy only)."""

from dataclasses import dataclass, field

__all__ = ["Nest", "nest_points", "NEST_LEVELS", "ADDR_WIDTH"]

NEST_LEVELS = 5
ADDR_WIDTH = 24


@dataclass
class Nest:
    """A loop nest: ``levels`` is a list (innermost first) of ``(count, addr_step, row_step,
    col_step)``; missing levels count 1."""
    base: int = 0
    row: int = 0
    col: int = 0
    levels: list = field(default_factory=list)

    def padded(self):
        if len(self.levels) > NEST_LEVELS:
            raise ValueError(f"A nest has at most {NEST_LEVELS} levels, not {len(self.levels)}")
        return list(self.levels) + [(1, 0, 0, 0)] * (NEST_LEVELS - len(self.levels))

    def as_fields(self, id_width):
        """Field dictionary for ``NestDescriptor(id_width)`` (two's complement strides)."""
        amask, imask = (1 << ADDR_WIDTH) - 1, (1 << id_width) - 1
        return {
            "base": self.base & amask, "row": self.row & imask, "col": self.col & imask,
            "levels": [{"count": n, "addr_step": a & amask, "row_step": r & imask,
                        "col_step": c & imask} for n, a, r, c in self.padded()],
        }

    @property
    def size(self):
        total = 1
        for n, *_ in self.padded():
            total *= n
        return total


def nest_points(nest, id_width):
    """Every ``(addr, row, col)`` of ``nest`` in order, by plain nested loops."""
    amask, imask = (1 << ADDR_WIDTH) - 1, (1 << id_width) - 1
    levels = nest.padded()
    points = []

    def walk(k, addr, row, col):
        if k < 0:
            points.append((addr & amask, row & imask, col & imask))
            return
        n, a, r, c = levels[k]
        for i in range(n):
            walk(k - 1, addr + i * a, row + i * r, col + i * c)

    walk(NEST_LEVELS - 1, nest.base, nest.row, nest.col)
    return points
