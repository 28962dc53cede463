#!/usr/bin/env python3
"""Network benchmark: TCP throughput between the host and a guest's virtio-net NIC, under
shoji-vmm and under QEMU q35 with virtio-net-pci, interleaved in one run, on two backends: the
user-mode NAT (libslirp in both, the host reaching the guest through a port forward) and a TAP
interface, twice: with both monitors moving the frames themselves (vhost=off), and, where the
host has /dev/vhost-net, with both handing the rings to the kernel's vhost-net (vhost=on).
"guest->host" is the host reading N MiB of zeros that the guest sends (guest/nettcp); "host->guest"
is the host sending N MiB that the guest counts (the run ends when the guest reports the
count). The backend "passt" is the user-mode NAT served by passt outside the monitor, under
both (bench/netpasst.py); its ratio against shoji-vmm's own libslirp is printed too. Prints MiB/s, KVM exits per MiB moved (the VM's debugfs statistics) and shoji-vmm/QEMU
ratios: medians of the per-run ratios with their spread and the incomplete runs counted
(bench/phases.py). The backend "link" is two guests joined VM to VM (bench/netlink.py). The
backend "tap4" is four streams at once each way, a quarter of the MiB each, to a guest of four
vCPUs on a multiqueue TAP with four queue pairs (shoji-vmm queues=4, QEMU queues=4 and mq=on),
vhost-net serving the rings where the host has it."""
import argparse
import contextlib
import json
import os
import re
import select
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "integration"))
from boot import free_port, kvm_stat  # noqa: E402
from phases import print_table, ratios  # noqa: E402
import netlink  # noqa: E402
import netpasst  # noqa: E402
import vmmtest  # noqa: E402

TAP, TAP_HOST, TAP_GUEST = "shojibench0", "192.168.78.1", "192.168.78.2"
TAP4, TAP4_HOST, TAP4_GUEST = "shojibench4", "192.168.79.1", "192.168.79.2"  # multiqueue
# The exits by kind (KVM's debugfs names), to say where a monitor's exits come from.
KINDS = ("exits", "halt_exits", "irq_injections", "irq_exits", "io_exits", "mmio_exits", "irq_window_exits")
# On a TAP, the frames the guest sent and received (the host interface's own counters, whichever
# monitor moves them): how big the guest's frames are under each monitor.
FRAMES = {"frames_out": "rx_packets", "frames_in": "tx_packets"}


def tap_counter(tap, name):
    try:
        with open(f"/sys/class/net/{tap}/statistics/{name}") as f:
            return int(f.read())
    except OSError:
        return None


def stats(g):
    s = {k: kvm_stat(g.p.pid, k) for k in KINDS}
    s.update({k: tap_counter(g.tap, c) if g.tap else None for k, c in FRAMES.items()})
    return s


def per_mib(s0, s1, nbytes):
    """(exits per MiB, {kind: count per MiB}) between two stats(); exits None where KVM has none."""
    if s0["exits"] is None or s1["exits"] is None:
        return None, {}
    mib = nbytes / (1 << 20)
    return (s1["exits"] - s0["exits"]) / mib, {k: (s1[k] - s0[k]) / mib for k in KINDS + tuple(FRAMES)
                                               if s0[k] is not None and s1[k] is not None}


class Guest:
    """A monitor process whose serial console we watch."""

    def __init__(self, cmd, tap=None):
        self.tap = tap  # the TAP interface the guest's NIC is on, if any
        self.err = tempfile.TemporaryFile()
        self.p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                  stderr=self.err)
        self.out = b""

    def wait_for(self, pattern, timeout):
        deadline = time.monotonic() + timeout
        fd = self.p.stdout.fileno()
        while time.monotonic() < deadline:
            m = re.search(pattern, self.out)
            if m:
                self.out = self.out[m.end():]
                return m
            if select.select([fd], [], [], 0.2)[0]:
                chunk = os.read(fd, 65536)
                if not chunk:
                    break
                self.out += chunk
        self.err.seek(0)
        raise RuntimeError(f"no {pattern!r} from the guest: {self.out[-400:]!r} "
                           f"{self.err.read()[-400:]!r}")

    def stop(self):
        self.p.kill()
        self.p.wait()


DIRECTION_S = 300  # the most one direction of one run may take, tries included


