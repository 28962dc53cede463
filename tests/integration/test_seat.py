#!/usr/bin/env python3
"""The seat end to end: shojid runs two VMs with a display, "work" (blue) and "personal"
(green), and shoji-seat shows them in a window on a virtual X server (Xvfb). Screenshots show
the active VM's pixels under a trust bar of its label colour; the hot key opens the switcher
and a digit switches; keys typed while work is active reach work alone (each guest writes the
keys it receives to its serial log) and the hot key reaches neither; `shoji switch` switches;
a VM killed with -9 becomes a "crashed" tile, not a frozen frame; VMs started and stopped while
the seat runs appear and disappear, service VMs without a display never do; a monitor that
floods damage or sends garbage cannot freeze the seat or the other VM's display; an idle seat
sleeps.

With --kms the seat runs on a bare console instead: SDL's KMS/DRM backend on the harness
machine's display adapter (tests/harness/kvm-run --display), typed at through uinput devices.

Runs against tests/integration/fake_vmm.py (anywhere: its display is tests/integration/
fake_display.py) or the real shoji-vmm in the KVM harness (the guest's display action fills its
screen, writes its name on it and echoes its key presses to the serial console)."""
import grp
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import seatlib  # noqa: E402
from seatlib import BAR_H, CRASHED_RGB, LABEL_RGB, call, screenshot, wait_until  # noqa: E402
from test_toolstack import (Toolstack, events, failed_status, parse_args, scratch_base, usb_descriptors,  # noqa: E402
                            usb_device)

COLOURS = {"work": 0x1E40C0, "personal": 0x20A040, "other": 0xC04020}  # what each guest fills
KEY_Q, KEY_Z, KEY_SPACE, BTN_LEFT = 16, 44, 57, 0x110


# Where root can, the seat runs as a desktop user does: its own uid, in the group shojid serves
# (not the monitors' jail user), so that it reaches the displays only through shojid.
SEAT_UID, SEAT_GROUP = 4242, "users"


def seat_as_user():
    return os.geteuid() == 0 and shutil.which("setpriv") is not None


class Seat:
    def __init__(self, ts, screen):
        self.ts = ts
        self.sock = os.path.join(ts.run, "seat", "control.sock")
        self.log = open(os.path.join(ts.dir, "seat.log"), "ab")
        self.shots = os.path.join(ts.dir, "shots")
        os.makedirs(self.shots, exist_ok=True)
        prefix = []
        if seat_as_user():
            gid = grp.getgrnam(SEAT_GROUP).gr_gid
            os.chown(self.shots, SEAT_UID, gid)
            for dev in screen.devices():  # a console session's devices are its user's
                os.chown(dev, SEAT_UID, -1)
            prefix = ["setpriv", "--reuid", str(SEAT_UID), "--regid", str(gid), "--groups", str(gid)]
        self.proc = subprocess.Popen(prefix + [os.path.join(ts.bindir, "shoji"), "seat", "--size", "1024x768"],
                                     env=screen.env(ts.env), stdout=self.log, stderr=self.log)
        wait_until(lambda: os.path.exists(self.sock), 20, "the seat's control socket")
        self.input = screen.input(screen.env(ts.env))
        self.kms = isinstance(screen, seatlib.Console)
        self.input.focus()

    def status(self):
        return call(self.sock, {"cmd": "status"})

    def vm(self, name):
        return next((v for v in self.status()["vms"] if v["name"] == name), None)

    def shot(self, tag):
        return screenshot(self.sock, os.path.join(self.shots, f"{tag}.ppm"))

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)


def create(ts, name, label, display=True):
    """A VM whose guest fills its screen with COLOURS[name], its name in white in the middle
    (the guest's display action), and prints each key press it gets."""
    ts.create(name, action="display")
    ts.ok("set", name, f"label={label}", f"display={'on' if display else 'off'}",
          f"cmdline=console=ttyS0 quiet shoji.action=display shoji.name={name} "
          f"shoji.color={COLOURS.get(name, 0x808080):06x}", f"param=clip={name}-clipboard")


