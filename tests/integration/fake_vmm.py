#!/usr/bin/env python3
"""fake_vmm: a stand-in for shoji-vmm that speaks its toolstack contract (--control-socket,
--serial socket:PATH, --serial-log, exit statuses) without KVM, so that shojid's supervision
can be tested on any machine. The 'guest' prints the init marker, echoes console input, and
powers off on "shutdown" (status 0) or ends on "stop" (status 6). "disk-snapshot" writes a
qcow2 overlay header into the descriptor passed with it and makes it the disk's top, as the
real monitor does (the guest writes nothing, so nothing else changes). --display socket:PATH
serves a display channel through fake_display.py (a screen of the colour shoji.color=RRGGBB on
the command line, as the test guest's display action; keys it receives are written to the
serial log, as that guest echoes them).
--firmware CODE,vars=FILE (instead of --kernel) boots "through firmware": CODE must be readable
and FILE (the VM's variable store) open for reading and writing, as the jail uid when it has
one (checked in a child that becomes that uid), or it refuses to start (status 1), naming the
file; FILE is kept open, and the control command "fake-write-vars" {"data": TEXT} writes TEXT
at its start, as a guest's variable write would.
clipboard-get and clipboard-set act on a clipboard the guest holds (with or without --vsock): at
first the guest parameter clip (--param clip=WORD, which the test guest puts in its clipboard),
and a set is written to the serial log as the test guest reports it ("shoji-guest: clipboard
set: N bytes: TEXT"); the word "hostile" makes clipboard-get answer like a compromised monitor
(a byte count that is not the data's).
--net link[,mac=MAC] NICs take a link's socket with "net-link" {"nic": "N"} (a SOCK_SEQPACKET
Unix socket, or it is refused; --net passt NICs a SOCK_STREAM one) and report it up in status's
nics until the other end closes; a --net slirp NIC is up from the start (its own NAT) until
"fake-nat-end" {"nic": "N"} (as if its shoji-slirp ended), and then takes a new NAT's
SOCK_SEQPACKET socket with "net-link" as a link's (status says so per NIC, "takes_socket"),
unless the command line has fake.old_monitor=1: then it acts as a monitor from before shojid
restarted slirp NICs' NATs (no "takes_socket", a slirp NIC's net-link refused; nor "offload",
a link's offload refused). Each net-link is written to the serial log ("fake: nic N linked",
"with offload" where asked);
"fake-link-send" {"nic": "N", "data": TEXT} sends TEXT as a frame on it, and each frame that
arrives is written to the serial log ("fake: nic N received: TEXT"), so a test sees which VM's
NIC reaches which.
"fake-hang" answers, then leaves every later control request unanswered, as a hung or hostile
monitor would.
Other options are accepted and ignored; --jail-uid makes it refuse to start (status 1) when not
root, as the real one would."""
import base64
import binascii
import ctypes
import json
import os
import re
import struct
import subprocess
import selectors
import signal
import socket
import sys
import time


