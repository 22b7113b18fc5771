"""AccelConfig validation, presets and --set parsing."""

import dataclasses

import pytest

from rsaccel.config import AccelConfig, ConfigError, PRESETS, parse_value, preset


def test_eyeriss_preset_matches_the_chip():
    c = preset("eyeriss")
    assert (c.rows, c.cols, c.num_pes) == (12, 14, 168)
    assert (c.data_width, c.filter_spad_depth, c.ifmap_spad_depth, c.psum_spad_depth) == \
        (16, 224, 12, 24)
    assert c.glb_bytes == 108 * 1024
    assert (c.stream_width, c.rlc_run_width, c.rlc_level_width) == (64, 5, 16)
    assert c.rlc_pairs_per_word == 3


def test_tiny_preset_is_small():
    c = preset("tiny")
    assert (c.rows, c.cols) == (3, 4)


def test_frozen_and_keyword_only():
    c = preset("tiny")
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.rows = 5
    with pytest.raises(TypeError):
        AccelConfig(3, 4)


def test_replace_revalidates():
    assert preset("tiny").replace(rows=5).rows == 5
    with pytest.raises(ValueError, match=r"'rows' must be an integer in \[1, 64\], not 0"):
        preset("tiny").replace(rows=0)


@pytest.mark.parametrize("field, value, exc, message", [
    ("cols", 65, ValueError, r"'cols' must be an integer in \[1, 64\], not 65"),
    ("cols", 2.0, TypeError, r"'cols' must be an integer in \[1, 64\], not 2.0"),
    ("rows", True, TypeError, r"'rows' must be an integer"),
    ("zero_gating", 1, TypeError, r"'zero_gating' must be a bool, not 1"),
    ("ifmap_lookahead", "yes", TypeError, r"'ifmap_lookahead' must be a bool, not 'yes'"),
    ("acc_width", 31, ValueError, r"'acc_width' must be at least 2 \* data_width = 32"),
    ("stream_width", 60, ValueError, r"'stream_width' must be a multiple of 8, not 60"),
    ("rlc_level_width", 8, ValueError, r"'rlc_level_width' must be at least data_width = 16"),
    ("psum_spad_depth", 250, ValueError, r"'psum_spad_depth' must be at most filter_spad_depth"),
    ("filter_group", 3, ValueError,
     r"'filter_group' must be a power of two of at most the 8 values of one 64-bit word per "
     r"filter bank \(glb_filter_banks = 2\), not 3"),
    ("filter_group", 16, ValueError, r"'filter_group' must be a power of two .* not 16"),
    ("filter_group", 0, ValueError, r"'filter_group' must be an integer in \[1, 64\], not 0"),
    ("psum_fifo_depth", -1, ValueError,
     r"'psum_fifo_depth' must be an integer in \[0, 256\], not -1"),
    ("psum_fifo_depth", 257, ValueError,
     r"'psum_fifo_depth' must be an integer in \[0, 256\], not 257"),
    ("reader_fifo_depth", 0, ValueError,
     r"'reader_fifo_depth' must be an integer in \[1, 16\], not 0"),
    ("output_fifo_depth", 17, ValueError,
     r"'output_fifo_depth' must be an integer in \[1, 16\], not 17"),
    ("perf_counters", 1, TypeError, r"'perf_counters' must be a bool, not 1"),
])
def test_wrong_values(field, value, exc, message):
    with pytest.raises(exc, match=message):
        preset("eyeriss").replace(**{field: value})


def test_wide_filter_groups_need_a_filter_bank_per_word():
    # a transfer of 8 16-bit values reads one word from each of two filter banks
    wide = preset("tiny").replace(glb_filter_banks=2, filter_group=8)
    assert (wide.filter_words, wide.filter_region_words) == (2, 2 * wide.glb_bank_depth)
    assert preset("tiny").filter_words == 1
    with pytest.raises(ValueError, match=r"at most the 4 values of one 64-bit word per filter "
                                         r"bank \(glb_filter_banks = 1\), not 8"):
        preset("tiny").replace(filter_group=8)


def test_rlc_pair_must_fit_the_stream_word():
    with pytest.raises(ValueError, match=r"= 48 must be at most stream_width - 1 = 47"):
        preset("eyeriss").replace(stream_width=48, rlc_run_width=16, rlc_level_width=32,
                                  data_width=16)


def test_unknown_preset():
    with pytest.raises(ConfigError, match="Unknown preset 'nope'; known presets: eyeriss, icebreaker, tiny, ulx3s-85f"):
        preset("nope")


def test_parse_value():
    assert parse_value("rows", "0x10") == 16
    assert parse_value("zero_gating", "off") is False
    with pytest.raises(ConfigError, match="Unknown config field 'row'"):
        parse_value("row", "3")
    with pytest.raises(ValueError, match=r"'rows' must be an integer in \[1, 64\], not 'x'"):
        parse_value("rows", "x")


def test_every_preset_valid():
    for name, config in PRESETS.items():
        assert AccelConfig(**config.as_dict()) == config, name


def test_derived_widths():
    tiny = preset("tiny")
    # 5 banks x 256 words x 4 lanes = 5120 elements -> 13-bit element addresses
    assert tiny.glb_elements == 5120 and tiny.element_addr_width == 13
    assert tiny.nest_count_width == 13
    # Eyeriss: 27 x 512 x 4 = 55296 elements; counts stay within the stream's 16 bits
    assert preset("eyeriss").element_addr_width == 16 and preset("eyeriss").nest_count_width == 16
    assert tiny.replace(glb_banks=64, glb_bank_depth=4096).nest_count_width == 16


def test_buffer_beyond_24_bit_addresses_is_refused():
    with pytest.raises(ValueError, match="more than the 2\\*\\*24 that the stream format's"):
        preset("eyeriss").replace(glb_banks=256, glb_bank_depth=65536)


def test_stream_narrower_than_a_command_word_is_refused():
    with pytest.raises(ValueError, match="'stream_width' must be at least 64 .* not 32"):
        preset("tiny").replace(stream_width=32, data_width=8, acc_width=16, rlc_level_width=8,
                               rlc_run_width=4)