def keys_in(ts, name):
    """The key events a VM's guest reported, (code, 1) for a press and (code, 0) for a release
    (the stand-in reports releases too), from its serial log."""
    found = []
    for line in ts.serial(name).splitlines():
        for tag, value in (("shoji-key:", 1), ("shoji-key-release:", 0)):
            if tag in line:
                try:
                    found.append((int(line.split(tag)[1].split()[0]), value))
                except (ValueError, IndexError):
                    pass
    return found


def guest_centre(shot):
    """A pixel of the guest's fill colour: well inside its area, clear of the name in its
    middle, of the stand-in's white corner and of the tiles' captions."""
    return shot.rgb(shot.w // 5, BAR_H + (shot.h - BAR_H) // 8)


def live(seat, name):
    v = seat.vm(name)
    return v and v["state"] == "live" and v["width"] > 0


def test_active_shows_pixels_and_label(ts, seat):
    wait_until(lambda: live(seat, "work") and live(seat, "personal"), ts.boot_timeout, "both displays live")
    assert seat.status()["active"] == "personal", "the first VM in name order is not shown first"
    ts.ok("switch", "work")
    assert seat.status()["active"] == "work"
    wait_until(lambda: guest_centre(seat.shot("work")) == COLOURS["work"], 20, "work's pixels")
    s = seat.shot("work")
    assert s.rgb(s.w - 4, 4) == LABEL_RGB["blue"], hex(s.rgb(s.w - 4, 4))
    assert s.count(COLOURS["personal"]) == 0, "personal's pixels on work's screen"
    if not ts.real:  # the stand-in's pointer image, drawn by the seat over the guest's pixels
        assert s.count(0xFF00FF, step=2) > 0, "no pointer"
    if seat_as_user():  # a seat outside root and the jail gets its displays from shojid
        assert seat.vm("work")["via"] == "shojid", seat.vm("work")
    video = call(seat.sock, {"cmd": "stats"})["video"]
    assert video == ("KMSDRM" if seat.kms else "x11"), f"SDL's video driver is {video}"


def test_keys_reach_only_the_active_vm(ts, seat):
    for name in ("work", "personal"):  # the guests read their keyboards
        wait_until(lambda: "shoji-keys: listening" in ts.serial(name), ts.boot_timeout, f"{name} listens")
    seat.input.type("qz")
    wait_until(lambda: (KEY_Z, 1) in keys_in(ts, "work"), 20, "work echoes q and z")
    got = keys_in(ts, "work")
    assert (KEY_Q, 1) in got, got
    seat.input.click()  # the pointer is a tablet on the same channel
    wait_until(lambda: (BTN_LEFT, 1) in keys_in(ts, "work"), 20, "work echoes the click")
    time.sleep(0.5)
    assert keys_in(ts, "personal") == [], keys_in(ts, "personal")


def test_hotkey_switcher_and_digit(ts, seat):
    seat.input.key("ctrl+alt+space")
    wait_until(lambda: seat.status()["switcher"], 10, "the switcher opens")
    s = seat.shot("switcher")
    assert s.count(COLOURS["work"]) > 100 and s.count(COLOURS["personal"]) > 100, "two live thumbnails"
    digit = [v["name"] for v in seat.status()["vms"]].index("personal") + 1
    seat.input.key(str(digit))
    wait_until(lambda: seat.status()["active"] == "personal" and not seat.status()["switcher"], 10,
               "personal is active")
    wait_until(lambda: guest_centre(seat.shot("personal")) == COLOURS["personal"], 20, "personal's pixels")
    s = seat.shot("personal")
    assert s.rgb(s.w - 4, 4) == LABEL_RGB["green"], hex(s.rgb(s.w - 4, 4))
    assert s.count(COLOURS["work"]) == 0
    seat.input.type("z")
    wait_until(lambda: (KEY_Z, 1) in keys_in(ts, "personal"), 20, "personal echoes z")
    for name in ("work", "personal"):
        got = [code for code, _ in keys_in(ts, name)]
        assert KEY_SPACE not in got, f"the hot key reached {name}"
        # Nor its modifiers (Ctrl, Alt: held back until they prove to be the guest's).
        assert not {29, 97, 56, 100} & set(got), f"the hot key's modifiers reached {name}: {got}"
        if not ts.real:  # the stand-in reports releases: nothing may be left held
            held = {}
            for code, value in keys_in(ts, name):
                held[code] = value
            assert all(v == 0 for v in held.values()), f"{name} has keys left held: {held}"
    # A held-back modifier that turns out to be the user's still reaches the guest: Ctrl with
    # another key, and Ctrl tapped alone.
    seat.input.key("ctrl+x")
    wait_until(lambda: (29, 1) in keys_in(ts, "personal"), 20, "personal gets Ctrl+x's Ctrl")
    seat.input.key("alt")
    wait_until(lambda: (56, 1) in keys_in(ts, "personal"), 20, "personal gets Alt tapped alone")


def test_shoji_switch(ts, seat):
    ts.ok("switch", "work")
    assert seat.status()["active"] == "work"
    rc, _, err = ts.shoji("switch", "nosuch")
    assert rc == 3 and "nosuch" in err, (rc, err)


def test_control_refuses_what_others_refuse(ts, seat):
    """The seat's control socket parses by the same rules as shojid's API and the monitors'
    control sockets (common/jsonl.c): each bad request gets one error line and the connection
    stays; an over-long line is refused and the connection closed."""
    bad = [b"garbage", b"[]", b"{}", b'{"cmd":7}', b'{"cmd":"reboot"}', b'{"cmd":"status","x":1}',
           b'{"cmd":"switch"}', b'{"cmd":"switch","name":7}', b'{"cmd":"switch","path":"work"}',
           b'{"cmd":"screenshot"}', b'{"cmd":"status"} trailing', b'"\\u0000"', b"[" * 2000]
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(10)
    s.connect(seat.sock)
    f = s.makefile("rb")
    for b in bad:
        s.sendall(b + b"\n")
        rep = json.loads(f.readline())
        assert rep["ok"] is False and rep["error"], (b[:40], rep)
    s.sendall(b'{"cmd":"status"}\n')
    assert json.loads(f.readline())["ok"] is True
    s.close()
    big = socket.socket(socket.AF_UNIX)
    big.settimeout(10)
    big.connect(seat.sock)
    big.sendall(b"x" * 8192)
    rep = json.loads(big.makefile("rb").readline())
    assert rep["ok"] is False and "too long" in rep["error"], rep
    big.close()


def numbers_in(ts, name, tag):
    """The numbers after tag in a VM's serial log (the stand-in's "shoji-display-ack: SEQ")."""
    found = []
    for line in ts.serial(name).splitlines():
        if tag in line:
            try:
                found.append(int(line.split(tag)[1].split()[0]))
            except (ValueError, IndexError):
                pass
    return found


def test_hidden_vm_waits_for_the_seat(ts, seat):
    """A hidden VM's DAMAGE stays unacknowledged until it is shown: its monitor writes nothing
    into the shared surface meanwhile (the guest's updates merge), so the seat's upload on a
    switch never reads a half-written frame; once shown, its updates flow again. The stand-ins
    redraw a block every 250 ms (the test guests draw once, so this runs on the stand-ins)."""
    ts.ok("switch", "work")
    time.sleep(0.6)  # an ACK already on its way at the switch has landed
    acks = numbers_in(ts, "personal", "shoji-display-ack:")
    ticks = numbers_in(ts, "personal", "shoji-display-tick:")
    time.sleep(1.5)
    assert numbers_in(ts, "personal", "shoji-display-ack:") == acks, "a hidden VM's damage was acknowledged"
    assert len(numbers_in(ts, "personal", "shoji-display-tick:")) >= len(ticks) + 4, "personal stopped drawing"
    shown = numbers_in(ts, "work", "shoji-display-ack:")
    wait_until(lambda: len(numbers_in(ts, "work", "shoji-display-ack:")) > len(shown), 5,
               "the shown VM's damage acknowledged")
    ts.ok("switch", "personal")
    wait_until(lambda: len(numbers_in(ts, "personal", "shoji-display-ack:")) >= len(acks) + 2, 10,
               "personal's held frame, then the ones it merged, acknowledged")
    wait_until(lambda: guest_centre(seat.shot("personal")) == COLOURS["personal"], 20, "personal's pixels")
    ts.ok("switch", "work")


def mouse_in(ts, name):
    """The relative-mouse motion a VM's guest reported: [(REL code, value)]."""
    found = []
    for line in ts.serial(name).splitlines():
        if "shoji-mouse:" in line:
            try:
                code, value = line.split("shoji-mouse:")[1].split()[:2]
                found.append((int(code), int(value)))
            except (ValueError, IndexError):
                pass
    return found


def test_pointer_grab(ts, seat):
    """The hot key's modifiers + G grab the pointer: its motion reaches the active VM as the
    relative mouse's, until the same keys (or a switch) let it go."""
    ts.ok("switch", "work")
    seat.input.focus()
    seat.input.key("ctrl+alt+g")
    wait_until(lambda: seat.status()["grabbed"], 10, "the pointer grabbed")
    before = len(mouse_in(ts, "work"))

    def moved():
        seat.input.move(7, 5)
        return len(mouse_in(ts, "work")) > before
    wait_until(moved, 30, "work reports relative motion")
    assert any(code == 0 and value != 0 for code, value in mouse_in(ts, "work")), mouse_in(ts, "work")
    assert mouse_in(ts, "personal") == [], "personal saw the grabbed pointer"
    got = [code for code, _ in keys_in(ts, "work")]
    assert 34 not in got, f"the grab's G reached work: {got}"  # KEY_G
    seat.input.key("ctrl+alt+g")
    wait_until(lambda: not seat.status()["grabbed"], 10, "the grab released")
    seat.input.key("ctrl+alt+g")
    wait_until(lambda: seat.status()["grabbed"], 10, "the pointer grabbed again")
    ts.ok("switch", "personal")
    assert not seat.status()["grabbed"], "a switch kept the grab"
    seat.input.focus()


def test_vms_appear_and_disappear(ts, seat):
    create(ts, "other", "red")
    create(ts, "service", "grey", display=False)
    ts.ok("start", "other")
    ts.ok("start", "service")
    wait_until(lambda: live(seat, "other"), ts.boot_timeout, "other appears")
    assert seat.vm("service") is None, "a VM without a display is shown"
    ts.ok("stop", "other", "--timeout", "5")
    wait_until(lambda: seat.vm("other") is None, 20, "other disappears")
    ts.ok("stop", "service", "--timeout", "5")


def test_active_vm_gone_leaves_no_vm_active(ts, seat):
    """When the active VM stops, no other VM gets the screen or the keyboard by itself: the
    seat shows a neutral screen until the user picks one. ("other" is left defined by
    test_vms_appear_and_disappear.)"""
    ts.ok("start", "other")
    wait_until(lambda: live(seat, "other"), ts.boot_timeout, "other appears")
    ts.ok("switch", "other")
    for name in ("work", "personal"):
        wait_until(lambda: "shoji-keys: listening" in ts.serial(name), ts.boot_timeout, f"{name} listens")
    before = {n: len(keys_in(ts, n)) for n in ("work", "personal")}
    ts.ok("stop", "other", "--timeout", "5")
    wait_until(lambda: seat.vm("other") is None, 20, "other disappears")
    assert seat.status()["active"] == "", f"the seat made {seat.status()['active']} active by itself"
    s = seat.shot("neutral")
    for name, rgb in COLOURS.items():
        assert s.count(rgb) == 0, f"{name}'s pixels on the neutral screen"
    seat.input.focus()
    seat.input.type("qz")
    seat.input.click()
    time.sleep(1)
    after = {n: len(keys_in(ts, n)) for n in ("work", "personal")}
    assert after == before, f"input reached a VM nobody picked: {before} -> {after}"
    ts.ok("switch", "work")
    assert seat.status()["active"] == "work"
    wait_until(lambda: guest_centre(seat.shot("picked")) == COLOURS["work"], 20, "work's pixels once picked")


def test_crashed_vm_shows_a_tile(ts, seat):
    ts.ok("switch", "personal")
    for pid in ts.monitors("personal"):
        os.kill(pid, signal.SIGKILL)
    wait_until(lambda: seat.vm("personal")["state"] == "crashed", 20, "personal is shown crashed")
    s = seat.shot("crashed")
    assert guest_centre(s) == CRASHED_RGB, hex(guest_centre(s))
    assert s.count(COLOURS["personal"]) == 0, "a frozen frame of personal"
    ts.ok("start", "personal")
    wait_until(lambda: live(seat, "personal"), ts.boot_timeout, "personal is back")
    wait_until(lambda: guest_centre(seat.shot("back")) == COLOURS["personal"], 20, "personal's pixels again")


def clip_status(seat):
    return seat.status()["clipboard"]


def test_clipboard_chords(ts, seat):
    """The hot key's modifiers + C copy the shown VM's clipboard into shojid's hold, + V paste it
    into the shown VM; neither key reaches a guest; the bar says what is held and how the last
    act went, on red when policy refused it. (The stand-in monitor's clipboard: the real guest's
    path through its agent is integration-toolstack's test_clipboard_between_vms.)"""
    ts.ok("switch", "work")
    seat.input.focus()
    seat.input.key("ctrl+alt+c")
    wait_until(lambda: clip_status(seat)["notice"] == "copied 14 bytes from work", 20, "the copy's notice")
    wait_until(lambda: clip_status(seat)["held"] and clip_status(seat)["from"] == "work", 20, "the hold shown")
    ts.ok("switch", "personal")
    seat.input.focus()
    seat.input.key("ctrl+alt+v")
    wait_until(lambda: "clipboard set: 14 bytes: work-clipboard" in ts.serial("personal"), 20, "personal's paste")
    wait_until(lambda: clip_status(seat)["notice"] == "pasted 14 bytes into personal", 20, "the paste's notice")
    wait_until(lambda: not clip_status(seat)["held"], 20, "the hold emptied by the paste")
    assert 46 not in [c for c, _ in keys_in(ts, "work")], "the chord's C reached work"  # KEY_C
    assert 47 not in [c for c, _ in keys_in(ts, "personal")], "the chord's V reached personal"  # KEY_V
    assert "clipboard set" not in ts.serial("work"), "work's clipboard was set unasked"
    ts.ok("set", "personal", "policy.clipboard-out=deny")
    seat.input.key("ctrl+alt+c")
    wait_until(lambda: clip_status(seat)["refused"], 20, "the refusal shown")
    assert "clipboard-out = deny" in clip_status(seat)["notice"], clip_status(seat)
    shot = seat.shot("personal")
    assert shot.count(0xB00020, step=1) > 0, "no refusal on the bar"
    ts.ok("set", "personal", "policy.clipboard-out=allow")
    ev = [e for e in events(ts, "personal") if e[0] == "clipboard-refused"]
    assert ev and "copy from personal refused" in ev[-1][1], ev


def test_usb_follows_the_shown_vm(ts, seat):
    """The seat tells shojid which VM it shows (seat-focus: where a device plugged in goes when
    the VM's usb-auto = focused); a USB device refused for (or attached to) the shown VM is a
    notice on the bar, with its port and vendor:product, never the names the device gave itself.
    (The stand-in's device tree: a device plugged in and given to the shown VM is
    integration-toolstack-slow's test_usb_unplug.)"""
    ts.ok("switch", "work")
    wait_until(lambda: ts.js("usb", "list")["seat_focus"] == "work", 20, "shojid hears that work is shown")
    ts.ok("switch", "personal")
    wait_until(lambda: ts.js("usb", "list")["seat_focus"] == "personal", 20, "shojid hears that personal is shown")
    root = ts.env["SHOJI_TEST_USB_SYSFS"]
    os.makedirs(root, exist_ok=True)
    usb_device(root, "1-2", usb_descriptors(0x0781, 0x5567, [[0x08]]), b"work VM\n")
    ts.ok("set", "personal", "policy.usb-storage=deny")
    ts.status(8, "usb", "attach", "personal", "1-2", words=["usb-storage = deny"])
    wait_until(lambda: seat.status()["notice"] == "usb 1-2 0781:5567 refused by policy", 20, "the refusal's notice")
    assert seat.status()["notice_bad"], seat.status()
    assert seat.shot("usb-refused").count(0xB00020, step=1) > 0, "no refusal on the bar"
    ts.ok("set", "personal", "policy.usb-storage=")


STAND_IN_ONLY = [test_hidden_vm_waits_for_the_seat, test_clipboard_chords, test_usb_follows_the_shown_vm]  # needs a display that redraws on its own
# The same whatever the screen: run once, on Xvfb.
SCREEN_INDEPENDENT = [test_hidden_vm_waits_for_the_seat, test_vms_appear_and_disappear,
                      test_active_vm_gone_leaves_no_vm_active, test_usb_follows_the_shown_vm]
TESTS = [test_active_shows_pixels_and_label, test_keys_reach_only_the_active_vm,
         test_hotkey_switcher_and_digit, test_shoji_switch, test_control_refuses_what_others_refuse,
         test_hidden_vm_waits_for_the_seat,
         test_pointer_grab, test_clipboard_chords, test_usb_follows_the_shown_vm, test_vms_appear_and_disappear, test_active_vm_gone_leaves_no_vm_active,
         test_crashed_vm_shows_a_tile]


def hostile_monitors(a, x):
    """A flooding monitor, one sending garbage, one whose memfd is not sealed and one whose
    surface is larger than its memfd, beside a well-behaved one (no shojid: --vm)."""
    d = tempfile.mkdtemp(prefix="seat-", dir=scratch_base(a.bindir))
    fake = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fake_display.py")
    procs = []
    try:
        monitors = (("good", "steady", "2040c0"), ("flood", "flood", "c04020"), ("junk", "garbage", "20a040"),
                    ("unsealed", "unsealed", "808080"), ("short", "short", "808080"))
        for name, mode, colour in monitors:
            procs.append(subprocess.Popen([sys.executable, fake, "--socket", f"{d}/{name}.sock", "--name", name,
                                           "--mode", mode, "--seconds", "6", "--colour", colour]))
        wait_until(lambda: all(os.path.exists(f"{d}/{m[0]}.sock") for m in monitors), 10, "sockets")
        sock = f"{d}/seat.sock"
        args = [os.path.join(a.bindir, "shoji-seat"), "--control", sock, "--size", "800x600"]
        for name, _, _ in monitors:
            args += ["--vm", f"{name}={d}/{name}.sock,label=blue"]
        seat = subprocess.Popen(args, env=x.env(), stdout=subprocess.DEVNULL, stderr=open(f"{d}/seat.log", "ab"))
        procs.append(seat)
        wait_until(lambda: os.path.exists(sock), 10, "the seat's control socket")
        call(sock, {"cmd": "switch", "name": "flood"})
        worst = 0.0
        end = time.monotonic() + 4
        while time.monotonic() < end:  # the seat keeps answering while flooded
            t = time.monotonic()
            st = call(sock, {"cmd": "status"}, timeout=2)
            worst = max(worst, time.monotonic() - t)
            time.sleep(0.05)
        assert worst < 1.0, f"the seat took {worst:.2f}s to answer while flooded"
        for _ in range(20):  # control clients that hang up before their reply
            c = socket.socket(socket.AF_UNIX)
            try:
                c.connect(sock)
                c.sendall(b'{"cmd":"status"}\n{"cmd":"stats"}\n')
            except OSError:
                pass  # the seat's backlog was full: it turns callers away, never waits for them
            c.close()
        wait_until(lambda: call(sock, {"cmd": "status"}, timeout=2)["ok"], 5, "the seat answers again")
        st = call(sock, {"cmd": "status"}, timeout=2)
        vms = {v["name"]: v for v in st["vms"]}
        for name in ("junk", "unsealed", "short"):
            assert vms[name]["state"] == "broken", vms[name]
        assert "sealed" in vms["unsealed"]["why"] and "beyond its memfd" in vms["short"]["why"], vms
        assert vms["good"]["state"] == "live" and vms["flood"]["frames"] > 0, vms
        call(sock, {"cmd": "switch", "name": "good"})
        s = screenshot(sock, f"{d}/good.ppm")
        assert guest_centre(s) == 0x2040C0, hex(guest_centre(s))
        assert seat.poll() is None, "the seat died"
    finally:
        for p in procs:
            p.kill()
            p.wait()


def wakeups(pid):
    """The context switches of a process's main thread so far: each sleep it woke from."""
    n = 0
    with open(f"/proc/{pid}/task/{pid}/status") as f:
        for line in f:
            if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                n += int(line.split()[1])
    return n


def idle_seat_sleeps(a, x):
    """An idle seat sleeps until input, a socket or a deadline of its own: with two VMs shown
    and nothing drawn, typed or asked, its main thread wakes at most a few times a second (it
    polled every 4 ms, 250 times a second, before)."""
    d = tempfile.mkdtemp(prefix="seat-", dir=scratch_base(a.bindir))
    fake = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fake_display.py")
    procs = []
    try:
        for name in ("one", "two"):
            procs.append(subprocess.Popen([sys.executable, fake, "--socket", f"{d}/{name}.sock", "--name", name]))
        wait_until(lambda: all(os.path.exists(f"{d}/{n}.sock") for n in ("one", "two")), 10, "sockets")
        sock = f"{d}/seat.sock"
        seat = subprocess.Popen([os.path.join(a.bindir, "shoji-seat"), "--control", sock, "--size", "800x600",
                                 "--vm", f"one={d}/one.sock,label=blue", "--vm", f"two={d}/two.sock,label=green"],
                                env=x.env(), stdout=subprocess.DEVNULL, stderr=open(f"{d}/seat.log", "ab"))
        procs.append(seat)
        wait_until(lambda: sum(v["state"] == "live" for v in call(sock, {"cmd": "status"})["vms"]) == 2, 20,
                   "both screens live")
        time.sleep(1)  # the first frames presented
        before, t0 = wakeups(seat.pid), time.monotonic()
        time.sleep(3)
        n, secs = wakeups(seat.pid) - before, time.monotonic() - t0
        print(f"# idle seat: {n} wakeups of its main thread in {secs:.1f} s ({n / secs:.1f}/s)", flush=True)
        assert n / secs < 10, f"the idle seat woke {n / secs:.0f} times a second"
        assert call(sock, {"cmd": "status"})["ok"] and seat.poll() is None
    finally:
        for p in procs:
            p.kill()
            p.wait()


def main():
    a = parse_args("--display", [("--kms", "a bare console (KMS/DRM, uinput) instead of Xvfb")])
    if not a:
        return 77
    if not a.kms and seatlib.missing_tools():
        print(f"SKIP: {' and '.join(seatlib.missing_tools())} missing (scripts/install-deps)")
        return 77
    x = seatlib.Console() if a.kms else seatlib.Xvfb()
    ts = Toolstack(a)
    if seat_as_user():  # its user is the seat's: it sees the VMs with a display and takes them
        ts.daemon_args += ["--group", SEAT_GROUP, "--seat-user", str(SEAT_UID)]
    seat = None
    passed = failed = 0

    def run(name, fn):
        nonlocal passed, failed
        start = time.monotonic()
        try:
            fn()
            passed += 1
            print(f"ok - {name} ({time.monotonic() - start:.1f}s)", flush=True)
        except Exception as e:  # noqa: BLE001
            failed += 1
            print(f"not ok - {name}: {e if isinstance(e, AssertionError) else traceback.format_exc()}",
                  flush=True)

    try:
        ts.start_daemon()
        create(ts, "work", "blue")
        create(ts, "personal", "green")
        ts.ok("start", "work")
        ts.ok("start", "personal")
        seat = Seat(ts, x)
        for t in TESTS:  # in order: each builds on the state the previous ones left
            if (ts.real and t in STAND_IN_ONLY) or (a.kms and t in SCREEN_INDEPENDENT):
                continue
            run(t.__name__, lambda: t(ts, seat))
        if not ts.real and not a.kms:  # the protocol, whatever the screen; one DRM master at a time
            run("hostile_monitors", lambda: hostile_monitors(a, x))
            run("idle_seat_sleeps", lambda: idle_seat_sleeps(a, x))
    finally:
        if failed:
            for f in ("seat.log", "shojid.log"):
                with open(os.path.join(ts.dir, f), "rb") as fh:
                    print(f"--- {f} (end) ---\n" + fh.read().decode(errors="replace")[-3000:])
        status = failed_status(ts, failed, passed)
        if seat:
            seat.stop()
        ts.cleanup()
        x.stop()
    print(f"{passed} passed, {failed} failed")
    return status


if __name__ == "__main__":
    sys.exit(main())
