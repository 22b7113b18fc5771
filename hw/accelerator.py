"""Top level: the accelerator core behind AXI4-Stream, AXI4-Lite and an interrupt."""

from amaranth import *
from amaranth.hdl import ResetInserter
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..config import require_config
from .axil import AXILiteRegisters
from .core import CORE_COUNTER_NAMES, STREAM_FORMAT_VERSION, AcceleratorCore

__all__ = ["HARDWARE_PARAMETERS", "STATUS_FIELDS", "register_list", "Accelerator"]

#: Fields of the ``status`` register: name -> (lowest bit, width).
STATUS_FIELDS = {"busy": (0, 1), "irq_pending": (1, 1), "error": (4, 4), "pe_error": (8, 3),
                 "rlc_error": (12, 3)}

#: Read-only registers describing the hardware: name -> function of the configuration.
HARDWARE_PARAMETERS = {
    "param_version": lambda c: (STREAM_FORMAT_VERSION << 16) | 1,
    "param_rows": lambda c: c.rows,
    "param_cols": lambda c: c.cols,
    "param_data_width": lambda c: c.data_width,
    "param_acc_width": lambda c: c.acc_width,
    "param_filter_spad_depth": lambda c: c.filter_spad_depth,
    "param_ifmap_spad_depth": lambda c: c.ifmap_spad_depth,
    "param_psum_spad_depth": lambda c: c.psum_spad_depth,
    "param_glb_banks": lambda c: c.glb_banks,
    "param_glb_bank_depth": lambda c: c.glb_bank_depth,
    "param_glb_filter_banks": lambda c: c.glb_filter_banks,
    "param_stream_width": lambda c: c.stream_width,
    "param_noc_id_width": lambda c: c.noc_id_width,
    "param_max_stride": lambda c: c.max_stride,
    "param_max_ofmap_width": lambda c: c.max_ofmap_width,
    "param_zero_gating": lambda c: int(c.zero_gating),
    "param_zero_skipping": lambda c: int(c.zero_skipping),
    "param_rlc_codec": lambda c: int(c.rlc_codec),
    "param_psum_group": lambda c: c.psum_group,
    "param_filter_group": lambda c: c.filter_group,
    "param_perf_counters": lambda c: int(c.perf_counters),
}


def register_list(config):
    """The AXI4-Lite register list of the accelerator (``(name, access, width)``, in order).

    ``control`` bit 0 enables the interrupt; ``soft_reset``, ``clear_counters`` and ``irq_clear``
    are write-1-pulse; ``status`` holds busy (bit 0), the interrupt pending bit (bit 1), the core
    error code (bits 7:4), the PE error code (bits 10:8) and the RLC error code (bits 14:12);
    ``timeout`` is the watchdog limit in cycles (0 disables it).
    """
    regs = [("control", "rw", 8), ("soft_reset", "w1p", 1), ("clear_counters", "w1p", 1),
            ("irq_clear", "w1p", 1), ("status", "ro", 16), ("sync_count", "ro", 32),
            ("timeout", "rw", 32)]
    regs += [(name, "ro", 32) for name in HARDWARE_PARAMETERS]
    regs += [(name, "ro", config.counter_width) for name in CORE_COUNTER_NAMES]
    return regs


class Accelerator(wiring.Component):
    """The rsaccel accelerator with conventional FPGA interfaces.

    - ``s_axis_*``: 64-bit (``stream_width``) AXI4-Stream input carrying commands and data
      (``docs/stream-format.md``); ``tlast`` is accepted and ignored (commands delimit
      themselves).
    - ``m_axis_*``: AXI4-Stream output carrying READ data and SYNC markers, ``tlast`` on the last
      word of each.
    - ``s_axil_*``: AXI4-Lite registers (:func:`register_list`): control, status, error codes,
      performance counters, hardware parameters.
    - ``irq``: high while a SYNC has completed since the last ``irq_clear`` and the interrupt is
      enabled.

    ``soft_reset`` resets the core (not the register block): it is the way out of an error.

    Latency and back-pressure
    -------------------------
    The streams connect straight to the core (see :class:`~rsaccel.hw.core.AcceleratorCore`);
    both honour back-pressure.
    """

    def __init__(self, config):
        require_config(config)
        self._config = config
        self._regs = AXILiteRegisters(addr_width=12, registers=register_list(config))
        members = {
            "s_axis_tdata": In(config.stream_width), "s_axis_tvalid": In(1),
            "s_axis_tready": Out(1), "s_axis_tlast": In(1),
            "m_axis_tdata": Out(config.stream_width), "m_axis_tvalid": Out(1),
            "m_axis_tready": In(1), "m_axis_tlast": Out(1),
            "irq": Out(1),
        }
        for name, member in self._regs.signature.members.items():
            if name.startswith("s_axil_"):
                members[name] = member
        super().__init__(members)

    @property
    def register_map(self):
        return self._regs.register_map

    def elaborate(self, platform):
        cfg = self._config
        m = Module()
        m.submodules.regs = regs = self._regs
        core = AcceleratorCore(cfg)
        m.submodules.core = ResetInserter({"sync": regs.soft_reset})(core)

        for name in regs.signature.members:
            if not name.startswith("s_axil_"):
                continue
            port, inner = getattr(self, name), getattr(regs, name)
            if regs.signature.members[name].flow == In:
                m.d.comb += inner.eq(port)
            else:
                m.d.comb += port.eq(inner)

        m.d.comb += [
            core.i.payload.data.eq(self.s_axis_tdata),
            core.i.payload.last.eq(self.s_axis_tlast),
            core.i.valid.eq(self.s_axis_tvalid),
            self.s_axis_tready.eq(core.i.ready),
            self.m_axis_tdata.eq(core.o.payload.data),
            self.m_axis_tlast.eq(core.o.payload.last),
            self.m_axis_tvalid.eq(core.o.valid),
            core.o.ready.eq(self.m_axis_tready),
            core.timeout.eq(regs.timeout),
            core.clear_counters.eq(regs.clear_counters),
        ]
        irq_pending = Signal()
        with m.If(core.sync_pulse):
            m.d.sync += irq_pending.eq(1)
        with m.Elif(regs.irq_clear | regs.soft_reset):
            m.d.sync += irq_pending.eq(0)
        m.d.comb += [
            self.irq.eq(irq_pending & regs.control[0]),
            regs.sync_count.eq(core.sync_count),
        ]
        status_values = {"busy": core.busy, "irq_pending": irq_pending, "error": core.error,
                         "pe_error": core.pe_error, "rlc_error": core.rlc_error}
        for name, (shift, width) in STATUS_FIELDS.items():
            m.d.comb += regs.status[shift:shift + width].eq(status_values[name])
        for name, value in HARDWARE_PARAMETERS.items():
            m.d.comb += getattr(regs, name).eq(value(cfg))
        for name in CORE_COUNTER_NAMES:
            m.d.comb += getattr(regs, name).eq(core.counters[name])
        return m
