#!/usr/bin/env python3
"""The display channel with the Debian guest: a stand-in seat connects to shoji-vmm's display
socket (--display), receives HELLO and the scanout's memfd, checks the pattern the guest draws
on its virtio-gpu framebuffer, types keys that the guest echoes (virtio-input), is replaced by a
second seat, and the VM runs on with no seat at all. A second test measures the monitor's flush
to DAMAGE latency and the VM exits per full-frame update."""
import array
import fcntl
import mmap
import os
import re
import signal
import socket
import struct
import sys
import time

import test_control
import vmmtest

HDR = struct.Struct("<II")
HELLO, SURFACE, DAMAGE, DISABLE, CURSOR, CURSOR_MOVE = 1, 2, 3, 4, 5, 6
INPUT, ACK, PREFERRED_SIZE = 64, 65, 66
EV_SYN, EV_KEY = 0, 1
F_SEAL_SHRINK = 2
STATS = re.compile(r"user-space exits (\d+)")
DISPLAY_STATS = re.compile(r"display: damage messages (\d+), flushes merged (\d+), flush to damage "
                           r"median (\d+) us, worst (\d+) us")


class Seat:
    """A minimal seat: maps the surface, acknowledges damage, sends input."""

    def __init__(self, path, timeout=60):
        end = time.monotonic() + timeout
        while True:
            try:
                self.s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
                self.s.connect(path)
                break
            except OSError:
                self.s.close()
                if time.monotonic() > end:
                    raise
                time.sleep(0.1)
        self.hello = None
        self.surface = None  # (width, height, stride, format, offset, size)
        self.map = None
        self.fd = -1
        self.damage = []  # (seq, x, y, w, h, arrival time)
        self.closed = False
        self.ack_damage = True

    def close(self):
        self.s.close()

    def _receive(self, timeout):
        self.s.settimeout(timeout)
        try:
            data, anc, _, _ = self.s.recvmsg(32768, socket.CMSG_SPACE(4))
        except socket.timeout:
            return False
        if not data:
            self.closed = True
            return False
        typ, length = HDR.unpack_from(data)
        assert length == len(data) - HDR.size, f"message {typ}: length {length} of {len(data)}"
        body = data[HDR.size:]
        fds = array.array("i")
        for level, kind, d in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds.frombytes(d[:len(d) - len(d) % 4])
        if typ == HELLO:
            self.hello = struct.unpack_from("<IIII", body)
        elif typ == SURFACE:
            assert len(fds) == 1, "SURFACE without exactly one descriptor"
            if self.map:
                self.map.close()
                os.close(self.fd)
            self.surface = struct.unpack_from("<IIIIQQ", body)
            self.fd = fds[0]
            self.map = mmap.mmap(self.fd, self.surface[5], mmap.MAP_SHARED, mmap.PROT_READ)
        elif typ == DAMAGE:
            seq, x, y, w, h = struct.unpack_from("<IIIII", body)
            self.damage.append((seq, x, y, w, h, time.monotonic()))
            if self.ack_damage:
                try:
                    self.send(ACK, struct.pack("<I", seq))
                except (BrokenPipeError, ConnectionResetError):
                    self.closed = True  # replaced by another seat meanwhile
        elif typ == DISABLE:
            self.surface = None
        return True

    def wait(self, what, timeout=120, vm=None):
        end = time.monotonic() + timeout
        while not what():
            if time.monotonic() > end:
                raise AssertionError("seat: timed out" + (f"\n{vm.tail()}" if vm else ""))
            if vm and vm.p.poll() is not None:
                raise AssertionError(f"shoji-vmm ended with {vm.p.returncode}\n{vm.tail()}")
            self._receive(0.2)
            if self.closed:
                return

    def send(self, typ, body):
        self.s.send(HDR.pack(typ, len(body)) + body)

    def key(self, code):
        ev = [(EV_KEY, code, 1), (EV_SYN, 0, 0), (EV_KEY, code, 0), (EV_SYN, 0, 0)]
        self.send(INPUT, struct.pack("<II", 0, len(ev)) + b"".join(struct.pack("<HHi", *e) for e in ev))

    def pixel(self, x, y):
        if not self.map or not self.surface or not self.damage:
            return None
        off = self.surface[4] + y * self.surface[2] + x * 4
        b, g, r, _ = self.map[off:off + 4]
        return (r, g, b)


