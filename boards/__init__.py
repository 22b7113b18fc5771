"""FPGA board targets (amaranth-boards)."""
