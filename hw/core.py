"""Accelerator core: command decoder, global buffer, buffer controllers and the PE array."""

from amaranth import *
from amaranth.lib import data, enum, fifo, stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import exact_log2

from ..config import require_config
from .buffer_reader import BufferReader
from .element_reader import ElementReader
from .element_writer import ElementWriter
from .glb import GlobalBuffer
from .loop_nest import NestDescriptor
from .output_writer import OutputDescriptor, OutputWriter
from .pe import PE_COUNTER_NAMES, PECommand, PEError
from .pe_array import ArrayConfigWrite, PEArray
from .rlc_decoder import RLCDecoder, RLCError
from .rlc_encoder import RLCEncoder

__all__ = ["STREAM_FORMAT_VERSION", "READ_DETACH_BIT", "Opcode", "PassFlag", "CoreError",
           "CORE_COUNTER_NAMES",
           "StreamWord", "AcceleratorCore"]

#: Version of the command/data stream format (docs/stream-format.md).
STREAM_FORMAT_VERSION = 8


class Opcode(enum.Enum, shape=8):
    """Command opcodes (bits 63:56 of a header word)."""
    CONFIG = 0x01   # [31:0] n; n array configuration words follow
    WRITE = 0x02    # [23:0] word address, [47:24] n; n buffer words follow
    READ = 0x03     # [23:0] word address, [47:24] n, [48] detach; n buffer words go out, last
    #                 one flagged
    PASS = 0x04     # [5:0] PassFlag bits; the present descriptors follow in flag order
    SYNC = 0x05     # wait until idle, then send one SYNC_MARKER word (flagged last) and count it
    WRITE_RLC = 0x06  # [23:0] element address, [47:24] n values; one word [23:0] w; w RLC words
    READ_RLC = 0x07   # [23:0] element address, [47:24] n values; RLC words go out, last flagged


class PassFlag(enum.IntFlag):
    """Parts of a PASS command (bits of its header)."""
    PE_CMD = 1      # one word: a PE command broadcast to the enabled PEs
    FILT = 2        # nest descriptor (5 words) for the filter network
    IFMAP = 4       # nest descriptor for the ifmap network
    PSUM = 8        # nest descriptor for the psum network
    OUTPUT = 16     # output descriptor (2 words)
    DETACH = 32     # no descriptor: the decoder goes on to WRITE(_RLC)s while the pass runs


class CoreError(enum.Enum, shape=4):
    """Error code (sticky until reset). While set, input is discarded so the host never hangs."""
    NONE = 0
    BAD_OPCODE = 1
    PE_ERROR = 2        # a PE rejected a command (see the PE error in the status register)
    NO_DESTINATION = 3  # a network value matched no PE: a broken mapping
    TIMEOUT = 4         # nothing moved for ``timeout`` cycles while a command was executing
    BAD_ADDRESS = 5     # a WRITE or READ beyond the buffer
    BAD_RLC = 6         # a WRITE_RLC stream is malformed (the RLC error says how)


#: Bit of a READ header that detaches it (stream format 7): the decoder goes on while the words
#: go out, as after a detached PASS (WRITEs, WRITE_RLCs, CONFIGs and filter-only PASSes run
#: beside it).
READ_DETACH_BIT = 48

#: Marker word sent for SYNC: ``0x5y_c0`` in the top 16 bits, then the SYNC count in [31:0].
SYNC_MARKER = 0x5C00 << 48

NEST_WORDS = 5
OUTPUT_WORDS = 2

CORE_COUNTER_NAMES = (
    "cycles", "busy_cycles", "stall_in_cycles", "stall_out_cycles",
) + PE_COUNTER_NAMES + (
    "glb_filter_reads", "glb_ifmap_reads", "glb_psum_reads", "glb_host_reads",
    "glb_host_writes", "glb_output_writes",
    "noc_filter_transfers", "noc_ifmap_transfers", "noc_psum_transfers",
    "noc_output_transfers", "words_in", "words_out",
)


