#!/usr/bin/env python3
"""UEFI boot benchmark: the same disk (tests/integration/efidisk.py: systemd-boot on an EFI system
partition, the test guest behind it) through the same Debian OVMF, shoji-vmm against QEMU's
i440FX machine (`-M pc`, the chipset shoji-vmm offers the firmware), interleaved in one run:
time from start to the guest's init marker and KVM exits to that point (KVM's per-VM statistics
in debugfs), with ratios; then where the exits go, from the kernel's kvm_exit, kvm_pio and
kvm_mmio trace events counted by hist triggers (fw_cfg, flash, PCI configuration, PM timer,
...). Those count every VM on the machine: run nothing else meanwhile. Each run starts from a fresh copy of the variable store template, so both monitors see
the firmware's first boot. A run that does not reach the marker prints a failure, not a
figure."""
import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "integration"))
import boot  # noqa: E402  (the marker watch and the exit count)
import efidisk  # noqa: E402

CMDLINE = "console=ttyS0 quiet shoji.action=poweroff"
TRACEFS = "/sys/kernel/tracing"

# Where an exit's port or address goes: (first, last, what).
PORTS = [(0x510, 0x51B, "fw_cfg"), (0xCF9, 0xCF9, "reset"), (0xCF8, 0xCFF, "PCI config (0xCF8)"),
         (0xB000, 0xB03F, "ACPI PM (timer, S5)"), (0x70, 0x71, "RTC/CMOS"),
         (0x3F8, 0x3FF, "serial"), (0x60, 0x60, "PS/2"), (0x64, 0x64, "PS/2"),
         (0x20, 0x21, "PIC"), (0xA0, 0xA1, "PIC"), (0x40, 0x43, "PIT"), (0x61, 0x61, "PIT"),
         (0x80, 0x80, "POST/debug"), (0x402, 0x402, "POST/debug"), (0x1000, 0xFFFF, "PCI I/O BARs")]
MMIO = [(0xFF000000, 0xFFFFFFFF, "flash"), (0xFE000000, 0xFE0FFFFF, "PCI config (ECAM)"),
        (0xFEE00000, 0xFEEFFFFF, "local APIC"), (0xFEC00000, 0xFEC00FFF, "I/O APIC"),
        (0xFED00000, 0xFED003FF, "HPET"), (0xFED40000, 0xFED44FFF, "TPM probe"),
        (0xA0000, 0xBFFFF, "legacy VGA"), (0x80000000, 0xFDFFFFFF, "PCI BARs"),
        (0x100000000, 1 << 52, "PCI BARs")]
# SVM exit codes the table names (kvm_exit's exit_reason under AMD's SVM).
SVM_EXITS = {0x60: "external interrupt", 0x61: "NMI", 0x64: "interrupt window", 0x72: "CPUID",
             0x78: "HLT", 0x7B: "I/O port", 0x7C: "MSR", 0x400: "nested page fault (MMIO)",
             0x6E: "RDTSC", 0x79: "INVLPG", 0x7F: "shutdown", 0x81: "VMMCALL", 0x8D: "XSETBV",
             0x0: "CR0 read", 0x10: "CR0 write", 0x14: "CR4 write", 0x18: "CR8 write", 0x4E: "#DB"}


def classify(table, value):
    for first, last, what in table:
        if first <= value <= last:
            return what
    return "other"


