"""Stream drivers for Amaranth-simulator testbenches (``Simulator.add_testbench``).

Both ends insert random idle cycles (source) or back-pressure (sink) drawn from a seeded
``random.Random`` so every run is reproducible.
"""

from amaranth.lib import data

__all__ = ["send_stream", "receive_stream", "run_core", "run_selftest"]


async def send_stream(ctx, port, values, rng, stall=0.0):
    """Send ``values`` on the stream ``port`` (an ``In(stream.Signature)`` of the DUT).

    Before each value, idle for a random number of cycles (probability ``stall`` per cycle). The
    payload and ``valid`` are held until the transfer happens (``lib.stream`` rules).
    """
    # integers are raw bits for structured payloads
    target = port.payload.as_value() if isinstance(port.payload, data.View) else port.payload
    for value in values:
        while stall and rng.random() < stall:
            await ctx.tick()
        ctx.set(target, value)
        ctx.set(port.valid, 1)
        await ctx.tick().until(port.ready)
        ctx.set(port.valid, 0)


async def receive_stream(ctx, port, count, rng, stall=0.0, out=None, max_cycles=None):
    """Receive ``count`` payloads from the stream ``port``, de-asserting ``ready`` at random.

    Values are appended to ``out`` (a list) as they arrive and the list is returned. Gives up
    after ``max_cycles`` cycles (if given), returning what arrived so far, so a hung design ends
    the simulation instead of the test.
    """
    out = [] if out is None else out
    cycles = 0
    while len(out) < count:
        if max_cycles is not None and cycles >= max_cycles:
            break
        cycles += 1
        ready = not (stall and rng.random() < stall)
        ctx.set(port.ready, ready)
        _, _, valid, payload = await ctx.tick().sample(port.valid, port.payload)
        if valid and ready:
            out.append(payload)
    ctx.set(port.ready, 0)
    return out


def run_core(config, words, expect_words, *, stall=0.0, seed=0, max_cycles=100000,
             timeout=5000):
    """Stream ``words`` through :class:`rsaccel.hw.core.AcceleratorCore` under the simulator.

    Random idle/back-pressure cycles with probability ``stall`` on both streams (seeded). Stops
    after ``expect_words`` output words, an error, or ``max_cycles``. Returns the output words
    and ``{"error": CoreError, "counters": {name: value}}``.
    """
    import random
    from amaranth.sim import Simulator
    from ..hw.core import AcceleratorCore, CoreError

    dut = AcceleratorCore(config)
    got = []
    state = {}

    async def feed(ctx):
        ctx.set(dut.timeout, timeout)
        await send_stream(ctx, dut.i, words, random.Random(seed), stall)

    async def collect(ctx):
        rng = random.Random(seed + 1)
        for _ in range(max_cycles // 100):
            await receive_stream(ctx, dut.o, expect_words, rng, stall, out=got, max_cycles=100)
            if len(got) >= expect_words or ctx.get(dut.error) != CoreError.NONE:
                break
        state["error"] = ctx.get(dut.error)
        state["counters"] = {n: ctx.get(dut.counters[n])
                             for n in dut.counters.shape().members}

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(feed, background=True)
    sim.add_testbench(collect)
    sim.run()
    return [int(w.data) for w in got], state


def run_selftest(config, program, *, stall=True, watchdog=4096, max_cycles=50000):
    """Simulate :class:`rsaccel.boards.selftest.SelfTest` until ``done``; return its outputs.

    Returns ``{}`` if it does not finish within ``max_cycles``, else ``cycles`` (after reset),
    ``passed``, ``failed``, ``mismatches`` and ``readback``.
    """
    from amaranth.sim import Simulator
    from ..boards.selftest import SelfTest

    dut = SelfTest(config, program, stall=stall, watchdog=watchdog)
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    result = {}

    async def bench(ctx):
        for cycle in range(max_cycles):
            await ctx.tick()
            if ctx.get(dut.done):
                result.update(cycles=cycle, passed=ctx.get(dut.passed),
                              failed=ctx.get(dut.failed), mismatches=ctx.get(dut.mismatches),
                              readback=ctx.get(dut.readback))
                return

    sim.add_testbench(bench)
    sim.run()
    return result
