"""The one configuration object that describes an rsaccel accelerator.

Hardware, golden models, runtime, generator and tests all take an :class:`AccelConfig`, so no
parameter is written down twice. Presets are named instances; tests shrink them with
:func:`dataclasses.replace` (or :meth:`AccelConfig.replace`), which re-runs every check.
"""

from dataclasses import dataclass, fields, replace as _dc_replace

__all__ = ["AccelConfig", "PRESETS", "preset", "ConfigError", "parse_value", "load_config_file",
           "resolve", "require_config"]


class ConfigError(ValueError):
    """Raised for an unknown preset or field name (wrong values raise ValueError/TypeError)."""


#: field name -> (minimum, maximum) for the integer fields.
_INT_RANGES = {
    "rows": (1, 64),
    "cols": (1, 64),
    "data_width": (2, 32),
    "acc_width": (4, 64),
    "filter_spad_depth": (1, 4096),
    "ifmap_spad_depth": (1, 256),
    "psum_spad_depth": (1, 256),
    "glb_banks": (1, 256),
    "glb_bank_depth": (16, 65536),
    "glb_filter_banks": (0, 64),
    "stream_width": (8, 512),
    "rlc_run_width": (1, 16),
    "rlc_level_width": (2, 32),
    "max_stride": (1, 15),
    "max_ofmap_width": (1, 4096),
    "counter_width": (16, 64),
    "noc_id_width": (1, 16),
    "psum_group": (1, 64),
    "filter_group": (1, 64),
    "psum_fifo_depth": (0, 256),
    "reader_fifo_depth": (1, 16),
    "output_fifo_depth": (1, 16),
}

_BOOL_FIELDS = ("zero_gating", "zero_skipping", "rlc_codec", "ifmap_lookahead",
                "filter_spad_block_ram", "perf_counters")


