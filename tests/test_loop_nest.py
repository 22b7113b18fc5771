"""The loop-nest generator against plain nested loops, with back-pressure."""

import random

import pytest
from amaranth.sim import Simulator
from hypothesis import assume, given, settings, strategies as st

from rsaccel.hw.loop_nest import LoopNest, NestDescriptor
from rsaccel.sim.amaranth_tb import receive_stream, send_stream
from rsaccel.sim.nest_model import Nest, nest_points

IDW = 6


def run_nests(nests, *, stall=0.3, seed=0, **widths):
    dut = LoopNest(id_width=IDW, **widths)
    layout = NestDescriptor(IDW)
    rng = random.Random(seed)
    total = sum(n.size for n in nests)
    got = []

    async def feed(ctx):
        await send_stream(ctx, dut.desc, [layout.const(n.as_fields(IDW)).as_bits()
                                          for n in nests], rng, stall)

    async def collect(ctx):
        await receive_stream(ctx, dut.o, total, rng, stall, out=got, max_cycles=20 * total + 200)
        for _ in range(5):
            await ctx.tick()
        assert not ctx.get(dut.busy)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(feed, background=True)
    sim.add_testbench(collect)
    sim.run()
    return [(int(p.addr), int(p.row), int(p.col), int(p.last)) for p in got]


def expected(nests):
    out = []
    for n in nests:
        pts = nest_points(n, IDW)
        out += [(a, r, c, int(i == len(pts) - 1)) for i, (a, r, c) in enumerate(pts)]
    return out


level = st.tuples(st.integers(1, 4), st.integers(-50, 50), st.integers(-3, 3),
                  st.integers(-3, 3))
nest = st.builds(Nest, base=st.integers(0, 1000), row=st.integers(0, 63), col=st.integers(0, 63),
                 levels=st.lists(level, min_size=0, max_size=5))


@settings(max_examples=25, deadline=None)
@given(st.lists(nest, min_size=1, max_size=3), st.integers(0, 2**16))
def test_random_nests(nests, seed):
    assert run_nests(nests, seed=seed) == expected(nests)


def test_ifmap_sweep_shape():
    # for x < 5: for h < 4: for c < 2 -> addr c*20 + h*5 + x, col tag h
    n = Nest(base=100, levels=[(2, 20, 0, 0), (4, 5, 0, 1), (5, 1, 0, 0)])
    got = run_nests([n], stall=0.0)
    assert [g[:3] for g in got[:4]] == [(100, 0, 0), (120, 0, 0), (105, 0, 1), (125, 0, 1)]
    assert len(got) == 40 and got[-1] == (100 + 20 + 15 + 4, 0, 3, 1)


def test_empty_nest_produces_nothing():
    empty = Nest(levels=[(3, 1, 0, 0), (0, 1, 0, 0)])
    full = Nest(base=7, levels=[(2, 1, 0, 0)])
    assert run_nests([empty, full], stall=0.0) == [(7, 0, 0, 0), (8, 0, 0, 1)]


@settings(max_examples=15, deadline=None)
@given(st.lists(nest, min_size=1, max_size=3), st.integers(0, 2**16))
def test_narrow_nests_are_exact_for_points_in_range(nests, seed):
    """With 11 address bits kept inside, nests whose points lie in [0, 2**11) are unchanged
    (negative strides included: the arithmetic wraps modulo 2**11)."""
    nests = [n for n in nests if all(0 <= a < 2048 for a, _, _ in nest_points(n, IDW))]
    assume(nests)
    assert run_nests(nests, seed=seed, addr_width=11, count_width=3) == expected(nests)


def test_narrow_count_is_taken_modulo():
    # count 9 with 3 count bits is 1
    n = Nest(base=5, levels=[(9, 1, 0, 0)])
    assert run_nests([n], stall=0.0, count_width=3) == [(5, 0, 0, 1)]


@pytest.mark.parametrize("kwargs, error, message", [
    ({"addr_width": 0}, ValueError, "Address width must be between 1 and 24, not 0"),
    ({"addr_width": 25}, ValueError, "Address width must be between 1 and 24, not 25"),
    ({"count_width": 17}, ValueError, "Count width must be between 1 and 16, not 17"),
    ({"count_width": "8"}, TypeError, "Count width must be an integer, not '8'"),
])
def test_init_wrong_widths(kwargs, error, message):
    with pytest.raises(error, match=message):
        LoopNest(id_width=IDW, **kwargs)
