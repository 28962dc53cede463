#!/usr/bin/env python3
"""fake_vmm: a stand-in for shoji-vmm that speaks its toolstack contract (--control-socket,
--serial socket:PATH, --serial-log, exit statuses) without KVM, so that shojid's supervision
can be tested on any machine. The 'guest' prints the init marker, echoes console input, and
powers off on "shutdown" (status 0) or ends on "stop" (status 6). --display socket:PATH serves
a display channel through fake_display.py (a screen of the colour shoji.color=RRGGBB on the
command line, as the test guest's display action; keys it receives are written to the serial
log, as that guest echoes them).
Other options are accepted and ignored; --jail-uid makes it refuse to start (status 1) when not
root, as the real one would."""
import ctypes
import json
import os
import re
import subprocess
import selectors
import signal
import socket
import sys
import time


def start_display(opts, log_path):
    spec = opts.get("--display", [None])[0]
    if not spec:
        return None
    path = spec[len("socket:"):].split(",")[0]
    colour = re.search(r"shoji\.color=([0-9a-fA-F]{6})", opts.get("--cmdline", [""])[0])
    args = [sys.executable, os.path.join(os.path.dirname(os.path.abspath(__file__)), "fake_display.py"),
            "--socket", path, "--name", os.path.basename(os.path.dirname(path)),
            "--colour", colour.group(1) if colour else "808080"]
    if log_path:
        args += ["--keys-log", log_path]

    def die_with_parent():
        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG

    p = subprocess.Popen(args, preexec_fn=die_with_parent)
    for _ in range(100):  # the socket exists before the monitor answers, as in shoji-vmm
        if os.path.exists(path):
            break
        time.sleep(0.02)
    return p


def main(argv):
    opts = {}
    i = 0
    while i < len(argv):
        a = argv[i]
        if a in ("--rng", "--stats"):
            i += 1
            continue
        if i + 1 >= len(argv):
            print(f"shoji-vmm: {a} needs a value", file=sys.stderr)
            return 1
        opts.setdefault(a, []).append(argv[i + 1])
        i += 2
    control = opts.get("--control-socket", [None])[0]
    serial = opts.get("--serial", ["stdio"])[0]
    log_path = opts.get("--serial-log", [None])[0]
    if serial.startswith("file:") and not log_path:
        log_path = serial[5:]
    kernel = opts.get("--kernel", [None])[0]
    if not kernel or not os.path.exists(kernel):
        print(f"shoji-vmm: cannot open kernel '{kernel}': No such file or directory", file=sys.stderr)
        return 1
    if "fake.exit=1" in opts.get("--cmdline", [""])[0]:
        print("shoji-vmm: the fake guest refuses to start", file=sys.stderr)
        return 1
    start = time.monotonic()
    state = {"paused": False, "exit": None}
    sel = selectors.DefaultSelector()
    log = open(log_path, "ab", buffering=0) if log_path else None
    console = {"client": None}

    def guest_write(data):
        if log:
            log.write(data)
        if console["client"]:
            try:
                console["client"].sendall(data)
            except OSError:
                drop_console()

    def drop_console():
        c = console["client"]
        if c:
            sel.unregister(c)
            c.close()
            console["client"] = None

    def listen(path):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(path)
        os.chmod(path, 0o600)
        s.listen(8)
        return s

    display = start_display(opts, log_path)
    ctl = listen(control) if control else None
    ser = listen(serial[7:]) if serial.startswith("socket:") else None
    if ctl:
        sel.register(ctl, selectors.EVENT_READ, "ctl-listen")
    if ser:
        sel.register(ser, selectors.EVENT_READ, "ser-listen")
    r, w = os.pipe()
    os.set_blocking(w, False)
    signal.set_wakeup_fd(w)
    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(s, lambda *_: state.__setitem__("exit", 6))
    sel.register(r, selectors.EVENT_READ, "signal")
    guest_write(b"shoji-guest: init started\r\n")
    buffers = {}

    def answer(conn, line):
        try:
            req = json.loads(line)
            cmd = req.get("cmd") if isinstance(req, dict) else None
        except ValueError:
            cmd = None
        if cmd == "status":
            rep = {"ok": True, "state": "paused" if state["paused"] else "running", "pid": os.getpid(),
                   "cpus": 1, "memory_mib": 64, "uptime_s": time.monotonic() - start}
        elif cmd in ("pause", "resume"):
            state["paused"] = cmd == "pause"
            rep = {"ok": True, "state": "paused" if state["paused"] else "running"}
        elif cmd == "shutdown":
            rep = {"ok": True}
            if "fake.ignore_acpi=1" not in opts.get("--cmdline", [""])[0]:
                state["exit"] = 0
        elif cmd == "stop":
            rep = {"ok": True}
            state["exit"] = 6
        else:
            rep = {"ok": False, "error": "unknown command"}
        conn.sendall((json.dumps(rep) + "\n").encode())

    while state["exit"] is None:
        for key, _ in sel.select(0.5):
            tag = key.data
            if tag == "signal":
                os.read(r, 64)
            elif tag == "ctl-listen":
                c, _ = ctl.accept()
                buffers[c] = b""
                sel.register(c, selectors.EVENT_READ, "ctl")
            elif tag == "ser-listen":
                c, _ = ser.accept()
                drop_console()  # a new console client replaces the old one
                console["client"] = c
                sel.register(c, selectors.EVENT_READ, "ser")
            elif tag == "ctl":
                c = key.fileobj
                data = c.recv(65536)
                if not data:
                    sel.unregister(c)
                    c.close()
                    del buffers[c]
                    continue
                buffers[c] += data
                while b"\n" in buffers[c]:
                    line, buffers[c] = buffers[c].split(b"\n", 1)
                    answer(c, line)
            elif tag == "ser":
                data = key.fileobj.recv(4096)
                if not data:
                    drop_console()
                else:
                    guest_write(data)  # echo, as a shell would
    for path in (control, serial[7:] if ser else None):
        if path:
            try:
                os.unlink(path)
            except OSError:
                pass
    if display:
        display.kill()
        display.wait()
    if state["exit"] == 6:
        print("shoji-vmm: stopped", file=sys.stderr)
    return state["exit"]


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
