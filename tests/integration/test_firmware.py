#!/usr/bin/env python3
"""Firmware boot: Debian's OVMF under shoji-vmm boots the test guest from a disk (efidisk.py:
systemd-boot on an EFI system partition) to its init marker; the chipset the firmware looked
for is there; virtio devices work after the firmware placed their BARs; the disk stays the
boot disk when another device moves it to another slot (the boot order in fw_cfg); the guest
powers off (exit 0) and reboots through the firmware again; the variable store keeps what the
firmware wrote across runs, and a boot entry the guest made is what the firmware boots next;
the seat's keys drive the boot menu through PS/2, then the guest through virtio-input; bad firmware inputs get one clear error before any guest runs. The same disk boots in QEMU
with the same OVMF (interop). Skips, counted as such, where OVMF, mtools, dosfstools or
systemd-boot-efi are missing.

In the harness it runs with -icount (SHOJI_HARNESS_ICOUNT): OVMF's interrupt handlers write
CR8 on the way out, and the harness's QEMU raises a nested guest's virtual interrupt there
without its global lock and aborts; with guest time following executed instructions, no tick
arrives while a handler runs, so the abort does not come."""
import os
import shutil
import subprocess
import sys
import tempfile
import time

import efidisk
import test_gpu
import vmmtest

SKIP = 77


class Disk:
    """One EFI disk and a variable store per test run, in a scratch directory."""

    def __init__(self, env, cmdline, menu=None):
        self.dir = tempfile.mkdtemp(prefix="shoji-fw-")
        self.disk = os.path.join(self.dir, "efi.img")
        self.vars = os.path.join(self.dir, "vars.fd")
        efidisk.make(self.disk, env.kernel, env.initrd, cmdline, menu=menu)
        efidisk.vars_copy(self.vars)

    def args(self, vars_path=None, code=efidisk.OVMF_CODE):
        return ["--firmware", f"{code},vars={vars_path or self.vars}", "--disk", self.disk]

    def close(self):
        shutil.rmtree(self.dir, ignore_errors=True)


def boot(env, disk, extra=(), memory=256, **kw):
    r = env.run(disk.args() + ["--memory", str(memory), *extra], **kw)
    if vmmtest.emulation_fault(r.rc, r.err, r.out):
        env.emulation_faults.append(r.err.strip().splitlines()[-1])
    return r


def test_boot_poweroff_devices(env):
    disk = Disk(env, "console=ttyS0 quiet shoji.action=poweroff")
    try:
        with open(disk.vars, "rb") as f:
            before = f.read()
        r = boot(env, disk, extra=["--rng"], timeout=300)
        assert r.rc == 0, f"exit status {r.rc}, expected 0 (power-off):\n{r.tail()}"
        rep = r.report()
        pci = rep["pci"]
        assert pci.get("0000:00:00.0") == "0x8086:0x1237", pci  # the i440FX the firmware looked for
        assert pci.get("0000:00:01.0") == "0x8086:0x7000", pci
        assert pci.get("0000:00:01.3") == "0x8086:0x7113", pci
        # virtio-rng and the disk answered after the firmware placed their BARs.
        assert "0x1af4:0x1044" in pci.values() and "0x1af4:0x1042" in pci.values(), pci
        assert pci.get("0000:00:03.0") == "0x1af4:0x1042", pci  # the disk behind the RNG
        assert len(rep["hwrng"]) == 32 and rep["hwrng"] != "0" * 32, rep["hwrng"]
        assert abs(rep["ram_kib"] - 256 * 1024) <= 256 * 1024 * 0.1, rep  # the firmware keeps some
        with open(disk.vars, "rb") as f:
            after = f.read()
        assert len(after) == len(before), "the variable store changed size"
        assert after != before, "the firmware wrote no variable (boot entries, timeouts) to the store"
        # A second run starts from what the first left, with the disk in another slot (no RNG
        # ahead of it): the firmware's entry for the old slot is stale, the boot order finds it.
        r = boot(env, disk, timeout=300)
        assert r.rc == 0, f"second boot: exit status {r.rc}:\n{r.tail()}"
        assert r.report()["pci"].get("0000:00:02.0") == "0x1af4:0x1042", r.tail()  # it did move
    finally:
        disk.close()


def test_reboot_through_firmware(env):
    disk = Disk(env, "console=ttyS0 quiet shoji.action=reboot")
    try:
        r = boot(env, disk, stop_when=lambda out: out.count(vmmtest.GUEST_BOOTED) >= 2, timeout=300)
        assert r.out.count(vmmtest.GUEST_BOOTED) >= 2, f"the guest did not boot twice:\n{r.tail()}"
        assert r.rc == 6, f"exit status {r.rc}, expected 6 (stopped by signal):\n{r.tail()}"
    finally:
        disk.close()


def _efivar_lines(out):
    return [ln.split("shoji-guest: efivar ", 1)[1].strip() for ln in out.splitlines()
            if "shoji-guest: efivar " in ln]


def test_boot_entry_persists(env):
    """A boot entry the guest makes as efibootmgr would (Boot0100, first in BootOrder) is in the
    variable store after power-off, and the firmware boots through it the next time."""
    disk = Disk(env, "console=ttyS0 quiet shoji.action=efivar")
    try:
        r = boot(env, disk, timeout=300)
        lines = _efivar_lines(r.out)
        assert r.rc == 0 and len(lines) == 2, f"exit status {r.rc}, efivar lines {lines}:\n{r.tail()}"
        assert "Boot0100=absent" in lines[0] and "FAILED" not in lines[0], lines
        assert "BootOrder=0100," in lines[1] and "Boot0100=present" in lines[1], lines
        r = boot(env, disk, timeout=300)
        lines = _efivar_lines(r.out)
        assert r.rc == 0 and len(lines) == 1, f"exit status {r.rc}, efivar lines {lines}:\n{r.tail()}"
        assert lines[0].startswith("BootCurrent=0100 BootOrder=0100,") and "Boot0100=present" in lines[0], lines
    finally:
        disk.close()


