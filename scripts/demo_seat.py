#!/usr/bin/env python3
"""demo_seat.py: scripts/demo-desktops' dealings with the seat it runs off screen (on a virtual X
server, Xvfb, when DISPLAY is set; through SDL's offscreen driver otherwise), through the seat's
control socket and, on Xvfb, keys typed with xdotool as a user would.

  demo_seat.py SOCKET shown NAME PICTURE.png COLOUR...
      switch to NAME; wait (up to 30 minutes; ended at once if NAME stops or crashes) until one
      of the colours (RRGGBB) covers a third of the window under the bar and the picture has then stayed the same for 20 s (at most 5
      minutes more: a desktop draws its bar and terminal after its background); save the window
      as PICTURE.png and print the VM's screen size
  demo_seat.py SOCKET type TEXT        type TEXT and Return into the shown VM (Xvfb only)
  demo_seat.py SOCKET key COMBO        press COMBO (xdotool's words: ctrl+q) in the shown VM
  demo_seat.py SOCKET chord KEY FROM   the hot key's modifiers + KEY (c copies, v pastes); wait
      until the bar tells how it went and print that; a copy must bring text from FROM
  demo_seat.py SOCKET picture PICTURE.png   save the window now
"""
import os
import re
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "integration"))
import seatlib  # noqa: E402

HOTKEY_MODS = "ctrl+alt"  # src/seat/hotkey.h: HOTKEY_DEFAULT's modifiers


def status(sock):
    return seatlib.call(sock, {"cmd": "status"})


def shot_of(sock, name, ppm):
    """The window's pixels while it shows name, else None."""
    try:
        if status(sock).get("active") != name:
            return None
        return seatlib.screenshot(sock, ppm)
    except (OSError, ValueError, AssertionError):
        return None


def gone(sock, name):
    """Why the seat says name has stopped, crashed or broken off; None while it runs."""
    try:
        vm = next((v for v in status(sock)["vms"] if v["name"] == name), None)
    except (OSError, ValueError, AssertionError):
        return None
    if vm and vm["state"] in ("stopped", "crashed", "broken"):
        return f"{vm['state']}: {vm['why'] or 'no reason given'}"
    return None


def shown(sock, name, png, colours):
    seatlib.wait_until(lambda: seatlib.call(sock, {"cmd": "switch", "name": name}).get("ok"), 60,
                       f"the seat taking '{name}'")
    ppm, colours = png + ".ppm", {int(c, 16) for c in colours}
    end, seen = time.monotonic() + 1800, None
    while seen is None and time.monotonic() < end:
        s = shot_of(sock, name, ppm)
        if s and s.share(colours, top=seatlib.BAR_H + 12, step=16) * 3 >= 1:
            seen = s.px
        elif why := gone(sock, name):
            sys.exit(f"demo: '{name}' {why} (before it drew)")
        else:
            time.sleep(2)
    if seen is None:
        sys.exit(f"demo: '{name}' did not draw within 30 minutes")
    settle = time.monotonic() + 300
    while time.monotonic() < settle:
        time.sleep(20)
        s = shot_of(sock, name, ppm)
        if s and s.px == seen:
            break
        seen = s.px if s else seen
    seatlib.ppm_to_png(ppm, png)
    os.unlink(ppm)
    st = status(sock)
    vm = next(v for v in st["vms"] if v["name"] == st["active"])
    print(f"demo: {vm['name']}'s screen is {vm['width']}x{vm['height']}")


def keys():
    if not os.environ.get("DISPLAY"):
        sys.exit("demo: typing into the seat needs its virtual X server (Xvfb and xdotool)")
    inp = seatlib.XInput(dict(os.environ))
    inp.focus()
    return inp


def chord(sock, key, source):
    """The chord once; a copy again (up to 6 times, 15 s apart) while it brings nothing: in the
    emulated machine the text typed may take a while to reach the guest's clipboard. A paste the
    guest's agent failed (not one the policy refused) is pressed again, as a user would, up to 3
    times, each refusal printed: the hold stays in shojid until a paste succeeds."""
    for attempt in range(6):
        before = status(sock)["clipboard"]
        keys().key(f"{HOTKEY_MODS}+{key}")

        def told():
            clip = status(sock)["clipboard"]
            return clip["notice"] and clip != before and clip
        clip = seatlib.wait_until(told, 30, "the bar's word on the clipboard")
        print(f"demo: the seat's bar: \"{clip['notice']}\"")
        if clip.get("refused"):
            if key == "v" and "agent" in clip["notice"] and attempt < 2:
                time.sleep(15)
                continue
            sys.exit(f"demo: the clipboard {'copy' if key == 'c' else 'paste'} was refused: {clip}")
        copied = re.match(r"copied (\d+) bytes from (\S+)$", clip["notice"])
        if key != "c" or (copied and int(copied[1]) > 0 and copied[2] == source):
            return
        time.sleep(15)
    sys.exit(f"demo: {source}'s clipboard stayed empty")


def main():
    sock, cmd, args = sys.argv[1], sys.argv[2], sys.argv[3:]
    if cmd == "shown":
        shown(sock, args[0], args[1], args[2:])
    elif cmd == "type":
        inp = keys()
        inp.type(args[0])
        inp.key("Return")
    elif cmd == "key":
        keys().key(args[0])
    elif cmd == "chord":
        chord(sock, args[0], args[1])
    elif cmd == "picture":
        seatlib.screenshot(sock, args[0] + ".ppm")
        seatlib.ppm_to_png(args[0] + ".ppm", args[0])
        os.unlink(args[0] + ".ppm")
    else:
        sys.exit(f"demo_seat.py: unknown command {cmd}")


if __name__ == "__main__":
    main()
