"""Verilog generation and manifests."""
