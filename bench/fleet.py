#!/usr/bin/env python3
"""Memory of many VMs at once. N small VMs (8 by default: 128 MiB, 1 vCPU, the test kernel and
initramfs, a qcow2 overlay on one shared 64 MiB base image and a user-mode NIC) start together
under shoji-vmm, then under QEMU microvm (virtio-mmio disk and NIC, the same overlays on the same
base), runs interleaved. Each guest reads the first 32 MiB of its disk (shoji.action=fleet), so
the base's blocks are shared by all of them, and then sleeps. Once every guest has said so:

- host memory beyond guest RAM, the sum of three parts, each printed:
  - the monitors' PSS (shared pages divided among their users) less their guest RAM mappings',
    their helper processes' included (shoji-vmm's shoji-slirp, the NIC's NAT);
  - the kernel's memory for them: the growth, since before the start, of its page tables (the
    monitors' and KVM's nested ones, PageTables and SecPageTables), kernel stacks and
    unreclaimable slab (/proc/meminfo);
  - the page cache of the disk images, the shared base counted once (mincore on each file);
  the caches are dropped before each start. (The host's free memory moves by more than a
  monitor uses, so its change alone measures nothing here.)
- the monitors' own: the sum of each process's RSS, and of its PSS, less its guest RAM
  mapping's (helpers included).

Prints each figure in total and per VM, and the ratios shoji-vmm / QEMU microvm (bench/phases.py
style: medians of the per-run ratios with their spread). A run where a guest did not say it was
ready is reported as incomplete, not measured."""
import argparse
import ctypes
import mmap
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from boot import tree_memory_kib  # noqa: E402

MARKER = b"shoji-guest: fleet ready"
CMDLINE = "console=ttyS0 quiet shoji.action=fleet"


KERNEL_KINDS = ("PageTables", "SecPageTables", "KernelStack", "SUnreclaim")


def kernel_kib():
    """The kernel's memory that grows with VMs (KERNEL_KINDS, those this kernel reports), KiB."""
    with open("/proc/meminfo") as f:
        m = {ln.split(":")[0]: int(ln.split()[1]) for ln in f}
    return sum(m.get(k, 0) for k in KERNEL_KINDS)


LIBC = ctypes.CDLL(None, use_errno=True)
LIBC.mmap.restype = ctypes.c_void_p
LIBC.mmap.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long)
LIBC.munmap.argtypes = (ctypes.c_void_p, ctypes.c_size_t)
LIBC.mincore.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.POINTER(ctypes.c_ubyte))


