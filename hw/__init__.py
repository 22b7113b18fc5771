"""Amaranth hardware blocks of rsaccel (components only: no numpy, no cocotb)."""
