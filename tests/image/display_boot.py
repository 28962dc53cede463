#!/usr/bin/env python3
"""An image with a display under shoji-vmm, by direct kernel boot, watched through the display
channel (src/common/display_proto.h) as a seat would: a manual check for the desktop and browser
recipes (guest/image/recipes/README), run in the KVM harness where the machine has no /dev/kvm:

    tests/harness/kvm-run --memory 6144 -- tests/image/display_boot.py --vmm build/src/shoji-vmm \\
        --img IMAGE.qcow2 --kernel VMLINUZ --initrd INITRD --cmdline "root=PARTUUID=... ro ..." \\
        --memory 1024 --colour 2b4a63 --dir build/display-boot --name desktop

It boots a qcow2 overlay on IMAGE (the image is never written), takes every frame the guest
flushes and acknowledges it, and reports when the first frame came and when the colours COLOUR
(RRGGBB, one or more: the session's background) first covered at least --share of the screen.
It saves screenshots (PNG) in --dir: NAME-first.png, NAME-session.png, NAME-settled.png once
the screen has been still for --settle seconds (or --settle-max seconds after the session
frame), and NAME-tNNN.png every --every seconds while waiting. Then each --serial LINE is typed
on the serial console (debian-base logs root in there), --serial-wait seconds apart, and
NAME-after.png is saved; the console is in NAME-serial.log. With --vsock the monitor's status
(the guest agent's state and capabilities) is printed. With --expect-poweroff the guest must
power off by itself after the lines (exit status 0 of the monitor). Exit status 0 when the
session frame was seen (and, with --expect-poweroff, the guest powered off), 1 otherwise.

The kernel and initrd come from the image's ESP, the command line from its manifest:

    shoji-img convert -f qcow2 -O raw IMAGE.qcow2 /tmp/x.raw
    MTOOLS_SKIP_CHECK=1 mcopy -n -i /tmp/x.raw@@1M ::/RECIPE/vmlinuz-REL ::/RECIPE/initrd.img-REL DIR/
    grep ^cmdline: IMAGE.qcow2.manifest"""
import argparse
import json
import mmap
import os
import select
import socket
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from seatlib import write_png  # noqa: E402
from shoji_boot import call  # noqa: E402

HELLO, SURFACE, DAMAGE, DISABLE, CURSOR, CURSOR_MOVE = 1, 2, 3, 4, 5, 6
ACK, PREFERRED_SIZE = 65, 66
XRGB8888 = 0x34325258


def png(path, w, h, stride, buf):
    """buf: XRGB8888 rows (bytes B, G, R, X) -> an RGB PNG."""
    rgb = bytearray(w * h * 3)
    for y in range(h):
        row = buf[y * stride:y * stride + w * 4]
        rgb[y * w * 3 + 0:(y + 1) * w * 3:3] = row[2::4]
        rgb[y * w * 3 + 1:(y + 1) * w * 3:3] = row[1::4]
        rgb[y * w * 3 + 2:(y + 1) * w * 3:3] = row[0::4]
    write_png(path, w, h, bytes(rgb))


class Screen:
    def __init__(self):
        self.mm = None
        self.w = self.h = self.stride = 0

    def set(self, fd, w, h, stride, size):
        if self.mm:
            self.mm.close()
        self.mm = mmap.mmap(fd, size, prot=mmap.PROT_READ)
        os.close(fd)
        self.w, self.h, self.stride = w, h, stride

    def share(self, colours):
        """The share of a 64x48 grid of pixels that are exactly one of colours (0xRRGGBB)."""
        if not self.mm:
            return 0.0
        want = {bytes([rgb & 0xFF, (rgb >> 8) & 0xFF, (rgb >> 16) & 0xFF]) for rgb in colours}
        hit = n = 0
        for gy in range(48):
            y = (gy * 2 + 1) * self.h // 96
            for gx in range(64):
                x = (gx * 2 + 1) * self.w // 128
                o = y * self.stride + x * 4
                hit += self.mm[o:o + 3] in want
                n += 1
        return hit / n

    def save(self, path):
        if self.mm:
            png(path, self.w, self.h, self.stride, self.mm[:self.stride * self.h])
            print(f"screenshot {path} ({self.w}x{self.h})", flush=True)


