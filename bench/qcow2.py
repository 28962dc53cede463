#!/usr/bin/env python3
"""qcow2 benchmark. The guest (shoji.action=qcow2bench, guest/blkio.c) writes then reads 64 MiB
sequentially in 1 MiB requests, then makes 2000 random 4 KiB writes and reads over 256 MiB one at
a time and 4000 of each 32 at once, all with O_DIRECT, on a fresh image for each run: a raw file
and a qcow2 image under shoji-vmm, and the same qcow2 image under QEMU q35 with virtio-blk-pci,
interleaved run by run. Prints MiB/s (the guest's clock), KVM exits per MiB (debugfs) and the
ratios qcow2/raw and shoji/QEMU (bench/phases.py: medians of per-run ratios with their spread).
Then the snapshot create time at 1 GiB and 100 GiB of virtual size: live (disk-snapshot on a
running VM: the reply's paused_ms, how long the disk's requests were held, the vCPUs running on,
with its steps from the monitor's log, and the request's round trip), on an idle guest and on one writing without a pause (32 random 4 KiB O_DIRECT writes at
once, again and again), and offline (shoji-img create of an overlay, and qemu-img create for
comparison)."""
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
from phases import print_table, ratios, run_phases  # noqa: E402

CMDLINE = "console=ttyS0 quiet shoji.action=qcow2bench"
PHASES = ("seq-write", "seq-read", "rand-write", "rand-read", "rand-write-qd32", "rand-read-qd32")
DISK = 256 << 20
SPLIT = re.compile(r"waiting for those being served ([\d.]+), flush ([\d.]+), switch ([\d.]+)\)")
STEPS = ("requests being served", "flush", "switch")


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
    for _ in range(a.runs):  # interleaved: each run of one side next to one of the others
        for name, (kind, path, cmd) in peers.items():
            fresh(a.img, kind, path)
            res[name].append(run_phases(cmd, a.timeout, PHASES, "shoji-guest: qb begin", "qcow2"))
    print(f"guest O_DIRECT I/O, fresh image each run, {a.runs} runs each, interleaved, medians "
          f"({'emulated harness machine: compare ratios' if os.environ.get('SHOJI_IN_HARNESS') else 'host KVM'})")
    print_table(res, PHASES, width=24)
    for a_name, b_name in (("shoji qcow2", "shoji raw"), ("shoji qcow2", "qemu qcow2")):
        if b_name in res:
            ratios(a_name, b_name, res[a_name], res[b_name], PHASES, "qcow2", exits=b_name == "qemu qcow2")
    return res


def wait_for_marker(log, marker, p, timeout=300):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and p.poll() is None:
        try:
            with open(log, "rb") as f:
                if marker in f.read():
                    return
        except FileNotFoundError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"the guest never printed {marker!r}")


def live_snapshot(a, kernel, initrd, d, size, load, count=5):
    """paused_ms, the round trip of disk-snapshot and the pause's steps (medians) on a running VM
    whose disk is `size` bytes: idle (load False) or writing without a pause."""
    top = os.path.join(d, f"live-{size}-{load}.qcow2")
    subprocess.run([a.img, "create", "-f", "qcow2", top, str(size)], check=True)
    ctl, log = os.path.join(d, "ctl.sock"), os.path.join(d, f"serial-{size}-{load}.log")
    action = "writeload" if load else "tick"
    p = subprocess.Popen([a.vmm, "--kernel", kernel, "--initrd", initrd, "--memory", "256",
                          "--cmdline", f"console=ttyS0 quiet shoji.action={action}", "--serial", "none",
                          "--serial-log", log, "--log-level", "info",
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
        if load:
            wait_for_marker(log, b"writeload begin", p)
            time.sleep(1)
        else:
            time.sleep(3)  # let the guest boot a little
        f = s.makefile("rb")
        prev = os.path.basename(top)
        for k in range(count):
            name = os.path.join(d, f"live-{size}-{load}-{k}.qcow2")
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
    err = p.stderr.read().decode(errors="replace")
    parts = [[float(x) for x in m] for m in SPLIT.findall(err)]
    steps = [statistics.median(x[i] for x in parts) for i in range(len(STEPS))] if parts else None
    return statistics.median(paused), statistics.median(trip), steps


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
    ap.add_argument("--only", choices=("io", "snapshots"), help="run one half of the benchmark")
    a = ap.parse_args()
    kernel = os.path.join(a.guest_dir, "vmlinuz")
    initrd = os.path.join(a.guest_dir, "initramfs.cpio.gz")
    d = tempfile.mkdtemp(prefix="shoji-qcow2bench-")
    try:
        med = io_bench(a, kernel, initrd, d) if a.only != "snapshots" else {}
        if a.only == "io":
            return finish(med, True)
        print("snapshot create time, milliseconds (medians of 5)")
        snaps_ok = True
        for size, label in ((1 << 30, "1 GiB"), (100 << 30, "100 GiB")):
            for load in (False, True):
                try:
                    paused, trip, steps = live_snapshot(a, kernel, initrd, d, size, load)
                except (RuntimeError, AssertionError, OSError) as e:
                    print(f"{label:>8}: live disk-snapshot, guest {'writing' if load else 'idle'}: FAILED: {e}")
                    snaps_ok = False
                    continue
                split = (" (" + ", ".join(f"{n} {v:.3f}" for n, v in zip(STEPS, steps)) + ")") if steps else ""
                print(f"{label:>8}: live disk-snapshot, guest {'writing' if load else 'idle'}: requests held "
                      f"{paused:.3f} ms{split}, round trip {trip:.3f} ms")
            off = offline_snapshot(a.img, d, size)
            qoff = offline_snapshot("qemu-img", d, size) if shutil.which("qemu-img") else None
            print(f"{label:>8}: offline shoji-img create {off:.1f} ms" +
                  (f", qemu-img create {qoff:.1f} ms" if qoff else ""))
    finally:
        shutil.rmtree(d)
    return finish(med, snaps_ok)


def finish(med, snaps_ok):
    complete = all(p in r for runs in med.values() for r in runs for p in PHASES)
    if not complete:
        print("qcow2: some runs were incomplete (above): the ratios cover the complete ones only")
    return 0 if complete and snaps_ok else 1


if __name__ == "__main__":
    sys.exit(main())
