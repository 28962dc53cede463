"""uinput: a virtual keyboard and mouse made through /dev/uinput (the kernel's uinput module), for
tests of a seat on a bare console, where SDL reads evdev devices and no X server types."""
import fcntl
import os
import struct
import time

EV_SYN, EV_KEY, EV_REL = 0, 1, 2
REL_X, REL_Y = 0, 1
BTN_LEFT, BTN_RIGHT, BTN_MIDDLE = 0x110, 0x111, 0x112
UI_SET_EVBIT, UI_SET_KEYBIT, UI_SET_RELBIT = 0x40045564, 0x40045565, 0x40045566
UI_DEV_SETUP, UI_DEV_CREATE, UI_DEV_DESTROY = 0x405C5503, 0x5501, 0x5502
BUS_VIRTUAL = 0x06

# evdev key codes (linux/input-event-codes.h) by the names xdotool uses.
KEYS = {"ctrl": 29, "alt": 56, "shift": 42, "space": 57, "0": 11,
        **{str(d): d + 1 for d in range(1, 10)},
        **{c: i + 16 for i, c in enumerate("qwertyuiop")},
        **{c: i + 30 for i, c in enumerate("asdfghjkl")},
        **{c: i + 44 for i, c in enumerate("zxcvbnm")}}


class Device:
    def __init__(self, name, keys, rels=()):
        self.fd = os.open("/dev/uinput", os.O_WRONLY | os.O_NONBLOCK)
        fcntl.ioctl(self.fd, UI_SET_EVBIT, EV_KEY)
        for code in keys:
            fcntl.ioctl(self.fd, UI_SET_KEYBIT, code)
        if rels:
            fcntl.ioctl(self.fd, UI_SET_EVBIT, EV_REL)
            for code in rels:
                fcntl.ioctl(self.fd, UI_SET_RELBIT, code)
        setup = struct.pack("<HHHH80sI", BUS_VIRTUAL, 0x1234, 0x5678, 1, name, 0)
        fcntl.ioctl(self.fd, UI_DEV_SETUP, setup)
        fcntl.ioctl(self.fd, UI_DEV_CREATE)

    def emit(self, etype, code, value):
        os.write(self.fd, struct.pack("<qqHHi", 0, 0, etype, code, value))
        if etype != EV_SYN:
            os.write(self.fd, struct.pack("<qqHHi", 0, 0, EV_SYN, 0, 0))

    def close(self):
        fcntl.ioctl(self.fd, UI_DEV_DESTROY)
        os.close(self.fd)


class Keyboard(Device):
    def __init__(self):
        super().__init__(b"shoji-test keyboard", range(1, 249))

    def press(self, *codes, hold=0.05):
        """Presses the keys in order, then releases them in reverse (a chord)."""
        for c in codes:
            self.emit(EV_KEY, c, 1)
            time.sleep(hold)
        for c in reversed(codes):
            self.emit(EV_KEY, c, 0)
            time.sleep(hold)


class Mouse(Device):
    def __init__(self):
        super().__init__(b"shoji-test mouse", (BTN_LEFT, BTN_RIGHT, BTN_MIDDLE), (REL_X, REL_Y))

    def move(self, dx, dy):
        os.write(self.fd, struct.pack("<qqHHi", 0, 0, EV_REL, REL_X, dx))
        self.emit(EV_REL, REL_Y, dy)

    def click(self, button=BTN_LEFT):
        for value in (1, 0):
            self.emit(EV_KEY, button, value)
            time.sleep(0.05)
