#!/usr/bin/env python3
"""USB benchmark, in the harness (its QEMU gives the machine a USB stick behind a hub). Each
run, interleaved: the stick's first 4 MiB read on the host with O_DIRECT in 1 MiB requests (the
physical limit: the same device through the host's own driver); then the stick given to a VM
with shoji usb attach (the jailed exporter on usbfs, vsock, the guest's vhci-hcd) and the same
read in the guest (guest/blkio.c, O_DIRECT, the guest's clock); then the detach. Prints each
side's median MiB/s, the ratio guest / host (the median of the per-run ratios with their
spread), and the time from the attach's start to the disk being there in the guest (the
guest looks every 0.1 s). A run whose guest read failed counts as incomplete and says so.

Each run also streams 4 MiB from the host to the guest over the VM's vsock alone (to a guest
process that drops them): what the transport under USB/IP carries at most here, with no USB in
the way. In the emulated harness machine that is far below the stick's own speed, so the guest's
read is also printed as a ratio to it: what the exporter and USB/IP make of their transport.

And each run reads the stick through a stand-in with no VM and no vsock: the exporter's own code
(tests/unit/usbip_export_run: shojid's exporter, unconfined) serving it over a Unix socket pair
to the host's own vhci-hcd, its disk read as the host's is: what the exporter and USB/IP cost
on their own, against the direct read."""
import argparse
import mmap
import os
import re
import socket
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "integration"))
import test_toolstack as t  # noqa: E402

SIZE = 4 << 20


def host_read(port):
    """MiB/s of the stick's first 4 MiB read on the host (O_DIRECT, 1 MiB requests)."""
    assert t.stick_reads(port)  # its node made, and it reads as the harness wrote it
    return read_node(t.disk_node(f"/sys/bus/usb/devices/{port}", "the stick's disk on the host"))


def read_node(node):
    """MiB/s of the disk node's first 4 MiB (O_DIRECT, 1 MiB requests), checked to be the
    stick's."""
    fd = os.open(node, os.O_RDONLY | os.O_DIRECT)
    buf = mmap.mmap(-1, 1 << 20)
    try:
        start = time.monotonic()
        for off in range(0, SIZE, 1 << 20):
            assert os.preadv(fd, [buf], off) == 1 << 20
        took = time.monotonic() - start
        os.preadv(fd, [buf], 0)
        assert buf[:15] == b"shoji-usb-stick", f"{node} is not the stick's disk"
        return SIZE / (1 << 20) / took
    finally:
        os.close(fd)


VHCI = "/sys/devices/platform/vhci_hcd.0"
SPEEDS = {"1.5": 1, "12": 2, "480": 3}  # sysfs's speed, in Mb/s: the kernel's enum usb_device_speed; else 5


def vhci_port(speed):
    """A free port of the host's vhci-hcd for the speed (its status lines: hub, port, state 4)."""
    with open(VHCI + "/status") as f:
        for line in f:
            w = line.split()
            if len(w) > 2 and w[0] == ("ss" if speed >= 5 else "hs") and w[2] == "004":
                return int(w[1])
    raise RuntimeError("no free vhci-hcd port on the host")


def loopback_read(exporter, stick):
    """The stand-in without a VM: the exporter (usbip_export_run, shojid's exporter code run
    unconfined) serves the stick over a Unix socket pair to the host's own vhci-hcd, whose disk
    is then read as the host's own is. (MiB/s, seconds from the exporter's start to the disk)."""
    port = stick["port"]
    devid = stick["bus"] << 16 | stick["device"]
    with open(f"/sys/bus/usb/devices/{port}/speed") as f:
        speed = SPEEDS.get(f.read().strip(), 5)
    mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    start = time.monotonic()
    proc = subprocess.Popen([exporter, str(theirs.fileno()), "/dev/bus/usb/%03d/%03d" % (stick["bus"], stick["device"]),
                             str(devid), "1"], pass_fds=(theirs.fileno(),), stdout=subprocess.PIPE, text=True)
    theirs.close()
    vport = vhci_port(speed)
    try:
        t.sysfs_write(VHCI + "/attach", f"{vport} {mine.fileno()} {devid} {speed}")
        mine.close()
        node = t.disk_node(f"{VHCI}/usb*/*-*", "the stick's disk through the host's vhci-hcd")
        visible = time.monotonic() - start
        return read_node(node), visible
    finally:
        mine.close()
        try:
            t.sysfs_write(VHCI + "/detach", str(vport))
        except OSError:
            pass
        out = proc.communicate(timeout=60)[0].strip()
        if not out.startswith("closed"):
            print(f"usb: the loopback exporter ended otherwise: {out!r}")
        t.usb_reset(stick)
        t.sysfs_write("/sys/bus/usb/drivers_probe", f"{port}:1.0")
        t.wait_until(lambda: t.stick_on_host_driver(port), 30, "the stick back on the host")


def vsock_stream(cid):
    """MiB/s of 4 MiB sent to the guest's vsock port 5555 (guest/init's usbwatch drops them),
    from the first byte to the guest's close once it has read them all."""
    with socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM) as so:
        so.settimeout(60)
        so.connect((cid, 5555))
        data = bytes(1 << 20)
        start = time.monotonic()
        for _ in range(SIZE >> 20):
            so.sendall(data)
        so.shutdown(socket.SHUT_WR)
        if so.recv(1) != b"":
            raise RuntimeError("the guest's vsock listener answered: it should only read")
        return SIZE / (1 << 20) / (time.monotonic() - start)