class Hist:
    """Counts kvm_exit (by reason), kvm_pio (by port) and kvm_mmio (by address) for every VM on
    the machine while it is armed: the runs are one at a time, so the counts are one run's."""

    EVENTS = {"kvm_exit": "exit_reason", "kvm_pio": "port", "kvm_mmio": "gpa"}

    def __init__(self):
        if not os.path.isdir(os.path.join(TRACEFS, "events")):
            os.system(f"mount -t tracefs nodev {TRACEFS} 2>/dev/null")
        self.ok = all(os.path.exists(self._path(e, "trigger")) for e in self.EVENTS)
        self.spec = {}
        self.dropped = 0
        with open("/proc/cpuinfo") as f:
            self.svm = " svm" in f.read()  # exit reasons are named only for AMD's SVM
        for event, key in self.EVENTS.items():  # a trigger an interrupted run left
            if self.ok:
                try:
                    self._write(event, f"!hist:keys={key}:vals=hitcount:size=131072")
                except OSError:
                    pass

    def _path(self, event, name):
        return os.path.join(TRACEFS, "events", "kvm", event, name)

    def _write(self, event, text):
        with open(self._path(event, "trigger"), "w") as f:
            f.write(text)

    def arm(self):
        if not self.ok:
            return
        for event, key in self.EVENTS.items():
            self.spec[event] = f"hist:keys={key}:vals=hitcount:size=131072"
            self._write(event, self.spec[event])

    def read(self):
        """{event: {key: count}}, then the triggers are removed."""
        out = {}
        if not self.ok or not self.spec:
            return out
        for event, key in self.EVENTS.items():
            counts = {}
            with open(self._path(event, "hist")) as f:
                for line in f:
                    if line.startswith("    Dropped:"):
                        self.dropped += int(line.split()[1])
                    if line.startswith("{"):
                        k = line.split(key + ":")[1].split("}")[0].strip().split()[0]
                        counts[int(k, 0)] = int(line.split("hitcount:")[1].split()[0])
            out[event] = counts
            self._write(event, "!" + self.spec[event])
        self.spec = {}
        return out


def causes(hist, svm=True):
    """The exits, port accesses and MMIO accesses grouped by what they reached."""
    groups = {}
    for reason, n in hist.get("kvm_exit", {}).items():
        name = "exit: " + (SVM_EXITS.get(reason, f"0x{reason:x}") if svm else f"0x{reason:x}")
        groups[name] = groups.get(name, 0) + n
    for port, n in hist.get("kvm_pio", {}).items():
        name = "port: " + classify(PORTS, port)
        groups[name] = groups.get(name, 0) + n
    for gpa, n in hist.get("kvm_mmio", {}).items():
        name = "mmio: " + classify(MMIO, gpa)
        groups[name] = groups.get(name, 0) + n
    return groups


def run_once(name, cmd, timeout, hist):
    got = {}

    def seen(pid, text, elapsed):
        if "s" not in got and boot.MARKER in text:
            got.update(s=elapsed, exits=boot.kvm_exits(pid), causes=causes(hist.read(), hist.svm))
    hist.arm()
    try:
        _, status, err = boot.watch_console(cmd, timeout, seen)
    finally:
        hist.read()  # disarms, when the marker never came (or the run was interrupted)
    if "s" not in got:
        sys.stderr.write(f"uefi: FAILED: {name} did not reach the marker (status {status}): {err}\n")
    return got


def peers(a, disk, vars_path, qemu):
    m = str(a.memory)
    out = {"shoji-vmm": [a.vmm, "--firmware", f"{efidisk.OVMF_CODE},vars={vars_path}", "--disk", disk,
                         "--memory", m, "--cpus", "1", "--serial", "stdio"]}
    if qemu:
        out["qemu pc"] = [qemu, "-M", "pc", "-enable-kvm", "-cpu", "host", "-m", m, "-smp", "1",
                          "-nodefaults", "-no-user-config", "-display", "none", "-vga", "none",
                          "-serial", "stdio", "-no-reboot",
                          "-drive", f"if=pflash,format=raw,readonly=on,file={efidisk.OVMF_CODE}",
                          "-drive", f"if=pflash,format=raw,file={vars_path}",
                          "-drive", f"file={disk},if=none,id=d0,format=raw",
                          "-device", "virtio-blk-pci,drive=d0"]
    return out


