#!/usr/bin/env python3
"""Boot soak: the desktop image booted again and again under shoji-vmm + shoji-seat and under
QEMU -display sdl (bench/desktop.py's two sides: the same image, the same kinds of devices),
interleaved, with 1 vCPU and 1 GiB as scripts/demo-desktops runs its desktops in the harness.
Each boot lasts until the desktop is on screen, the VM ends, or the time limit. Counted for
each monitor: desktops drawn, triple faults (shoji-vmm: exit status 4, "triple fault" in its
log; QEMU runs with -no-reboot, so a guest reset ends it, which in a guest that is booting and
never reboots itself is a triple fault), time-outs and other failures, each printed as it
happens. Made to tell whether the triple faults seen in the emulated harness machine come from
the monitor or from the emulation: the rates under both monitors, in one run, say which."""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import desktop as d  # noqa: E402


class FaultTrace:
    """KVM's own record of a guest's last moments, where this runs as root with tracefs: its
    exits (reason, guest rip) and the exceptions it injected, in a ring buffer of its own (an
    instance), whose end is printed after a triple fault: by the time the monitor hears of the
    shutdown KVM has reset the vCPU, so the rip in its message says nothing."""
    ROOT = "/sys/kernel/tracing"
    EVENTS = ("kvm/kvm_exit", "kvm/kvm_inj_exception", "kvm/kvm_entry")

    def __init__(self):
        self.dir = os.path.join(self.ROOT, "instances", "shoji-faults")
        try:
            if not os.path.isdir(os.path.join(self.ROOT, "events")):
                subprocess.run(["mount", "-t", "tracefs", "nodev", self.ROOT], stderr=subprocess.DEVNULL)
            if not os.path.isdir(self.dir):
                os.mkdir(self.dir)
            self._write("buffer_size_kb", "16384")
            for ev in self.EVENTS:
                self._write(f"events/{ev}/enable", "1")
            self.ok = True
        except OSError as e:
            print(f"bench/faults: no KVM trace of the faults ({e})")
            self.ok = False

    def _write(self, name, text):
        with open(os.path.join(self.dir, name), "w") as f:
            f.write(text)

    def clear(self):
        if self.ok:
            self._write("trace", "")

    def tail(self, n=60):
        if not self.ok:
            return ""
        with open(os.path.join(self.dir, "trace"), errors="replace") as f:
            lines = [ln.rstrip() for ln in f if not ln.startswith("#")]
        return "\n".join(lines[-n:])

    def close(self):
        if self.ok:
            for ev in self.EVENTS:
                self._write(f"events/{ev}/enable", "0")
            os.rmdir(self.dir)


class Shoji(d.Shoji):
    memory = 1024


class Qemu(d.Qemu):
    memory = 1024
    extra_args = ("-no-reboot",)


def classify(side, cls):
    """What ended a boot that did not draw: triple fault, ended (status), or time-out."""
    if side.alive():
        return "time-out"
    vm = side.procs[0]
    if cls is Shoji:
        with open(os.path.join(side.tmp, "shoji-vmm.err"), "rb") as f:
            err = f.read().decode(errors="replace")
        return "triple fault" if vm.returncode == 4 and "triple fault" in err else f"ended (status {vm.returncode})"
    return "triple fault" if vm.returncode == 0 else f"ended (status {vm.returncode})"


def boot(cls, a, x, base, image, trace):
    tmp = tempfile.mkdtemp(dir=base)
    side = None
    trace.clear()
    t0 = time.monotonic()
    try:
        side = cls(a, x, tmp, image, "work", "blue")
        side.start()
        d.wait_screen(side, d.DESKTOP, 0.8, a.limit, t0)
        return "drawn", time.monotonic() - t0, ""
    except d.Failed as e:
        what = classify(side, cls)
        last = trace.tail() if what == "triple fault" else ""
        return what, time.monotonic() - t0, str(e)[-400:] + (f"\nKVM's last events:\n{last}" if last else "")
    except (OSError, ValueError, subprocess.SubprocessError) as e:
        return "other failure", time.monotonic() - t0, repr(e) + (f": {side.why()}" if side else "")
    finally:
        if side:
            side.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bindir", required=True)
    ap.add_argument("--desktop", required=True, help="a JSON file: img, kernel, initrd, cmdline")
    ap.add_argument("--runs", type=int, default=4, help="boots under each monitor")
    ap.add_argument("--limit", type=int, default=600, help="seconds for a boot to show its desktop")
    ap.add_argument("--cpus", type=int, default=1, help="vCPUs of each VM")
    ap.add_argument("--only", choices=("shoji", "qemu"), help="boot under one monitor only")
    ap.add_argument("--vsock", action="store_true",
                    help="give each VM a vhost-vsock device too, as shojid gives a desktop for its agent")
    a = ap.parse_args()
    if a.vsock:
        Shoji.extra_args = ("--vsock", "4242")
        Qemu.extra_args += ("-device", "vhost-vsock-pci,guest-cid=4242")
    a.vmm, a.seat = os.path.join(a.bindir, "shoji-vmm"), os.path.join(a.bindir, "shoji-seat")
    a.qemu, a.qemu_renderer = shutil.which("qemu-system-x86_64"), "software"
    sdl = a.qemu and subprocess.run([a.qemu, "-display", "help"], capture_output=True, text=True).stdout
    if not (sdl and re.search(r"^sdl$", sdl, re.M)):
        print("bench/faults: FAILED: no qemu-system-x86_64 with an SDL display (install qemu-system-gui)")
        return 1
    image = json.load(open(a.desktop))
    x = d.seatlib.Xvfb(d.WIDTH + 64, d.HEIGHT + 128)
    base = tempfile.mkdtemp(prefix="bench-faults-")
    counts = {"shoji": {}, "qemu": {}}
    trace = FaultTrace()
    try:
        for r in range(a.runs):
            for key, cls in (("shoji", Shoji), ("qemu", Qemu)):
                if a.only and key != a.only:
                    continue
                what, secs, why = boot(cls, a, x, base, image, trace)
                counts[key][what] = counts[key].get(what, 0) + 1
                print(f"boot {r + 1} {cls.what}: {what} after {secs:.0f} s" + (f": {why}" if why else ""), flush=True)
    finally:
        trace.close()
        x.stop()
        shutil.rmtree(base, ignore_errors=True)
    print(f"bench/faults: {a.runs} boots each of the desktop image, {a.cpus} vCPU, 1 GiB"
          f"{', vhost-vsock' if a.vsock else ''} "
          f"({'emulated harness machine' if os.environ.get('SHOJI_IN_HARNESS') else 'host KVM'})")
    for key, c in counts.items():
        print(f"{key}: " + ", ".join(f"{n} {w}" for w, n in sorted(c.items())))
    for key in counts:
        if not a.only or key == a.only:
            print(f"{key}: triple faults {counts[key].get('triple fault', 0)} of {a.runs} boots")
    return 0


if __name__ == "__main__":
    sys.exit(main())