def connect(addr, timeout=60, poke=False):
    """A connection to the guest's server. poke: send it one byte first (which it ignores), for a
    server that speaks first: Debian 12's passt does not complete the handshake of a connection
    through its forward until the host's side sends something, so the guest's server sending
    /dev/zero would wait forever under it (under QEMU as under shoji-vmm)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            s = socket.create_connection(addr, timeout=timeout)
            if poke:
                s.sendall(b"g")
            return s
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def in_parallel(fn, args):
    """fn(*a) for each a in args, each on its own thread; their results, or the first error."""
    out = [None] * len(args)

    def one(i):
        try:
            out[i] = fn(*args[i])
        except (RuntimeError, OSError) as e:
            out[i] = e

    ts = [threading.Thread(target=one, args=(i,)) for i in range(len(args))]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    for r in out:
        if isinstance(r, Exception):
            raise r
    return out


def receive(s, nbytes, deadline=None):
    """Reads up to nbytes from s (until its end, a reset, or the time.monotonic() deadline); how
    many came. A reset counts as an end: the guest's server not listening yet resets a connection
    a NAT had accepted for it."""
    got = 0
    while got < nbytes and (deadline is None or time.monotonic() < deadline):
        try:
            chunk = s.recv(min(1 << 20, nbytes - got))
        except ConnectionResetError:
            break
        except TimeoutError:  # a stall: say where in the stream it came
            raise RuntimeError(f"no byte for {s.gettimeout() or 0:.0f} s after {got} of {nbytes} bytes") from None
        if not chunk:
            break
        got += len(chunk)
    return got


def send_zeros(s, nbytes):
    block = bytes(1 << 20)
    sent = 0
    while sent < nbytes:
        try:
            s.sendall(block[:min(len(block), nbytes - sent)])
        except TimeoutError:  # a stall: say where in the stream it came
            raise RuntimeError(f"no room for {s.gettimeout() or 0:.0f} s after about {sent} of {nbytes} bytes "
                               "were sent") from None
        sent += min(len(block), nbytes - sent)


def measured(g, nbytes, e0, t0):
    """(MiB/s, exits per MiB, {kind: per MiB}) of nbytes moved since (e0, t0)."""
    t1, e1 = time.monotonic(), stats(g)
    return (nbytes / (t1 - t0) / (1 << 20),) + per_mib(e0, e1, nbytes)


def read_stream(addr, nbytes):
    with connect(addr, poke=True) as s:
        got = receive(s, nbytes)
    if got < nbytes:
        raise RuntimeError(f"guest->host {addr}: connection closed after {got} bytes")


def send_stream(addr, nbytes):
    with connect(addr) as s:
        send_zeros(s, nbytes)


def jobs_guest_to_host(g, addrs, nbytes):
    """len(addrs) streams at once, nbytes in all; (MiB/s, exits, kinds) as guest_to_host."""
    e0, t0 = stats(g), time.monotonic()
    in_parallel(read_stream, [(a, nbytes // len(addrs)) for a in addrs])
    return measured(g, nbytes, e0, t0)


def jobs_host_to_guest(g, addrs, nbytes):
    each = nbytes // len(addrs)
    e0, t0 = stats(g), time.monotonic()
    in_parallel(send_stream, [(a, each) for a in addrs])
    for _ in addrs:
        m = g.wait_for(rb"netbench job received (\d+)\r?\n", 300)
        if int(m[1]) != each:
            raise RuntimeError(f"host->guest: a stream counted {m[1].decode()} of {each} bytes")
    return measured(g, nbytes, e0, t0)


def tap_add(name, addr, flags=()):
    """A TAP with the host's address on it, up; False where none can be made."""
    if subprocess.run(["ip", "tuntap", "add", name, "mode", "tap", *flags], stderr=subprocess.DEVNULL).returncode:
        return False
    subprocess.run(["ip", "addr", "add", f"{addr}/24", "dev", name], check=True)
    subprocess.run(["ip", "link", "set", name, "up"], check=True)
    return True


