"""Short human-readable report of a generated accelerator (``report.txt``)."""

__all__ = ["text_report"]


def _bytes(n):
    if n >= 1024 and n % 1024 == 0:
        return f"{n // 1024} KiB"
    if n >= 1024:
        return f"{n / 1024:.1f} KiB"
    return f"{n} B"


def text_report(manifest):
    """The report text for ``manifest`` (the dictionary ``manifest.json`` holds).

    Lists the array size, the storage at each level of the hierarchy (spads per PE and in
    total, global buffer split into ifmap/psum and filter banks), the peak MAC rate and the
    interfaces. Deterministic: no dates, paths or host names.
    """
    c, d = manifest["config"], manifest["derived"]
    gen = manifest["generator"]
    dw, aw = c["data_width"], c["acc_width"]
    lines = [
        f"rsaccel {gen['rsaccel']} report for '{manifest['top']}' ({manifest['block']})",
        "",
        f"PE array        {c['rows']} x {c['cols']} = {d['num_pes']} PEs, {dw}-bit data, "
        f"{aw}-bit psums, zero gating {'on' if c['zero_gating'] else 'off'}, "
        f"zero skipping {'on' if c.get('zero_skipping') else 'off'}, "
        f"RLC codec {'on' if c.get('rlc_codec', True) else 'off'}",
        f"peak rate       {d['peak_macs_per_cycle']} MACs/cycle "
        f"({2 * d['peak_macs_per_cycle']} ops/cycle)",
        "",
        "storage         per PE          whole array",
        f"  filter spad   {c['filter_spad_depth']:>4} x {dw:>2} b = "
        f"{_bytes(d['filter_spad_bytes_per_pe']):<9} "
        f"{_bytes(d['filter_spad_bytes_per_pe'] * d['num_pes'])}",
        f"  ifmap spad    {c['ifmap_spad_depth']:>4} x {dw:>2} b = "
        f"{_bytes(d['ifmap_spad_bytes_per_pe']):<9} "
        f"{_bytes(d['ifmap_spad_bytes_per_pe'] * d['num_pes'])}",
        f"  psum spad     {c['psum_spad_depth']:>4} x {aw:>2} b = "
        f"{_bytes(d['psum_spad_bytes_per_pe']):<9} "
        f"{_bytes(d['psum_spad_bytes_per_pe'] * d['num_pes'])}",
        f"  all spads                     {_bytes(d['spad_bytes'])}",
        f"  global buffer {c['glb_banks']} ifmap/psum banks + {c['glb_filter_banks']} filter "
        f"bank{'' if c['glb_filter_banks'] == 1 else 's'} of {c['glb_bank_depth']} x {c['stream_width']} b = "
        f"{_bytes(d['glb_data_bytes'])} + {_bytes(d['glb_filter_bytes'])} = "
        f"{_bytes(d['glb_bytes'])}",
        "",
    ]
    if manifest["block"] == "accelerator":
        regs = manifest["registers"]
        last = regs[-1]
        map_bytes = last["offset"] + 4 * ((last["width"] + 31) // 32)
        lines += [
            f"streams         {c['stream_width']}-bit AXI4-Stream in (s_axis) and out (m_axis), "
            f"{d['lanes']} values per word, filters {c.get('filter_group', 1)} and psums "
            f"{c.get('psum_group', 1)} per network transfer; "
            f"stream format version "
            f"{manifest['stream_format_version']}",
            f"registers       AXI4-Lite, 32-bit data, {len(regs)} registers in "
            f"{map_bytes} bytes; "
            + (f"{c['counter_width']}-bit performance counters"
               if c.get("perf_counters", True) else "no performance counters (they read 0)")
            + "; irq",
            "",
        ]
    ports = manifest["ports"]
    lines.append(f"ports           {len(ports)} ({sum(p['width'] for p in ports)} bits)")
    tools = ", ".join(f"{k} {v}" for k, v in manifest["tools"].items())
    lines += [f"tools           {tools}", ""]
    return "\n".join(lines)