def qcow2_overlay(fd, size, cluster_bits, backing, backing_fmt):
    """An empty qcow2 v3 image on a backing file, laid out as shoji-img creates one: header
    cluster, refcount table, one refcount block, the L1 table."""
    cs = 1 << cluster_bits
    l1_size = max(1, -(-size // (cs * (cs // 8))))
    l1_clusters = -(-l1_size * 8 // cs)
    total = 3 + l1_clusters
    h = bytearray(cs)
    struct.pack_into(">IIQIIQIIQQIIQQQQII", h, 0, 0x514649FB, 3, 0, 0, cluster_bits, size, 0, l1_size,
                     3 * cs, cs, 1, 0, 0, 0, 0, 0, 4, 112)
    ext = struct.pack(">II", 0xE2792ACA, len(backing_fmt)) + backing_fmt.encode()
    ext += b"\0" * (-len(ext) % 8) + b"\0" * 8
    h[112:112 + len(ext)] = ext
    name = backing.encode()
    struct.pack_into(">QI", h, 8, 112 + len(ext), len(name))
    h[112 + len(ext):112 + len(ext) + len(name)] = name
    rt = bytearray(cs)
    struct.pack_into(">Q", rt, 0, 2 * cs)
    rb = bytearray(cs)
    for c in range(total):
        struct.pack_into(">H", rb, 2 * c, 1)
    os.pwrite(fd, bytes(h) + bytes(rt) + bytes(rb) + bytes(l1_clusters * cs), 0)
    os.fsync(fd)


def image_geometry(path):
    """(virtual size, cluster bits, format) of a disk image."""
    with open(path, "rb") as f:
        head = f.read(32)
    if head[:4] == b"QFI\xfb":
        return struct.unpack(">Q", head[24:32])[0], struct.unpack(">I", head[20:24])[0], "qcow2"
    return os.path.getsize(path), 16, "raw"
def start_display(opts, log_path):
    spec = opts.get("--display", [None])[0]
    if not spec:
        return None
    path = spec[len("socket:"):].split(",")[0]
    colour = re.search(r"shoji\.color=([0-9a-fA-F]{6})", opts.get("--cmdline", [""])[0])
    args = [sys.executable, os.path.join(os.path.dirname(os.path.abspath(__file__)), "fake_display.py"),
            "--socket", path, "--name", os.path.basename(os.path.dirname(path)),
            "--colour", colour.group(1) if colour else "808080", "--tick-ms", "250"]
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


def open_as(uid, gid, path, flags, follow):
    """None when path opens with flags as uid:gid with no other group, else why not. As in the
    real monitor's jail, which shows the file itself, only the file's own mode counts: it is
    found as root (O_PATH) and opened as uid through /proc/self/fd."""
    try:
        pfd = os.open(path, os.O_PATH | (0 if follow else os.O_NOFOLLOW))
    except OSError as e:
        return e.strerror
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            if uid is not None:
                os.setgroups([])
                os.setresgid(gid, gid, gid)
                os.setresuid(uid, uid, uid)
                ctypes.CDLL(None).prctl(4, 1)  # PR_SET_DUMPABLE: its /proc/self is its own again
            os.close(os.open(f"/proc/self/fd/{pfd}", flags))
        except OSError as e:
            os.write(w, e.strerror.encode())
        os._exit(0)
    os.close(w)
    os.close(pfd)
    why = os.read(r, 512).decode()
    os.close(r)
    os.waitpid(pid, 0)
    return why or None


def open_firmware(opts):
    """The variable store's descriptor (read-write), or exits 1 with the reason, as shoji-vmm."""
    spec = opts["--firmware"][0]
    code, _, vars_opt = spec.partition(",")
    if not code or not vars_opt.startswith("vars=") or "," in vars_opt:
        print(f"shoji-vmm: --firmware takes CODE,vars=FILE, not '{spec}'", file=sys.stderr)
        sys.exit(1)
    if any(o in opts for o in ("--kernel", "--initrd", "--cmdline")):
        print("shoji-vmm: --kernel and --firmware exclude each other: the firmware boots from the disks",
              file=sys.stderr)
        sys.exit(1)
    jailed = "--jail-uid" in opts and os.geteuid() == 0
    uid = int(opts["--jail-uid"][0]) if jailed else None
    gid = int(opts["--jail-gid"][0]) if jailed else None
    for what, path, flags, follow in (("firmware code", code, os.O_RDONLY, True),
                                      ("firmware vars", vars_opt[5:], os.O_RDWR, False)):
        why = open_as(uid, gid, path, flags, follow)
        if why:
            print(f"shoji-vmm: cannot open {what} '{path}': {why}", file=sys.stderr)
            sys.exit(1)
    return os.open(vars_opt[5:], os.O_RDWR | os.O_NOFOLLOW)


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
    vars_fd = open_firmware(opts) if "--firmware" in opts else None
    if vars_fd is None and (not kernel or not os.path.exists(kernel)):
        print(f"shoji-vmm: cannot open kernel '{kernel}': No such file or directory", file=sys.stderr)
        return 1
    if "fake.exit=1" in opts.get("--cmdline", [""])[0]:
        print("shoji-vmm: the fake guest refuses to start", file=sys.stderr)
        return 1
    start = time.monotonic()
    state = {"paused": False, "exit": None}
    disks = []  # per --disk: {"top": path, "serial": id, "format": fmt}
    for spec in opts.get("--disk", []):
        parts = spec.split(",")
        d = {"top": parts[0], "serial": None, "format": "raw"}
        for p in parts[1:]:
            if p.startswith("serial="):
                d["serial"] = p[7:]
            elif p.startswith("format="):
                d["format"] = p[7:]
        disks.append(d)
    nics = []  # per --net: {"kind": ..., "mac": ..., "sock": the link's socket or None}
    for i, spec in enumerate(opts.get("--net", [])):
        kind = "tap" if spec.startswith("tap=") else spec.split(",")[0]
        mac = next((p[4:] for p in spec.split(",") if p.startswith("mac=")), "52:54:00:12:34:%02x" % (0x56 + i))
        nics.append({"kind": kind, "mac": mac, "sock": None, "own": kind == "slirp"})
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

    def disk_snapshot(req, fds):
        disk = next((d for i, d in enumerate(disks) if req.get("disk") in (str(i), d["serial"])), None)
        if disk is None:
            return {"ok": False, "error": f"no disk '{req.get('disk')}'"}
        if disk["format"] != "qcow2":
            return {"ok": False, "error": "disk-snapshot needs a qcow2 disk; this one is raw"}
        if len(fds) != 1 or not isinstance(req.get("backing"), str):
            return {"ok": False, "error": "disk-snapshot needs one descriptor and a backing name"}
        t0 = time.monotonic()
        size, bits, fmt = image_geometry(disk["top"])
        qcow2_overlay(fds[0], size, bits, req["backing"], fmt)
        disk["top"] = os.readlink(f"/proc/self/fd/{fds[0]}")
        return {"ok": True, "paused_ms": (time.monotonic() - t0) * 1000}

    def forbidden_syscall():
        """A seccomp filter (libseccomp, through ctypes) that kills on acct(2), then acct(2):
        the process ends by SIGSYS from the kernel, which reaches even the first process of a
        PID namespace (a signal sent by hand would not)."""
        lib = ctypes.CDLL("libseccomp.so.2")
        lib.seccomp_init.restype = ctypes.c_void_p
        ctx = lib.seccomp_init(ctypes.c_uint32(0x7FFF0000))  # SCMP_ACT_ALLOW
        acct = 163  # x86-64
        lib.seccomp_rule_add(ctypes.c_void_p(ctx), ctypes.c_uint32(0x80000000), acct, 0)  # KILL_PROCESS
        lib.seccomp_load(ctypes.c_void_p(ctx))
        ctypes.CDLL(None).syscall(acct, None)

    def fake_agent():
        """With --vsock, a ready agent whose report a compromised monitor has salted with what
        shojid must leave out (an escape sequence, a bad key, a wrong type, an unknown cap)."""
        if "--vsock" not in opts:
            return {"state": "none", "faults": 0, "time_syncs": 0}
        return {"state": "ready", "caps": ["info", "power", "\u001b[31mevil"], "seen_s_ago": 1,
                "info": {"os": "Fake OS 1", "hostname": "fake", "kernel": "\u001b]0;owned\u0007",
                         "Bad Key": "x", "uptime-s": 12, "addresses": "eth0=10.0.2.15"},
                "info_s_ago": 1, "faults": 0, "time_syncs": 0, "error": "x" * 500}

    clip = {"text": next((p[len("clip="):].encode() for p in opts.get("--param", []) if p.startswith("clip=")),
                         b"")}

    def clipboard(req):
        hostile = clip["text"] == b"hostile"
        if req["cmd"] == "clipboard-get":
            return {"ok": True, "kind": "text", "bytes": len(clip["text"]) + (7 if hostile else 0),
                    "data": base64.b64encode(clip["text"]).decode()}
        try:
            clip["text"] = base64.b64decode(req.get("data", ""), validate=True)
        except (binascii.Error, TypeError):
            return {"ok": False, "error": "clipboard-set: data is not base64"}
        guest_write(b"shoji-guest: clipboard set: %d bytes: %s\r\n" % (len(clip["text"]), clip["text"][:100]))
        return {"ok": True}

    def nic_of(req):
        n = req.get("nic")
        return nics[int(n)] if isinstance(n, str) and n.isdigit() and int(n) < len(nics) else None

    old = "fake.old_monitor=1" in opts.get("--cmdline", [""])[0]
    takes = ("link", "passt") if old else ("link", "passt", "slirp")

    def net_link(req, fds):
        nic = nic_of(req)
        if nic is None or nic["kind"] not in takes or len(fds) != 1:
            return {"ok": False, "error": "net-link needs a link, passt or slirp NIC's index and one descriptor"}
        sock = socket.socket(fileno=os.dup(fds[0]))
        want = socket.SOCK_STREAM if nic["kind"] == "passt" else socket.SOCK_SEQPACKET
        if sock.type != want or sock.family != socket.AF_UNIX:
            sock.close()
            return {"ok": False, "error": "a link's descriptor must be a SOCK_SEQPACKET Unix socket, "
                                          "a passt NIC's a SOCK_STREAM one"}
        if "offload" in req and (not isinstance(req["offload"], bool) or (req["offload"] and (old or nic["kind"] != "link"))):
            sock.close()
            return {"ok": False, "error": "offload is true or false, and applies to a link only"}
        link_down(nic)
        nic["sock"] = sock
        sel.register(sock, selectors.EVENT_READ, ("link", nics.index(nic)))
        guest_write(b"fake: nic %d linked%s\r\n" % (nics.index(nic), b" with offload" if req.get("offload") else b""))
        return {"ok": True}

    def link_down(nic):
        if nic["sock"]:
            sel.unregister(nic["sock"])
            nic["sock"].close()
            nic["sock"] = None

    def link_send(req):
        nic = nic_of(req)
        if nic is None or nic["sock"] is None or not isinstance(req.get("data"), str):
            return {"ok": False, "error": "no such link, or it is down"}
        try:
            nic["sock"].send(req["data"].encode())
        except OSError as e:  # the other end went: down, as the real monitor's link goes
            link_down(nic)
            return {"ok": False, "error": f"the link went down: {e.strerror}"}
        return {"ok": True}

    def nics_status():
        said = [{"kind": n["kind"], "mac": n["mac"],
                 "link": "up" if n["sock"] or n["own"] or n["kind"] not in ("link", "passt", "slirp") else "down",
                 "rx_dropped": 0, "tx_dropped": 0} for n in nics]
        for s in said if not old else ():
            s["takes_socket"] = s["kind"] in takes
            s["offload"] = s["kind"] == "link"
        return said

    def answer(conn, line, fds):
        try:
            req = json.loads(line)
            cmd = req.get("cmd") if isinstance(req, dict) else None
        except ValueError:
            cmd = None
        if state.get("hung"):  # a hung (or hostile) monitor: the request read, never answered
            rep = None
        elif cmd == "status":
            rep = {"ok": True, "state": "paused" if state["paused"] else "running", "pid": os.getpid(),
                   "cpus": 1, "memory_mib": 64, "uptime_s": time.monotonic() - start,
                   "agent": fake_agent(), "nics": nics_status()}
        elif cmd in ("pause", "resume"):
            state["paused"] = cmd == "pause"
            rep = {"ok": True, "state": "paused" if state["paused"] else "running"}
        elif cmd == "shutdown":
            rep = {"ok": True, "via": "agent" if "--vsock" in opts else "acpi"}
            if "fake.ignore_acpi=1" not in opts.get("--cmdline", [""])[0]:
                state["exit"] = 0
        elif cmd == "stop":
            rep = {"ok": True}
            state["exit"] = 6
        elif cmd == "disk-snapshot":
            rep = disk_snapshot(req, fds)
        elif cmd == "fake-write-vars" and vars_fd is not None and isinstance(req.get("data"), str):
            os.pwrite(vars_fd, req["data"].encode(), 0)
            os.fsync(vars_fd)
            rep = {"ok": True}
        elif cmd in ("clipboard-get", "clipboard-set"):
            rep = clipboard(req)
        elif cmd == "net-link":
            rep = net_link(req, fds)
        elif cmd == "fake-link-send":
            rep = link_send(req)
        elif cmd == "fake-nat-end" and nic_of(req) and nic_of(req)["kind"] == "slirp":
            nic_of(req)["own"] = False
            link_down(nic_of(req))
            rep = {"ok": True}
        elif cmd == "fake-hang":
            state["hung"] = True
            rep = {"ok": True}
        elif cmd == "test-forbidden-syscall":
            forbidden_syscall()  # dies of SIGSYS, as the real monitor does under its filter
            rep = {"ok": False, "error": "the filter did not kill"}
        else:
            rep = {"ok": False, "error": "unknown command"}
        for fd in fds:
            os.close(fd)
        fds.clear()
        if rep is None:
            return
        data = (json.dumps(rep) + "\n").encode()
        if "fake.hostile_fds=1" in opts.get("--cmdline", [""])[0]:
            # a compromised monitor: ten descriptors nobody asked for with every reply
            junk = [os.open("/dev/null", os.O_RDONLY) for _ in range(10)]
            socket.send_fds(conn, [data], junk)
            for fd in junk:
                os.close(fd)
        else:
            conn.sendall(data)

    while state["exit"] is None:
        for key, _ in sel.select(0.5):
            tag = key.data
            if tag == "signal":
                os.read(r, 64)
            elif isinstance(tag, tuple) and tag[0] == "link":
                try:
                    frame = key.fileobj.recv(65536)
                except OSError:
                    frame = b""
                if frame:
                    guest_write(b"fake: nic %d received: %s\r\n" % (tag[1], frame[:200]))
                else:
                    link_down(nics[tag[1]])  # the other end closed: the link is down
            elif tag == "ctl-listen":
                c, _ = ctl.accept()
                buffers[c] = b""
                sel.register(c, selectors.EVENT_READ, "ctl")
            elif tag == "ser-listen":
                c, _ = ser.accept()
                if console["client"]:  # one client at a time, as shoji-vmm: the newcomer is refused
                    c.sendall(b"shoji-vmm: this console is in use by another client; detach it first\r\n")
                    c.close()
                    continue
                console["client"] = c
                sel.register(c, selectors.EVENT_READ, "ser")
            elif tag == "ctl":
                c = key.fileobj
                data, fds, _, _ = socket.recv_fds(c, 65536, 4)
                if not data:
                    sel.unregister(c)
                    c.close()
                    del buffers[c]
                    continue
                buffers[c] += data
                while b"\n" in buffers[c]:
                    line, buffers[c] = buffers[c].split(b"\n", 1)
                    answer(c, line, fds)
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
