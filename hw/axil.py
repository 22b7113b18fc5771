"""AXI4-Lite slave register file: the host's control and status window into the accelerator."""

import keyword

from amaranth import *
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["AXIL_RESP_OKAY", "AXIL_RESP_SLVERR", "REGISTER_ACCESS", "AXILiteRegisters"]

#: AXI ``xRESP`` code of a successful access.
AXIL_RESP_OKAY = 0b00
#: AXI ``xRESP`` code of an access to an unmapped address.
AXIL_RESP_SLVERR = 0b10

#: Register access kinds: read-only input, read/write register, write-1-pulse.
REGISTER_ACCESS = ("ro", "rw", "w1p")

_MAX_REGISTER_WIDTH = 64

# AXI4-Lite slave members: name -> (direction, width).
_AXIL_PORTS = {
    "awaddr": (In, None), "awprot": (In, 3), "awvalid": (In, 1), "awready": (Out, 1),
    "wdata": (In, 32), "wstrb": (In, 4), "wvalid": (In, 1), "wready": (Out, 1),
    "bresp": (Out, 2), "bvalid": (Out, 1), "bready": (In, 1),
    "araddr": (In, None), "arprot": (In, 3), "arvalid": (In, 1), "arready": (Out, 1),
    "rdata": (Out, 32), "rresp": (Out, 2), "rvalid": (Out, 1), "rready": (In, 1),
}


