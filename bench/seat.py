#!/usr/bin/env python3
"""bench/seat: the seat's latencies and cost, measured on shoji-seat with stand-in monitors
(tests/integration/fake_display.py) under a virtual X server (Xvfb), 1920x1080 guests shown 1:1.

- switch: the hot key's modifiers + a digit (direct) and the hot key then a digit (through the
  switcher): from the seat handling the switching key to the first presented frame of the target
  VM (the seat's own clock; X's delivery of the key to the seat is not in it). Goal < 16 ms.
- frame latency: a monitor's DAMAGE sent -> its ACK received (the ACK goes once the frame is
  uploaded, before it is presented), one frame in flight, 60 a second; and the seat's part
  alone (DAMAGE read -> presented).
- CPU: the seat's CPU time (utime + stime) per full-frame 1920x1080 update, for the shown VM at 60
  frames a second and as fast as one frame in flight lets it, and for a hidden VM drawing 60 a
  second (its DAMAGE held unacknowledged until it is shown, so its monitor merges the rest), less
  its idle cost over the same time; with how many of the hidden VM's frames reached the seat.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
import seatlib  # noqa: E402

FAKE = os.path.join(HERE, "..", "tests", "integration", "fake_display.py")
TICK = os.sysconf("SC_CLK_TCK")


def cpu_s(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def fmt(xs):
    if not xs:
        return "n/a"
    return f"median {statistics.median(xs):.2f} ms, worst {max(xs):.2f} ms (n={len(xs)})"


class Run:
    def __init__(self, a, x, vms):
        """vms: (name, fake_display args)."""
        self.d = tempfile.mkdtemp(prefix="bench-seat-", dir=a.tmp)
        self.fakes = []
        for name, extra in vms:
            self.fakes.append(subprocess.Popen(
                [sys.executable, FAKE, "--socket", f"{self.d}/{name}.sock", "--name", name, "--size",
                 "1920x1080", *extra], stdout=subprocess.PIPE, text=True))
        seatlib.wait_until(lambda: all(os.path.exists(f"{self.d}/{n}.sock") for n, _ in vms), 10, "sockets")
        self.sock = f"{self.d}/seat.sock"
        args = [os.path.join(a.bindir, "shoji-seat"), "--control", self.sock, "--size", "1920x1108",
                "--renderer", a.renderer]
        for name, _ in vms:
            args += ["--vm", f"{name}={self.d}/{name}.sock,label=blue"]
        self.seat = subprocess.Popen(args, env=x.env(), stderr=subprocess.DEVNULL)
        seatlib.wait_until(lambda: os.path.exists(self.sock), 10, "the seat")
        self.env = x.env()

    def call(self, req):
        return seatlib.call(self.sock, req)

    def stop(self):
        for p in [self.seat] + self.fakes:
            p.kill()
            p.wait()


def bench_switch(a, x, n):
    r = Run(a, x, [("one", []), ("two", [])])
    try:
        seatlib.wait_until(lambda: all(v["width"] for v in r.call({"cmd": "status"})["vms"]), 10, "displays")
        seatlib.focus_seat(r.env)
        for i in range(n):  # direct: ctrl+alt+digit
            target = "two" if i % 2 == 0 else "one"
            seatlib.xdotool(r.env, "key", f"ctrl+alt+{2 if target == 'two' else 1}")
            seatlib.wait_until(lambda: r.call({"cmd": "status"})["active"] == target, 5, "switch")
        direct = r.call({"cmd": "stats"})["switch_ms"]
        for i in range(n):  # through the switcher: the hot key, then the digit
            target = "two" if i % 2 == 0 else "one"
            seatlib.xdotool(r.env, "key", "ctrl+alt+space")
            seatlib.wait_until(lambda: r.call({"cmd": "status"})["switcher"], 5, "switcher")
            seatlib.xdotool(r.env, "key", "2" if target == "two" else "1")
            seatlib.wait_until(lambda: r.call({"cmd": "status"})["active"] == target, 5, "switch")
        st = r.call({"cmd": "stats"})
        return direct, st["switch_ms"][len(direct):], st.get("renderer", "?")
    finally:
        r.stop()


def bench_frames(a, x, frames, interval, window, hidden):
    """The seat's CPU per frame and the latencies, for a shown or a hidden VM."""
    delay = 3.0
    vms = [("bench", ["--mode", "bench", "--frames", str(frames), "--interval", str(interval),
                      "--window", str(window), "--delay", str(delay)] + (["--merge"] if hidden else []))]
    if hidden:
        vms.insert(0, ("shown", []))  # the first VM is the one shown
    r = Run(a, x, vms)
    try:
        seatlib.wait_until(lambda: all(v["width"] for v in r.call({"cmd": "status"})["vms"]), 10, "displays")
        time.sleep(0.5)
        c0, t0 = cpu_s(r.seat.pid), time.monotonic()
        time.sleep(delay - 1.0)
        idle_per_s = (cpu_s(r.seat.pid) - c0) / (time.monotonic() - t0)
        bench = r.fakes[-1]
        line = ""
        c1 = t1 = None
        while not line:
            if c1 is None:
                c1, t1 = cpu_s(r.seat.pid), time.monotonic()
            line = bench.stdout.readline()
        c2, t2 = cpu_s(r.seat.pid), time.monotonic()
        rep = json.loads(line)
        st = r.call({"cmd": "stats"})
        busy = (c2 - c1) - idle_per_s * (t2 - t1)
        rep["cpu_ms_per_frame"] = busy * 1000 / (rep["drawn"] if hidden else rep["acked"])
        rep["idle_cpu_percent"] = idle_per_s * 100
        rep["seat_frame_ms"] = st["frame_ms"]
        rep["upload_ms"] = st["upload_ms"]
        rep["draw_ms"] = st["draw_ms"]
        rep["present_ms"] = st["present_ms"]
        return rep
    finally:
        r.stop()


