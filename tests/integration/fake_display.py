#!/usr/bin/env python3
"""fake_display: a stand-in monitor that speaks the display channel (src/common/display_proto.h)
without KVM, for the seat's tests and bench/seat. It listens on a SOCK_SEQPACKET socket, shares
a sealed memfd surface filled with one colour (and a white 32x32 square at its top left), sends
HELLO, SURFACE, a pointer image (CURSOR, near the bottom right) and DAMAGE, and logs the keys
it receives ("shoji-key: CODE" for a press, as the test guest's gputest prints them, and
"shoji-key-release: CODE").

Modes: steady (one frame, then answer ACKs and log input; with --tick-ms, a small block redrawn
that often, logged with the ACKs as "shoji-display-tick: N" and "shoji-display-ack: SEQ"), flood (DAMAGE packets as fast as the
socket takes them, ignoring ACKs), garbage (random packets after HELLO), unsealed (a memfd not
sealed against shrinking), short (a SURFACE larger than its memfd), bench (full-frame updates,
at most --window in flight (DISPLAY_DAMAGE_WINDOW by default), one each --interval ms at the
most, after --delay seconds; then a JSON report of send -> ACK latency)."""
import argparse
import fcntl
import json
import mmap
import os
import random
import select
import socket
import struct
import sys
import time

HELLO, SURFACE, DAMAGE, DISABLE, CURSOR = 1, 2, 3, 4, 5
CURSOR_RGB = 0xFF00FF  # the pointer image: a 16x16 opaque square in a clear 64x64
INPUT, ACK, PREFERRED_SIZE = 64, 65, 66
XRGB8888 = 0x34325258
WINDOW = 1  # DISPLAY_DAMAGE_WINDOW


def packet(t, body=b""):
    return struct.pack("<II", t, len(body)) + body


def make_surface(w, h, rgb, mode="steady"):
    stride = w * 4
    size = stride * h
    fd = os.memfd_create("fake-display", os.MFD_ALLOW_SEALING | os.MFD_CLOEXEC)
    os.ftruncate(fd, size)
    if mode != "unsealed":  # a monitor that could shrink the file under the seat's mapping
        fcntl.fcntl(fd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW)
    mm = mmap.mmap(fd, size)
    fill(mm, w, h, rgb)
    return fd, mm, stride, size


def pixel(rgb):
    return struct.pack("<I", rgb & 0xFFFFFF)  # bytes B, G, R, X


def fill(mm, w, h, rgb):
    row = pixel(rgb) * w
    mm[:] = row * h
    white = pixel(0xFFFFFF) * 32
    for y in range(min(32, h)):
        mm[y * w * 4:y * w * 4 + len(white)] = white[:w * 4]


