#!/usr/bin/env python3
"""bench/desktop: the browser and desktop images (guest/image/recipes) on screen, shoji against
QEMU with the same image, measured the same way in one run, inside the KVM harness. Each side
boots the image by direct kernel boot (the kernel, initrd and command line of the image's own
ESP and manifest, which bench/desktop takes out with tests/image/boot_files.py before the
harness starts) on a qcow2 overlay, with a user-mode network, 2 vCPUs (--cpus) and a 1280x800
display shown in an SDL window on one virtual X server (Xvfb):

- shoji: shoji-vmm --display socket:... and shoji-seat (the picture 1:1 under the bar);
- QEMU: virtio-gpu-pci,xres=1280,yres=800 -display sdl (Debian's qemu-system-gui), with SDL's
  software renderer drawing into the window (what shoji-seat picks where OpenGL is llvmpipe, as
  under Xvfb; --qemu-renderer default for SDL's own choice).

browse: from the monitor's start to the browser's first page on screen: the kiosk's start page
(its background, #1f3b52, over a third of the window), seen in screenshots taken every 0.5 s
(shoji: the seat's control socket; QEMU: QMP screendump). shoji browse adds to this only the
toolstack's part (an overlay and a jailed monitor: bench/lifecycle measures that).

desktop: once sway's background is on screen, a full-screen foot terminal changes its colour
every 10 ms (more often than either side can show) and the guest counts the frames it hands
the device, its virtio-gpu RESOURCE_FLUSH commands (the guest kernel's virtio_gpu_cmd_queue
trace event), over --seconds seconds: frames per second, and the host CPU spent outside the
vCPUs per frame (the monitor's threads other than its vCPUs plus shoji-seat; QEMU's threads
other than "CPU n/KVM"), the way bench/seat --guest counts it.

A run whose guest step failed (no page, no desktop, no count) prints FAILED and no figure.
Absolute times in the emulated harness machine mean little; the ratios in one run are what to
read."""
import argparse
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
import seatlib  # noqa: E402
from seat_guest import SOFTWARE_SDL, ThreadCpu  # noqa: E402

WIDTH, HEIGHT, BAR = 1280, 800, 28
PAGE = 0x1F3B52  # start.html's background
DESKTOP = (0x2B4A63, 0x111111)  # sway's background and bar (etc/sway/shoji-desktop.conf)
# The animation: written by root on the serial console, run by sway as the user in foot.
ANIM = ("printf '%s\\n' '#!/bin/sh' 'while :; do printf \"\\033[48;2;200;0;0m\\033[2J\"; sleep 0.01; "
        "printf \"\\033[48;2;0;0;200m\\033[2J\"; sleep 0.01; done' > /tmp/anim; chmod 755 /tmp/anim")
ANIM_COLOURS = (0xC80000, 0x0000C8)
START = ("A=/run/user/1000; runuser -u user -- env XDG_RUNTIME_DIR=$A SWAYSOCK=$(ls $A/sway-ipc.*.sock | head -1) "
         "swaymsg exec 'foot --fullscreen /tmp/anim'")
# Counts RESOURCE_FLUSH (0x0104) commands over S seconds; the quotes keep the markers out of
# the console's echo of the line itself.
COUNT = ("T=/sys/kernel/tracing; [ -d $T/events ] || T=/sys/kernel/debug/tracing; "
         "E=$T/events/virtio_gpu/virtio_gpu_cmd_queue; echo 'type == 260' > $E/filter && echo 1 > $E/enable && "
         "echo > $T/trace && echo 'bench-''begin' && sleep {s} && echo 'bench-''end' $(grep -c cmd_queue $T/trace) "
         "|| echo 'bench-''failed'")


class Failed(Exception):
    pass


def share(shot, colours):
    """The share of the picture under the seat's bar (or all of it, for QEMU) in colours."""
    return shot.share(colours, top=BAR if shot.h > HEIGHT else 0)


