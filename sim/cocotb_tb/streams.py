"""cocotb drivers for ``amaranth.lib.stream`` ports (``<name>__valid/ready/payload``).

Sources insert random idle cycles and sinks random back-pressure, from a seeded
``random.Random``. Handshakes are sampled in the read-only phase before the clock edge, so a
transfer is counted exactly when the DUT sees ``valid & ready`` at the edge.
"""

from cocotb.triggers import ReadOnly, RisingEdge

__all__ = ["StreamSource", "StreamSink"]


class StreamSource:
    """Drives an input stream of the DUT.

    Parameters
    ----------
    dut : cocotb handle of the top level
    name : str
        Stream port prefix, e.g. ``"ifmap"``.
    clk : cocotb handle of the clock
    rng : random.Random
    stall : float
        Probability of an idle cycle before each value.
    """

    def __init__(self, dut, name, clk, rng, stall=0.0):
        self.valid = getattr(dut, f"{name}__valid")
        self.ready = getattr(dut, f"{name}__ready")
        self.payload = getattr(dut, f"{name}__payload")
        self.mask = (1 << len(self.payload)) - 1
        self.payload.value = 0
        self.clk = clk
        self.rng = rng
        self.stall = stall
        self.valid.value = 0

    async def send(self, values):
        """Send every value (ints, two's complement for negatives); return when all transferred."""
        for value in values:
            while self.stall and self.rng.random() < self.stall:
                await RisingEdge(self.clk)
            self.payload.value = int(value) & self.mask
            self.valid.value = 1
            while True:
                await ReadOnly()
                transferred = bool(self.ready.value)
                await RisingEdge(self.clk)
                if transferred:
                    break
            self.valid.value = 0


class StreamSink:
    """Receives an output stream of the DUT with random back-pressure."""

    def __init__(self, dut, name, clk, rng, stall=0.0, signed=True):
        self.valid = getattr(dut, f"{name}__valid")
        self.ready = getattr(dut, f"{name}__ready")
        self.payload = getattr(dut, f"{name}__payload")
        self.clk = clk
        self.rng = rng
        self.stall = stall
        self.signed = signed
        self.ready.value = 0

    async def receive(self, count, max_cycles):
        """Collect ``count`` values; stop after ``max_cycles`` cycles and return what arrived."""
        if count == 0:
            return []
        received = 0

        def enough(_):
            nonlocal received
            received += 1
            return received == count
        return await self.receive_until(enough, max_cycles)

    async def receive_until(self, done, max_cycles, stop=None):
        """Collect values until one satisfies ``done(value)``, ``stop()`` turns true (checked
        after each cycle's transfer) or ``max_cycles`` pass; return what arrived."""
        out = []
        for _ in range(max_cycles):
            ready = not (self.stall and self.rng.random() < self.stall)
            self.ready.value = int(ready)
            await ReadOnly()
            if ready and self.valid.value:
                value = self.payload.value
                out.append(value.to_signed() if self.signed else value.to_unsigned())
                if done(out[-1]):
                    await RisingEdge(self.clk)
                    break
            if stop is not None and stop():
                await RisingEdge(self.clk)
                break
            await RisingEdge(self.clk)
        self.ready.value = 0
        return out