def spread(xs):
    return f"runs {min(xs):.2f}-{max(xs):.2f}"


def guest_run(ts, port, nth):
    """Attach, the guest's read, detach: (MiB/s or None, seconds from the attach to the disk)."""
    start = time.monotonic()
    ts.ok("usb", "attach", "usbbench", port)
    t.wait_until(lambda: ts.serial("usbbench").count("usb disk shoji-usb-stick") >= nth, 60, "the disk in the guest")
    visible = time.monotonic() - start
    pat = r"blkio seq-read: ([\d.]+) MiB in ([\d.]+) s|blkio seq-read FAILED"
    t.wait_until(lambda: len(re.findall(pat, ts.serial("usbbench"))) >= nth, 120, "the guest's read")
    m = list(re.finditer(pat, ts.serial("usbbench")))[nth - 1]
    ts.ok("usb", "detach", port)
    t.wait_until(lambda: t.stick_on_host_driver(port), 30, "the stick back on the host")
    return (float(m[1]) / float(m[2]) if m[1] else None), visible


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bindir", default="build/src")
    ap.add_argument("--guest-dir", default="build/guest")
    ap.add_argument("--runs", type=int, default=5)
    a = ap.parse_args()
    args = argparse.Namespace(bindir=os.path.abspath(a.bindir), guest_dir=os.path.abspath(a.guest_dir),
                              vmm=os.path.abspath(os.path.join(a.bindir, "shoji-vmm")))
    ts = t.Toolstack(args)
    ts.start_daemon()
    try:
        stick = {d["id"]: d for d in ts.js("usb", "list")["devices"]}.get("46f4:0001")
        if not stick or not os.path.exists("/dev/vhost-vsock"):
            print("usb: FAILED: no harness USB stick or /dev/vhost-vsock here (run it through bench/usb)")
            return 1
        port = stick["port"]
        ts.create("usbbench", action="usbwatch")
        ts.ok("set", "usbbench", "vsock-cid=auto", "policy.usb-storage=allow")
        ts.ok("start", "usbbench")
        t.wait_until(lambda: ts.vm("usbbench").get("agent", {}).get("state") == "ready", ts.boot_timeout, "agent")
        cid = ts.vm("usbbench")["vsock_cid"]
        exporter = os.path.join(a.bindir, "..", "tests", "unit", "usbip_export_run")
        host, vsock, guest, visible, loop, loop_visible = [], [], [], [], [], []
        for n in range(1, a.runs + 1):
            host.append(host_read(port))
            if os.path.exists(VHCI):
                lr, lv = loopback_read(exporter, stick)
                loop.append(lr)
                loop_visible.append(lv)
            vsock.append(vsock_stream(cid))
            g, v = guest_run(ts, port, n)
            guest.append(g)
            visible.append(v)
        ts.ok("kill", "usbbench")
    finally:
        ts.cleanup()
    where = "emulated harness machine: compare ratios" if os.environ.get("SHOJI_IN_HARNESS") else "host KVM"
    print(f"USB stick ({stick['id']}, {stick['port']}), first 4 MiB, O_DIRECT, 1 MiB requests, {a.runs} runs "
          f"interleaved, medians ({where})")
    done = [(g, h, v) for g, h, v in zip(guest, host, vsock) if g is not None]
    print(f"  host direct read: {statistics.median(host):.2f} MiB/s ({spread(host)})")
    print(f"  vsock stream, host to guest, no USB: {statistics.median(vsock):.2f} MiB/s ({spread(vsock)})")
    if loop:
        print(f"  stand-in, no VM: the exporter to the host's own vhci-hcd over a Unix socket pair: "
              f"{statistics.median(loop):.2f} MiB/s ({spread(loop)}); exporter's start to disk "
              f"{statistics.median(loop_visible):.2f} s")
        rs = [lr / h for lr, h in zip(loop, host)]
        print(f"ratio exporter stand-in (no VM, no vsock) / host, USB stick sequential read ({spread(rs)}x): "
              f"{statistics.median(rs):.2f}x (higher is better)")
    else:
        print(f"  stand-in, no VM: not run (the host has no {VHCI})")
    if done:
        gs = [g for g, _, _ in done]
        print(f"  guest read:       {statistics.median(gs):.2f} MiB/s ({spread(gs)})")
        incomplete = "" if len(done) == a.runs else f", {a.runs - len(done)} of {a.runs} runs incomplete"
        rs = [g / h for g, h, _ in done]
        print(f"ratio guest / host, USB stick sequential read ({spread(rs)}x{incomplete}): "
              f"{statistics.median(rs):.2f}x (higher is better)")
        rs = [g / v for g, _, v in done]
        print(f"ratio guest USB read / vsock stream, what USB/IP makes of its transport ({spread(rs)}x{incomplete}): "
              f"{statistics.median(rs):.2f}x (higher is better)")
    else:
        print("usb: FAILED: no guest read completed")
    print(f"  attach to disk in the guest: median {statistics.median(visible):.2f} s "
          f"(runs {min(visible):.2f}-{max(visible):.2f} s)")
    return 0 if len(done) == a.runs else 1


if __name__ == "__main__":
    sys.exit(main())