class Monitor:
    def __init__(self, args):
        self.a = args
        self.w, self.h = args.size
        self.fd, self.mm, self.stride, self.size = make_surface(self.w, self.h, args.colour, args.mode)
        self.seq = 0
        self.acked = 0
        self.keys = open(args.keys_log, "a", buffering=1) if args.keys_log else None
        if self.keys:
            self.keys.write("shoji-keys: listening on 1 devices\n")  # as gputest keys says
        self.sent_at = {}
        self.latency = []
        self.ticks = 0

    def greet(self, c):
        c.send(packet(HELLO, struct.pack("<IIII", 1, 0, self.w, self.h)))
        size = self.size * 2 if self.a.mode == "short" else self.size  # claims more than the memfd has
        body = struct.pack("<IIIIQQ", self.w, self.h, self.stride, XRGB8888, 0, size)
        socket.send_fds(c, [packet(SURFACE, body)], [self.fd])
        image = bytearray(64 * 64 * 4)
        for y in range(16):
            image[y * 256:y * 256 + 64] = struct.pack("<I", 0xFF000000 | CURSOR_RGB) * 16
        c.send(packet(CURSOR, struct.pack("<IIiiI", 0, 0, self.w - 40, self.h - 40, 1) + bytes(image)))
        self.damage(c, 0, 0, self.w, self.h)

    def window_open(self):
        """Whether another DAMAGE may go out (as shoji-vmm: --window unacknowledged at most)."""
        return self.seq - self.acked < self.a.window

    def damage(self, c, x, y, w, h, block=True):
        self.seq += 1
        self.sent_at[self.seq] = time.monotonic()
        c.send(packet(DAMAGE, struct.pack("<IIIII", self.seq, x, y, w, h)),
               0 if block else socket.MSG_DONTWAIT)

    def receive(self, c):
        data = c.recv(65536)
        if not data:
            return False
        t, n = struct.unpack_from("<II", data)
        if t == ACK:
            (seq,) = struct.unpack_from("<I", data, 8)
            now = time.monotonic()
            for s in [s for s in self.sent_at if s <= seq]:
                if s == seq:
                    self.latency.append((now - self.sent_at[s]) * 1000)
                del self.sent_at[s]
            self.acked = max(self.acked, seq)
            if self.keys and self.a.tick_ms:
                self.keys.write(f"shoji-display-ack: {seq}\n")
        elif t == INPUT and self.keys:
            dev, count = struct.unpack_from("<II", data, 8)
            for i in range(count):
                et, code, value = struct.unpack_from("<HHi", data, 16 + 8 * i)
                if et == 1 and value == 1:  # as the guest's gputest prints presses
                    self.keys.write(f"shoji-key: {code}\n")
                elif et == 1 and value == 0:
                    self.keys.write(f"shoji-key-release: {code}\n")
                elif et == 2 and dev == 2:  # the relative mouse's motion
                    self.keys.write(f"shoji-mouse: {code} {value}\n")
        return True

    def serve(self, c):
        self.greet(c)
        if self.a.mode == "garbage":
            rnd = random.Random(1)
            end = time.monotonic() + self.a.seconds
            while time.monotonic() < end:
                n = rnd.randrange(0, 200)
                junk = bytes(rnd.randrange(256) for _ in range(n))
                if rnd.random() < 0.5 and n >= 8:  # a plausible header with a lying length
                    junk = struct.pack("<II", rnd.choice([2, 3, 5, 6, 99]), rnd.randrange(1 << 32)) + junk[8:]
                try:
                    c.send(junk or b"\0")
                except OSError:
                    return
                time.sleep(0.001)
            return
        if self.a.mode == "flood":
            end = time.monotonic() + self.a.seconds
            k = 0
            while time.monotonic() < end:
                k += 1
                try:
                    self.damage(c, k % self.w, k % self.h, 64, 64, block=False)
                except BlockingIOError:
                    select.select([c], [], [], 0.001)
                except OSError:
                    return
                while select.select([c], [], [], 0)[0]:
                    if not self.receive(c):
                        return
            return
        if self.a.mode == "bench":
            colours = [self.a.colour, self.a.colour ^ 0x00FF00]
            frames = [None, None]
            for i, rgb in enumerate(colours):
                tmp = bytearray(self.size)
                row = pixel(rgb) * self.w
                tmp[:] = row * self.h
                frames[i] = bytes(tmp)
            end = time.monotonic() + self.a.delay
            while time.monotonic() < end:  # idle: the seat's cost with nothing to draw
                if select.select([c], [], [], 0.05)[0] and not self.receive(c):
                    return
            start = time.monotonic()
            sent = drawn = 0
            pending = False
            next_at = start
            while (drawn if self.a.merge else sent) < self.a.frames:
                now = time.monotonic()
                if self.a.merge:  # as shoji-vmm: the guest draws on; a full window merges
                    if now >= next_at:
                        drawn += 1
                        pending = True
                        next_at = max(next_at + self.a.interval / 1000, now)
                    if pending and self.window_open():
                        self.mm[:] = frames[drawn % 2]
                        self.damage(c, 0, 0, self.w, self.h)
                        sent += 1
                        pending = False
                    wait = max(0, next_at - time.monotonic())
                else:  # one frame each time the window lets it
                    if self.window_open() and now >= next_at:
                        self.mm[:] = frames[sent % 2]
                        self.damage(c, 0, 0, self.w, self.h)
                        sent += 1
                        next_at = max(next_at + self.a.interval / 1000, now)
                    wait = 1 if not self.window_open() else max(0, next_at - time.monotonic())
                r = select.select([c], [], [], wait)[0]
                if r and not self.receive(c):
                    return
            deadline = time.monotonic() + (0 if self.a.merge else 5)
            while self.acked < self.seq and time.monotonic() < deadline:
                if select.select([c], [], [], 0.1)[0] and not self.receive(c):
                    break
            elapsed = time.monotonic() - start
            lat = sorted(self.latency)
            report = {"frames": sent, "drawn": drawn if self.a.merge else sent, "acked": self.acked, "seconds": elapsed, "start": start,
                      "latency_ms_median": lat[len(lat) // 2] if lat else None,
                      "latency_ms_worst": lat[-1] if lat else None}
            print(json.dumps(report), flush=True)
            return
        # steady: answer ACKs and log input until the seat leaves; with --tick-ms, a 16x16
        # block beside the white square changes every tick, drawn as shoji-vmm would: only while
        # no DAMAGE is unacknowledged, ticks meanwhile merged into the next.
        tick = self.a.tick_ms / 1000
        next_at = time.monotonic() + tick if tick else None
        pending = False
        while True:
            wait = 1.0 if next_at is None else max(0, next_at - time.monotonic())
            r = select.select([c], [], [], wait)[0]
            if r and not self.receive(c):
                return
            if next_at is not None and time.monotonic() >= next_at:
                next_at += tick
                self.ticks += 1
                pending = True
                if self.keys:
                    self.keys.write(f"shoji-display-tick: {self.ticks}\n")
            if pending and self.window_open():
                block = pixel(0xFFFFFF if self.ticks % 2 else 0) * 16
                for y in range(8, 24):
                    self.mm[y * self.stride + 40 * 4:y * self.stride + 56 * 4] = block
                self.damage(c, 40, 8, 16, 16)
                pending = False


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--socket", required=True)
    p.add_argument("--name", default="vm")
    p.add_argument("--colour", type=lambda s: int(s.lstrip("#"), 16), default=0x2040C0)
    p.add_argument("--size", type=lambda s: tuple(int(v) for v in s.split("x")), default=(640, 480))
    p.add_argument("--mode", choices=["steady", "flood", "garbage", "bench", "unsealed", "short"],
                   default="steady")
    p.add_argument("--seconds", type=float, default=3)
    p.add_argument("--frames", type=int, default=200)
    p.add_argument("--window", type=int, default=WINDOW)
    p.add_argument("--interval", type=float, default=0, help="ms between frames at the least")
    p.add_argument("--delay", type=float, default=0, help="seconds before the first frame")
    p.add_argument("--merge", action="store_true",
                   help="bench: frames come every --interval ms whatever the window, and those "
                        "the window holds back merge into the next sent, as shoji-vmm does")
    p.add_argument("--tick-ms", type=float, default=0,
                   help="steady: redraw a small block this often (0: never)")
    p.add_argument("--keys-log")
    p.add_argument("--once", action="store_true", help="exit after the first seat leaves")
    a = p.parse_args()
    try:
        os.unlink(a.socket)
    except FileNotFoundError:
        pass
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    srv.bind(a.socket)
    os.chmod(a.socket, 0o600)
    srv.listen(1)
    m = Monitor(a)
    while True:
        c, _ = srv.accept()
        try:
            m.serve(c)
        except (BrokenPipeError, ConnectionResetError):
            pass
        c.close()
        if a.once or a.mode in ("bench", "garbage", "flood"):
            break


if __name__ == "__main__":
    sys.exit(main())