@dataclass(frozen=True, kw_only=True)
class AccelConfig:
    """Parameters of one accelerator instance.

    Parameters
    ----------
    rows, cols : int
        PE array height and width (Eyeriss: 12 x 14).
    data_width : int
        Width of ifmap, filter and ofmap values (signed two's complement).
    acc_width : int
        Width of partial sums; arithmetic wraps modulo ``2**acc_width``. Must hold a full product
        (``acc_width >= 2 * data_width``).
    filter_spad_depth, ifmap_spad_depth, psum_spad_depth : int
        Scratchpad entries per PE. They bound the per-PE interleaving: ``p*q*S <= filter``,
        ``q*S <= ifmap``, ``p <= psum``.
    glb_banks, glb_bank_depth, glb_filter_banks : int
        Global buffer: ``glb_banks`` banks of ``glb_bank_depth`` words of ``stream_width`` bits shared
        by ifmaps and psums, plus ``glb_filter_banks`` banks of the same shape for filters.
    stream_width : int
        Width of the external AXI4-Stream data and of a global-buffer word (multiple of 8).
    rlc_run_width, rlc_level_width : int
        Field widths of the run-length code; a stream word holds
        ``(stream_width - 1) // (run + level)`` pairs plus the last-word flag.
    rlc_codec : bool
        Build the RLC decoder and encoder (the WRITE_RLC and READ_RLC commands). Without it
        those opcodes are refused as BAD_OPCODE and the host runtime moves data uncompressed;
        it saves their logic (about 2.7 k ECP5 LUTs) and their long decode path, which limits
        the clock on FPGAs.
    zero_gating : bool
        Skip the filter read and the MAC when the ifmap operand is zero (counted as gated).
    zero_skipping : bool
        Also skip the cycles of zero ifmap operands: a PE issues only the slots of non-zero ifmap
        values (plus one slot per all-zero output), so zeros cost neither energy nor time.
        Requires ``zero_gating``; costs a zero-flag vector and a priority encoder per PE.
    ifmap_lookahead : bool
        A PE's ifmap ring takes the next row's positions while the current row's last window
        runs, so a PE whose stream keeps up goes from row to row without a gap (and the PEs
        sharing a multicast ifmap value do not wait for each other at every row's end). Costs
        about 130 ECP5 LUT4 per 8-bit PE (a row-ahead flag, its acceptance limit and the
        ring's row-to-row advance); without it the ring refills after each row.
    filter_spad_block_ram : bool
        Ask synthesis to put each PE's filter spad in a block RAM (the memory carries
        ``ram_style = "block"``, which Yosys and Vivado honour) instead of LUT RAM. Its read is
        synchronous either way, so behaviour and timing do not change. On FPGAs with block RAMs
        to spare this saves the spad's LUT RAM and read mux, for one of the ECP5-85F's 208
        DP16KD per PE: with an 8-bit, 64-entry spad about 120 ECP5 LUTs for a PE synthesised
        alone, about 30 a PE in the 2 x 4 ULX3S board top.
    max_stride : int
        Largest convolution stride the PE sequencer supports.
    max_ofmap_width : int
        Largest number of outputs in one PE row (sizes the PE position counters).
    counter_width : int
        Width of every performance counter (they wrap).
    perf_counters : bool
        Build the performance counters (the core's event counters and the PE array's totals of
        the PEs' MACs, gated MACs and spad accesses). Without them the counter registers stay in the
        register map and read 0, ``param_perf_counters`` reads 0, the host runtime returns no
        counters, and a SYNC does not wait the two cycles the totals trail the PEs by. Saves
        their flip-flops and adders: about 700 iCE40 logic cells with 16-bit counters.
    noc_id_width : int
        Width of the per-layer row and column IDs of the multicast networks (and of their tags).
    psum_group : int
        Psums moved per transfer on the psum input network, the vertical links and the output
        network, and per global-buffer access of the psum reader and output writer: one
        transfer carries a group of consecutive filters' psums of one output. A power of two,
        at most the psums a word holds (``stream_width // (psum_lanes * data_width)``). 2
        halves the psum traffic that bounds many passes, for about ``4 * acc_width`` more
        flip-flops per PE (a held input group, the output being collected and the wider
        output FIFO); 1 is the narrow network, and the only choice when a word holds one psum
        (``acc_width > stream_width / 2``).
    filter_group : int
        Filter values moved per transfer of the filter network when a LOAD pass fills the PEs'
        filter spads. A power of two, at most the values ``glb_filter_banks`` words hold
        (``glb_filter_banks * stream_width // data_width``). Up to a word's values are one
        global-buffer read; a larger group is one word from each of the first
        ``g / (stream_width // data_width)`` filter banks, read in the same cycle (the
        filters are striped over them, :attr:`filter_words`). Each PE holds one transfer and
        writes it into its spad a value a cycle while the network serves the other PE rows,
        so a LOAD of ``N`` PE rows of ``p*q*S`` values takes about
        ``max(N, g) * ceil(p*q*S / g)`` cycles instead of ``N * p*q*S``, for about
        ``g * data_width`` more flip-flops per PE. 1 is the narrow network.
    psum_fifo_depth : int
        Transfers (of ``psum_group`` psums) each PE's psum input FIFO and psum output FIFO
        hold. 0 (the default) sizes both for one window's psums at the largest ``p``,
        ``ceil(psum_spad_depth / psum_group)``: a PE then takes a window's psums ahead of its
        MACs and emits a window's sums without waiting for the output network, so the PEs
        of an array do not hold each other up when the networks serve them in turn (a shallow
        output FIFO lets the top PEs of the columns the output network serves last fall a
        little further behind every window). Smaller depths save about
        ``2 * acc_width * psum_group`` flip-flops (or LUT RAM bits) per PE and entry. A depth
        of 1 makes each FIFO a single register (no memory, the cheapest on FPGAs: about 217
        ECP5 LUTs a PE fewer than a depth of 2), but a full one-entry FIFO takes nothing in
        the cycle it is read, so each passes at most one transfer every other cycle.
    reader_fifo_depth : int
        Entries of each buffer reader's output FIFO (filter, ifmap and psum readers; the RLC
        path's element reader keeps 4). A reader issues a global-buffer read only while the
        elements queued and in flight are fewer than this, and a written entry counts as
        queued a cycle later, so one entry lets a reader deliver one element every third cycle
        and two entries two every three cycles; the default 4 delivers one a cycle. Each entry
        costs an element's bits of LUT RAM, or of flip-flops on FPGAs without LUT RAM (the
        UP5K).
    output_fifo_depth : int
        Entries of the core's output-stream FIFO (READ data and SYNC markers, ``stream_width +
        1`` bits each). A READ issues a global-buffer read by the same rule, so shallower FIFOs
        slow READs down the same way; the default 4 sends a word a cycle while
        ``m_axis_tready`` is high.
    """

    rows: int = 12
    cols: int = 14
    data_width: int = 16
    acc_width: int = 32
    filter_spad_depth: int = 224
    ifmap_spad_depth: int = 12
    psum_spad_depth: int = 24
    glb_banks: int = 25
    glb_bank_depth: int = 512
    glb_filter_banks: int = 2
    stream_width: int = 64
    rlc_run_width: int = 5
    rlc_level_width: int = 16
    rlc_codec: bool = True
    zero_gating: bool = True
    zero_skipping: bool = False
    ifmap_lookahead: bool = True
    filter_spad_block_ram: bool = False
    max_stride: int = 12
    max_ofmap_width: int = 256
    counter_width: int = 48
    noc_id_width: int = 6
    psum_group: int = 2
    filter_group: int = 1
    psum_fifo_depth: int = 0
    perf_counters: bool = True
    reader_fifo_depth: int = 4
    output_fifo_depth: int = 4

    def __post_init__(self):
        for name, (lo, hi) in _INT_RANGES.items():
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise TypeError(f"Config field '{name}' must be an integer in [{lo}, {hi}], "
                                f"not {value!r}")
            if not lo <= value <= hi:
                raise ValueError(f"Config field '{name}' must be an integer in [{lo}, {hi}], "
                                 f"not {value}")
        for name in _BOOL_FIELDS:
            value = getattr(self, name)
            if not isinstance(value, bool):
                raise TypeError(f"Config field '{name}' must be a bool, not {value!r}")
        self._check_cross_fields()

    def _check_cross_fields(self):
        if self.zero_skipping and not self.zero_gating:
            raise ValueError("Config field 'zero_skipping' = True requires zero_gating = True "
                             "(skipped slots are gated slots)")
        if self.acc_width < 2 * self.data_width:
            raise ValueError(
                f"Config field 'acc_width' must be at least 2 * data_width = "
                f"{2 * self.data_width} to hold a full product, not {self.acc_width}")
        if self.stream_width % 8:
            raise ValueError(f"Config field 'stream_width' must be a multiple of 8, "
                             f"not {self.stream_width}")
        if self.stream_width < self.data_width:
            raise ValueError(f"Config field 'stream_width' must be at least data_width = "
                             f"{self.data_width}, not {self.stream_width}")
        if self.rlc_level_width < self.data_width:
            raise ValueError(f"Config field 'rlc_level_width' must be at least data_width = "
                             f"{self.data_width} so a level holds any value, "
                             f"not {self.rlc_level_width}")
        pair = self.rlc_run_width + self.rlc_level_width
        if pair > self.stream_width - 1:
            raise ValueError(
                f"Config field 'rlc_level_width' + 'rlc_run_width' = {pair} must be at most "
                f"stream_width - 1 = {self.stream_width - 1} (one pair plus the last flag)")
        if (1 << self.noc_id_width) < max(self.rows, self.cols):
            raise ValueError(
                f"Config field 'noc_id_width' must give at least max(rows, cols) = "
                f"{max(self.rows, self.cols)} distinct IDs, not {self.noc_id_width} bits")
        if self.glb_bank_depth & (self.glb_bank_depth - 1):
            raise ValueError(f"Config field 'glb_bank_depth' must be a power of two, "
                             f"not {self.glb_bank_depth}")
        lanes = self.stream_width // self.data_width
        if self.stream_width % self.data_width or lanes & (lanes - 1):
            raise ValueError(
                f"Config field 'stream_width' must be a power-of-two multiple of data_width = "
                f"{self.data_width} (values are packed into stream and buffer words), "
                f"not {self.stream_width}")
        if self.psum_lanes > lanes:
            raise ValueError(
                f"Config field 'acc_width' = {self.acc_width} needs {self.psum_lanes} "
                f"data_width lanes per psum, more than the {lanes} of a stream word")
        per_word = lanes // self.psum_lanes if self.psum_lanes <= lanes else 0
        if self.psum_group & (self.psum_group - 1) or self.psum_group > max(per_word, 1):
            raise ValueError(
                f"Config field 'psum_group' must be a power of two of at most the {per_word} "
                f"psums of {self.psum_lanes * self.data_width} bits a {self.stream_width}-bit "
                f"word holds, not {self.psum_group}"
                + (" (set psum_group = 1)" if per_word <= 1 else ""))
        wide = lanes * max(self.glb_filter_banks, 1)
        if self.filter_group & (self.filter_group - 1) or self.filter_group > wide:
            raise ValueError(
                f"Config field 'filter_group' must be a power of two of at most the {wide} "
                f"values of one {self.stream_width}-bit word per filter bank "
                f"(glb_filter_banks = {self.glb_filter_banks}), not {self.filter_group}")
        if self.stream_width < 64:
            raise ValueError(
                f"Config field 'stream_width' must be at least 64 (command words carry their "
                f"opcode in bits 63:56), not {self.stream_width}")
        if self.glb_elements > 1 << 24:
            raise ValueError(
                f"Config fields 'glb_banks' + 'glb_filter_banks' = "
                f"{self.glb_banks + self.glb_filter_banks} banks of 'glb_bank_depth' = "
                f"{self.glb_bank_depth} words hold {self.glb_elements} values, more than the "
                f"2**24 that the stream format's 24-bit element addresses reach")
        if self.psum_spad_depth > self.filter_spad_depth:
            raise ValueError(
                f"Config field 'psum_spad_depth' must be at most filter_spad_depth = "
                f"{self.filter_spad_depth} (p filters need p*q*S filter entries), "
                f"not {self.psum_spad_depth}")

    # Derived sizes -------------------------------------------------------------------------

    @property
    def num_pes(self):
        """Number of processing elements, ``rows * cols``."""
        return self.rows * self.cols

    @property
    def lanes(self):
        """Data values per stream / global-buffer word."""
        return self.stream_width // self.data_width

    @property
    def psum_lanes(self):
        """Lanes one psum occupies in a word: ``ceil(acc_width / data_width)`` rounded up to a
        power of two."""
        need = -(-self.acc_width // self.data_width)
        return 1 << (need - 1).bit_length()

    @property
    def filter_words(self):
        """Buffer words one filter transfer reads: ``filter_group / lanes`` (one from each of
        the first that many filter banks, in the same cycle), at least 1. With more than one,
        group ``j`` of the filter region is word ``j`` of each of those banks."""
        return max(1, self.filter_group // self.lanes)

    @property
    def filter_region_words(self):
        """Filter-bank words one chunk's filters may take: every filter bank's, or with
        transfers of several words (:attr:`filter_words`) those of the banks they stripe over."""
        banks = self.glb_filter_banks if self.filter_words == 1 else self.filter_words
        return banks * self.glb_bank_depth

    @property
    def glb_words(self):
        """Words of the global buffer, filter banks included (they come last)."""
        return (self.glb_banks + self.glb_filter_banks) * self.glb_bank_depth

    @property
    def glb_bytes(self):
        """Total global buffer size in bytes (ifmap/psum banks plus filter banks)."""
        return (self.glb_banks + self.glb_filter_banks) * self.glb_bank_depth * self.stream_width // 8

    @property
    def glb_elements(self):
        """Data elements (``data_width`` values) the global buffer holds, filter banks included."""
        return self.glb_words * self.lanes

    @property
    def element_addr_width(self):
        """Bits of a buffer element address, as the loop nests and output writer compute it."""
        return max(1, (self.glb_elements - 1).bit_length())

    @property
    def nest_count_width(self):
        """Bits of a loop-nest count: enough for any count of buffer elements, of positions in
        an ifmap row, of filter-spad entries or of PEs, at most the stream format's 16."""
        largest = max(self.glb_elements, self.max_ifmap_row_width, self.filter_spad_depth,
                      self.num_pes)
        return min(16, largest.bit_length())

    @property
    def rlc_pairs_per_word(self):
        """Number of (run, level) pairs in one stream word."""
        return (self.stream_width - 1) // (self.rlc_run_width + self.rlc_level_width)

    @property
    def max_ifmap_row_width(self):
        """Largest ifmap row a PE accepts: ``(max_ofmap_width - 1) * max_stride + ifmap_spad_depth``."""
        return (self.max_ofmap_width - 1) * self.max_stride + self.ifmap_spad_depth

    def replace(self, **changes):
        """Return a copy with ``changes`` applied (validated like the constructor)."""
        return _dc_replace(self, **changes)

    def as_dict(self):
        """Plain ``{field: value}`` dictionary of every field, in declaration order."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def field_names(cls):
        return [f.name for f in fields(cls)]


PRESETS = {
    # Eyeriss v1: 12 x 14 PEs, 16-bit data, 224/12/24-entry spads,
    # 25 x 4 KiB ifmap/psum banks + 2 x 4 KiB filter banks = 108 KiB, 64-bit stream, RLC 5/16;
    # filters load eight values a transfer, a word from each filter bank.
    "eyeriss": AccelConfig(filter_group=8),
    # Small array for fast tests.
    "tiny": AccelConfig(rows=3, cols=4, filter_spad_depth=64, ifmap_spad_depth=12,
                        psum_spad_depth=8, glb_banks=4, glb_bank_depth=256, glb_filter_banks=1,
                        max_stride=4, max_ofmap_width=64, counter_width=32, filter_group=2),
    # Board presets (rsaccel.boards): sized so the accelerator and its self-test fit the device
    # (docs/results/boards.md). Both are int8 designs (8-bit data, 24-bit accumulators, the
    # usual FPGA inference precision) without the RLC codec: with 16-bit data and the codec,
    # 8 x 8 PEs need about 101 % of the ECP5-85F's LUTs. To save area their PEs' psum FIFOs
    # hold one transfer instead of a window's worth, and their ifmap rings refill after each
    # row.
    # ULX3S-85F (ECP5 LFE5U-85F: 84k LUTs, 156 18x18 multipliers, 208 18-kbit block RAMs):
    # 8 x 8 PEs, 8 x 4 KiB + 1 x 4 KiB global buffer, each PE's filter spad in a block RAM,
    # psum FIFOs of one transfer (in flip-flops: about 217 ECP5 LUTs a PE fewer than FIFOs of
    # two in LUT RAM, for 7.5 % more cycles on AlexNet CONV1-5 in the exact model).
    "ulx3s-85f": AccelConfig(rows=8, cols=8, data_width=8, acc_width=24, filter_spad_depth=64,
                             ifmap_spad_depth=12, psum_spad_depth=8, glb_banks=8,
                             glb_bank_depth=512, glb_filter_banks=1, rlc_codec=False,
                             max_stride=4, max_ofmap_width=64, counter_width=32,
                             noc_id_width=4, psum_group=1, psum_fifo_depth=1,
                             ifmap_lookahead=False, filter_spad_block_ram=True),
    # iCEBreaker (iCE40 UP5K: 5280 LUTs, 8 16x16 multipliers, 30 4-kbit block RAMs):
    # the smallest useful core, cut down to fit: 1 x 1 PE, one 1 KiB data bank and one 1 KiB
    # filter bank (a 64-bit bank takes 4 block RAMs at any depth up to 256; one data bank
    # makes the crossbar smaller), one-entry psum, reader and output FIFOs (a reader then
    # delivers one element every third cycle) and no performance counters. The UP5K has no
    # LUT RAM, so every FIFO entry is flip-flops.
    "icebreaker": AccelConfig(rows=1, cols=1, data_width=8, acc_width=24, filter_spad_depth=32,
                              ifmap_spad_depth=6, psum_spad_depth=4, glb_banks=1,
                              glb_bank_depth=128, glb_filter_banks=1, rlc_codec=False,
                              max_stride=2, max_ofmap_width=8, counter_width=16,
                              noc_id_width=1, psum_group=1, psum_fifo_depth=1,
                              ifmap_lookahead=False, perf_counters=False,
                              reader_fifo_depth=1, output_fifo_depth=1),
}


def require_config(config):
    """Return ``config``; raise TypeError if it is not an :class:`AccelConfig` (every component
    that takes a configuration checks it with this)."""
    if not isinstance(config, AccelConfig):
        raise TypeError(f"Config must be an AccelConfig, not {config!r}")
    return config


def preset(name):
    """Return the named preset, or raise :class:`ConfigError` listing the known ones."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ConfigError(f"Unknown preset {name!r}; known presets: "
                          f"{', '.join(sorted(PRESETS))}") from None


def parse_value(name, text):
    """Convert ``text`` from ``--set name=text`` to the type of field ``name``."""
    if name not in AccelConfig.field_names():
        raise ConfigError(f"Unknown config field {name!r}; known fields: "
                          f"{', '.join(AccelConfig.field_names())}")
    if name in _BOOL_FIELDS:
        lowered = text.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"Config field '{name}' must be a bool (true/false), not {text!r}")
    try:
        return int(text, 0)
    except ValueError:
        lo, hi = _INT_RANGES[name]
        raise ValueError(f"Config field '{name}' must be an integer in [{lo}, {hi}], "
                         f"not {text!r}") from None


