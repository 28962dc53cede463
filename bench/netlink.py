"""netlink: bench/net's VM-to-VM case. Two guests joined by a link and nothing else: under
shoji-vmm, two monitors with a link NIC each (--net link), given the two ends of one
SOCK_SEQPACKET socket pair through their control sockets, as shojid joins them (each frame after
its virtio-net header: net-link's offload), and once more with bare frames (what a link to a
monitor started by an older shoji carries: the guests' segments cut by the sending monitor),
to show what the headers are worth; under QEMU, two
q35 VMs with virtio-net-pci joined by -netdev stream (a TCP connection on the host's loopback,
QEMU's own VM-to-VM link). One guest serves (netbench), the other measures (linkbench): the
round trip of 200 pings sent one after another, then N MiB read from the server and N MiB
written to it, timed by the measuring guest's clock; the server's count of what arrived is
checked. Medians of the runs, ratios shoji-vmm / QEMU with their spread (bench/phases.py)."""
import os
import re
import socket
import sys
import tempfile
import time

from boot import free_port
from phases import ratio_line

SERVER_IP, CLIENT_IP = "10.9.0.2", "10.9.0.1"
PHASES = ("download", "upload", "rtt")
RESULT = re.compile(rb"linkbench (download|upload) (\d+) bytes in ([\d.]+) s")
RTT = re.compile(rb"linkbench rtt min/avg/max = [\d.]+/([\d.]+)/[\d.]+ ms")


def cmdline(server, mib):
    if server:
        return f"console=ttyS0 quiet shoji.action=netbench shoji.ip={SERVER_IP}/24 shoji.gw={SERVER_IP}"
    return (f"console=ttyS0 quiet shoji.action=linkbench shoji.ip={CLIENT_IP}/24 shoji.gw={CLIENT_IP} "
            f"shoji.peer={SERVER_IP} shoji.mib={mib}")


def control(path, req, fd, timeout=60):
    """One control request with a descriptor, once the monitor's socket answers."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(10)
                s.connect(path)
                socket.send_fds(s, [(req + "\n").encode()], [fd])
                rep = s.makefile().readline()
                if '"ok":true' not in rep:
                    raise RuntimeError(f"{path}: {rep.strip()}")
                return
        except (FileNotFoundError, ConnectionRefusedError):
            if time.monotonic() > deadline:
                raise RuntimeError(f"{path}: the monitor's control socket did not answer")
            time.sleep(0.2)


def shoji_pair(common, d, mib, offload=True):
    """The server's and the client's command lines, and how to join them once started."""
    ctl = [os.path.join(d, f"{n}.sock") for n in ("server", "client")]
    cmds = [common + ["--cmdline", cmdline(i == 0, mib), "--net", f"link,mac=52:54:00:12:34:{0x60 + i:02x}",
                     "--control-socket", ctl[i]]
            for i in (0, 1)]

    def join():
        ends = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            for path, end in zip(ctl, ends):
                control(path, '{"cmd":"net-link","nic":"0"%s}' % (',"offload":true' if offload else ""), end.fileno())
        finally:
            for end in ends:
                end.close()
    return cmds, join


def qemu_pair(common, port, mib):
    addr = f"addr.type=inet,addr.host=127.0.0.1,addr.port={port}"
    return [common + ["-append", cmdline(i == 0, mib), "-netdev",
                      f"stream,id=n0,server={'on' if i == 0 else 'off'},{addr}",
                      "-device", f"virtio-net-pci,netdev=n0,mac=52:54:00:12:34:{0x60 + i:02x}"] for i in (0, 1)]


def run_pair(Guest, cmds, join, mib, tag):
    """{phase: (value, None)} for the phases that completed: MiB/s down and up, rtt in ms."""
    got, step, guests = {}, "the server's start", []
    try:
        guests.append(Guest(cmds[0]))
        guests[0].wait_for(rb"netbench serving", 600)  # QEMU's stream server listens by then
        step = "the client's start"
        guests.append(Guest(cmds[1]))
        if join:
            step = "joining the link"
            join()
        step = "the round trip"
        m = guests[1].wait_for(RTT, 600)
        got["rtt"] = (float(m[1]), None)
        for _ in range(2):
            step = "the transfers"
            m = guests[1].wait_for(RESULT, 600)
            n, secs = int(m[2]), max(float(m[3]), 0.01)
            if n != mib << 20:
                raise RuntimeError(f"{m[1].decode()}: {n} of {mib << 20} bytes")
            got[m[1].decode()] = (n / secs / (1 << 20), None)
        step = "the server's count"
        m = guests[0].wait_for(rb"netbench received (\d+)", 120)
        if int(m[1]) != mib << 20:
            del got["upload"]
            raise RuntimeError(f"the server counted {m[1].decode()} of {mib << 20} bytes")
    except (RuntimeError, OSError) as e:
        sys.stderr.write(f"net: incomplete run ({tag}), {step}: {e}\n")
    finally:
        for g in guests:
            g.stop()
    return got


def bench(Guest, a, shoji_common, qemu_common, runs):
    """Runs both monitors' pairs, interleaved; prints the table and ratios; True when every
    shoji-vmm run completed."""
    res = {"shoji-vmm link": [], "shoji-vmm link bare": [], "qemu stream": []}
    with tempfile.TemporaryDirectory() as d:  # sockets: not on the shared work tree (9p)
        for _ in range(runs):
            for name, offload in (("shoji-vmm link", True), ("shoji-vmm link bare", False)):
                cmds, join = shoji_pair(shoji_common, d, a.link_mib, offload)
                res[name].append(run_pair(Guest, cmds, join, a.link_mib, name[6:]))
            if qemu_common:
                port = free_port()
                res["qemu stream"].append(run_pair(Guest, qemu_pair(qemu_common, port, a.link_mib), None, a.link_mib,
                                                   "link qemu"))
    print(f"VM to VM over a link, {a.link_mib} MiB each way, {runs} runs each: MiB/s, and rtt in ms "
          "(the measuring guest's clock)")
    print(f"{'monitor':<22}" + "".join(f"{p:>14}" for p in PHASES))
    for name, rs in res.items():
        vals = []
        for p in PHASES:
            v = sorted(r[p][0] for r in rs if p in r)
            vals.append(f"{v[len(v) // 2]:.2f}" if v else "n/a")
        print(f"{name:<22}" + "".join(f"{v:>14}" for v in vals))
    s, b, q = res["shoji-vmm link"], res["shoji-vmm link bare"], res["qemu stream"]
    for peer, rs in (("qemu stream", q), ("shoji-vmm link bare", b)):
        for p, better in (("download", "higher"), ("upload", "higher"), ("rtt", "lower")):
            if rs:
                ratio_line("shoji-vmm link", peer, f"VM to VM {p}{' ms' if p == 'rtt' else ' MiB/s'}", s, rs, p, 0,
                           better, "net")
    return all(len(r) == len(PHASES) for r in s + b)