def hidden_cost(ms):
    return f"{ms:.3f} ms" if ms >= 0.01 else "below the idle noise (under 0.01 ms)"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bindir", required=True)
    ap.add_argument("--switches", type=int, default=20)
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--renderer", default="auto", choices=("auto", "gpu", "software"),
                    help="the seat's --renderer (gpu: SDL's OpenGL renderer even where it is llvmpipe)")
    a = ap.parse_args()
    a.bindir = os.path.abspath(a.bindir)
    a.tmp = os.path.join(os.path.dirname(a.bindir), "tmp")
    os.makedirs(a.tmp, exist_ok=True)
    if seatlib.missing_tools():
        print(f"bench/seat: {' and '.join(seatlib.missing_tools())} missing (scripts/install-deps)")
        return 1
    x = seatlib.Xvfb(1920, 1200)
    try:
        direct, via, renderer = bench_switch(a, x, a.switches)
        paced = bench_frames(a, x, a.frames, 1000 / 60, 1, hidden=False)
        flat = bench_frames(a, x, a.frames, 0, 1, hidden=False)
        hid = bench_frames(a, x, a.frames, 1000 / 60, 1, hidden=True)
    finally:
        x.stop()
    print(f"seat renderer: {renderer} (Xvfb, {os.cpu_count()} CPUs); guests 1920x1080 shown 1:1")
    print(f"switch, hot-key modifiers + digit -> first frame of the target: {fmt(direct)}")
    print(f"switch, hot key then digit (switcher) -> first frame: {fmt(via)}")
    goal = statistics.median(direct + via) < 16 if direct + via else False
    print(f"  goal < 16 ms (median): {'met' if goal else 'NOT met'}")
    print(f"frame latency, DAMAGE sent -> ACK (uploaded), 60/s, one in flight: median "
          f"{paced['latency_ms_median']:.2f} ms, worst {paced['latency_ms_worst']:.2f} ms")
    print(f"  of which the seat, DAMAGE read -> presented: {fmt(paced['seat_frame_ms'])}")
    print(f"  texture upload of 1920x1080: {fmt(paced['upload_ms'])}")
    print(f"  composing the frame (upload included): {fmt(paced['draw_ms'])}")
    print(f"  SDL_RenderPresent: {fmt(paced['present_ms'])}")
    print(f"seat CPU per full 1920x1080 frame: shown at 60/s {paced['cpu_ms_per_frame']:.2f} ms; "
          f"shown flat out {flat['cpu_ms_per_frame']:.2f} ms "
          f"({flat['frames'] / flat['seconds']:.0f} frames/s); hidden, 60/s: {hidden_cost(hid['cpu_ms_per_frame'])} "
          f"({hid['frames']} of its {hid['drawn']} frames sent to the seat)")
    print(f"seat idle CPU: {paced['idle_cpu_percent']:.1f}% of one CPU")
    print("QEMU: not compared here; see bench/seat's notes in README.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
