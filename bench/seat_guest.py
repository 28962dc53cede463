#!/usr/bin/env python3
"""bench/seat --guest: a real guest's frames on screen, shoji against QEMU, measured the same
way, inside the KVM harness. The test guest's gpubench action draws shoji.frames= full 1920x1080
frames on /dev/fb0 (virtio-gpu), 20 ms apart, and powers off; each side shows them in an SDL
window on the same virtual X server (Xvfb):

- shoji: shoji-vmm --display socket:...,size=1920x1080 and shoji-seat (--size 1920x1108: the
  picture 1:1 under the bar);
- QEMU: -device virtio-gpu-pci,xres=1920,yres=1080 -display sdl (Debian's qemu-system-gui),
  once with SDL's default renderer and once with SDL's software renderer drawing straight into
  the window (shoji-seat's choice where OpenGL is llvmpipe, as under Xvfb).

Measured: the CPU time spent outside the guest's vCPUs (the monitor's threads other than its vCPU
threads, plus shoji-seat; QEMU's threads other than "CPU n/KVM") from the guest's "gpubench
begin" to its "frames drawn", per frame; and for shoji, the guest's flush -> DAMAGE (monitor) and DAMAGE ->
presented (seat) times. QEMU has no hook for its flush-to-present time. Absolute times in the
emulated harness machine mean little; the ratio in one run is what to read."""
import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
import seatlib  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")
DISPLAY_STATS = re.compile(r"flush to damage median (\d+) us, worst (\d+) us")