def guest_to_host(g, addr, nbytes):
    # Through a port forward the connection is accepted, and then closed, when the guest's
    # server is not listening yet: try again until data flows, for at most DIRECTION_S (a
    # stream that trickles ends at that time too, reported with what came).
    deadline = time.monotonic() + DIRECTION_S
    for attempt in range(1, 101):
        s = connect(addr, poke=True)
        e0, t0 = stats(g), time.monotonic()
        got = receive(s, nbytes, deadline)
        if got or time.monotonic() >= deadline:
            break
        sys.stderr.write(f"net: guest->host: try {attempt}: the connection ended with no byte after "
                         f"{time.monotonic() - t0:.1f} s; again\n")
        s.close()
        time.sleep(0.3)
    if got < nbytes:
        raise RuntimeError(f"guest->host: {got} of {nbytes} bytes came in {time.monotonic() - t0:.0f} s, "
                           f"after {attempt} tries")
    result = measured(g, nbytes, e0, t0)
    s.close()
    return result


def host_to_guest(g, addr, nbytes):
    s = connect(addr)
    e0, t0 = stats(g), time.monotonic()
    send_zeros(s, nbytes)
    s.close()
    m = g.wait_for(rb"netbench received (\d+)\r?\n", 300)
    result = measured(g, nbytes, e0, t0)
    if int(m[1]) != nbytes:
        raise RuntimeError(f"host->guest: the guest counted {m[1].decode()} of {nbytes} bytes; "
                           f"console: {g.out[-600:]!r}")
    return result


def control_path(cmd):
    """The monitor's control socket named in cmd, or None."""
    return cmd[cmd.index("--control-socket") + 1] if "--control-socket" in cmd else None