class Side:
    """One monitor with its window: start(), shot(path) -> seatlib.Shot, type(line),
    counters() for the CPU outside the vCPUs, stop(). extra_args go to the monitor's command
    line, memory is the guest's MiB."""
    extra_args = ()
    memory = 2048

    def __init__(self, a, x, tmp, image, name, label):
        self.a, self.x, self.tmp, self.image, self.name, self.label = a, x, tmp, image, name, label
        self.log = os.path.join(tmp, "serial.log")
        self.overlay = os.path.join(tmp, "overlay.qcow2")
        subprocess.run([os.path.join(a.bindir, "shoji-img"), "create", "-f", "qcow2", "-b", image["img"], "-F",
                        "qcow2", self.overlay], check=True, stdout=subprocess.DEVNULL)
        self.procs = []

    def type(self, line):
        self.procs[0].stdin.write(line.encode() + b"\n")
        self.procs[0].stdin.flush()

    def serial(self):
        try:
            with open(self.log, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def alive(self):
        return all(p.poll() is None for p in self.procs)

    def err(self, what):
        """A file for what's stderr (read back by why())."""
        return open(os.path.join(self.tmp, f"{what}.err"), "wb")

    def why(self):
        """Which process ended with which status, the ends of their stderr and of the console."""
        out = []
        for p in self.procs:
            if p.poll() is not None:
                out.append(f"{os.path.basename(p.args[0])} exited with status {p.returncode}")
        for f in sorted(os.listdir(self.tmp)):
            if f.endswith(".err"):
                with open(os.path.join(self.tmp, f), "rb") as fh:
                    tail = fh.read()[-800:].decode(errors="replace").strip()
                if tail:
                    out.append(f"{f}: {tail}")
        out.append(f"console: {self.serial()[-800:]!r}")
        return "; ".join(out)

    def stop(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
            p.wait()


class Shoji(Side):
    what = "shoji (shoji-vmm + shoji-seat)"

    def start(self):
        disp, self.ctl = os.path.join(self.tmp, "display.sock"), os.path.join(self.tmp, "seat.sock")
        im = self.image
        self.procs.append(subprocess.Popen(
            [self.a.vmm, "--kernel", im["kernel"], "--initrd", im["initrd"], "--cmdline", im["cmdline"],
             "--disk", f"{self.overlay},format=qcow2", "--memory", str(self.memory), "--cpus", str(self.a.cpus),
             "--net", "slirp", "--rng", "--display", f"socket:{disp},size={WIDTH}x{HEIGHT}", "--serial-log", self.log,
             *self.extra_args],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=self.err("shoji-vmm")))
        seatlib.wait_until(lambda: os.path.exists(disp), 60, "the display socket")
        self.procs.append(subprocess.Popen(
            [self.a.seat, "--control", self.ctl, "--size", f"{WIDTH}x{HEIGHT + BAR}",
             "--vm", f"{self.name}={disp},label={self.label}"], env=self.x.env(), stderr=self.err("shoji-seat")))
        seatlib.wait_until(lambda: os.path.exists(self.ctl), 30, "the seat's control socket")

    def shot(self, path):
        return seatlib.screenshot(self.ctl, path)

    def counters(self):
        return [ThreadCpu(self.procs[0].pid, r"vcpu\d+$"), ThreadCpu(self.procs[1].pid, r"$^")]


class Qemu(Side):
    what = "QEMU -display sdl"

    def start(self):
        self.qmp_path = os.path.join(self.tmp, "qmp.sock")
        im = self.image
        env = dict(self.x.env(), **(SOFTWARE_SDL if self.a.qemu_renderer == "software" else {}))
        self.procs.append(subprocess.Popen(
            [self.a.qemu, "-enable-kvm", "-cpu", "host", "-m", str(self.memory), "-smp", str(self.a.cpus), "-M", "q35",
             "-nodefaults", *self.extra_args,
             "-no-user-config", "-device", f"virtio-gpu-pci,xres={WIDTH},yres={HEIGHT}", "-display", "sdl",
             "-drive", f"file={self.overlay},format=qcow2,if=none,id=d0", "-device", "virtio-blk-pci,drive=d0",
             "-netdev", "user,id=n0", "-device", "virtio-net-pci,netdev=n0", "-device", "virtio-rng-pci",
             "-device", "virtio-keyboard-pci", "-device", "virtio-tablet-pci",
             "-chardev", f"stdio,id=s0,signal=off,logfile={self.log}", "-serial", "chardev:s0",
             "-qmp", f"unix:{self.qmp_path},server=on,wait=off",
             "-kernel", im["kernel"], "-initrd", im["initrd"], "-append", im["cmdline"]],
            env=env, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=self.err("qemu")))
        seatlib.wait_until(lambda: os.path.exists(self.qmp_path), 60, "QEMU's QMP socket")
        self.qmp = socket.socket(socket.AF_UNIX)
        self.qmp.settimeout(30)
        self.qmp.connect(self.qmp_path)
        self.qmp_file = self.qmp.makefile("rb")
        self.qmp_file.readline()  # the greeting
        self.execute("qmp_capabilities")

    def execute(self, cmd, **args):
        self.qmp.sendall(json.dumps({"execute": cmd, "arguments": args}).encode() + b"\n")
        while True:
            rep = json.loads(self.qmp_file.readline())
            if "return" in rep or "error" in rep:
                if "error" in rep:
                    raise Failed(f"QMP {cmd}: {rep['error']}")
                return rep["return"]

    def shot(self, path):
        self.execute("screendump", filename=path)
        return seatlib.Shot(path)

    def counters(self):
        return [ThreadCpu(self.procs[0].pid, r"CPU \d+/KVM$")]

    def stop(self):
        if getattr(self, "qmp", None):
            self.qmp.close()
        super().stop()


def wait_screen(side, colours, least, limit, t0):
    """Screenshots every 0.5 s until colours cover least of the picture; the seconds since t0."""
    path = os.path.join(side.tmp, "shot.ppm")
    while time.monotonic() - t0 < limit:
        if not side.alive():
            raise Failed(f"{side.what} ended before the screen showed the page or desktop: {side.why()}")
        try:
            if share(side.shot(path), colours) >= least:
                return time.monotonic() - t0
        except (OSError, ValueError, AssertionError):
            pass
        time.sleep(0.5)
    raise Failed(f"{side.what}: no {' '.join(f'#{c:06x}' for c in colours)} on screen within {limit} s: "
                 f"{side.why()}")


def browse(side, limit):
    t0 = time.monotonic()
    side.start()
    return wait_screen(side, (PAGE,), 0.33, limit, t0)


def desktop(side, seconds, limit):
    """(frames, CPU seconds outside the vCPUs, wall seconds) over the measured window."""
    t0 = time.monotonic()
    side.start()
    wait_screen(side, DESKTOP, 0.8, limit, t0)
    seatlib.wait_until(lambda: "login: root (automatic login)" in side.serial(), 120, "the serial console's login")
    time.sleep(2)
    side.type("stty -echo")
    side.type(ANIM)
    side.type(START)
    # the terminal's red or blue over most of the screen: the animation runs
    wait_screen(side, ANIM_COLOURS, 0.6, 120, time.monotonic())
    counters = side.counters()
    side.type(COUNT.format(s=seconds))
    at = {}
    end = time.monotonic() + seconds + 120
    while time.monotonic() < end and len(at) < 2:
        for c in counters:
            c.sample()
        text = side.serial()
        if "bench-failed" in text:
            raise Failed(f"{side.what}: the guest could not count its frames (no virtio_gpu trace event?)")
        for mark in ("bench-begin", "bench-end"):
            if mark in text and mark not in at:
                at[mark] = (sum(c.total() for c in counters), time.monotonic())
        time.sleep(0.05)
    m = re.search(r"bench-end (\d+)", side.serial())
    if len(at) < 2 or not m:
        raise Failed(f"{side.what}: the frame count did not come: {side.why()}")
    if int(m[1]) == 0:
        raise Failed(f"{side.what}: the guest counted no frame in {seconds} s: {side.why()}")
    return int(m[1]), at["bench-end"][0] - at["bench-begin"][0], at["bench-end"][1] - at["bench-begin"][1]


def run(cls, a, x, base, image, name, label, fn, *args):
    tmp = tempfile.mkdtemp(dir=base)
    side = None
    try:
        side = cls(a, x, tmp, image, name, label)
        return fn(side, *args)
    except (OSError, ValueError, subprocess.SubprocessError) as e:  # QMP, the overlay, a socket
        raise Failed(f"{cls.what}: {e!r}" + (f": {side.why()}" if side else "")) from e
    finally:
        if side:
            side.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bindir", required=True)
    ap.add_argument("--browser", required=True, help="a JSON file: img, kernel, initrd, cmdline")
    ap.add_argument("--desktop", required=True, help="a JSON file: img, kernel, initrd, cmdline")
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--seconds", type=int, default=20)
    ap.add_argument("--limit", type=int, default=900, help="seconds for a boot to show its page or desktop")
    ap.add_argument("--qemu-renderer", choices=("software", "default"), default="software")
    ap.add_argument("--cpus", type=int, default=2, help="vCPUs of each VM")
    ap.add_argument("--only", choices=("browse", "desktop"))
    a = ap.parse_args()
    a.vmm, a.seat = os.path.join(a.bindir, "shoji-vmm"), os.path.join(a.bindir, "shoji-seat")
    a.qemu = shutil.which("qemu-system-x86_64")
    sdl = a.qemu and subprocess.run([a.qemu, "-display", "help"], capture_output=True, text=True).stdout
    if not (sdl and re.search(r"^sdl$", sdl, re.M)):
        print("bench/desktop: FAILED: no qemu-system-x86_64 with an SDL display (install qemu-system-gui)")
        return 1
    images = {k: json.load(open(getattr(a, k))) for k in ("browser", "desktop")}
    x = seatlib.Xvfb(WIDTH + 64, HEIGHT + 128)
    base = tempfile.mkdtemp(prefix="bench-desktop-")  # /tmp: sockets cannot live on the harness's 9p tree
    res = {"browse": {"shoji": [], "qemu": []}, "desktop": {"shoji": [], "qemu": []}}
    failed = []
    try:
        for r in range(a.runs):  # interleaved: shoji, QEMU, shoji, ...
            for key, cls in (("shoji", Shoji), ("qemu", Qemu)):
                for what in ("browse", "desktop"):
                    if a.only and what != a.only:
                        continue
                    try:
                        if what == "browse":
                            v = run(cls, a, x, base, images["browser"], "browser", "green", browse, a.limit)
                            print(f"run {r + 1} {cls.what}: browser page on screen {v:.1f} s after the start", flush=True)
                        else:
                            v = run(cls, a, x, base, images["desktop"], "work", "blue", desktop, a.seconds, a.limit)
                            print(f"run {r + 1} {cls.what}: {v[0]} frames in {v[2]:.1f} s, "
                                  f"{v[1]:.2f} s CPU outside the vCPUs", flush=True)
                        res[what][key].append(v)
                    except (Failed, AssertionError) as e:
                        failed.append(f"{what} {key}: {e}")
                        print(f"run {r + 1} {cls.what}: {what} FAILED: {e}", flush=True)
    finally:
        x.stop()
        shutil.rmtree(base, ignore_errors=True)
    report(a, res, failed)
    return 1 if failed else 0


def report(a, res, failed):
    qemu = f"QEMU -display sdl ({'SDL software into the window' if a.qemu_renderer == 'software' else 'SDL default'})"
    print(f"bench/desktop: {a.runs} run(s), {WIDTH}x{HEIGHT}, {a.cpus} vCPU(s), direct kernel boot, Xvfb; QEMU: {qemu}")
    for f in failed:
        print(f"FAILED: {f}")
    b = res["browse"]
    if b["shoji"] and b["qemu"] and not any(f.startswith("browse") for f in failed):
        s, q = statistics.median(b["shoji"]), statistics.median(b["qemu"])
        print(f"browse to first page: shoji {s:.1f} s, QEMU {q:.1f} s")
        print(f"ratio shoji / QEMU, start to first page drawn: {s / q:.2f}x (lower is better)")
    d = res["desktop"]
    if d["shoji"] and d["qemu"] and not any(f.startswith("desktop") for f in failed):
        fps = {k: statistics.median(f / w for f, _, w in v) for k, v in d.items()}
        cpf = {k: statistics.median(c * 1000 / f for f, c, _ in v if f) for k, v in d.items()}
        print(f"desktop animation: shoji {fps['shoji']:.1f} frames/s, {cpf['shoji']:.2f} ms CPU per frame; "
              f"QEMU {fps['qemu']:.1f} frames/s, {cpf['qemu']:.2f} ms CPU per frame")
        print(f"ratio shoji / QEMU, desktop animation frames per second: {fps['shoji'] / fps['qemu']:.2f}x "
              "(higher is better)")
        print(f"ratio shoji / QEMU, host CPU per desktop frame: {cpf['shoji'] / cpf['qemu']:.2f}x (lower is better)")


if __name__ == "__main__":
    sys.exit(main())