class AXILiteRegisters(wiring.Component):
    """AXI4-Lite slave register file with a 32-bit data bus.

    Registers are laid out consecutively at 4-byte-aligned byte offsets starting at 0, in the
    order given. A register wider than 32 bits occupies two consecutive words, low word first.
    :attr:`register_map` lists the layout (for manifests and C headers).

    Access kinds
    ------------
    - ``"ro"``: read-only; the value comes from the input port named after the register. Writes
      are ignored with an OKAY response. Reading the low word of a register wider than 32 bits
      latches its high word, and reading the high word returns the latched value, so a counter
      read low word first, then high word, is read atomically (the high word of such a register
      read without a preceding low-word read returns whatever was latched last, 0 after reset).
    - ``"rw"``: a register held here (reset value 0) and driven on the output port named after
      it. ``wstrb`` is honoured per byte; bits beyond the register's width are dropped and read
      as 0. The two words of a register wider than 32 bits are written independently.
    - ``"w1p"``: write-1-pulse; a write drives the written bits (bytes enabled by ``wstrb`` only)
      on the output port named after the register for exactly one cycle; the port is 0 otherwise.
      Reads return 0.

    Addresses are decoded by word (``addr[2:]``); the low two address bits are ignored.
    ``awprot`` and ``arprot`` are ignored. A read of a word no register occupies returns 0 with
    SLVERR (``rresp = 0b10``); a write to one changes nothing and answers SLVERR.

    Latency and back-pressure
    -------------------------
    AW and W are independent: each is accepted into a one-entry holding register whenever that
    register is empty (``awready``/``wready`` are low while it is full), in either order or in the
    same cycle. One clock edge after both hold a beat (and the B channel is free, or its response
    is being accepted in that cycle), the write lands: ``rw`` outputs change, a ``w1p`` pulse is
    driven, and ``bvalid`` rises, all visible in the same cycle, and both holding registers
    empty. So with AW and W accepted on the same edge, the write lands one cycle later, and
    back-to-back writes take two cycles each when B is accepted at once. ``bvalid`` and ``bresp``
    are held until ``bready``.

    ``arready`` is high while no read response is pending; the AR handshake edge itself loads
    ``rdata`` and ``rresp`` and raises ``rvalid`` (visible in the next cycle), which holds until
    ``rready``; ``arready`` returns the cycle after the R handshake, so one read is outstanding
    at a time and back-to-back reads take two cycles each. A ``"ro"`` value is sampled on the AR
    handshake edge. Read and write channels are independent. No output depends combinationally
    on any input. The ``sync`` domain (``clk``, active-high ``rst``) clocks everything.

    Parameters
    ----------
    addr_width : int
        Width of ``awaddr`` and ``araddr`` (2 to 32); the register map must fit in
        ``2**addr_width`` bytes.
    registers : list of (str, str, int)
        ``(name, access, width)`` per register: ``name`` a Python identifier that names its port,
        ``access`` one of ``"ro"``, ``"rw"``, ``"w1p"``, ``width`` from 1 to 64.

    Attributes
    ----------
    s_axil_awaddr, s_axil_awprot, s_axil_awvalid, s_axil_awready : AXI4-Lite write address
    s_axil_wdata, s_axil_wstrb, s_axil_wvalid, s_axil_wready : AXI4-Lite write data (32 bits)
    s_axil_bresp, s_axil_bvalid, s_axil_bready : AXI4-Lite write response
    s_axil_araddr, s_axil_arprot, s_axil_arvalid, s_axil_arready : AXI4-Lite read address
    s_axil_rdata, s_axil_rresp, s_axil_rvalid, s_axil_rready : AXI4-Lite read data
    <name> : In(width) for ``"ro"`` registers, Out(width) for ``"rw"`` and ``"w1p"`` registers

    Raises
    ------
    TypeError
        If ``addr_width`` is not an integer, ``registers`` not a list or tuple of 3-tuples, or a
        name, access or width has the wrong type.
    ValueError
        If ``addr_width`` is out of range, a name is not an identifier, is reserved or repeated,
        an access kind is unknown, a width is outside 1 to 64, or the map does not fit in
        ``addr_width``.
    """

    def __init__(self, *, addr_width=12, registers):
        if not isinstance(addr_width, int) or isinstance(addr_width, bool):
            raise TypeError(f"Address width must be an integer, not {addr_width!r}")
        if not 2 <= addr_width <= 32:
            raise ValueError(f"Address width must be between 2 and 32, not {addr_width}")
        if not isinstance(registers, (list, tuple)):
            raise TypeError(f"Registers must be a list of (name, access, width) tuples, "
                            f"not {registers!r}")
        if not registers:
            raise ValueError("Registers must list at least one register")
        reserved = {"clk", "rst"}
        entries = []
        offset = 0
        for entry in registers:
            if not isinstance(entry, (list, tuple)) or len(entry) != 3:
                raise TypeError(f"Register must be a (name, access, width) tuple, not {entry!r}")
            name, access, width = entry
            if not isinstance(name, str):
                raise TypeError(f"Register name must be a string, not {name!r}")
            if (not name.isidentifier() or keyword.iskeyword(name) or name.startswith("_")
                    or not name.isascii()):
                raise ValueError(f"Register name must be an ASCII identifier not starting with "
                                 f"'_', not {name!r}")
            if (name in reserved or name.startswith("s_axil_")
                    or hasattr(AXILiteRegisters, name)):
                raise ValueError(f"Register name {name!r} is reserved")
            if any(e["name"] == name for e in entries):
                raise ValueError(f"Register name {name!r} is used more than once")
            if not isinstance(access, str):
                raise TypeError(f"Register access must be a string, not {access!r}")
            if access not in REGISTER_ACCESS:
                raise ValueError(f"Register access must be one of {', '.join(REGISTER_ACCESS)}, "
                                 f"not {access!r}")
            if not isinstance(width, int) or isinstance(width, bool):
                raise TypeError(f"Register width must be an integer, not {width!r}")
            if not 1 <= width <= _MAX_REGISTER_WIDTH:
                raise ValueError(f"Register width must be between 1 and {_MAX_REGISTER_WIDTH}, "
                                 f"not {width}")
            entries.append({"name": name, "offset": offset, "access": access, "width": width})
            offset += 4 * ((width + 31) // 32)
        if offset > 2 ** addr_width:
            raise ValueError(f"Register map needs {offset} bytes, more than the {2 ** addr_width} "
                             f"an address width of {addr_width} reaches")
        self._addr_width = addr_width
        self._registers = entries
        self._map_bytes = offset

        members = {}
        for port, (direction, width) in _AXIL_PORTS.items():
            members[f"s_axil_{port}"] = direction(addr_width if width is None else width)
        for entry in entries:
            direction = In if entry["access"] == "ro" else Out
            members[entry["name"]] = direction(entry["width"])
        super().__init__(members)

    @property
    def addr_width(self):
        return self._addr_width

    @property
    def register_map(self):
        """Layout of the registers: a list of ``{"name", "offset", "access", "width"}`` dicts.

        ``offset`` is the byte address of the register's (low) word; registers wider than 32
        bits also occupy the word at ``offset + 4``. A fresh list each time.
        """
        return [dict(entry) for entry in self._registers]

    @property
    def map_bytes(self):
        """Bytes the register map occupies (4 per word)."""
        return self._map_bytes

    def elaborate(self, platform):
        m = Module()
        word_w = self._addr_width - 2

        # --- write channel ------------------------------------------------------------------
        aw_full = Signal()
        aw_word = Signal(word_w)
        w_full = Signal()
        w_data = Signal(32)
        w_strb = Signal(4)
        bvalid = Signal()
        bresp = Signal(2)

        m.d.comb += [
            self.s_axil_awready.eq(~aw_full),
            self.s_axil_wready.eq(~w_full),
            self.s_axil_bvalid.eq(bvalid),
            self.s_axil_bresp.eq(bresp),
        ]
        with m.If(self.s_axil_awvalid & ~aw_full):
            m.d.sync += [aw_full.eq(1), aw_word.eq(self.s_axil_awaddr[2:])]
        with m.If(self.s_axil_wvalid & ~w_full):
            m.d.sync += [w_full.eq(1), w_data.eq(self.s_axil_wdata), w_strb.eq(self.s_axil_wstrb)]

        do_write = Signal()
        m.d.comb += do_write.eq(aw_full & w_full & (~bvalid | self.s_axil_bready))
        with m.If(do_write):
            m.d.sync += [aw_full.eq(0), w_full.eq(0), bvalid.eq(1)]
        with m.Elif(self.s_axil_bready):
            m.d.sync += bvalid.eq(0)

        # byte mask of the held write data
        w_mask = Cat(w_strb[i].replicate(8) for i in range(4))

        # --- read channel -------------------------------------------------------------------
        rvalid = Signal()
        rdata = Signal(32)
        rresp = Signal(2)
        m.d.comb += [
            self.s_axil_arready.eq(~rvalid),
            self.s_axil_rvalid.eq(rvalid),
            self.s_axil_rdata.eq(rdata),
            self.s_axil_rresp.eq(rresp),
        ]
        ar_take = Signal()
        m.d.comb += ar_take.eq(self.s_axil_arvalid & ~rvalid)
        ar_word = self.s_axil_araddr[2:]
        with m.If(ar_take):
            m.d.sync += rvalid.eq(1)
        with m.Elif(self.s_axil_rready):
            m.d.sync += rvalid.eq(0)

        # --- per-register logic -------------------------------------------------------------
        write_hits = []
        read_cases = []            # (word index, value for rdata)
        for entry in self._registers:
            name, access, width = entry["name"], entry["access"], entry["width"]
            port = getattr(self, name)
            base = entry["offset"] // 4
            words = (width + 31) // 32
            hit_words = []
            for k in range(words):
                hit = Signal(name=f"{name}_wr_hit{k}")
                m.d.comb += hit.eq(do_write & (aw_word == base + k))
                hit_words.append(hit)
            write_hits += hit_words

            if access == "rw":
                reg = Signal(width, name=f"{name}_reg")
                m.d.comb += port.eq(reg)
                for k, hit in enumerate(hit_words):
                    lo, hi = 32 * k, min(32 * (k + 1), width)
                    part = reg[lo:hi]
                    with m.If(hit):
                        m.d.sync += part.eq((part & ~w_mask[:hi - lo]) |
                                            (w_data[:hi - lo] & w_mask[:hi - lo]))
                    read_cases.append((base + k, part))
            elif access == "w1p":
                pulse = Signal(width, name=f"{name}_pulse")
                m.d.comb += port.eq(pulse)
                m.d.sync += pulse.eq(0)
                for k, hit in enumerate(hit_words):
                    lo, hi = 32 * k, min(32 * (k + 1), width)
                    with m.If(hit):
                        m.d.sync += pulse[lo:hi].eq(w_data[:hi - lo] & w_mask[:hi - lo])
                    read_cases.append((base + k, C(0, 32)))
            else:  # "ro"
                read_cases.append((base, port[:min(32, width)]))
                if words == 2:
                    high = Signal(width - 32, name=f"{name}_high")
                    with m.If(ar_take & (ar_word == base)):
                        m.d.sync += high.eq(port[32:])
                    read_cases.append((base + 1, high))

        mapped_write = Signal()
        m.d.comb += mapped_write.eq(Cat(write_hits).any())
        with m.If(do_write):
            m.d.sync += bresp.eq(Mux(mapped_write, AXIL_RESP_OKAY, AXIL_RESP_SLVERR))

        with m.If(ar_take):
            with m.Switch(ar_word):
                for word, value in read_cases:
                    with m.Case(word):
                        m.d.sync += [rdata.eq(value), rresp.eq(AXIL_RESP_OKAY)]
                with m.Default():
                    m.d.sync += [rdata.eq(0), rresp.eq(AXIL_RESP_SLVERR)]

        return m
