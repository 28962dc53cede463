#!/usr/bin/env python3
"""qcow2 benchmark. The guest (shoji.action=qcow2bench, guest/blkio.c) writes then reads 64 MiB
sequentially in 1 MiB requests, then makes 2000 random 4 KiB writes and reads over 256 MiB, all
with O_DIRECT, on a fresh image for each run: a raw file and a qcow2 image under shoji-vmm, and
the same qcow2 image under QEMU q35 with virtio-blk-pci, interleaved in one run. Prints MiB/s
(the guest's clock), KVM exits per MiB (debugfs) and the ratios qcow2/raw and shoji/QEMU.
Then the snapshot create time at 1 GiB and 100 GiB of virtual size: live (disk-snapshot on a
running VM: the reply's paused_ms, and the request's round trip) and offline (shoji-img create
of an overlay, and qemu-img create for comparison)."""
import argparse
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from boot import kvm_exits, watch_console  # noqa: E402

CMDLINE = "console=ttyS0 quiet shoji.action=qcow2bench"
PHASES = ("seq-write", "seq-read", "rand-write", "rand-read")
RATE = re.compile(r"shoji-guest: blkio (\S+): ([\d.]+) MiB in ([\d.]+) s")
DISK = 256 << 20
SPLIT = re.compile(r"stopping them ([\d.]+), flush and switch ([\d.]+)\)")


def run_once(cmd, timeout):
    rates, exits = {}, {}
    last = {}

    def seen(pid, text, _elapsed):
        if "exits" not in last and "shoji-guest: qb begin" in text:
            last["exits"] = kvm_exits(pid)
        for m in RATE.finditer(text):
            if m[1] not in rates:
                now = kvm_exits(pid)
                mib, secs = float(m[2]), max(float(m[3]), 1e-4)
                rates[m[1]] = mib / secs
                if now is not None and last.get("exits") is not None:
                    exits[m[1]] = (now - last["exits"]) / mib
                last["exits"] = now
    out, _, err = watch_console(cmd, timeout, seen)
    if len(rates) < len(PHASES):
        sys.stderr.write(f"qcow2: incomplete run of {cmd[0]}: {out[-600:]}{err[-400:]}\n")
    return rates, exits


def fresh(img, kind, path):
    if os.path.exists(path):
        os.unlink(path)
    if kind == "raw":
        with open(path, "wb") as f:
            f.truncate(DISK)
    else:
        subprocess.run([img, "create", "-f", "qcow2", path, str(DISK)], check=True)


def io_bench(a, kernel, initrd, d):
    raw, q = os.path.join(d, "disk.raw"), os.path.join(d, "disk.qcow2")
    peers = {
        "shoji raw": ("raw", raw, [a.vmm, "--kernel", kernel, "--initrd", initrd, "--memory", "256",
                                   "--cmdline", CMDLINE, "--disk", f"{raw},format=raw"]),
        "shoji qcow2": ("qcow2", q, [a.vmm, "--kernel", kernel, "--initrd", initrd, "--memory", "256",
                                     "--cmdline", CMDLINE, "--disk", f"{q},format=qcow2"]),
    }
    qemu = shutil.which("qemu-system-x86_64")
    if qemu:
        peers["qemu qcow2"] = ("qcow2", q, [
            qemu, "-M", "q35", "-enable-kvm", "-cpu", "host", "-m", "256", "-smp", "1",
            "-nodefaults", "-no-user-config", "-display", "none", "-serial", "stdio",
            "-no-reboot", "-kernel", kernel, "-initrd", initrd, "-append", CMDLINE,
            "-drive", f"file={q},if=none,id=d0,format=qcow2", "-device", "virtio-blk-pci,drive=d0"])
    res = {n: [] for n in peers}
    for _ in range(a.runs):
        for name, (kind, path, cmd) in peers.items():
            fresh(a.img, kind, path)
            res[name].append(run_once(cmd, a.timeout))
    med = {}
    for name, runs in res.items():
        med[name] = {}
        for ph in PHASES:
            r = [x[0][ph] for x in runs if ph in x[0]]
            e = [x[1][ph] for x in runs if ph in x[1]]
            med[name][ph] = (statistics.median(r) if r else None, statistics.median(e) if e else None)
    print(f"guest O_DIRECT I/O, fresh image each run, {a.runs} runs each, medians "
          f"({'emulated harness machine: compare ratios' if os.environ.get('SHOJI_IN_HARNESS') else 'host KVM'})")
    print(f"{'monitor':<13}" + "".join(f"{ph + ' MiB/s':>17}" for ph in PHASES))
    for name in med:
        print(f"{name:<13}" + "".join(f"{'n/a' if med[name][ph][0] is None else f'{med[name][ph][0]:.2f}':>17}"
                                      for ph in PHASES))
    print(f"{'exits/MiB':<13}")
    for name in med:
        print(f"{name:<13}" + "".join(f"{'n/a' if med[name][ph][1] is None else f'{med[name][ph][1]:.1f}':>17}"
                                      for ph in PHASES))
    for a_name, b_name in (("shoji qcow2", "shoji raw"), ("shoji qcow2", "qemu qcow2")):
        if b_name not in med:
            continue
        for ph in PHASES:
            x, y = med[a_name][ph][0], med[b_name][ph][0]
            if x and y:
                print(f"ratio {a_name} / {b_name}, {ph} MiB/s: {x / y:.2f}x (higher is better)")
    return med