def cached_kib(path):
    """How much of the file is in the page cache (mincore over a mapping of it), KiB."""
    size, page = os.path.getsize(path), mmap.PAGESIZE
    if not size:
        return 0
    fd = os.open(path, os.O_RDONLY)
    try:
        addr = LIBC.mmap(None, size, mmap.PROT_READ, mmap.MAP_SHARED, fd, 0)
        if addr is None or addr == ctypes.c_void_p(-1).value:
            raise OSError(ctypes.get_errno(), f"mmap of {path}")
        try:
            vec = (ctypes.c_ubyte * ((size + page - 1) // page))()
            if LIBC.mincore(addr, size, vec) < 0:
                raise OSError(ctypes.get_errno(), f"mincore of {path}")
            return sum(b & 1 for b in vec) * page // 1024
        finally:
            LIBC.munmap(addr, size)
    finally:
        os.close(fd)


def drop_caches():
    """True when the page cache could be dropped (root)."""
    subprocess.run(["sync"], check=False)
    try:
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
        return True
    except OSError:
        return False


def ready(logs):
    n = 0
    for log in logs:
        try:
            with open(log, "rb") as f:
                n += MARKER in f.read()
        except FileNotFoundError:
            pass
    return n


def last_words(i, status, log):
    """What monitor i said before it exited (its last lines of standard error and console)."""
    said = ""
    for path, what in ((log + ".err", "its errors"), (log, "its console")):
        try:
            with open(path, "rb") as f:
                lines = f.read().decode(errors="replace").strip().splitlines()[-4:]
        except FileNotFoundError:
            lines = []
        if lines:
            said += f"\n  {what}: " + "\n    ".join(lines)
    return f"\n  monitor {i} exited with status {status}" + (said or "; it said nothing")


def run_fleet(name, make_cmd, a, d, base):
    """Starts a.vms monitors at once, measures once all are ready; a dict of figures (KiB), or
    one with 'incomplete' saying what went wrong."""
    procs, logs, tops = [], [], []
    dropped = drop_caches()
    before = kernel_kib()
    try:
        for i in range(a.vms):
            top = os.path.join(d, f"{name.split()[0]}-{i}.qcow2")
            if os.path.exists(top):
                os.unlink(top)
            subprocess.run([a.img, "create", "-f", "qcow2", "-b", base, "-F", "raw", top], check=True,
                           capture_output=True)
            tops.append(top)
            log = os.path.join(d, f"{name.split()[0]}-{i}.log")
            if os.path.exists(log):
                os.unlink(log)
            logs.append(log)
            with open(log + ".err", "wb") as err:
                procs.append(subprocess.Popen(make_cmd(top, log, i), stdin=subprocess.DEVNULL,
                                              stdout=subprocess.DEVNULL, stderr=err))
        deadline = time.monotonic() + a.timeout
        while ready(logs) < a.vms and time.monotonic() < deadline and all(p.poll() is None for p in procs):
            time.sleep(0.5)
        n = ready(logs)
        if n < a.vms:
            dead = [i for i, p in enumerate(procs) if p.poll() is not None]
            return {"incomplete": f"{n} of {a.vms} guests ready" +
                    (f"; monitors {dead} exited" if dead else f" after {a.timeout} s") +
                    "".join(last_words(i, procs[i].returncode, logs[i]) for i in dead)}
        time.sleep(3)  # the last guests' reads settle
        kernel = kernel_kib() - before
        per = [tree_memory_kib(p.pid, a.memory) for p in procs]
        cache = sum(cached_kib(f) for f in [base] + tops)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait()
    pss = sum(t["Pss"] - g["Pss"] for t, g in per)
    return {
        "system": pss + kernel + cache,
        "kernel": kernel,
        "cache": cache,
        "rss": sum(t["Rss"] - g["Rss"] for t, g in per),
        "pss": pss,
        "guest": sum(g["Rss"] for _, g in per),
        "dropped": dropped,
    }


FIGURES = (("system", "host memory beyond guest RAM"), ("rss", "monitors' RSS beyond guest RAM"),
           ("pss", "monitors' PSS beyond guest RAM"))
PARTS = (("kernel", "the kernel's page tables, stacks and slab for them"), ("cache", "the images' page cache"))


def report(a, res):
    print(f"{a.vms} VMs at once, {a.memory} MiB and 1 vCPU each, {a.runs} runs each, interleaved, medians "
          f"({'emulated harness machine: compare ratios' if os.environ.get('SHOJI_IN_HARNESS') else 'host KVM'})")
    ok = True
    for name, runs in res.items():
        bad = [r["incomplete"] for r in runs if "incomplete" in r]
        good = [r for r in runs if "incomplete" not in r]
        for why in bad:
            print(f"{name}: incomplete run: {why}")
            ok = False
        if not good:
            print(f"{name}: no complete run")
            continue
        if not all(r["dropped"] for r in good):
            print(f"{name}: the page cache could not be dropped before the start (not root): the "
                  "images' page cache may hold more than the VMs read")
        for key, what in FIGURES + PARTS:
            v = statistics.median(r[key] for r in good) / 1024
            print(f"{name:<14} {what}: {v:.1f} MiB in all, {v / a.vms:.2f} MiB per VM")
        print(f"{name:<14} guest RAM touched: {statistics.median(r['guest'] for r in good) / 1024:.1f} MiB in all")
    names = list(res)
    if len(names) < 2:
        return ok
    pairs = [(s, q) for s, q in zip(res[names[0]], res[names[1]]) if "incomplete" not in s and "incomplete" not in q]
    for key, what in FIGURES:
        below = [(n, r[key]) for s, q in pairs for n, r in zip(names, (s, q)) if r[key] <= 0]
        if below:  # the kernel's share shrank by more than the monitors use: no ratio to give
            who, low = min(below, key=lambda b: b[1])
            print(f"ratio {names[0]} / {names[1]}, {what}, {a.vms} VMs: NOT MEASURED ({who}'s figure came out "
                  f"at or below zero in a run, {low / 1024:.1f} MiB: the kernel's own memory shrank by more "
                  "than the monitors use; see the RSS and PSS lines)")
            continue
        rs = [s[key] / q[key] for s, q in pairs if q[key] > 0]
        if not rs:
            print(f"ratio {names[0]} / {names[1]}, {what}, {a.vms} VMs: FAILED (no complete pair of runs)")
            continue
        spread = f" ({min(rs):.2f}-{max(rs):.2f}x over {len(rs)} runs" + \
            (f", {a.runs - len(rs)} incomplete" if len(rs) < a.runs else "") + ")"
        print(f"ratio {names[0]} / {names[1]}, {what}, {a.vms} VMs: {statistics.median(rs):.2f}x "
              f"(lower is better){spread}")
    return ok


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--vmm", default="build/src/shoji-vmm")
    ap.add_argument("--img", default="build/src/shoji-img")
    ap.add_argument("--guest-dir", default="build/guest")
    ap.add_argument("--vms", type=int, default=8)
    ap.add_argument("--memory", type=int, default=128)
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--timeout", type=int, default=900, help="seconds for all guests to be ready")
    a = ap.parse_args()
    kernel = os.path.join(a.guest_dir, "vmlinuz")
    initrd = os.path.join(a.guest_dir, "initramfs.cpio.gz")
    m = str(a.memory)
    d = tempfile.mkdtemp(prefix="shoji-fleet-")
    base = os.path.join(d, "base.raw")
    with open(base, "wb") as f:
        f.write(os.urandom(64 << 20))

    def shoji(top, log, i):
        return [a.vmm, "--kernel", kernel, "--initrd", initrd, "--memory", m, "--cpus", "1",
                "--cmdline", CMDLINE, "--serial", "none", "--serial-log", log,
                "--disk", f"{top},format=qcow2", "--net", f"slirp,mac=52:54:00:12:35:{i:02x}"]

    def qemu(top, log, i):
        return [shutil.which("qemu-system-x86_64"), "-M", "microvm", "-enable-kvm", "-cpu", "host", "-m", m,
                "-smp", "1", "-nodefaults", "-no-user-config", "-display", "none", "-serial", f"file:{log}",
                "-kernel", kernel, "-initrd", initrd, "-append", CMDLINE,
                "-drive", f"file={top},format=qcow2,if=none,id=d0", "-device", "virtio-blk-device,drive=d0",
                "-netdev", "user,id=n0", "-device", f"virtio-net-device,netdev=n0,mac=52:54:00:12:36:{i:02x}"]
    peers = {"shoji-vmm": shoji}
    if shutil.which("qemu-system-x86_64"):
        peers["qemu microvm"] = qemu
    else:
        print("fleet: qemu-system-x86_64 not found; shoji-vmm alone")
    res = {n: [] for n in peers}
    try:
        for _ in range(a.runs):
            for name, make in peers.items():
                res[name].append(run_fleet(name, make, a, d, base))
    finally:
        shutil.rmtree(d)
    return 0 if report(a, res) else 1


if __name__ == "__main__":
    sys.exit(main())
