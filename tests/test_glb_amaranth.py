"""The global buffer under the Amaranth simulator: random reads and writes against a reference
memory, with many attempts to read the word being written in the same cycle."""

import random

import pytest
from amaranth.sim import Simulator

from rsaccel import preset
from rsaccel.hw.glb import GlobalBuffer

CONFIG = preset("tiny").replace(glb_banks=2, glb_bank_depth=16, glb_filter_banks=1)


@pytest.mark.parametrize("seed", [1, 2])
def test_reads_never_meet_a_write_of_their_word_and_return_the_memory(seed):
    cfg = CONFIG
    dut = GlobalBuffer(cfg, read_clients=3, write_clients=2)
    rng = random.Random(seed)
    # a few hot words in every bank, so that reads and writes of one word often coincide
    hot = [bank * cfg.glb_bank_depth + offset for bank in range(3) for offset in (0, 5)]
    memory = {}                 # word -> value, as the reference memory holds it
    stats = {"reads": 0, "writes": 0, "held_back": 0, "longest_wait": [0, 0, 0]}

    def lanes_written(old, data, mask):
        out = old
        for lane in range(cfg.lanes):
            if mask >> lane & 1:
                field = ((1 << cfg.data_width) - 1) << (lane * cfg.data_width)
                out = (out & ~field) | (data & field)
        return out

    async def testbench(ctx):
        # first fill every hot word, so every read has a defined value to return
        for addr in hot:
            ctx.set(dut.wr[0].addr, addr)
            ctx.set(dut.wr[0].data, rng.getrandbits(cfg.stream_width))
            ctx.set(dut.wr[0].mask, (1 << cfg.lanes) - 1)
            ctx.set(dut.wr[0].req, 1)
            assert ctx.get(dut.wr[0].grant)
            memory[addr] = ctx.get(dut.wr[0].data)
            await ctx.tick()
        ctx.set(dut.wr[0].req, 0)
        reads = [None] * len(dut.rd)       # address each read client asks for (held until granted)
        waited = [0] * len(dut.rd)
        expected = [None] * len(dut.rd)    # value a read granted last cycle must return
        for _ in range(1500):
            for i, client in enumerate(dut.rd):
                if reads[i] is None and rng.random() < 0.7:
                    reads[i] = rng.choice(hot)
                ctx.set(client.req, reads[i] is not None)
                ctx.set(client.addr, reads[i] or 0)
            writes = []
            for client in dut.wr:
                want = rng.random() < 0.6
                addr, data = rng.choice(hot), rng.getrandbits(cfg.stream_width)
                mask = rng.getrandbits(cfg.lanes)
                ctx.set(client.req, want)
                ctx.set(client.addr, addr)
                ctx.set(client.data, data)
                ctx.set(client.mask, mask)
                writes.append((want, addr, data, mask))
            # this cycle's grants (combinational)
            written = {}
            for client, (want, addr, data, mask) in zip(dut.wr, writes):
                if ctx.get(client.grant):
                    assert want and addr not in written, "two writes of one word granted"
                    written[addr] = (data, mask)
            granted = []
            for i, client in enumerate(dut.rd):
                if ctx.get(client.grant):
                    assert reads[i] is not None
                    assert reads[i] not in written, "a read granted beside a write of its word"
                    granted.append(i)
                elif reads[i] in written:
                    stats["held_back"] += 1
            for i in range(len(dut.rd)):
                if i in granted:
                    expected[i] = memory[reads[i]]
                    reads[i] = None
                    waited[i] = 0
                elif reads[i] is not None:
                    waited[i] += 1
                    stats["longest_wait"][i] = max(stats["longest_wait"][i], waited[i])
            for addr, (data, mask) in written.items():
                memory[addr] = lanes_written(memory[addr], data, mask)
            stats["writes"] += len(written)
            await ctx.tick()
            for i, client in enumerate(dut.rd):
                assert ctx.get(client.data_valid) == (i in granted)
                if i in granted:
                    assert ctx.get(client.data) == expected[i], f"read client {i}"
                    stats["reads"] += 1
        # no read waited long: a held-back read goes through once the write has moved on
        assert max(stats["longest_wait"]) < 30, stats

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(testbench)
    sim.run()
    # the test exercised what it is about: many reads, writes, and reads held back a cycle
    assert stats["reads"] > 1000 and stats["writes"] > 1000, stats
    assert stats["held_back"] > 50, stats
