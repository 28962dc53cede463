#!/usr/bin/env python3
"""Boots the Debian guest under shoji-vmm and checks, from inside the guest, what it sees: CPU
count, RAM (within 2 %), the RTC's date; and how each ending maps to the exit status: power-off,
panic, reboot with --on-reboot exit and restart."""
import os
import sys
import time

import vmmtest

MIB_KIB = 1024


def check_ram(report, memory_mib):
    want = memory_mib * MIB_KIB
    got = report["ram_kib"]
    assert abs(got - want) <= want * 0.02, f"guest sees {got} KiB of RAM, expected {want} ±2 %"


def check_clock(report):
    now = time.time()
    assert report["rtc_epoch"] != "none", "the guest has no RTC (rtc0)"
    rtc = int(report["rtc_epoch"])
    assert abs(rtc - now) < 600, f"guest RTC says {rtc}, host says {now:.0f}"
    assert abs(report["date_epoch"] - now) < 600, f"guest date {report['date_epoch']} vs {now:.0f}"


def test_one_cpu_poweroff(env):
    r = env.boot("poweroff", cpus=1, memory=256)
    assert r.rc == 0, f"exit status {r.rc}, expected 0 (power-off):\n{r.tail()}"
    rep = r.report()
    assert rep["cpus"] == 1 and rep["online"] == "0", rep
    check_ram(rep, 256)
    check_clock(rep)
    # The PCI host bridge, found through the ACPI PCI0 device and MCFG.
    assert rep["pci"].get("0000:00:00.0") == "0x1b36:0x0008", rep["pci"]


def test_virtio_rng(env):
    # A virtio-rng device on PCI, MSI-X interrupts, notifications through ioeventfd.
    r = env.boot("poweroff", extra=["--rng"])
    assert r.rc == 0, f"exit status {r.rc}:\n{r.tail()}"
    rep = r.report()
    assert rep["pci"].get("0000:00:01.0") == "0x1af4:0x1044", rep["pci"]
    data = rep["hwrng"]
    assert len(data) == 32 and data != "0" * 32, f"/dev/hwrng gave {data!r}"


def test_virtio_blk(env):
    # The guest writes a pattern to a disk and flushes it; the host finds it in the image. A
    # read-only disk reads but refuses writes; the serial number reaches the guest.
    import os
    import tempfile
    d = tempfile.mkdtemp(prefix="shoji-blk-")
    rw, ro = os.path.join(d, "rw.img"), os.path.join(d, "ro.img")
    with open(rw, "wb") as f:
        f.truncate(16 << 20)
    with open(ro, "wb") as f:
        f.write(b"READONLY-PATTERN" * 4096)
    r = env.boot("disktest", memory=256,
                 extra=["--disk", f"{rw},serial=shoji-test-1", "--disk", f"{ro},ro"])
    assert r.rc == 0, f"exit status {r.rc}:\n{r.tail()}"
    line = next((l for l in r.out.splitlines() if l.startswith("shoji-guest: disk ")), "")
    assert "write=ok" in line, f"the guest could not write its disk: {line!r}\n{r.tail()}"
    assert "vdb_head=READONLY-PATTERN" in line, line
    assert "vdb_write=refused" in line, line
    assert "vda_serial=shoji-test-1" in line, line
    want = (b"shoji-disk-pattern\n" * 60000)[: 1 << 20]
    with open(rw, "rb") as f:
        assert f.read(1 << 20) == want, "the pattern the guest wrote is not in the image"
    with open(ro, "rb") as f:
        assert f.read() == b"READONLY-PATTERN" * 4096, "the read-only image changed"


def test_virtio_console(env):
    # hvc0 over a Unix socket: the guest's line reaches the host, the host's line the guest.
    import os
    import socket
    import tempfile
    import threading
    path = os.path.join(tempfile.mkdtemp(prefix="shoji-hvc-"), "console.sock")
    got = []

    def client():
        deadline = time.time() + 200
        while time.time() < deadline:
            try:
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.connect(path)
                break
            except OSError:
                time.sleep(0.2)
        else:
            return
        s.settimeout(200)
        buf = b""
        while b"hello-from-hvc0" not in buf:
            chunk = s.recv(4096)
            if not chunk:
                return
            buf += chunk
        got.append(buf)
        s.sendall(b"ping-from-host\n")
        time.sleep(5)
        s.close()

    t = threading.Thread(target=client, daemon=True)
    t.start()
    r = env.boot("hvctest", extra=["--console-socket", path])
    t.join(5)
    assert r.rc == 0, f"exit status {r.rc}:\n{r.tail()}"
    assert got, f"the guest's hvc0 output never reached the socket:\n{r.tail()}"
    assert "shoji-guest: hvc got: ping-from-host" in r.out, r.tail()
    assert not os.path.exists(path), "the console socket was left behind"


