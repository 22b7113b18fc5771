"""cocotb testbench for the generated board self-test (:class:`rsaccel.boards.selftest.SelfTest`).

Clocks and resets the design, waits for ``done`` and writes ``passed``, ``failed``,
``mismatches``, ``readback`` and the cycle count to the JSON file named by ``RSACCEL_RESULT``.
``RSACCEL_EXPECT`` (``pass`` or ``fail``) is the outcome the test requires.
"""

import json
import os

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge, ReadOnly


@cocotb.test()
async def selftest_outcome(dut):
    max_cycles = int(os.environ.get("RSACCEL_MAX_CYCLES", "50000"))
    Clock(dut.clk, 10, unit="ns").start(start_high=False)
    dut.rst.value = 1
    await ClockCycles(dut.clk, 3)
    dut.rst.value = 0
    result = {"done": 0}
    for cycle in range(max_cycles):
        await RisingEdge(dut.clk)
        await ReadOnly()
        if int(dut.done.value):
            result = {"done": 1, "cycles": cycle,
                      "passed": int(dut.passed.value),
                      "failed": int(dut.failed.value),
                      "mismatches": dut.mismatches.value.to_unsigned(),
                      "readback": dut.readback.value.to_unsigned()}
            break
    with open(os.environ["RSACCEL_RESULT"], "w") as f:
        json.dump(result, f)
    assert result["done"], f"self-test did not finish within {max_cycles} cycles"
    if os.environ.get("RSACCEL_EXPECT", "pass") == "pass":
        assert result["passed"] == 1 and result["failed"] == 0, result
    else:
        assert result["failed"] == 1 and result["passed"] == 0, result
