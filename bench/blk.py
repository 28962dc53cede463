#!/usr/bin/env python3
"""Block benchmark: the guest writes then reads 64 MiB sequentially with O_DIRECT on a virtio-blk
disk backed by the same raw image file, under shoji-vmm and under QEMU q35 with
virtio-blk-pci, interleaved in one run. Prints each side's MB/s (as the guest's dd reports it),
KVM exits per MiB moved (from the VM's debugfs statistics) and the ratios."""
import argparse
import os
import re
import shutil
import statistics
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from boot import kvm_exits, watch_console  # noqa: E402

CMDLINE = "console=ttyS0 quiet shoji.action=blkbench"
MIB_MOVED = 64
RATE = re.compile(r"shoji-guest: blk (write|read): 64 MiB in ([\d.]+) s")
FAILED = re.compile(r"shoji-guest: blk (write|read) FAILED.*")


def run_once(cmd, timeout):
    marks, rates = {}, {}

    def seen(pid, text, _elapsed):
        if "begin" not in marks and "shoji-guest: blk begin" in text:
            marks["begin"] = kvm_exits(pid)
        for m in RATE.finditer(text):
            if m[1] not in marks:
                marks[m[1]] = kvm_exits(pid)
                seconds = max(float(m[2]), 0.01)  # /proc/uptime counts in 10 ms steps
                rates[m[1]] = MIB_MOVED * 1.048576 / seconds
    out, _, err = watch_console(cmd, timeout, seen)
    failed = FAILED.search(out)
    if failed or len(rates) < 2:
        why = failed[0] if failed else f"incomplete run: {out[-600:]}{err[-400:]}"
        sys.stderr.write(f"blk: {cmd[0]}: {why}\n")
        return None
    exits = {}
    if None not in (marks.get("begin"), marks.get("write"), marks.get("read")):
        exits["write"] = (marks["write"] - marks["begin"]) / MIB_MOVED
        exits["read"] = (marks["read"] - marks["write"]) / MIB_MOVED
    return rates, exits


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--vmm", default="build/src/shoji-vmm")
    ap.add_argument("--guest-dir", default="build/guest")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--timeout", type=int, default=600)
    a = ap.parse_args()
    kernel = os.path.join(a.guest_dir, "vmlinuz")
    initrd = os.path.join(a.guest_dir, "initramfs.cpio.gz")
    image = os.path.join(tempfile.mkdtemp(prefix="shoji-blkbench-"), "disk.img")
    with open(image, "wb") as f:
        f.truncate(256 << 20)
    peers = {"shoji-vmm": [a.vmm, "--kernel", kernel, "--initrd", initrd, "--memory", "256",
                           "--cmdline", CMDLINE, "--disk", image]}
    qemu = shutil.which("qemu-system-x86_64")
    if qemu:
        peers["qemu virtio-blk-pci"] = [
            qemu, "-M", "q35", "-enable-kvm", "-cpu", "host", "-m", "256", "-smp", "1",
            "-nodefaults", "-no-user-config", "-display", "none", "-serial", "stdio",
            "-no-reboot", "-kernel", kernel, "-initrd", initrd, "-append", CMDLINE,
            "-drive", f"file={image},if=none,id=d0,format=raw",
            "-device", "virtio-blk-pci,drive=d0"]
    res = {n: [] for n in peers}
    for _ in range(a.runs):
        for name, cmd in peers.items():
            res[name].append(run_once(cmd, a.timeout))
    print(f"virtio-blk, 64 MiB sequential O_DIRECT, 1 MiB requests, {a.runs} runs each "
          f"({'emulated harness machine: compare ratios' if os.environ.get('SHOJI_IN_HARNESS') else 'host KVM'})")
    print(f"{'monitor':<22} {'write MB/s':>11} {'read MB/s':>10} {'exits/MiB w':>12} {'exits/MiB r':>12}")
    med, failed = {}, []
    for name, runs in res.items():
        if None in runs:  # a guest step failed: no figure for this monitor at all
            failed.append(name)
            print(f"{name:<22} FAILED: {runs.count(None)} of {len(runs)} runs failed in the guest (see above)")
            continue

        def m(kind, key):
            v = [r[kind][key] for r in runs if key in r[kind]]
            return statistics.median(v) if v else None
        med[name] = (m(0, "write"), m(0, "read"), m(1, "write"), m(1, "read"))
        print(f"{name:<22} " + " ".join(
            f"{'n/a' if v is None else f'{v:.1f}':>{w}}" for v, w in zip(med[name], (11, 10, 12, 12))))
    if len(med) == 2 and not failed:
        s, q = med["shoji-vmm"], med["qemu virtio-blk-pci"]
        for i, (what, better) in enumerate((("write throughput", "higher"), ("read throughput", "higher"),
                                            ("write exits/MiB", "lower"), ("read exits/MiB", "lower"))):
            if s[i] and q[i]:
                print(f"ratio shoji-vmm / qemu, {what}: {s[i] / q[i]:.2f}x ({better} is better)")
    if failed:
        print(f"blk: FAILED ({', '.join(failed)}): no ratio is printed")
        return 1
    return 0 if med["shoji-vmm"][0] else 1


if __name__ == "__main__":
    sys.exit(main())