def pattern_at(x, y):
    return (x & 255, y & 255, 0x5A)


def pattern_shown(seat):
    points = [(0, 0), (10, 20), (300, 200), (639, 479), (517, 333)]
    return all(seat.pixel(x, y) == pattern_at(x, y) for x, y in points)


class Vm(test_control.Vm):
    """A shoji-vmm with a display socket (640x480) and its serial console in a log file."""

    def __init__(self, env, action, cmdline="", extra=(), tmp=None, boot=None):
        tmp = tmp or test_control.scratch(action)
        self.display = os.path.join(tmp, "display.sock")
        super().__init__(env, f"{action} {cmdline}".strip(), tmp=tmp, boot=boot,
                         extra=("--display", f"socket:{self.display},size=640x480", *extra))

    def wait_log(self, text, timeout=240):
        self.wait_for(lambda vm: text in vm.log(), timeout)

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
        rc = self.wait_exit(60)
        self.close()
        return rc


def test_display_pattern_keys_and_seat_takeover(env):
    # With the guest agent (a vsock device): the seat's area reaches it too.
    vm = Vm(env, "gputest", extra=("--vsock", str(2000 + os.getpid() % 1000000), "--log-level", "info"))
    seat = None
    try:
        seat = Seat(vm.display)
        st = os.stat(vm.display)
        assert st.st_mode & 0o777 == 0o600, f"display socket mode {oct(st.st_mode)}"
        seat.wait(lambda: seat.hello is not None, vm=vm)
        assert seat.hello == (1, 0, 640, 480), f"HELLO {seat.hello}"
        vm.wait_log("shoji-guest: gpu pattern drawn")
        assert "shoji-fb: 640x480" in vm.log(), vm.tail()
        # The guest's framebuffer is a blob (VIRTIO_GPU_F_RESOURCE_BLOB): no host copy.
        vm.wait_for(lambda v: "the guest shows a 640x480 blob" in v.stderr(), 30)
        seat.wait(lambda: pattern_shown(seat), timeout=60, vm=vm)
        assert seat.surface[:4] == (640, 480, 2560, 0x34325258), f"SURFACE {seat.surface}"
        seals = fcntl.fcntl(seat.fd, fcntl.F_GET_SEALS)
        assert seals & F_SEAL_SHRINK, f"memfd seals {seals:#x}"
        seqs = [d[0] for d in seat.damage]
        assert seqs == list(range(1, len(seqs) + 1)), f"damage sequence {seqs}"

        vm.wait_log("shoji-keys: listening")
        for code in (30, 48, 46):  # KEY_A, KEY_B, KEY_C
            seat.key(code)
        for code in (30, 48, 46):
            vm.wait_log(f"shoji-key: {code}", timeout=60)


        # A second seat takes over: the first one's connection ends, the new one gets the
        # picture from the start and its keys reach the guest.
        seat2 = Seat(vm.display)
        seat2.wait(lambda: pattern_shown(seat2), timeout=60, vm=vm)
        seat.wait(lambda: seat.closed, timeout=30, vm=vm)
        assert seat.closed, "the replaced seat's connection is still open"
        seat2.key(17)  # KEY_W
        vm.wait_log("shoji-key: 17", timeout=60)

        # No seat: the VM runs on, and a later seat is served again.
        seat2.close()
        time.sleep(2)
        assert vm.p.poll() is None, f"shoji-vmm ended without a seat:\n{vm.tail()}"
        seat3 = Seat(vm.display)
        seat3.wait(lambda: pattern_shown(seat3), timeout=60, vm=vm)

        # The seat's area becomes the guest's mode: a display-change interrupt, new display
        # info and EDID, the kernel's probe of the connector, and its console's new mode, which
        # reaches the seat as a new surface. Smaller than the console's 640x480, because the
        # kernel's own (fbdev) probe drops modes larger than its framebuffer; a desktop's
        # compositor probes without that limit.
        vm.wait_log("shoji-mode: 640x480", timeout=60)
        seat3.send(PREFERRED_SIZE, struct.pack("<II", 600, 400))
        vm.wait_log("shoji-mode: 600x400", timeout=60)
        vm.wait_log("shoji-agent: resize 600x400", timeout=60)
        seat3.wait(lambda: seat3.surface and seat3.surface[:2] == (600, 400), timeout=60, vm=vm)
        seat3.close()
    finally:
        if seat:
            seat.close()
        rc = vm.stop()
    assert rc == 6, f"exit status {rc}:\n{vm.tail()}"
    assert not os.path.exists(vm.display), "the display socket was not removed at exit"


