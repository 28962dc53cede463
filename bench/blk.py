#!/usr/bin/env python3
"""Block benchmark. The guest (shoji.action=blkbench, guest/blkio.c), with O_DIRECT on a virtio-blk
disk backed by one raw image file: 64 MiB written and read in 1 MiB requests one at a time, read
again 4 at once, then 4000 random 4 KiB writes and reads over 256 MiB, 32 at once. Under shoji-vmm
and under QEMU q35 with virtio-blk-pci (its defaults: aio=threads, one queue), the two
interleaved run by run. Prints each side's median MiB/s (the guest's clock) and KVM exits per
MiB (debugfs), and for each phase the median of the per-run ratios with their spread (lowest to
highest). A run in which a phase failed or is missing counts as incomplete: its ratio line says
how many runs were, and a phase with no complete pair prints no ratio."""
import argparse
import math
import os
import re
import shutil
import statistics
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from boot import kvm_exits, watch_console  # noqa: E402

CMDLINE = "console=ttyS0 quiet shoji.action=blkbench"
PHASES = ("seq-write", "seq-read", "seq-read-qd4", "rand-write-qd32", "rand-read-qd32")
RATE = re.compile(r"shoji-guest: blkio (\S+): ([\d.]+) MiB in ([\d.]+) s")
FAILED = re.compile(r"shoji-guest: blkio \S+ FAILED.*")
SHOJI, QEMU = "shoji-vmm", "qemu virtio-blk-pci"


def run_once(cmd, timeout):
    """{phase: (MiB/s, exits/MiB or None)} for the phases that completed."""
    got, last = {}, {}

    def seen(pid, text, _elapsed):
        if "exits" not in last and "shoji-guest: blk begin" in text:
            last["exits"] = kvm_exits(pid)
        for m in RATE.finditer(text):
            if m[1] not in got:
                now = kvm_exits(pid)
                mib, secs = float(m[2]), max(float(m[3]), 1e-4)
                exits = (now - last["exits"]) / mib if None not in (now, last.get("exits")) else None
                got[m[1]] = (mib / secs, exits)
                last["exits"] = now
    out, _, err = watch_console(cmd, timeout, seen)
    missing = [p for p in PHASES if p not in got]
    if missing:
        failed = FAILED.search(out)
        why = failed[0] if failed else f"no result for {', '.join(missing)}: {out[-500:]}{err[-300:]}"
        sys.stderr.write(f"blk: {cmd[0]}: incomplete run: {why}\n")
    return got


def ratio_line(what, pairs, runs, better):
    """pairs: per-run (shoji, qemu) values of the complete runs."""
    rs = [s / q for s, q in pairs if s and q]
    if not rs:
        print(f"blk: {what}: no run with both sides complete: no ratio")
        return None
    incomplete = f", {runs - len(rs)} of {runs} runs incomplete" if len(rs) < runs else ""
    print(f"ratio {SHOJI} / qemu, {what} (runs {min(rs):.2f}-{max(rs):.2f}x{incomplete}): "
          f"{statistics.median(rs):.2f}x ({better} is better)")
    return statistics.median(rs)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--vmm", default="build/src/shoji-vmm")
    ap.add_argument("--guest-dir", default="build/guest")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--timeout", type=int, default=900)
    a = ap.parse_args()
    kernel = os.path.join(a.guest_dir, "vmlinuz")
    initrd = os.path.join(a.guest_dir, "initramfs.cpio.gz")
    image = os.path.join(tempfile.mkdtemp(prefix="shoji-blkbench-"), "disk.img")
    with open(image, "wb") as f:
        f.truncate(256 << 20)
    peers = {SHOJI: [a.vmm, "--kernel", kernel, "--initrd", initrd, "--memory", "256",
                     "--cmdline", CMDLINE, "--disk", f"{image},format=raw"]}
    qemu = shutil.which("qemu-system-x86_64")
    if not qemu:
        print("blk: FAILED: qemu-system-x86_64 is not installed (scripts/install-deps): no peer to measure against")
        return 1
    peers[QEMU] = [qemu, "-M", "q35", "-enable-kvm", "-cpu", "host", "-m", "256", "-smp", "1",
                   "-nodefaults", "-no-user-config", "-display", "none", "-serial", "stdio",
                   "-no-reboot", "-kernel", kernel, "-initrd", initrd, "-append", CMDLINE,
                   "-drive", f"file={image},if=none,id=d0,format=raw", "-device", "virtio-blk-pci,drive=d0"]
    res = {n: [] for n in peers}
    for _ in range(a.runs):  # interleaved: each run of one side next to one of the other
        for name, cmd in peers.items():
            res[name].append(run_once(cmd, a.timeout))
    print(f"virtio-blk, O_DIRECT in the guest, raw image, {a.runs} runs each, interleaved, medians "
          f"({'emulated harness machine: compare ratios' if os.environ.get('SHOJI_IN_HARNESS') else 'host KVM'})")
    print(f"{'monitor':<20}" + "".join(f"{p:>17}" for p in PHASES))
    for k, unit in ((0, "MiB/s"), (1, "exits/MiB")):
        for name, runs in res.items():
            vals = []
            for p in PHASES:
                v = [r[p][k] for r in runs if p in r and r[p][k] is not None]
                vals.append(f"{statistics.median(v):.1f}" if v else "n/a")
            print(f"{name + ' ' + unit:<20}" + "".join(f"{v:>17}" for v in vals))
    medians = []
    for p in PHASES:
        pairs = [(s[p][0], q[p][0]) for s, q in zip(res[SHOJI], res[QEMU]) if p in s and p in q]
        medians.append(ratio_line(f"{p} MiB/s", pairs, a.runs, "higher"))
    for p in PHASES:
        pairs = [(s[p][1], q[p][1]) for s, q in zip(res[SHOJI], res[QEMU]) if p in s and p in q]
        ratio_line(f"{p} exits/MiB", pairs, a.runs, "lower")
    got = [m for m in medians if m]
    if got:
        geo = math.exp(sum(math.log(m) for m in got) / len(got))
        print(f"ratio {SHOJI} / qemu, geometric mean of the {len(got)} throughput ratios: {geo:.2f}x "
              f"(higher is better)")
    complete = all(p in r for runs in res.values() for r in runs for p in PHASES)
    if not complete:
        print("blk: some runs were incomplete (above): the ratios cover the complete ones only")
    return 0 if complete else 1


if __name__ == "__main__":
    sys.exit(main())