KEY_DOWN, KEY_ENTER, KEY_A = 108, 28, 30


def test_seat_keys_reach_boot_menu_then_virtio_input(env):
    """The firmware's screen reaches the seat, and keys from the seat reach systemd-boot's menu
    through the PS/2 keyboard (the firmware has no virtio-input driver): Down and Enter boot the
    second entry, whose guest reads keys from virtio-input; a key the seat sends then arrives
    there, once."""
    disk = Disk(env, None, menu=[("shoji first entry", "console=ttyS0 quiet shoji.action=poweroff"),
                                 ("shoji second entry", "console=ttyS0 quiet shoji.action=gputest")])
    vm = test_gpu.Vm(env, "gputest", boot=disk.args())
    seat = None
    try:
        seat = test_gpu.Seat(vm.display)
        seat.wait(lambda: "shoji second entry" in vm.log(), timeout=300, vm=vm)  # the menu, on serial too
        # The firmware's screen (GOP on virtio-gpu) reaches the seat like any other.
        seat.wait(lambda: seat.surface is not None and seat.damage, timeout=60, vm=vm)
        for key in (KEY_DOWN, KEY_ENTER):
            end = time.monotonic() + 2
            seat.wait(lambda: time.monotonic() > end, vm=vm)
            seat.key(key)
        seat.wait(lambda: "shoji-keys: listening" in vm.log(), timeout=300, vm=vm)
        assert "Power down" not in vm.log(), "the first entry booted:\n" + vm.tail()
        seat.key(KEY_A)
        seat.wait(lambda: f"shoji-key: {KEY_A}" in vm.log(), timeout=120, vm=vm)
        end = time.monotonic() + 3
        seat.wait(lambda: time.monotonic() > end, vm=vm)
        assert vm.log().count(f"shoji-key: {KEY_A}") == 1, vm.tail()
    finally:
        if seat:
            seat.close()
        vm.stop()
        disk.close()


def test_bad_firmware_inputs(env):
    disk = Disk(env, "console=ttyS0 quiet shoji.action=poweroff")
    try:
        small = os.path.join(disk.dir, "small.fd")
        with open(small, "wb") as f:
            f.write(b"\0" * 1000)
        fifo = os.path.join(disk.dir, "fifo")
        os.mkfifo(fifo)
        with open(disk.vars, "rb") as f:
            vars_before = f.read()
        cases = [
            (disk.args(code=small), "small.fd"),
            (disk.args(code=fifo), "fifo"),
            (disk.args(code=os.path.join(disk.dir, "absent.fd")), "absent.fd"),
            (disk.args(vars_path=os.path.join(disk.dir, "absent-vars.fd")), "absent-vars.fd"),
            (disk.args(vars_path=small), "small.fd"),
            (disk.args(vars_path=disk.dir), disk.dir),
            (["--firmware", efidisk.OVMF_CODE, "--disk", disk.disk], "vars="),
            (disk.args() + ["--kernel", env.kernel], "--kernel"),
        ]
        for args, named in cases:
            r = env.run(args + ["--memory", "256"], timeout=60)
            assert r.rc == 1, f"{args}: exit status {r.rc}, expected 1:\n{r.err}"
            lines = [ln for ln in r.err.splitlines() if ln.strip()]
            assert len(lines) == 1 and named in lines[0], f"{args}: expected one error naming {named}:\n{r.err}"
        with open(disk.vars, "rb") as f:
            assert f.read() == vars_before, "a refused start wrote the variable store"
    finally:
        disk.close()


def test_same_disk_boots_in_qemu(env):
    """Interop: the disk and OVMF that shoji-vmm boots boot in QEMU's i440FX machine too."""
    qemu = shutil.which("qemu-system-x86_64")
    if not qemu or not os.path.exists("/dev/kvm"):
        raise AssertionError("qemu-system-x86_64 with KVM is needed for the interop check")
    disk = Disk(env, "console=ttyS0 quiet shoji.action=poweroff")
    try:
        p = subprocess.run([qemu, "-machine", "pc,accel=kvm", "-m", "256", "-nodefaults", "-display", "none",
                            "-serial", "stdio", "-no-reboot",
                            "-drive", f"if=pflash,format=raw,readonly=on,file={efidisk.OVMF_CODE}",
                            "-drive", f"if=pflash,format=raw,file={disk.vars}",
                            "-drive", f"file={disk.disk},if=none,id=d,format=raw",
                            "-device", "virtio-blk-pci,drive=d"],
                           capture_output=True, text=True, timeout=300)
        assert p.returncode == 0 and vmmtest.GUEST_BOOTED in p.stdout, \
            f"QEMU: exit {p.returncode}:\n{p.stdout[-2000:]}{p.stderr[-1000:]}"
    finally:
        disk.close()


if __name__ == "__main__":
    lack = efidisk.missing()
    if lack:
        print(f"skip: firmware boot needs {', '.join(lack)} (apt install {' '.join(lack)})")
        sys.exit(SKIP)
    sys.exit(vmmtest.main([test_bad_firmware_inputs, test_boot_poweroff_devices, test_boot_entry_persists,
                           test_seat_keys_reach_boot_menu_then_virtio_input, test_reboot_through_firmware,
                           test_same_disk_boots_in_qemu], sys.argv[1:]))