def boot_smp(env, **kw):
    """Boots a multi-vCPU guest. Inside the emulated harness machine an SMP guest has been seen,
    rarely and only under host load, to triple-fault before printing anything (vCPU 0 back at
    the reset vector). With no guest output there is no evidence that it is the emulation's
    (vmmtest.emulation_fault), so that one signature is run once more, and the second run
    decides; the rerun is counted with kvm-run's (scripts/test lists it)."""
    r = env.boot("poweroff", **kw)
    if (os.environ.get("SHOJI_IN_HARNESS") and r.rc == 4 and "rip 0xfff0" in r.err
            and "shoji-guest" not in r.out):
        vmmtest.count_rerun(f"test_boot.py boot_smp({kw})", r.err.strip().splitlines()[-1])
        r = env.boot("poweroff", **kw)
    return r


def test_three_cpus(env):
    r = boot_smp(env, cpus=3, memory=384)
    assert r.rc == 0, f"exit status {r.rc}:\n{r.tail()}"
    rep = r.report()
    assert rep["cpus"] == 3 and rep["online"] == "0-2", rep
    check_ram(rep, 384)


def test_vmlinux(env):
    """The same kernel unpacked (the ELF vmlinux guest/build.sh takes out of the bzImage), its
    segments loaded where they say and entered at startup_64, with no decompressor: it boots on two
    vCPUs with all its RAM and its devices found through ACPI."""
    r = boot_smp(env, cpus=2, memory=256, kernel=os.path.join(env.guest_dir, "vmlinux"))
    assert r.rc == 0, f"exit status {r.rc}:\n{r.tail()}"
    rep = r.report()
    assert rep["cpus"] == 2 and rep["online"] == "0-1", rep
    check_ram(rep, 256)
    assert rep["pci"].get("0000:00:00.0") == "0x1b36:0x0008", rep["pci"]


def test_memory_above_4g(env):
    # 3.5 GiB of RAM: 3 GiB below the PCI hole, 512 MiB above 4 GiB.
    r = env.boot("poweroff", cpus=1, memory=3584)
    assert r.rc == 0, f"exit status {r.rc}:\n{r.tail()}"
    check_ram(r.report(), 3584)


def test_panic(env):
    r = env.boot("panic")
    assert r.rc == 3, f"exit status {r.rc}, expected 3 (panic):\n{r.tail()}"
    assert "panicked" in r.err, r.err


def test_reboot_exit(env):
    r = env.boot("reboot", extra=["--on-reboot", "exit"])
    assert r.rc == 2, f"exit status {r.rc}, expected 2 (reboot):\n{r.tail()}"
    assert r.out.count("shoji-guest: init started") == 1, r.tail()
    assert "reset" in r.err, r.err


def test_reboot_restart(env):
    r = env.boot("reboot", stop_when=lambda out: out.count("shoji-guest: init started") >= 2,
                 timeout=400)
    assert r.out.count("shoji-guest: init started") >= 2, f"the guest did not boot twice:\n{r.tail()}"
    assert r.rc == 6, f"exit status {r.rc}, expected 6 (stopped by signal):\n{r.tail()}"


if __name__ == "__main__":
    import test_vmm  # the monitor's own errors and synthetic guests share this file's harness boot
    sys.exit(vmmtest.main(test_vmm.TESTS + [test_one_cpu_poweroff, test_virtio_rng, test_virtio_blk,
                                            test_virtio_console, test_three_cpus, test_vmlinux,
                                            test_memory_above_4g,
                                            test_panic, test_reboot_exit],
                          sys.argv[1:], slow=[test_reboot_restart]))
