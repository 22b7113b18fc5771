"""Eyeriss-style multicast network: delivers a tagged value to every PE whose IDs match."""

from amaranth import *
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["TaggedLayout", "MulticastNetwork"]


def TaggedLayout(id_width, payload_shape):
    """Payload of a global-input-network transfer: ``row`` and ``col`` tags and the ``data``."""
    return data.StructLayout({"row": id_width, "col": id_width, "data": payload_shape})


class MulticastNetwork(wiring.Component):
    """Global input network for one data type over a ``rows x cols`` grid of destinations.

    A value tagged ``(row, col)`` is delivered to every destination ``(r, c)`` that is enabled
    and whose row-bus ID ``row_id[r]`` equals ``row`` and whose column ID ``col_id[r][c]`` equals
    ``col``. IDs are set per layer, so one transfer can reach one PE, a row, a diagonal or the
    whole array.

    Latency and back-pressure
    -------------------------
    Combinational (no added latency). Each destination stream sees ``valid`` for the value until
    it has taken it; a per-destination "delivered" bit remembers who already did, so destinations
    may accept in different cycles and ``valid`` never depends on any ``ready``. The input is
    accepted in the cycle the last outstanding destination takes the value, so nothing is lost or
    duplicated on a stall. A value that matches no destination is accepted and dropped (counted in
    ``dropped``'s pulse so a controller can flag a mapping error).

    Parameters
    ----------
    rows, cols : int
        Grid size.
    id_width : int
        Width of IDs and tags.
    payload_shape : shape-like
        Shape of the value.

    Attributes
    ----------
    i : In(stream.Signature(TaggedLayout(id_width, payload_shape)))
    o : Out(stream.Signature(payload_shape)).array(rows, cols)
    row_id : In(data.ArrayLayout(id_width, rows))
    col_id : In(data.ArrayLayout(data.ArrayLayout(id_width, cols), rows))
    enable : In(data.ArrayLayout(data.ArrayLayout(1, cols), rows))
    dropped : Out(1)
        Pulses when an accepted value had no destination.
    """

    def __init__(self, *, rows, cols, id_width, payload_shape):
        for name, value in (("Rows", rows), ("Cols", cols), ("ID width", id_width)):
            if not isinstance(value, int) or value < 1:
                raise TypeError(f"{name} must be a positive integer, not {value!r}")
        self._rows, self._cols = rows, cols
        super().__init__({
            "i": In(stream.Signature(TaggedLayout(id_width, payload_shape))),
            "o": Out(stream.Signature(payload_shape)).array(rows, cols),
            "row_id": In(data.ArrayLayout(id_width, rows)),
            "col_id": In(data.ArrayLayout(data.ArrayLayout(id_width, cols), rows)),
            "enable": In(data.ArrayLayout(data.ArrayLayout(1, cols), rows)),
            "dropped": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        rows, cols = self._rows, self._cols
        tag = self.i.payload
        pending = []   # destination still has to take the current value
        matches = []
        for r in range(rows):
            row_match = self.row_id[r] == tag.row
            for c in range(cols):
                out = self.o[r][c]
                match = Signal(name=f"match_{r}_{c}")
                delivered = Signal(name=f"delivered_{r}_{c}")
                m.d.comb += [
                    match.eq(self.i.valid & self.enable[r][c] & row_match
                             & (self.col_id[r][c] == tag.col)),
                    out.valid.eq(match & ~delivered),
                    out.payload.eq(tag.data),
                ]
                # still outstanding after this cycle?
                outstanding = Signal(name=f"outstanding_{r}_{c}")
                m.d.comb += outstanding.eq(match & ~delivered & ~out.ready)
                pending.append((outstanding, delivered, out))
                matches.append(match)
        all_taken = Signal()
        m.d.comb += all_taken.eq(~Cat(p[0] for p in pending).any())
        m.d.comb += self.i.ready.eq(all_taken)
        for outstanding, delivered, out in pending:
            with m.If(self.i.valid & all_taken):
                m.d.sync += delivered.eq(0)
            with m.Elif(out.valid & out.ready):
                m.d.sync += delivered.eq(1)
        m.d.comb += self.dropped.eq(self.i.valid & ~Cat(matches).any())
        return m
