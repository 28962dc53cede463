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
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from phases import print_table, ratios, run_phases  # noqa: E402

CMDLINE = "console=ttyS0 quiet shoji.action=blkbench"
PHASES = ("seq-write", "seq-read", "seq-read-qd4", "rand-write-qd32", "rand-read-qd32")
SHOJI, QEMU = "shoji-vmm", "qemu"


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
            res[name].append(run_phases(cmd, a.timeout, PHASES, "shoji-guest: blk begin", "blk"))
    print(f"virtio-blk, O_DIRECT in the guest, raw image, {a.runs} runs each, interleaved, medians "
          f"({'emulated harness machine: compare ratios' if os.environ.get('SHOJI_IN_HARNESS') else 'host KVM'})")
    print_table(res, PHASES)
    ratios(SHOJI, QEMU, res[SHOJI], res[QEMU], PHASES, "blk")
    complete = all(p in r for runs in res.values() for r in runs for p in PHASES)
    if not complete:
        print("blk: some runs were incomplete (above): the ratios cover the complete ones only")
    return 0 if complete else 1


if __name__ == "__main__":
    sys.exit(main())