class ThreadCpu:
    """Samples a process's threads, keeping each thread's last CPU time (threads gone by the
    end keep what they had)."""

    def __init__(self, pid, skip):
        self.pid, self.skip, self.last = pid, re.compile(skip), {}

    def sample(self):
        try:
            tids = os.listdir(f"/proc/{self.pid}/task")
        except OSError:
            return
        for tid in tids:
            try:
                with open(f"/proc/{self.pid}/task/{tid}/comm") as f:
                    comm = f.read().strip()
                with open(f"/proc/{self.pid}/task/{tid}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if not self.skip.match(comm):
                self.last[tid] = (int(fields[11]) + int(fields[12])) / TICK

    def total(self):
        return sum(self.last.values())


def cpu_while_drawing(proc, counters, log, frames):
    """Samples the counters until proc exits; returns their CPU seconds between the guest's
    "gpubench begin" and its "frames drawn" (the serial log, looked at every 50 ms), so boot
    and shutdown are not in it."""
    at = {}
    while proc.poll() is None:
        for c in counters:
            c.sample()
        try:
            text = open(log, errors="replace").read()
        except OSError:
            text = ""
        for mark in ("gpubench begin", f"gpubench {frames} frames drawn"):
            if mark in text and mark not in at:
                at[mark] = sum(c.total() for c in counters)
        time.sleep(0.05)
    assert len(at) == 2, f"the guest did not draw its frames: {text[-1500:]}"
    return at[f"gpubench {frames} frames drawn"] - at["gpubench begin"]


def run_shoji(a, x, frames, tmp):
    sock, log = f"{tmp}/display.sock", f"{tmp}/serial.log"
    vmm = subprocess.Popen([a.vmm, "--kernel", a.kernel, "--initrd", a.initrd, "--memory", "256",
                            "--cmdline", f"console=ttyS0 quiet shoji.action=gpubench shoji.frames={frames} shoji.name=b",
                            "--display", f"socket:{sock},size=1920x1080", "--serial", f"file:{log}", "--stats"],
                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seatlib.wait_until(lambda: os.path.exists(sock), 60, "the display socket")
    ctl = f"{tmp}/seat.sock"
    seat = subprocess.Popen([a.seat, "--control", ctl, "--size", "1920x1108", "--vm", f"b={sock},label=blue"],
                            env=x.env(), stderr=subprocess.DEVNULL)
    cpu = cpu_while_drawing(vmm, [ThreadCpu(vmm.pid, r"vcpu\d+$"), ThreadCpu(seat.pid, r"$^")], log, frames)
    stats = seatlib.call(ctl, {"cmd": "stats"})
    seat.kill()
    seat.wait()
    err = vmm.stderr.read()
    assert vmm.returncode == 0, (vmm.returncode, err[-2000:])
    d = DISPLAY_STATS.search(err)
    return cpu, stats["frame_ms"], (int(d[1]), int(d[2])) if d else None


# SDL's software renderer drawing straight into the window (what shoji-seat's --renderer auto
# picks where OpenGL is llvmpipe), for QEMU's SDL display too: the same drawing path on both.
SOFTWARE_SDL = {"SDL_RENDER_DRIVER": "software", "SDL_FRAMEBUFFER_ACCELERATION": "0"}


def run_qemu(a, x, frames, tmp, software=False):
    log = f"{tmp}/serial.log"
    q = subprocess.Popen([a.qemu, "-enable-kvm", "-cpu", "host", "-m", "256", "-smp", "1", "-M", "q35",
                          "-nodefaults", "-no-user-config", "-no-reboot", "-device",
                          "virtio-gpu-pci,xres=1920,yres=1080", "-display", "sdl", "-serial", f"file:{log}",
                          "-kernel", a.kernel, "-initrd", a.initrd, "-append",
                          f"console=ttyS0 quiet shoji.action=gpubench shoji.frames={frames} shoji.name=b"],
                         env=dict(x.env(), **(SOFTWARE_SDL if software else {})), stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    return cpu_while_drawing(q, [ThreadCpu(q.pid, r"CPU \d+/KVM$")], log, frames)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bindir", required=True)
    ap.add_argument("--guest-dir", required=True)
    ap.add_argument("--frames", type=int, default=100)
    ap.add_argument("--runs", type=int, default=2)
    a = ap.parse_args()
    a.vmm, a.seat = os.path.join(a.bindir, "shoji-vmm"), os.path.join(a.bindir, "shoji-seat")
    a.kernel, a.initrd = os.path.join(a.guest_dir, "vmlinuz"), os.path.join(a.guest_dir, "initramfs.cpio.gz")
    a.qemu = shutil.which("qemu-system-x86_64")
    sdl = a.qemu and subprocess.run([a.qemu, "-display", "help"], capture_output=True, text=True).stdout
    have_qemu = bool(sdl and re.search(r"^sdl$", sdl, re.M))
    x = seatlib.Xvfb(1920, 1200)
    base = tempfile.mkdtemp(prefix="bench-seat-guest-")  # /tmp: sockets cannot live on the harness's 9p tree
    res = {"shoji": [], "qemu": [], "qemu-software": []}
    lat, seat_ms = [], []
    try:
        for r in range(a.runs):  # interleaved
            cpu, fm, d = run_shoji(a, x, a.frames, tempfile.mkdtemp(dir=base))
            seat_ms += fm
            if d:
                lat.append(d)
            res["shoji"].append(cpu * 1000 / a.frames)
            for software, key in ((False, "qemu"), (True, "qemu-software")):
                if have_qemu:
                    q = run_qemu(a, x, a.frames, tempfile.mkdtemp(dir=base), software)
                    res[key].append(q * 1000 / a.frames)
    finally:
        x.stop()
        shutil.rmtree(base, ignore_errors=True)
    s = statistics.median(res["shoji"])
    print(f"guest frames: {a.frames} full 1920x1080 frames, 20 ms apart (gpubench), {a.runs} runs, Xvfb")
    print(f"shoji (monitor outside vCPUs + seat): {s:.2f} ms CPU per frame (runs: "
          f"{', '.join(f'{v:.2f}' for v in res['shoji'])})")
    if lat:
        print(f"shoji guest flush -> DAMAGE (monitor): median of runs' medians "
              f"{statistics.median(m for m, _ in lat) / 1000:.2f} ms, worst {max(w for _, w in lat) / 1000:.2f} ms")
    if seat_ms:
        print(f"shoji DAMAGE read -> presented (seat): median {statistics.median(seat_ms):.2f} ms, "
              f"worst {max(seat_ms):.2f} ms")
    if have_qemu:
        for key, what in (("qemu", "QEMU -display sdl, SDL's default renderer"),
                          ("qemu-software", "QEMU -display sdl, SDL software into the window")):
            q = statistics.median(res[key])
            print(f"{what} (threads outside vCPUs): {q:.2f} ms CPU per frame (runs: "
                  f"{', '.join(f'{v:.2f}' for v in res[key])})")
            print(f"ratio shoji / {key}, CPU per frame: {s / q:.2f}x (lower is better)" if q > 0
                  else f"{key}: its cost was below the noise; no ratio")
    else:
        print("QEMU: no SDL display in this qemu-system-x86_64 (install qemu-system-gui); not compared")
    return 0


if __name__ == "__main__":
    sys.exit(main())
