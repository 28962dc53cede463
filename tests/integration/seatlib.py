"""seatlib: what the seat's tests and bench/seat share: the screen the seat runs on (a virtual X
server, Xvfb, typed at with xdotool; or a bare console, KMS/DRM with uinput devices), shoji-seat's
control socket, and PPM screenshots read back as pixels."""
import glob
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import time
import zlib

BAR_H = 28  # src/seat/seat.h: SEAT_BAR_H
CRASHED_RGB = 0x7F1010  # src/seat/render.c: the crashed tile
LABEL_RGB = {"blue": 0x1E66F5, "green": 0x2EA043, "red": 0xD32F2F}  # vmdef_values.c


def missing_tools():
    return [t for t in ("Xvfb", "xdotool") if not shutil.which(t)]


class Xvfb:
    def __init__(self, width=1280, height=900):
        r, w = os.pipe()
        self.proc = subprocess.Popen(["Xvfb", "-displayfd", str(w), "-screen", "0", f"{width}x{height}x24",
                                      "-nolisten", "tcp", "-noreset"], pass_fds=[w],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(w)
        with os.fdopen(r) as f:
            num = f.readline().strip()
        if not num:
            raise RuntimeError("Xvfb did not start")
        self.display = f":{num}"

    def env(self, base=None):
        return dict(base or os.environ, DISPLAY=self.display)

    def input(self, env):
        return XInput(env)

    def devices(self):
        return []

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)


class XInput:
    """Keys and the pointer through xdotool, on the X server of env."""

    def __init__(self, env):
        self.env = env

    def focus(self):
        focus_seat(self.env)

    def type(self, text):
        xdotool(self.env, "type", "--delay", "30", text)

    def key(self, combo):
        xdotool(self.env, "key", combo)

    def click(self):
        xdotool(self.env, "click", "1")

    def move(self, dx, dy):
        xdotool(self.env, "mousemove_relative", "--", str(dx), str(dy))


class Console:
    """A bare console: the seat draws through SDL's KMS/DRM backend on /dev/dri/card0 (in the
    harness machine, its display adapter: kvm-run --display) and reads evdev devices, here a
    uinput keyboard and mouse, made before the seat starts (no udev daemon announces later
    ones)."""

    def __init__(self):
        import uinput
        self.cards = glob.glob("/dev/dri/card*")
        if not self.cards:
            raise RuntimeError("no /dev/dri/card*: a bare console needs a display adapter (kvm-run --display)")
        self.kb, self.mouse = uinput.Keyboard(), uinput.Mouse()
        self.keys = uinput.KEYS
        wait_until(lambda: len(glob.glob("/dev/input/event*")) >= 2, 10, "the uinput devices' event nodes")

    def env(self, base=None):
        e = dict(base or os.environ, SDL_VIDEODRIVER="kmsdrm")
        e.pop("DISPLAY", None)
        return e

    def input(self, env):
        return ConsoleInput(self)

    def devices(self):
        """What a console session's user is given (as logind does): the card and the input."""
        return self.cards + glob.glob("/dev/input/event*")

    def stop(self):
        self.kb.close()
        self.mouse.close()


class ConsoleInput:
    def __init__(self, console):
        self.c = console

    def focus(self):
        """The pointer into the guest's area, away from the bar: to the corner, then in."""
        self.c.mouse.move(-4000, -4000)
        self.c.mouse.move(300, 300)

    def type(self, text):
        for ch in text:
            self.c.kb.press(self.c.keys[ch])
            time.sleep(0.03)

    def key(self, combo):
        self.c.kb.press(*(self.c.keys[k] for k in combo.split("+")))

    def click(self):
        self.c.mouse.click()

    def move(self, dx, dy):
        self.c.mouse.move(dx, dy)


def call(path, req, timeout=10):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(timeout)
    s.connect(path)
    s.sendall((json.dumps(req) + "\n").encode())
    line = s.makefile().readline()
    s.close()
    return json.loads(line)


def wait_until(pred, timeout, what):
    """pred's first true value, tried until timeout s have passed."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            v = pred()
            if v:
                return v
        except (OSError, ValueError):
            pass
        time.sleep(0.05)
    raise AssertionError(f"timed out ({timeout}s) waiting for: {what}")


class Shot:
    """A PPM screenshot of the seat's window."""

    def __init__(self, path):
        with open(path, "rb") as f:
            data = f.read()
        magic, dims, maxv, self.px = data.split(b"\n", 3)
        assert magic == b"P6" and maxv == b"255", "not a PPM from the seat"
        self.w, self.h = map(int, dims.split())

    def rgb(self, x, y):
        i = (y * self.w + x) * 3
        r, g, b = self.px[i:i + 3]
        return r << 16 | g << 8 | b

    def share(self, colours, top=0, step=8):
        """The share of the pixels sampled every step-th from row top down that have one of
        colours (0xRRGGBB); 0 when none is sampled."""
        grid = [(x, y) for y in range(top, self.h, step) for x in range(0, self.w, step)]
        return sum(self.rgb(x, y) in colours for x, y in grid) / len(grid) if grid else 0.0

    def count(self, rgb, step=4):
        """How many sampled pixels (every step-th) have this colour."""
        n = 0
        for y in range(0, self.h, step):
            for x in range(0, self.w, step):
                n += self.rgb(x, y) == rgb
        return n


def screenshot(sock, path):
    rep = call(sock, {"cmd": "screenshot", "path": os.path.abspath(path)})
    assert rep.get("ok"), rep
    return Shot(path)


def xdotool(env, *args):
    subprocess.run(["xdotool", *args], env=env, check=True, timeout=20)


def focus_seat(env):
    """Puts the pointer in the seat's window, so that its keys go there (Xvfb has no window
    manager: the focus follows the pointer). The window found may be gone by the time the
    pointer moves (SDL has replaced it: BadWindow): then it is looked up again."""
    def find_and_move():
        found = subprocess.run(["xdotool", "search", "--name", "^shoji-seat$"], env=env,
                               capture_output=True, text=True, timeout=20).stdout.split()
        for w in found:
            if subprocess.run(["xdotool", "mousemove", "--window", w, "300", "300"], env=env,
                              capture_output=True, timeout=20).returncode == 0:
                return w
        return None
    return wait_until(find_and_move, 20, "the shoji-seat window, and the pointer in it")


def write_png(dst, w, h, rgb):
    """Writes w x h pixels (rgb: 3 bytes each, rows packed) as a PNG (zlib alone: no imaging
    library needed)."""
    raw = b"".join(b"\0" + rgb[y * w * 3:(y + 1) * w * 3] for y in range(h))

    def chunk(tag, body):
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body))
    with open(dst, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) +
                chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def ppm_to_png(src, dst):
    """Writes the seat's PPM screenshot as a PNG."""
    shot = Shot(src)
    write_png(dst, shot.w, shot.h, bytes(shot.px))


if __name__ == "__main__":  # seatlib.py SEAT_SOCKET screenshot PATH.png | switch NAME | wait-live N
    sock, cmd, arg = sys.argv[1:4]
    if cmd == "screenshot":
        screenshot(sock, arg + ".ppm")
        ppm_to_png(arg + ".ppm", arg)
        os.unlink(arg + ".ppm")
    elif cmd == "switch":
        assert call(sock, {"cmd": "switch", "name": arg}).get("ok")
    elif cmd == "wait-live":  # until N VMs have a screen
        wait_until(lambda: sum(v["state"] == "live" and v["width"] > 0
                               for v in call(sock, {"cmd": "status"})["vms"]) >= int(arg), 600, "the guests' screens")