def live_snapshot(a, kernel, initrd, d, size, count=5):
    """paused_ms and the round trip of disk-snapshot on a running VM whose disk is `size` bytes."""
    top = os.path.join(d, f"live-{size}.qcow2")
    subprocess.run([a.img, "create", "-f", "qcow2", top, str(size)], check=True)
    ctl = os.path.join(d, "ctl.sock")
    p = subprocess.Popen([a.vmm, "--kernel", kernel, "--initrd", initrd, "--memory", "256",
                          "--cmdline", "console=ttyS0 quiet shoji.action=tick", "--serial", "none",
                          "--log-level", "info",
                          "--control-socket", ctl, "--disk", f"{top},format=qcow2"],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    paused, trip = [], []
    try:
        s = None
        for _ in range(300):
            try:
                s = socket.socket(socket.AF_UNIX)
                s.connect(ctl)
                break
            except OSError:
                s.close()
                s = None
                time.sleep(0.1)
        assert s, "no control socket"
        time.sleep(3)  # let the guest boot a little
        f = s.makefile("rb")
        prev = os.path.basename(top)
        for k in range(count):
            name = os.path.join(d, f"live-{size}-{k}.qcow2")
            fd = os.open(name, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
            line = json.dumps({"cmd": "disk-snapshot", "disk": "0", "backing": prev}).encode() + b"\n"
            t0 = time.perf_counter()
            socket.send_fds(s, [line], [fd])
            r = json.loads(f.readline())
            trip.append((time.perf_counter() - t0) * 1000)
            os.close(fd)
            assert r.get("ok"), r
            paused.append(r["paused_ms"])
            prev = os.path.basename(name)
        s.sendall(b'{"cmd":"stop"}\n')
        p.wait(60)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    log = p.stderr.read().decode(errors="replace")
    parts = [(float(a), float(b)) for a, b in SPLIT.findall(log)]
    stop = statistics.median(x for x, _ in parts) if parts else None
    switch = statistics.median(y for _, y in parts) if parts else None
    return statistics.median(paused), statistics.median(trip), stop, switch


def offline_snapshot(tool, d, size, count=5):
    base = os.path.join(d, f"off-{size}.qcow2")
    subprocess.run([tool, "create", "-f", "qcow2", base, str(size)], check=True, capture_output=True)
    t = []
    for k in range(count):
        o = os.path.join(d, f"off-{size}-{k}.qcow2")
        t0 = time.perf_counter()
        subprocess.run([tool, "create", "-f", "qcow2", "-b", os.path.basename(base), "-F", "qcow2", o],
                       check=True, capture_output=True)
        t.append((time.perf_counter() - t0) * 1000)
    return statistics.median(t)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--vmm", default="build/src/shoji-vmm")
    ap.add_argument("--img", default="build/src/shoji-img")
    ap.add_argument("--guest-dir", default="build/guest")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--timeout", type=int, default=900)
    a = ap.parse_args()
    kernel = os.path.join(a.guest_dir, "vmlinuz")
    initrd = os.path.join(a.guest_dir, "initramfs.cpio.gz")
    d = tempfile.mkdtemp(prefix="shoji-qcow2bench-")
    try:
        med = io_bench(a, kernel, initrd, d)
        print("snapshot create time, milliseconds (medians of 5)")
        for size, label in ((1 << 30, "1 GiB"), (100 << 30, "100 GiB")):
            paused, trip, stop, switch = live_snapshot(a, kernel, initrd, d, size)
            off = offline_snapshot(a.img, d, size)
            qoff = offline_snapshot("qemu-img", d, size) if shutil.which("qemu-img") else None
            split = f" (stopping the vCPUs {stop:.3f}, flush and switch {switch:.3f})" if stop is not None else ""
            print(f"{label:>8}: live disk-snapshot paused {paused:.3f} ms{split}, round trip {trip:.3f} ms; "
                  f"offline shoji-img create {off:.1f} ms" + (f", qemu-img create {qoff:.1f} ms" if qoff else ""))
    finally:
        shutil.rmtree(d)
    return 0 if med["shoji qcow2"]["seq-write"][0] else 1


if __name__ == "__main__":
    sys.exit(main())
