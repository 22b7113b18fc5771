"""Bit-exact numpy golden models and simulation support."""