def take(c, scr):
    """One message from the monitor: a new surface is mapped, damage is acknowledged (after the
    caller looked, since the ACK lets the monitor write the surface again: here at once). The
    message type, or None when the channel closed."""
    msg, fds, _, _ = socket.recv_fds(c, 32768, 4)
    if not msg:
        return None
    t, n = struct.unpack_from("<II", msg)
    body = msg[8:8 + n]
    if t == SURFACE and fds:
        w, h, stride, fmt, off, size = struct.unpack_from("<IIIIQQ", body)
        scr.set(fds.pop(0), w, h, stride, size)
    for fd in fds:
        os.close(fd)
    if t == DAMAGE:
        c.send(struct.pack("<III", ACK, 4, struct.unpack_from("<I", body)[0]))
    return t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--vmm", required=True)
    ap.add_argument("--img", required=True)
    ap.add_argument("--kernel", required=True)
    ap.add_argument("--initrd", required=True)
    ap.add_argument("--cmdline", required=True)
    ap.add_argument("--memory", default="1024")
    ap.add_argument("--cpus", default="1")
    ap.add_argument("--colour", required=True, action="append",
                    help="RRGGBB of the session's background (repeat: any of them)")
    ap.add_argument("--share", type=float, default=0.2)
    ap.add_argument("--dir", required=True)
    ap.add_argument("--name", required=True)
    ap.add_argument("--timeout", type=int, default=1500)
    ap.add_argument("--settle", type=int, default=60)
    ap.add_argument("--settle-max", type=int, default=240,
                    help="seconds after the session frame at most to wait for the screen to be still")
    ap.add_argument("--every", type=int, default=120)
    ap.add_argument("--serial", action="append", default=[], help="a line to type on the serial console")
    ap.add_argument("--serial-wait", type=int, default=30, help="seconds after each --serial line")
    ap.add_argument("--give-up", type=int, default=0,
                    help="with no session frame after this many seconds, type the --serial lines anyway "
                         "(to see why on the console), then fail")
    ap.add_argument("--expect-poweroff", action="store_true")
    ap.add_argument("--vsock", type=int, help="a vsock device with this guest CID: the agent's status is printed")
    ap.add_argument("--resize", help="WxH: once the screen settled, the seat's preferred size (the monitor "
                    "hands it to the guest agent's resize command); a new surface is then printed")
    a = ap.parse_args()
    colours = [int(x, 16) for x in a.colour]
    os.makedirs(a.dir, exist_ok=True)
    out = lambda s: os.path.join(a.dir, f"{a.name}-{s}")
    overlay = out("overlay.qcow2")
    if os.path.exists(overlay):
        os.unlink(overlay)
    img_tool = os.path.join(os.path.dirname(a.vmm), "shoji-img")
    subprocess.run([img_tool, "create", "-f", "qcow2", "-b", os.path.abspath(a.img), "-F", "qcow2", overlay], check=True)
    sock_dir = tempfile.mkdtemp()  # sockets in a local folder: --dir may be on 9p
    disp = os.path.join(sock_dir, "display.sock")
    ctl = os.path.join(sock_dir, "control.sock")
    log = out("serial.log")
    for p in (log, log + ".1"):
        if os.path.exists(p):
            os.unlink(p)
    err = open(out("stderr.log"), "wb")
    t0 = time.monotonic()
    vmm = subprocess.Popen([a.vmm, "--kernel", a.kernel, "--initrd", a.initrd, "--cmdline", a.cmdline,
                            "--disk", f"{overlay},format=qcow2", "--memory", a.memory, "--cpus", a.cpus,
                            "--net", "slirp", "--rng", "--display", f"socket:{disp}", "--serial-log", log,
                            "--on-reboot", "exit", "--control-socket", ctl,
                            *(["--vsock", str(a.vsock)] if a.vsock else [])],
                           stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=err)
    el = lambda: time.monotonic() - t0
    c = None
    while c is None and vmm.poll() is None and el() < 60:
        try:
            c = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            c.connect(disp)
        except OSError:
            c = None
            time.sleep(0.2)
    if c is None:
        print(f"FAIL: no display socket (monitor status {vmm.poll()})")
        return 1
    scr = Screen()
    t_first = t_session = t_settled = None
    last_damage = el()
    next_shot = a.every
    frames = 0
    ok = False
    try:
        limit = a.give_up or a.timeout
        while vmm.poll() is None and el() < a.timeout and (t_session is not None or el() < limit):
            r, _, _ = select.select([c], [], [], 1.0)
            if r:
                got = take(c, scr)
                if got is None:
                    print("the monitor closed the display channel")
                    break
                if got == SURFACE:
                    print(f"{el():7.1f} s: surface {scr.w}x{scr.h}", flush=True)
                elif got == DAMAGE:
                    frames += 1
                    last_damage = el()
                    if t_first is None:
                        t_first = el()
                        print(f"{t_first:7.1f} s: first frame", flush=True)
                        scr.save(out("first.png"))
                    if t_session is None and scr.share(colours) >= a.share:
                        t_session = el()
                        print(f"{t_session:7.1f} s: session frame ({' '.join('#' + x for x in a.colour)} on {scr.share(colours):.0%})", flush=True)
                        scr.save(out("session.png"))
            if el() >= next_shot and t_settled is None:
                scr.save(out(f"t{int(el()):04d}.png"))
                next_shot += a.every
            if t_session is not None and el() - last_damage >= a.settle:
                t_settled = el()
                print(f"{t_settled:7.1f} s: still for {a.settle} s after the last frame ({frames} frames)", flush=True)
                scr.save(out("settled.png"))
                break
            if t_session is not None and el() - t_session >= a.settle_max:
                print(f"{el():7.1f} s: not still {a.settle_max} s after the session frame ({frames} frames)", flush=True)
                scr.save(out("settled.png"))
                break
        if t_session is None:
            print(f"FAIL: no session frame within {limit} s (monitor status {vmm.poll()}; {frames} frames)")
            scr.save(out("last.png"))
            if not a.give_up:
                return 1
        elif t_settled is None:
            scr.save(out("settled.png"))
        ok = t_session is not None
        if a.vsock:
            print(f"{el():7.1f} s: status {call(ctl, 'status')}", flush=True)
        if a.resize:
            w, h = (int(v) for v in a.resize.split("x"))
            print(f"{el():7.1f} s: preferred size {w}x{h} -> monitor", flush=True)
            c.send(struct.pack("<IIII", PREFERRED_SIZE, 8, w, h))
        for line in a.serial:
            print(f"{el():7.1f} s: serial <- {line}", flush=True)
            vmm.stdin.write(line.encode() + b"\n")
            vmm.stdin.flush()
            end = el() + a.serial_wait
            while el() < end and vmm.poll() is None:
                r, _, _ = select.select([c], [], [], 0.5)
                if r:  # frames keep coming: the guest must not stall
                    got = take(c, scr)
                    if got is None:
                        break
                    if got == SURFACE:
                        print(f"{el():7.1f} s: surface {scr.w}x{scr.h}", flush=True)
        if a.serial:
            scr.save(out("after.png"))
        if a.expect_poweroff:
            try:
                rc = vmm.wait(300)
            except subprocess.TimeoutExpired:
                rc = None
            print(f"{el():7.1f} s: monitor ended with status {rc} (0: the guest powered off)")
            ok = ok and rc == 0
        return 0 if ok else 1
    finally:
        if vmm.poll() is None:
            vmm.kill()
            vmm.wait()
        err.close()
        if os.path.exists(overlay):
            os.unlink(overlay)
        print(f"first frame {t_first if t_first is None else round(t_first, 1)} s, session frame "
              f"{t_session if t_session is None else round(t_session, 1)} s, settled "
              f"{t_settled if t_settled is None else round(t_settled, 1)} s after the monitor started")


if __name__ == "__main__":
    sys.exit(main())
