"""Markdown tables of board build results (from :func:`rsaccel.boards.build.build_board`)."""

__all__ = ["markdown_table", "critical_path_lines"]


def _used(resources, key):
    if key not in resources:
        return "-"
    r = resources[key]
    pct = 100 * r["used"] / r["available"] if r["available"] else 0
    return f"{r['used']} / {r['available']} ({pct:.0f} %)"


def markdown_table(results):
    """One row per build result: board, array, PEs, utilisation, Fmax over the seeds."""
    lines = [
        "| board | array | PEs | LUTs | FFs | DSPs | block RAMs | Fmax MHz (min / median / max) "
        "| seeds | target MHz | target met |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        c, res = r["config"], r["resources"]
        f = r["fmax_mhz"]
        fmax = f"{f['min']:.1f} / {f['median']:.1f} / {f['max']:.1f}" if f else "-"
        lines.append(
            f"| {r['board']} | {c['rows']} x {c['cols']} | {r['num_pes']} | {_used(res, 'luts')} "
            f"| {_used(res, 'ffs')} | {_used(res, 'dsps')} | {_used(res, 'brams')} | {fmax} "
            f"| {len(r['runs'])} | {r['target_mhz']:.0f} "
            f"| {'yes' if f and f['min'] >= r['target_mhz'] else 'no'} |")
    return "\n".join(lines) + "\n"


def critical_path_lines(result):
    """Markdown list of each seed's critical path (see
    :func:`rsaccel.boards.build.critical_path`); empty if no run reported one."""
    lines = []
    for run in result["runs"]:
        path = run.get("critical_path")
        if not path:
            continue
        sources = ", ".join(f"`{s}`" for s in path["sources"]) or "no rsaccel source line"
        lines.append(f"- seed {run['seed']}: {path['delay_ns']} ns ({path['logic_ns']} ns "
                     f"logic, {path['routing_ns']} ns routing) from `{path['from']}` to "
                     f"`{path['to']}`, through {sources}")
    return "\n".join(["", "Critical paths:", ""] + lines) + "\n" if lines else ""
