"""Stream drivers for Amaranth-simulator testbenches (``Simulator.add_testbench``).

Both ends insert random idle cycles (source) or back-pressure (sink) drawn from a seeded
``random.Random`` so every run is reproducible.
"""

from amaranth.lib import data

__all__ = ["send_stream", "receive_stream", "run_selftest"]


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