def test_display_demo_shows_name(env):
    # The demo guest's display mode: its name in white on its colour.
    vm = Vm(env, "display", "shoji.name=work shoji.color=2050c0")
    seat = None
    try:
        seat = Seat(vm.display)
        vm.wait_log("shoji-guest: display showing work")

        def drawn():
            if seat.pixel(0, 0) != (0x20, 0x50, 0xC0):
                return False
            row = [seat.pixel(x, 240) for x in range(0, 640, 2)]
            return row.count((255, 255, 255)) > 20
        seat.wait(drawn, timeout=60, vm=vm)
    finally:
        if seat:
            seat.close()
        rc = vm.stop()
    assert rc == 6, f"exit status {rc}:\n{vm.tail()}"


def test_jailed_display(env):
    # In the jail and under the allow-list: the socket made before the jail, surfaces made
    # (memfd_create) and shared inside it.
    tmp = test_control.jail_setup()
    jail = str(test_control.JAIL_ID)
    vm = Vm(env, "gputest", tmp=tmp, extra=("--jail-uid", jail, "--jail-gid", jail))
    seat = None
    try:
        seat = Seat(vm.display)
        seat.wait(lambda: pattern_shown(seat), timeout=240, vm=vm)
        vm.wait_log("shoji-keys: listening")
        seat.key(30)
        vm.wait_log("shoji-key: 30", timeout=60)
    finally:
        if seat:
            seat.close()
        rc = vm.stop()
    assert rc == 6, f"exit status {rc}:\n{vm.tail()}"


def bench_run(env, frames):
    vm = Vm(env, "gpubench", f"shoji.frames={frames}", extra=("--stats",))
    seat = Seat(vm.display)
    try:
        seat.wait(lambda: vm.p.poll() is not None, timeout=400)
        rc = vm.wait_exit(60)
    finally:
        seat.close()
        vm.stop()
    assert rc == 0, f"exit status {rc}:\n{vm.tail()}"
    assert f"gpubench {frames} frames drawn" in vm.log(), vm.tail()
    exits = int(STATS.search(vm.stderr())[1])
    d = DISPLAY_STATS.search(vm.stderr())
    assert d, vm.stderr()
    return exits, [int(x) for x in d.groups()], len(seat.damage)


def test_frame_latency_and_exits(env):
    frames = 60
    base_exits, _, _ = bench_run(env, 0)
    exits, (sent, merged, median_us, worst_us), received = bench_run(env, frames)
    per_frame = (exits - base_exits) / frames
    print(f"# gpu bench: {frames} full 640x480 frames: {sent} DAMAGE messages ({received} received), "
          f"{merged} flushes merged; flush to DAMAGE median {median_us} us, worst {worst_us} us; "
          f"user-space exits {exits} vs {base_exits} without frames: {per_frame:.2f} per frame",
          flush=True)
    assert sent >= 1 and received == sent, f"sent {sent}, received {received}"


TESTS = [test_display_pattern_keys_and_seat_takeover, test_display_demo_shows_name, test_jailed_display]

if __name__ == "__main__":
    sys.exit(vmmtest.main(TESTS, sys.argv[1:], slow=[test_frame_latency_and_exits]))
