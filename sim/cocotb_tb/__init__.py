"""cocotb testbench modules driving generated Verilog (not collected by pytest)."""