def load_config_file(path):
    """The ``{field: value}`` overrides of a TOML configuration file.

    The file holds any subset of :class:`AccelConfig`'s fields as top-level keys, with TOML
    integers and booleans (``rows = 8``, ``zero_gating = false``). Raises :class:`ConfigError`
    (one line naming the file and the problem) for an unreadable file, a TOML syntax error, an
    unknown field or a value of the wrong TOML type; range checks happen when the configuration
    is built.
    """
    import tomllib
    try:
        with open(path, "rb") as f:
            table = tomllib.load(f)
    except OSError as exc:
        raise ConfigError(f"Cannot read config file {str(path)!r}: "
                          f"{exc.strerror or exc}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"Config file {str(path)!r} is not valid TOML: {exc}") from None
    known = AccelConfig.field_names()
    for name, value in table.items():
        if name not in known:
            raise ConfigError(f"Config file {str(path)!r}: unknown config field {name!r}; "
                              f"known fields: {', '.join(known)}")
        if name in _BOOL_FIELDS:
            if not isinstance(value, bool):
                raise ConfigError(f"Config file {str(path)!r}: config field '{name}' must be a "
                                  f"TOML boolean (true/false), not {value!r}")
        elif not isinstance(value, int) or isinstance(value, bool):
            lo, hi = _INT_RANGES[name]
            raise ConfigError(f"Config file {str(path)!r}: config field '{name}' must be a "
                              f"TOML integer in [{lo}, {hi}], not {value!r}")
    return dict(table)


def resolve(preset_name="eyeriss", config_file=None, settings=()):
    """The configuration from a preset, then a TOML file's fields, then ``(field, text)`` pairs.

    Later sources override earlier ones. Raises :class:`ConfigError`, ``ValueError`` or
    ``TypeError`` with a message naming the field, the value and the limit.
    """
    base = preset(preset_name)
    changes = load_config_file(config_file) if config_file is not None else {}
    for name, text in settings:
        changes[name] = parse_value(name, text)
    return base.replace(**changes) if changes else base