def nic_status(path):
    """The monitor's NICs as its control socket's status says (their drop counters), or why not."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(5)
            s.connect(path)
            s.sendall(b'{"cmd":"status"}\n')
            line = s.makefile("rb").readline()
        reply = json.loads(line)
        if isinstance(reply, dict) and "nics" in reply:
            return json.dumps(reply["nics"])
        return line.decode(errors="replace").strip()  # an error's own words
    except (OSError, ValueError) as e:
        return f"no status: {e}"


def run_once(cmd, addrs, mib, tag, uplink=None):
    """{direction: (MiB/s, exits, {kind: per MiB})} for the directions that completed (a direction that failed
    ends the run, reported on stderr with its step). uplink: the passt case's passt (bench/netpasst.py)."""
    got, step, g, start = {}, "passt's start", None, time.monotonic()

    def now(what):
        """Each step said on stderr as it begins, so that a run that hangs shows where."""
        sys.stderr.write(f"net: {tag}: {what} ({time.monotonic() - start:.0f} s)\n")
        return what

    ctl = control_path(cmd)
    try:
        if uplink:
            now(step)
            uplink.before()
        step = now("the guest's netbench start")
        g = Guest(cmd, tap=TAP4 if tag.startswith("tap4") else TAP if tag.startswith("tap") else None)
        if uplink:
            uplink.after()
        g.wait_for(rb"netbench serving", 300)
        n = mib << 20
        step = now("guest->host")
        jobs = isinstance(addrs[0], list)  # several streams at once (tap4)
        got[step] = (jobs_guest_to_host if jobs else guest_to_host)(g, addrs[0], n)
        step = now("host->guest")
        got[step] = (jobs_host_to_guest if jobs else host_to_guest)(g, addrs[1], n)
    except (RuntimeError, OSError) as e:
        sys.stderr.write(f"net: incomplete run ({tag}), {step}: {e}\n")
        if g:  # what the monitor said, to tell a fault of its own from the guest's or the host's
            g.err.seek(0)
            tail = g.err.read().decode(errors="replace").strip().splitlines()[-5:]
            sys.stderr.write("".join(f"net:   {tag} said: {line}\n" for line in tail))
            sys.stderr.write(f"net:   {tag}: the guest's console since its last report: {g.out[-600:]!r}\n")
            if ctl and not uplink:  # a stall: whether the monitor dropped frames, and which way
                sys.stderr.write(f"net:   {tag}: its NICs: {nic_status(ctl)}\n")
        if uplink:
            sys.stderr.write(f"net:   {tag}: {uplink.said()}\n")
    finally:
        now("stopping")
        if g:
            g.stop()
        if uplink:
            uplink.close()
        now("stopped")
    return got


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--vmm", default="build/src/shoji-vmm")
    ap.add_argument("--guest-dir", default="build/guest")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--mib", type=int, default=64)
    ap.add_argument("--link-mib", type=int, default=16,
                    help="MiB each way between the two guests of the link case (default 16: two emulated "
                    "guests move a few MiB/s)")
    ap.add_argument("--backends", default="slirp,passt,tap,tap-vhost,tap4,link",
                    help="which of slirp, passt, tap, tap-vhost, tap4, link to run (comma-separated; default all)")
    a = ap.parse_args()
    wanted = set(a.backends.split(","))
    kernel = os.path.join(a.guest_dir, "vmlinuz")
    initrd = os.path.join(a.guest_dir, "initramfs.cpio.gz")
    qemu = shutil.which("qemu-system-x86_64")
    have_tap = tap_add(TAP, TAP_HOST)
    have_tap4 = "tap4" in wanted and tap_add(TAP4, TAP4_HOST, ["multi_queue"])
    base = "console=ttyS0 quiet shoji.action=netbench"
    tap_cmdline = f"{base} shoji.ip={TAP_GUEST}/24 shoji.gw={TAP_HOST}"
    qemu_common = [qemu, "-M", "q35", "-enable-kvm", "-cpu", "host", "-m", "256", "-smp", "1",
                   "-nodefaults", "-no-user-config", "-display", "none", "-serial", "stdio",
                   "-no-reboot", "-kernel", kernel, "-initrd", initrd]
    shoji_common = [a.vmm, "--kernel", kernel, "--initrd", initrd, "--memory", "256"]

    sockdir = tempfile.mkdtemp(prefix="shoji-net-")  # sockets: on /tmp, never the work tree
    stack = contextlib.ExitStack()

    def cases():
        """(backend, monitor) -> (command, (download address, upload address), passt or None)"""
        p1, p2 = free_port(), free_port()
        addrs = (("127.0.0.1", p1), ("127.0.0.1", p2))
        if "slirp" in wanted:
            yield ("slirp", "shoji-vmm"), (shoji_common + [
                "--cmdline", base, "--net", f"slirp,fwd=tcp:127.0.0.1:{p1}:5201,fwd=tcp:127.0.0.1:{p2}:5202",
                "--control-socket", os.path.join(sockdir, "slirp.sock")],
                addrs, None)
            if qemu:
                yield ("slirp", "qemu"), (qemu_common + [
                    "-append", base, "-netdev",
                    f"user,id=n0,hostfwd=tcp:127.0.0.1:{p1}-:5201,hostfwd=tcp:127.0.0.1:{p2}-:5202",
                    "-device", "virtio-net-pci,netdev=n0"], addrs, None)
        if "passt" in wanted and netpasst.available():
            ctl, path = os.path.join(sockdir, "control.sock"), os.path.join(sockdir, "passt", "passt.sock")
            yield ("passt", "shoji-vmm"), (shoji_common + [
                "--cmdline", base, "--net", "passt", "--control-socket", ctl], addrs,
                netpasst.Uplink((p1, p2), ctl=ctl))
            if qemu:
                yield ("passt", "qemu"), (qemu_common + [
                    "-append", base, "-netdev", f"stream,id=n0,server=off,addr.type=unix,addr.path={path}",
                    "-device", "virtio-net-pci,netdev=n0"], addrs, netpasst.Uplink((p1, p2), path=path))
        if have_tap:
            taddrs = ((TAP_GUEST, 5201), (TAP_GUEST, 5202))
            for vhost in ("off", "on") if os.path.exists("/dev/vhost-net") else ("off",):
                backend = "tap" if vhost == "off" else "tap-vhost"
                if backend not in wanted:
                    continue
                yield (backend, "shoji-vmm"), (shoji_common + [
                    "--cmdline", tap_cmdline, "--net", f"tap={TAP},vhost={vhost}",
                    "--control-socket", os.path.join(sockdir, f"{backend}.sock")], taddrs, None)
                if qemu:
                    yield (backend, "qemu"), (qemu_common + [
                        "-append", tap_cmdline, "-netdev",
                        f"tap,id=n0,ifname={TAP},script=no,downscript=no,vhost={vhost}",
                        "-device", "virtio-net-pci,netdev=n0"], taddrs, None)
        if have_tap4:
            vhost = "on" if os.path.exists("/dev/vhost-net") else "off"
            jaddrs = ([(TAP4_GUEST, 5210 + j) for j in range(1, 5)], [(TAP4_GUEST, 5220 + j) for j in range(1, 5)])
            cmdline = f"{base} shoji.ip={TAP4_GUEST}/24 shoji.gw={TAP4_HOST}"
            yield ("tap4", "shoji-vmm"), (shoji_common + [
                "--cpus", "4", "--cmdline", cmdline, "--net", f"tap={TAP4},vhost={vhost},queues=4"], jaddrs, None)
            if qemu:
                smp4 = [("4" if i and qemu_common[i - 1] == "-smp" else x) for i, x in enumerate(qemu_common)]
                yield ("tap4", "qemu"), (smp4 + [
                    "-append", cmdline, "-netdev",
                    f"tap,id=n0,ifname={TAP4},script=no,downscript=no,vhost={vhost},queues=4",
                    "-device", "virtio-net-pci,netdev=n0,mq=on,vectors=10"], jaddrs, None)

    res = {}
    try:
        if "passt" in wanted and netpasst.available():
            stack.enter_context(vmmtest.routable_interface())
        for _ in range(a.runs):
            for key, (cmd, addrs, uplink) in cases():
                res.setdefault(key, []).append(run_once(cmd, addrs, a.mib, " ".join(key), uplink))
    finally:
        stack.close()
        shutil.rmtree(sockdir, ignore_errors=True)
        if have_tap:
            subprocess.run(["ip", "tuntap", "del", TAP, "mode", "tap"])
        if have_tap4:
            subprocess.run(["ip", "tuntap", "del", TAP4, "mode", "tap", "multi_queue"])

    for b in sorted(wanted - {b for b, _ in res} - {"link"}):
        sys.stderr.write(f"net: backend '{b}' did not run here (no TAP could be made, no /dev/vhost-net, "
                         "no passt, or an unknown name: slirp, passt, tap, tap-vhost and tap4 are known)\n")
    where = "emulated harness machine: compare ratios" if os.environ.get("SHOJI_IN_HARNESS") else "host KVM"
    link_ok = True
    if "link" in wanted:
        link_ok = netlink.bench(Guest, a, shoji_common, qemu_common if qemu else None, a.runs)
    if not res:
        return 0 if link_ok and "link" in wanted else 1
    print(f"virtio-net TCP, {a.mib} MiB each way, {a.runs} runs each ({where})")
    dirs = ("guest->host", "host->guest")
    print_table({f"{b} {m}": runs for (b, m), runs in res.items()}, dirs, width=28)
    ok = bool(res) and all(all(runs) for (_, m), runs in res.items() if m == "shoji-vmm")
    pairs = [((b, "shoji-vmm"), (b, "qemu")) for b in ("slirp", "passt", "tap", "tap-vhost", "tap4")]
    for (sb, sm), (qb, qm) in pairs + [(("passt", "shoji-vmm"), ("slirp", "shoji-vmm"))]:
        s, q = res.get((sb, sm)), res.get((qb, qm))
        if not s or not q:
            continue
        meds = ratios(f"{sm} {sb}", f"{qm} {qb}", s, q, dirs, "net")
        ok = ok and all(meds) and all(len(r) == len(dirs) for r in s)
    print_kinds(res, dirs)
    return 0 if ok and link_ok else 1


def print_kinds(res, dirs):
    """Where the exits come from: each kind per MiB (medians of the complete runs), and on a TAP the
    frames each way per MiB (fewer: the guest's TCP made bigger frames)."""
    print("KVM exits by kind, and TAP frames (out of and into the guest), per MiB moved (medians)")
    names = KINDS + tuple(FRAMES)
    print(f"{'backend monitor direction':<40}" + "".join(f"{k:>17}" for k in names))
    for (backend, monitor), runs in res.items():
        for d in dirs:
            kinds = [r[d][2] for r in runs if d in r and r[d][2]]
            if kinds:
                vals = [statistics.median(k[n] for k in kinds) if all(n in k for k in kinds) else None
                        for n in names]
                print(f"{backend + ' ' + monitor + ' ' + d:<40}" +
                      "".join(f"{'n/a' if v is None else f'{v:.1f}':>17}" for v in vals))


if __name__ == "__main__":
    sys.exit(main())