def report(results, runs):
    print(f"UEFI boot to init marker (OVMF, systemd-boot, test guest), {runs} runs each, 1 vCPU "
          f"({'emulated harness machine: compare ratios, not seconds' if os.environ.get('SHOJI_IN_HARNESS') else 'host KVM'})")
    print(f"{'monitor':<10} {'median s':>9} {'min s':>8} {'max s':>8} {'exits':>9} {'failed':>7}")
    summary = {}
    for name, rs in results.items():
        times = [r["s"] for r in rs if "s" in r]
        exits = [r["exits"] for r in rs if r.get("exits") is not None]
        summary[name] = (statistics.median(times) if times else None,
                         statistics.median(exits) if exits else None)
        print(f"{name:<10} {boot.fmt(summary[name][0]):>9} {boot.fmt(min(times) if times else None):>8} "
              f"{boot.fmt(max(times) if times else None):>8} {boot.fmt(summary[name][1]):>9} "
              f"{len(rs) - len(times):>7}")
    return summary


def report_causes(results):
    last = {name: next((r["causes"] for r in reversed(rs) if r.get("causes")), None)
            for name, rs in results.items()}
    if not any(last.values()):
        print("exit causes: not counted (no kvm trace events with hist triggers on this kernel)")
        return
    names = sorted({k for c in last.values() if c for k in c}, key=lambda k: (k.split(":")[0], k))
    print("where the exits go (last run to the marker; exits by reason, port and MMIO accesses by target;"
          " a user-space MMIO read is two kvm_mmio events)")
    print(f"{'':<36}" + "".join(f"{n:>12}" for n in last))
    for k in names:
        print(f"{k:<36}" + "".join(f"{(c or {}).get(k, 0):>12}" for c in last.values()))
    for name, c in last.items():
        tpm = (c or {}).get("mmio: TPM probe", 0)
        if tpm > 1000:
            print(f"note: under {name} OVMF polled the TPM interface ({tpm} kvm_mmio events): an unclaimed "
                  "read there gives 0, which looks like a TPM not yet ready and is polled (with PM timer "
                  "delays) until OVMF's time-out; shoji-vmm's reads all ones, no TPM at once. That wait "
                  "is part of the difference in time and exits, not the monitor's speed.")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--vmm", default="build/src/shoji-vmm")
    ap.add_argument("--guest-dir", default="build/guest")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--memory", type=int, default=256)
    ap.add_argument("--timeout", type=int, default=900)
    a = ap.parse_args()
    lack = efidisk.missing()
    if lack:
        print(f"uefi: FAILED: this machine lacks {', '.join(lack)} (scripts/install-deps installs them)")
        return 1
    qemu = shutil.which("qemu-system-x86_64")
    if not qemu:
        print("uefi: qemu-system-x86_64 not found; shoji-vmm alone, no ratios")
    work = tempfile.mkdtemp(prefix="shoji-bench-uefi-")
    hist = Hist()
    try:
        disk = os.path.join(work, "efi.img")
        efidisk.make(disk, os.path.join(a.guest_dir, "vmlinuz"),
                     os.path.join(a.guest_dir, "initramfs.cpio.gz"), CMDLINE)
        vars_path = os.path.join(work, "vars.fd")
        results = {}
        for _ in range(a.runs):
            for name, cmd in peers(a, disk, vars_path, qemu).items():
                efidisk.vars_copy(vars_path)
                results.setdefault(name, []).append(run_once(name, cmd, a.timeout, hist))
                time.sleep(1)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    summary = report(results, a.runs)
    report_causes(results)
    if hist.dropped:
        print(f"note: the hist triggers dropped {hist.dropped} keys (table full): the counts above are low")
    s = summary["shoji-vmm"]
    failed = sum(len(rs) - sum(1 for r in rs if "s" in r) for rs in results.values())
    if failed:
        print(f"uefi: FAILED: {failed} run(s) did not reach the marker: no ratio")
        return 1
    if "qemu pc" in summary and s[0] and summary["qemu pc"][0]:
        q = summary["qemu pc"]
        print(f"ratio shoji-vmm / qemu pc, UEFI time to init: {s[0] / q[0]:.2f}x (lower is better; goal <= 0.80x)")
        if s[1] and q[1]:
            print(f"ratio shoji-vmm / qemu pc, KVM exits to init under UEFI: {s[1] / q[1]:.2f}x (lower is better)")
    return 0 if s[0] else 1


if __name__ == "__main__":
    sys.exit(main())