def StreamWord(width):
    """Payload of the external streams: ``data`` and ``last`` (AXI4-Stream TLAST)."""
    return data.StructLayout({"data": width, "last": 1})


class AcceleratorCore(wiring.Component):
    """The accelerator behind its streams: decodes commands and runs passes on the PE array.

    The input stream carries commands (:class:`Opcode`) and their data; the output stream carries
    buffer contents read by READ commands and SYNC markers. A PASS launches, together, a PE
    command and the buffer controllers of the pass (filter, ifmap and psum readers walking loop
    nests over the global buffer into the array's multicast networks, and the output writer taking
    results from the output network back into the buffer) and completes when all have finished.
    A PASS with :attr:`PassFlag.DETACH` hands the decoder back as soon as its descriptors are
    pushed: WRITE and WRITE_RLC commands then run beside the pass (so the host can fill buffer
    regions the pass does not use), and any other command waits until the pass has finished. A
    READ with :data:`READ_DETACH_BIT` does the same while its words go out, and also lets a
    CONFIG and a PASS of only a PE command and filters (a filter LOAD) start beside it. The stream format
    is documented in ``docs/stream-format.md``.

    Latency and back-pressure
    -------------------------
    Every stream honours back-pressure; the input is only accepted when its word can be used
    (a header other than WRITE or WRITE_RLC is held while a detached pass runs, and other than
    those, CONFIG and a filters-only PASS while a detached READ runs).
    Errors (:class:`CoreError`) stop command processing and discard input from then on.

    Attributes
    ----------
    i : In(stream.Signature(StreamWord(stream_width)))
    o : Out(stream.Signature(StreamWord(stream_width)))
    busy : Out(1)
    error : Out(CoreError)
    pe_error : Out(PEError)
    rlc_error : Out(RLCError)
        Why the last WRITE_RLC was rejected (with error BAD_RLC).
    sync_count : Out(32)
        SYNC commands completed.
    sync_pulse : Out(1)
        One cycle per completed SYNC (interrupt source).
    timeout : In(32)
        Cycles without progress before TIMEOUT (0 disables).
    clear_counters : In(1)
    counters :
        ``cycles`` counts from the first word accepted to the completion of the following SYNC
        (so a job ending in SYNC is timed exactly); the others count their events. All 0
        without ``perf_counters``.
        Out(StructLayout({name: counter_width for name in CORE_COUNTER_NAMES}))
    """

    def __init__(self, config):
        require_config(config)
        if PECommand(config).size > config.stream_width:
            raise ValueError(f"A PE command ({PECommand(config).size} bits) must fit one stream "
                             f"word ({config.stream_width} bits)")
        self._config = config
        super().__init__({
            "i": In(stream.Signature(StreamWord(config.stream_width))),
            "o": Out(stream.Signature(StreamWord(config.stream_width))),
            "busy": Out(1),
            "error": Out(CoreError),
            "pe_error": Out(PEError),
            "rlc_error": Out(RLCError),
            "sync_count": Out(32),
            "sync_pulse": Out(1),
            "timeout": In(32),
            "clear_counters": In(1),
            "counters": Out(data.StructLayout({name: config.counter_width
                                               for name in CORE_COUNTER_NAMES})),
        })

    def elaborate(self, platform):
        cfg = self._config
        sw = cfg.stream_width
        m = Module()

        m.submodules.array = array = PEArray(cfg)
        rlc = cfg.rlc_codec
        # a filter transfer of several words reads the other words through clients of their
        # own, after every other client (nothing else reads the filter banks during a LOAD)
        wide = cfg.filter_words - 1
        m.submodules.glb = glb = GlobalBuffer(cfg, read_clients=(5 if rlc else 4) + wide,
                                              write_clients=3 if rlc else 2)
        readers = {
            "filt": BufferReader(cfg, element_lanes=cfg.filter_group, value_width=cfg.data_width,
                                 group=cfg.filter_group if cfg.filter_group > 1 else None,
                                 words=cfg.filter_words),
            "ifmap": BufferReader(cfg, element_lanes=1, value_width=cfg.data_width),
            "psum": BufferReader(cfg, element_lanes=cfg.psum_lanes * cfg.psum_group,
                                 value_width=cfg.acc_width, group=cfg.psum_group),
        }
        for idx, (name, reader) in enumerate(readers.items()):
            m.submodules[f"{name}_reader"] = reader
            wiring.connect(m, reader.glb, glb.rd[idx])
            wiring.connect(m, reader.o, getattr(array, name))
        filter_clients = [glb.rd[0]]
        for k in range(wide):
            filter_clients.append(glb.rd[len(glb.rd) - wide + k])
            wiring.connect(m, readers["filt"].glb_more[k], filter_clients[-1])
        host_rd = glb.rd[3]
        host_wr = glb.wr[0]
        m.submodules.writer = writer = OutputWriter(cfg)
        wiring.connect(m, writer.glb, glb.wr[1])
        wiring.connect(m, array.out, writer.i)
        # the compressed DRAM path: stream -> decoder -> buffer, buffer -> encoder -> stream
        if rlc:
            m.submodules.rlc_decoder = decoder = RLCDecoder(cfg)
            m.submodules.rlc_writer = rlc_writer = ElementWriter(cfg)
            m.submodules.rlc_reader = rlc_reader = ElementReader(cfg)
            m.submodules.rlc_encoder = encoder = RLCEncoder(cfg)
            wiring.connect(m, rlc_writer.glb, glb.wr[2])
            wiring.connect(m, rlc_reader.glb, glb.rd[4])
            wiring.connect(m, rlc_reader.o, encoder.i)
            wiring.connect(m, decoder.o, rlc_writer.i)

        word = self.i.payload.data
        header_op = word[56:64]
        count = Signal(24)
        addr = Signal(24)
        # registered compares of count and addr (set wherever those are), so a WRITE's word
        # reaches the global buffer's arbiter without a 24-bit compare in front of it
        count_zero = Signal()       # count == 0
        addr_bad = Signal()         # addr >= glb_words
        addr_filter = Signal()      # addr is in the filter banks
        filter_base = cfg.glb_banks * cfg.glb_bank_depth
        todo = Signal(5)
        detach = Signal()           # the PASS being decoded has PassFlag.DETACH
        gather = Signal(NEST_WORDS * sw)
        gather_index = Signal(range(NEST_WORDS + 1))
        gather_words = Signal(range(NEST_WORDS + 1))
        current = Signal(5)         # the PassFlag being gathered / pushed
        error = self.error

        # the output stream: a small FIFO fed by READ data or the SYNC marker
        m.submodules.out_fifo = out_fifo = fifo.SyncFIFO(width=sw + 1,
                                                         depth=cfg.output_fifo_depth)
        m.d.comb += [
            self.o.valid.eq(out_fifo.r_rdy),
            self.o.payload.eq(out_fifo.r_data),
            out_fifo.r_en.eq(self.o.ready),
        ]
        read_pending = Signal()
        read_last_pending = Signal()
        reads_in_flight = Signal()   # a READ word granted last cycle
        m.d.sync += read_pending.eq(host_rd.grant)
        read_word = Signal(StreamWord(sw))
        m.d.comb += [read_word.data.eq(host_rd.data), read_word.last.eq(read_last_pending)]

        # the read engine: a READ's words, from the buffer into the output FIFO; it runs on
        # its own so that a READ with READ_DETACH_BIT lets the decoder go on
        read_addr = Signal(24)
        read_count = Signal(24)
        # registered compares, set wherever read_count and read_addr are, so that no 24-bit
        # compare sits in front of the buffer's arbiter
        read_nonzero = Signal()     # read_count != 0
        read_addr_bad = Signal()    # read_addr >= glb_words
        read_busy = Signal()
        m.d.comb += read_busy.eq(read_nonzero | read_pending)
        with m.If(error == CoreError.NONE):
            with m.If(read_nonzero & read_addr_bad):
                m.d.sync += error.eq(CoreError.BAD_ADDRESS)
            with m.Else():
                # issue reads while the output FIFO is sure to have room
                room = out_fifo.level + reads_in_flight < out_fifo.depth
                m.d.comb += [host_rd.addr.eq(read_addr), host_rd.req.eq(read_nonzero & room)]
                with m.If(host_rd.grant):
                    m.d.sync += [read_count.eq(read_count - 1), read_addr.eq(read_addr + 1),
                                 read_last_pending.eq(read_count == 1),
                                 read_nonzero.eq(read_count != 1),
                                 read_addr_bad.eq(read_addr >= cfg.glb_words - 1)]

        pass_busy = Signal()
        m.d.comb += pass_busy.eq(Cat(r.busy for r in readers.values()).any() | writer.busy
                                 | array.busy)
        sub_busy = Signal()
        m.d.comb += sub_busy.eq(pass_busy | read_busy)
        needs_input = Signal()
        activity = Signal()
        watchdog = Signal(32)
        state_busy = Signal()

        # descriptor targets
        nest_layout = NestDescriptor(cfg.noc_id_width)
        m.d.comb += [
            array.cmd.payload.eq(gather[:PECommand(cfg).size]),
            writer.desc.payload.eq(gather[:OutputDescriptor(cfg).size]),
        ]
        for reader in readers.values():
            m.d.comb += reader.desc.payload.eq(gather[:nest_layout.size])

        def leave_on_error():
            # any error ends the command being executed (overrides the state's own choice)
            with m.If(error != CoreError.NONE):
                m.next = "ERROR"

        def elements_out_of_range():
            # WRITE_RLC / READ_RLC: the n elements from addr must lie in the buffer
            return addr + count > cfg.glb_elements

        with m.FSM(name="decoder") as fsm:
            with m.State("IDLE"):
                # a WRITE (or WRITE_RLC) may run beside a detached pass or READ, and a CONFIG
                # or a PASS of only a PE command and filters beside a detached READ; any
                # other command waits for them
                filters_only = (word[:5] & ~(PassFlag.PE_CMD | PassFlag.FILT)) == 0
                may_start = (~sub_busy | (header_op == Opcode.WRITE)
                             | (((header_op == Opcode.CONFIG)
                                 | ((header_op == Opcode.PASS) & filters_only)) & ~pass_busy))
                if rlc:
                    may_start |= header_op == Opcode.WRITE_RLC
                m.d.comb += self.i.ready.eq(may_start)
                with m.If(self.i.valid & may_start):
                    m.d.sync += [count.eq(word[24:48]), addr.eq(word[:24]),
                                 count_zero.eq(word[24:48] == 0),
                                 addr_bad.eq(word[:24] >= cfg.glb_words),
                                 addr_filter.eq(word[:24] >= filter_base)]
                    with m.Switch(header_op):
                        with m.Case(Opcode.CONFIG):
                            m.d.sync += [count.eq(word[:32]), count_zero.eq(word[:24] == 0)]
                            m.next = "CONFIG"
                        with m.Case(Opcode.WRITE):
                            m.next = "WRITE"
                        with m.Case(Opcode.READ):
                            m.d.sync += [read_count.eq(word[24:48]), read_addr.eq(word[:24]),
                                         read_nonzero.eq(word[24:48] != 0),
                                         read_addr_bad.eq(word[:24] >= cfg.glb_words)]
                            with m.If(~word[READ_DETACH_BIT]):
                                m.next = "READ"
                        with m.Case(Opcode.PASS):
                            m.d.sync += [todo.eq(word[:5]), detach.eq(word[5])]
                            m.next = "PASS_NEXT"
                        with m.Case(Opcode.SYNC):
                            m.next = "SYNC"
                        if rlc:      # without the codec these opcodes are BAD_OPCODE
                            with m.Case(Opcode.WRITE_RLC):
                                m.next = "WRITE_RLC_WORDS"
                            with m.Case(Opcode.READ_RLC):
                                m.next = "READ_RLC_START"
                        with m.Default():
                            m.d.sync += error.eq(CoreError.BAD_OPCODE)
                            m.next = "ERROR"
                leave_on_error()
            with m.State("CONFIG"):
                with m.If(count_zero):
                    m.next = "IDLE"
                with m.Else():
                    m.d.comb += [
                        needs_input.eq(1),
                        array.cfg.valid.eq(self.i.valid),
                        array.cfg.payload.eq(word[:ArrayConfigWrite(cfg).size]),
                        self.i.ready.eq(array.cfg.ready),
                    ]
                    with m.If(self.i.valid & array.cfg.ready):
                        m.d.sync += [count.eq(count - 1), count_zero.eq(count == 1)]
                leave_on_error()
            with m.State("WRITE"):
                with m.If(count_zero):
                    m.next = "IDLE"
                with m.Elif(addr_bad):
                    m.d.sync += error.eq(CoreError.BAD_ADDRESS)
                    m.next = "ERROR"
                with m.Else():
                    # a word for the filter banks waits while the filter reader still reads
                    # them (a RUN pass that loads its filters too may be running beside)
                    filter_hold = addr_filter & readers["filt"].busy
                    m.d.comb += [
                        needs_input.eq(1),
                        host_wr.addr.eq(addr),
                        host_wr.data.eq(word),
                        host_wr.mask.eq(-1),
                        host_wr.req.eq(self.i.valid & ~filter_hold),
                        self.i.ready.eq(host_wr.grant),
                    ]
                    with m.If(host_wr.grant):
                        m.d.sync += [count.eq(count - 1), addr.eq(addr + 1),
                                     count_zero.eq(count == 1),
                                     addr_bad.eq(addr >= cfg.glb_words - 1),
                                     addr_filter.eq(addr >= filter_base - 1)]
                leave_on_error()
            with m.State("READ"):
                # a READ without DETACH: wait for the read engine (below)
                with m.If(~read_busy):
                    m.next = "IDLE"
                leave_on_error()
            if rlc:
                with m.State("WRITE_RLC_WORDS"):
                    # the word count; the decoder and the element writer start together
                    with m.If(elements_out_of_range()):
                        m.d.sync += error.eq(CoreError.BAD_ADDRESS)
                        m.next = "ERROR"
                    with m.Else():
                        m.d.comb += [
                            needs_input.eq(1),
                            decoder.job.payload.count.eq(count),
                            decoder.job.payload.words.eq(word[:24]),
                            decoder.job.payload.lane.eq(addr[:exact_log2(cfg.lanes)]),
                            rlc_writer.job.payload.base.eq(addr),
                            rlc_writer.job.payload.count.eq(count),
                            # both are idle here (the previous job ended before IDLE)
                            self.i.ready.eq(decoder.job.ready & rlc_writer.job.ready),
                            decoder.job.valid.eq(self.i.valid & self.i.ready),
                            rlc_writer.job.valid.eq(self.i.valid & self.i.ready),
                        ]
                        with m.If(self.i.valid & self.i.ready):
                            m.next = "WRITE_RLC"
                    leave_on_error()
                with m.State("WRITE_RLC"):
                    m.d.comb += [
                        needs_input.eq(decoder.i.ready),
                        decoder.i.valid.eq(self.i.valid),
                        decoder.i.payload.eq(word),
                        self.i.ready.eq(decoder.i.ready),
                    ]
                    with m.If(~decoder.busy & ~rlc_writer.busy & (decoder.error == RLCError.NONE)):
                        m.next = "IDLE"
                    leave_on_error()
                with m.State("READ_RLC_START"):
                    with m.If(elements_out_of_range()):
                        m.d.sync += error.eq(CoreError.BAD_ADDRESS)
                        m.next = "ERROR"
                    with m.Else():
                        m.d.comb += [
                            rlc_reader.job.payload.base.eq(addr),
                            rlc_reader.job.payload.count.eq(count),
                            encoder.job.payload.eq(count),
                            rlc_reader.job.valid.eq(encoder.job.ready),
                            encoder.job.valid.eq(rlc_reader.job.ready),
                        ]
                        with m.If(rlc_reader.job.ready & encoder.job.ready):
                            m.next = "READ_RLC"
                    leave_on_error()
                with m.State("READ_RLC"):
                    m.d.comb += [
                        out_fifo.w_en.eq(encoder.o.valid),
                        out_fifo.w_data.eq(Cat(encoder.o.payload, encoder.o.payload[sw - 1])),
                        encoder.o.ready.eq(out_fifo.w_rdy),
                    ]
                    with m.If(~encoder.busy & ~rlc_reader.busy):
                        m.next = "IDLE"
                    leave_on_error()
            with m.State("PASS_NEXT"):
                # pick the lowest flag still to do and how many words it takes
                with m.If((todo == 0) & detach):
                    m.next = "IDLE"
                with m.Elif(todo == 0):
                    m.next = "PASS_WAIT"
                with m.Else():
                    for flag, words in reversed([(PassFlag.PE_CMD, 1), (PassFlag.FILT, NEST_WORDS),
                                                 (PassFlag.IFMAP, NEST_WORDS),
                                                 (PassFlag.PSUM, NEST_WORDS),
                                                 (PassFlag.OUTPUT, OUTPUT_WORDS)]):
                        with m.If(todo & flag):
                            m.d.sync += [current.eq(flag), gather_words.eq(words)]
                    m.d.sync += [gather_index.eq(0), gather.eq(0)]
                    m.next = "PASS_GATHER"
                leave_on_error()
            with m.State("PASS_GATHER"):
                m.d.comb += [needs_input.eq(1), self.i.ready.eq(1)]
                with m.If(self.i.valid):
                    with m.Switch(gather_index):
                        for k in range(NEST_WORDS):
                            with m.Case(k):
                                m.d.sync += gather.word_select(k, sw).eq(word)
                    m.d.sync += gather_index.eq(gather_index + 1)
                    with m.If(gather_index == gather_words - 1):
                        m.next = "PASS_PUSH"
                leave_on_error()
            with m.State("PASS_PUSH"):
                targets = [(PassFlag.PE_CMD, array.cmd), (PassFlag.FILT, readers["filt"].desc),
                           (PassFlag.IFMAP, readers["ifmap"].desc),
                           (PassFlag.PSUM, readers["psum"].desc), (PassFlag.OUTPUT, writer.desc)]
                for flag, target in targets:
                    with m.If(current == flag):
                        m.d.comb += target.valid.eq(1)
                        with m.If(target.ready):
                            m.d.sync += todo.eq(todo & ~current)
                            m.next = "PASS_NEXT"
                leave_on_error()
            with m.State("PASS_WAIT"):
                with m.If(~sub_busy):
                    m.next = "IDLE"
                leave_on_error()
            with m.State("SYNC"):
                # (the array's counter totals must have settled: they trail the PEs)
                with m.If(~sub_busy & ~array.settling & out_fifo.w_rdy & ~read_pending):
                    m.d.comb += [
                        out_fifo.w_en.eq(1),
                        out_fifo.w_data.eq(Cat(Const(SYNC_MARKER, sw) | self.sync_count, 1)),
                        self.sync_pulse.eq(1),
                    ]
                    m.d.sync += self.sync_count.eq(self.sync_count + 1)
                    m.next = "IDLE"
                leave_on_error()
            with m.State("ERROR"):
                m.d.comb += self.i.ready.eq(1)   # discard everything: the host never blocks

        # READ data into the output FIFO
        m.d.sync += reads_in_flight.eq(host_rd.grant)
        with m.If(read_pending):
            m.d.comb += [out_fifo.w_en.eq(1), out_fifo.w_data.eq(read_word.as_value())]

        # errors from the array and the watchdog
        with m.If(error == CoreError.NONE):
            with m.If(array.error != PEError.NONE):
                m.d.sync += [error.eq(CoreError.PE_ERROR), self.pe_error.eq(array.error)]
            with m.Elif(array.dropped):
                m.d.sync += error.eq(CoreError.NO_DESTINATION)
            if rlc:
                with m.Elif(decoder.error != RLCError.NONE):
                    m.d.sync += [error.eq(CoreError.BAD_RLC), self.rlc_error.eq(decoder.error)]
            with m.Elif((self.timeout != 0) & (watchdog >= self.timeout)):
                m.d.sync += error.eq(CoreError.TIMEOUT)

        m.d.comb += activity.eq(
            (self.i.valid & self.i.ready) | (self.o.valid & self.o.ready)
            | Cat((getattr(array, n).valid & getattr(array, n).ready)
                  for n in ("cfg", "cmd", "filt", "ifmap", "psum")).any()
            | (array.out.valid & array.out.ready)
            | ((decoder.o.valid & decoder.o.ready) | (encoder.i.valid & encoder.i.ready)
               if rlc else C(0)))
        m.d.comb += state_busy.eq(~fsm.ongoing("IDLE") & ~fsm.ongoing("ERROR"))
        # the watchdog sees activity a cycle late (a register: the handshakes of every network
        # are long paths and the watchdog need not be exact to the cycle)
        activity_seen = Signal()
        m.d.sync += activity_seen.eq(activity)
        # (a detached pass keeps the watchdog armed while the decoder waits in IDLE)
        with m.If(activity_seen | ~(state_busy | sub_busy)):
            m.d.sync += watchdog.eq(0)
        with m.Elif(watchdog != 0xFFFFFFFF):
            m.d.sync += watchdog.eq(watchdog + 1)
        m.d.comb += self.busy.eq(state_busy | sub_busy | self.o.valid)

        # counters; ``cycles`` runs from the first word accepted to the end of the next SYNC
        running = Signal()
        with m.If(self.sync_pulse):
            m.d.sync += running.eq(0)
        with m.Elif(self.i.valid & self.i.ready):
            m.d.sync += running.eq(1)
        cnt = self.counters
        events = {
            "cycles": running,
            "busy_cycles": self.busy,
            "stall_in_cycles": needs_input & ~self.i.valid,
            "stall_out_cycles": self.o.valid & ~self.o.ready,
            # one count per filter transfer read (all of its words granted)
            "glb_filter_reads": Cat(cl.grant for cl in filter_clients).all(),
            "glb_ifmap_reads": glb.rd[1].grant,
            "glb_psum_reads": glb.rd[2].grant,
            "glb_host_reads": glb.rd[3].grant | (glb.rd[4].grant if rlc else C(0)),
            "glb_host_writes": glb.wr[0].grant | (glb.wr[2].grant if rlc else C(0)),
            "glb_output_writes": glb.wr[1].grant,
            "noc_filter_transfers": array.filt.valid & array.filt.ready,
            "noc_ifmap_transfers": array.ifmap.valid & array.ifmap.ready,
            "noc_psum_transfers": array.psum.valid & array.psum.ready,
            "noc_output_transfers": array.out.valid & array.out.ready,
            "words_in": self.i.valid & self.i.ready,
            "words_out": self.o.valid & self.o.ready,
        }
        for name in CORE_COUNTER_NAMES if cfg.perf_counters else ():
            if name in PE_COUNTER_NAMES:
                m.d.comb += cnt[name].eq(array.totals[name])
                continue
            with m.If(self.clear_counters):
                m.d.sync += cnt[name].eq(0)
            with m.Elif(events[name]):
                m.d.sync += cnt[name].eq(cnt[name] + 1)
        m.d.comb += array.clear_totals.eq(self.clear_counters)
        return m
