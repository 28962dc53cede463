"""phases: what bench/blk and bench/qcow2 share. The guest runs guest/blkio.c phases, each
printing "shoji-guest: blkio PHASE: N MiB in S s" (or "... PHASE FAILED: why"); the host reads
each phase's rate and the KVM exits between the marks, and compares two monitors run by run: a
ratio is the median of the per-run ratios, printed with their lowest and highest and with the
number of incomplete runs."""
import math
import re
import statistics
import sys

from boot import kvm_exits, watch_console

RATE = re.compile(r"shoji-guest: blkio (\S+): ([\d.]+) MiB in ([\d.]+) s")
FAILED = re.compile(r"shoji-guest: blkio \S+ FAILED.*")


def run_phases(cmd, timeout, phases, begin, tag):
    """Runs cmd (a monitor booting the test guest) and returns {phase: (MiB/s, exits/MiB or
    None)} for the phases that completed; begin is the guest's line before the first phase. An
    incomplete run is reported on stderr, prefixed with tag."""
    got, last = {}, {}

    def seen(pid, text, _elapsed):
        if "exits" not in last and begin in text:
            last["exits"] = kvm_exits(pid)
        for m in RATE.finditer(text):
            if m[1] not in got:
                now = kvm_exits(pid)
                mib, secs = float(m[2]), max(float(m[3]), 1e-4)
                exits = (now - last["exits"]) / mib if None not in (now, last.get("exits")) else None
                got[m[1]] = (mib / secs, exits)
                last["exits"] = now
    out, _, err = watch_console(cmd, timeout, seen)
    missing = [p for p in phases if p not in got]
    if missing:
        failed = FAILED.search(out)
        why = failed[0] if failed else f"no result for {', '.join(missing)}: {out[-500:]}{err[-300:]}"
        sys.stderr.write(f"{tag}: {cmd[0]}: incomplete run: {why}\n")
    return got


def print_table(res, phases, width=20):
    """Each monitor's median MiB/s and exits/MiB per phase; res: {monitor: [run results]}."""
    print(f"{'monitor':<{width}}" + "".join(f"{p:>17}" for p in phases))
    for k, unit in ((0, "MiB/s"), (1, "exits/MiB")):
        for name, runs in res.items():
            vals = []
            for p in phases:
                v = [r[p][k] for r in runs if p in r and r[p][k] is not None]
                vals.append(f"{statistics.median(v):.1f}" if v else "n/a")
            print(f"{name + ' ' + unit:<{width}}" + "".join(f"{v:>17}" for v in vals))


def ratio_line(a, b, what, a_runs, b_runs, phase, k, better, tag):
    """Prints the ratio a / b of field k (0: MiB/s, 1: exits/MiB) of phase, from the runs both
    completed (taken pairwise: run i of a with run i of b); returns its median or None."""
    pairs = [(x[phase][k], y[phase][k]) for x, y in zip(a_runs, b_runs) if phase in x and phase in y]
    rs = [s / q for s, q in pairs if s and q]
    runs = len(a_runs)
    if not rs:
        print(f"{tag}: {a} / {b}, {what}: no run with both sides complete: no ratio")
        return None
    incomplete = f", {runs - len(rs)} of {runs} runs incomplete" if len(rs) < runs else ""
    med = statistics.median(rs)
    print(f"ratio {a} / {b}, {what} (runs {min(rs):.2f}-{max(rs):.2f}x{incomplete}): {med:.2f}x "
          f"({better} is better)")
    return med


def ratios(a, b, a_runs, b_runs, phases, tag, exits=True):
    """The throughput ratio of each phase, then (if exits) the exits ratio of each, then the
    geometric mean of the throughput ratios; returns the list of throughput medians."""
    meds = [ratio_line(a, b, f"{p} MiB/s", a_runs, b_runs, p, 0, "higher", tag) for p in phases]
    if exits:
        for p in phases:
            ratio_line(a, b, f"{p} exits/MiB", a_runs, b_runs, p, 1, "lower", tag)
    got = [m for m in meds if m]
    if got:
        geo = math.exp(sum(math.log(m) for m in got) / len(got))
        print(f"ratio {a} / {b}, geometric mean of the {len(got)} throughput ratios: {geo:.2f}x (higher is better)")
    return meds
