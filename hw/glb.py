"""Banked global buffer shared by several read and write clients."""

from amaranth import *
from amaranth.lib import data, memory, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from ..config import require_config

__all__ = ["ReadClient", "WriteClient", "WordFragment", "GlobalBuffer"]


def ReadClient(config):
    """Signature of a read client, seen from the client.

    The client drives ``addr`` (word address) and ``req``; in a cycle where ``grant`` is high the
    request is taken, and ``data`` is valid (``data_valid``) in the following cycle.
    """
    return wiring.Signature({
        "addr": Out(range(config.glb_words)),
        "req": Out(1),
        "grant": In(1),
        "data": In(config.stream_width),
        "data_valid": In(1),
    })


def WriteClient(config):
    """Signature of a write client, seen from the client.

    ``mask`` enables ``data_width``-bit lanes of the word; the write happens in a cycle where
    ``grant`` is high.
    """
    return wiring.Signature({
        "addr": Out(range(config.glb_words)),
        "data": Out(config.stream_width),
        "mask": Out(config.lanes),
        "req": Out(1),
        "grant": In(1),
    })


def WordFragment(config):
    """Consecutive data elements of one buffer word, in their lanes.

    ``data`` holds the values in their ``data_width``-bit lanes (lane ``a mod lanes`` for element
    ``a``); ``mask`` marks the lanes present, a contiguous run; lanes outside ``mask`` are zero.
    ``last`` marks the fragment that ends its job. The RLC paths move values between the stream
    and the buffer as fragments, so they keep pace with a plain WRITE or READ (one buffer word a
    cycle) instead of one value a cycle.
    """
    return data.StructLayout({"data": config.stream_width, "mask": config.lanes, "last": 1})


class GlobalBuffer(wiring.Component):
    """Global buffer: ``glb_banks + glb_filter_banks`` single-read, single-write banks.

    Word addresses run bank after bank; the filter banks come last. Which banks hold ifmaps and
    which hold psums is decided per layer by the addresses the controllers use. In each bank,
    one read and one write happen per cycle; clients that ask for the same bank in the same cycle
    are served in index order (lower index first) and the others retry (a read held back by a
    write of its word, below, still keeps the higher-index reads of its bank waiting). Reads to
    different banks proceed in parallel.

    Latency and back-pressure
    -------------------------
    Read data arrives one cycle after the grant. A write is performed in its grant cycle. A read
    of the word a write requests in the same cycle is not granted (it retries, and returns the
    new data once the write is done), so no bank ever sees a read and a write of one word in
    one cycle: what a RAM
    returns then need not be modelled, and the board builds tell Yosys so (which saves each
    bank's read-during-write bypass: about 150 flip-flops and a word-wide multiplexer).

    Parameters
    ----------
    config : AccelConfig
    read_clients, write_clients : int
        Number of client ports of each kind.

    Attributes
    ----------
    rd : In(ReadClient(config)).array(read_clients)
    wr : In(WriteClient(config)).array(write_clients)
    """

    def __init__(self, config, *, read_clients, write_clients):
        require_config(config)
        for name, value in (("Read clients", read_clients), ("Write clients", write_clients)):
            if not isinstance(value, int) or value < 1:
                raise TypeError(f"{name} must be a positive integer, not {value!r}")
        self._config = config
        super().__init__({
            "rd": In(ReadClient(config)).array(read_clients),
            "wr": In(WriteClient(config)).array(write_clients),
        })

    def elaborate(self, platform):
        cfg = self._config
        m = Module()
        nbanks = cfg.glb_banks + cfg.glb_filter_banks
        offset_bits = ceil_log2(cfg.glb_bank_depth)
        banks = []
        for b in range(nbanks):
            mem = memory.Memory(shape=cfg.stream_width, depth=cfg.glb_bank_depth, init=[])
            m.submodules[f"bank{b}"] = mem
            banks.append((mem.read_port(), mem.write_port(granularity=cfg.data_width)))

        def bank_of(addr):
            return addr[offset_bits:]

        # writes: fixed priority per bank
        for i, client in enumerate(self.wr):
            conflict = Cat(other.req & (bank_of(other.addr) == bank_of(client.addr))
                           for other in self.wr[:i])
            m.d.comb += client.grant.eq(client.req & ~conflict.any() if i else client.req)

        # reads: fixed priority per bank; a read of a word a write asks for waits a cycle
        # (whether that write is granted or not: the write arbitration stays off the path)
        for i, client in enumerate(self.rd):
            conflict = Cat([other.req & (bank_of(other.addr) == bank_of(client.addr))
                            for other in self.rd[:i]]
                           + [writer.req & (writer.addr == client.addr) for writer in self.wr])
            grant = client.req & ~conflict.any()
            m.d.comb += client.grant.eq(grant)
            granted_bank = Signal(range(max(nbanks, 2)), name=f"rd{i}_bank")
            m.d.sync += client.data_valid.eq(grant)
            with m.If(grant):
                m.d.sync += granted_bank.eq(bank_of(client.addr))
            with m.Switch(granted_bank):
                for b, (rd_port, _) in enumerate(banks):
                    with m.Case(b):
                        m.d.comb += client.data.eq(rd_port.data)
        for b, (rd_port, _) in enumerate(banks):
            for client in reversed(self.rd):   # lowest index wins (assigned last)
                with m.If(client.grant & (bank_of(client.addr) == b)):
                    m.d.comb += [rd_port.addr.eq(client.addr[:offset_bits]), rd_port.en.eq(1)]

        for b, (_, wr_port) in enumerate(banks):
            for client in reversed(self.wr):
                with m.If(client.grant & (bank_of(client.addr) == b)):
                    m.d.comb += [wr_port.addr.eq(client.addr[:offset_bits]),
                                 wr_port.data.eq(client.data),
                                 wr_port.en.eq(client.mask)]
        return m
