"""Stream drivers for Amaranth-simulator testbenches (``Simulator.add_testbench``).

Both ends insert random idle cycles (source) or back-pressure (sink) drawn from a seeded
``random.Random`` so every run is reproducible.
"""

from amaranth.lib import data

__all__ = ["send_stream", "receive_stream", "run_core", "run_selftest", "run_rlc_decoder",
           "rlc_fragments", "run_rlc_encoder"]


async def send_stream(ctx, port, values, rng, stall=0.0, stop=None):
    """Send ``values`` on the stream ``port`` (an ``In(stream.Signature)`` of the DUT).

    Before each value, idle for a random number of cycles (probability ``stall`` per cycle). The
    payload and ``valid`` are held until the transfer happens (``lib.stream`` rules). ``stop``
    (a callable) ends the sending early, at the first cycle it returns true while a value waits:
    for a DUT that may legitimately stop taking input.
    """
    # integers are raw bits for structured payloads
    target = port.payload.as_value() if isinstance(port.payload, data.View) else port.payload
    for value in values:
        while stall and rng.random() < stall:
            await ctx.tick()
        ctx.set(target, value)
        ctx.set(port.valid, 1)
        if stop is None:
            await ctx.tick().until(port.ready)
        else:
            while True:
                _, _, ready = await ctx.tick().sample(port.ready)
                if ready or stop():
                    break
        ctx.set(port.valid, 0)
        if stop is not None and stop():
            return


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


def run_rlc_decoder(config, words, count, *, declared_words=None, first_lane=0, stall=0.0,
                    seed=0, max_cycles=None):
    """Decode ``words`` with :class:`rsaccel.hw.rlc_decoder.RLCDecoder` under the simulator.

    The job declares ``count`` values in ``declared_words`` words (default ``len(words)``), the
    first one for lane ``first_lane``. Random stalls with probability ``stall`` on both streams
    (seeded). Returns ``(values, lasts, error, cycles)``: the values that left (their fragments
    checked by :func:`rsaccel.sim.rlc_cases.fragment_values`) with one ``last`` bit each, the
    decoder's error when it stopped, and the cycles from the job to the end (``None`` if it
    never ended).
    """
    import random
    from amaranth.sim import Simulator
    from ..hw.rlc_decoder import RLCDecoder
    from .rlc_cases import fragment_values

    dut = RLCDecoder(config)
    declared = len(words) if declared_words is None else declared_words
    max_cycles = max_cycles or 20 * (count + len(words)) + 200
    state = {"fragments": [], "cycles": None}
    rng = random.Random(seed)

    async def feed(ctx):
        await send_stream(ctx, dut.job, [count | (declared << 24) | (first_lane << 48)], rng)
        # a rejected stream leaves words untaken: stop once the decoder has ended
        await send_stream(ctx, dut.i, [int(w) for w in words], rng, stall,
                          stop=lambda: state["cycles"] is not None)

    async def collect(ctx):
        sink = random.Random(seed + 1)
        started = False
        for cycle in range(max_cycles):
            ready = not (stall and sink.random() < stall)
            ctx.set(dut.o.ready, ready)
            _, _, valid, payload, busy = await ctx.tick().sample(dut.o.valid, dut.o.payload,
                                                                 dut.busy)
            if valid and ready:
                state["fragments"].append((int(payload.data), int(payload.mask),
                                           int(payload.last)))
            started = started or busy
            if started and not busy:
                state["cycles"] = cycle
                break
        state["error"] = ctx.get(dut.error)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(feed, background=True)
    sim.add_testbench(collect)
    sim.run()
    values, lasts = fragment_values(config, state["fragments"], first_lane)
    return values, lasts, state["error"], state["cycles"]


def rlc_fragments(config, values, *, first_lane=0, rng=None):
    """Cut ``values`` into :func:`~rsaccel.hw.glb.WordFragment` payloads (raw integers).

    The first fragment starts at lane ``first_lane``; fragments follow each other lane after
    lane, wrapping to lane 0 of the next word. Without ``rng`` each one runs to the end of its
    word or of the values (as :class:`~rsaccel.hw.element_reader.ElementReader` sends them);
    with ``rng`` (a ``random.Random``) each one has a random length within its word. Lanes
    outside a fragment's mask are zero; the last fragment has ``last`` set. No values give no
    fragments.
    """
    from ..hw.glb import WordFragment

    layout = WordFragment(config)
    lanes, dw = config.lanes, config.data_width
    lane_mask = (1 << dw) - 1
    data_at, mask_at, last_at = (layout[name].offset for name in ("data", "mask", "last"))
    out = []
    lane, i, n = first_lane % lanes, 0, len(values)
    while i < n:
        size = min(lanes - lane, n - i)
        if rng is not None:
            size = rng.randint(1, size)
        data = mask = 0
        for k in range(size):
            data |= (int(values[i + k]) & lane_mask) << ((lane + k) * dw)
            mask |= 1 << (lane + k)
        i += size
        out.append((data << data_at) | (mask << mask_at) | (int(i == n) << last_at))
        lane = (lane + size) % lanes
    return out


def run_rlc_encoder(config, values, *, first_lane=0, random_cuts=False, stall=0.0, seed=0,
                    max_cycles=None):
    """Encode ``values`` with :class:`rsaccel.hw.rlc_encoder.RLCEncoder` under the simulator.

    The values arrive as word fragments (:func:`rlc_fragments`) from lane ``first_lane``: whole
    words after the first, or, with ``random_cuts``, fragments of random length (seeded).
    Random stalls with probability ``stall`` on both streams (seeded). Returns ``(words,
    cycles, busy)``: the words that left until the one with the last flag, the cycles from the
    job until then (``None`` if no flagged word came within ``max_cycles``), and ``busy`` four
    cycles later.
    """
    import random
    from amaranth.sim import Simulator
    from ..hw.rlc_encoder import RLCEncoder

    dut = RLCEncoder(config)
    flag = 1 << (config.stream_width - 1)
    max_cycles = max_cycles or 20 * len(values) + 200
    state = {"words": [], "cycles": None}
    rng = random.Random(seed)
    fragments = rlc_fragments(config, values, first_lane=first_lane,
                              rng=random.Random(seed + 2) if random_cuts else None)

    async def feed(ctx):
        await send_stream(ctx, dut.job, [len(values)], rng)
        await send_stream(ctx, dut.i, fragments, rng, stall)

    async def collect(ctx):
        sink = random.Random(seed + 1)
        for cycle in range(max_cycles):
            ready = not (stall and sink.random() < stall)
            ctx.set(dut.o.ready, ready)
            _, _, valid, payload = await ctx.tick().sample(dut.o.valid, dut.o.payload)
            if valid and ready:
                state["words"].append(int(payload))
                if int(payload) & flag:
                    state["cycles"] = cycle
                    break
        ctx.set(dut.o.ready, 0)
        for _ in range(4):
            await ctx.tick()
        state["busy"] = ctx.get(dut.busy)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(feed, background=True)
    sim.add_testbench(collect)
    sim.run()
    return state["words"], state["cycles"], state["busy"]
