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

    def jumps(self):
        """Per level (innermost first), ``(addr, row, col)`` added to the point when that level
        advances and the levels below it start over: its stride minus what the levels below
        have added, ``step_k - sum_{j<k} (count_j - 1) * step_j``."""
        rewound = [0, 0, 0]      # what the levels below have added at their last point
        out = []
        for n, *steps in self.padded():
            out.append(tuple(step - back for step, back in zip(steps, rewound)))
            rewound = [back + max(n - 1, 0) * step for back, step in zip(rewound, steps)]
        return out

    def as_fields(self, id_width):
        """Field dictionary for ``NestDescriptor(id_width)`` (counts and two's complement
        jumps, see :meth:`jumps`)."""
        amask, imask = (1 << ADDR_WIDTH) - 1, (1 << id_width) - 1
        return {
            "base": self.base & amask, "row": self.row & imask, "col": self.col & imask,
            "levels": [{"count": n, "addr_jump": a & amask, "row_jump": r & imask,
                        "col_jump": c & imask}
                       for (n, *_), (a, r, c) in zip(self.padded(), self.jumps())],
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
