#!/usr/bin/env python3
"""Boot benchmark: time from start to the guest's init marker, VM exits to that point (KVM's own
per-VM statistics in debugfs) and monitor memory overhead (RSS minus the guest RAM mapping's
RSS, SETTLE_S after the marker), for shoji-vmm, QEMU microvm and QEMU q35, on the same kernel and initramfs, interleaved
in one run. Prints medians and the ratios against QEMU. shoji-vmm runs three times: plain (serial
console only), from the same kernel's ELF vmlinux (no decompression in the guest), and with the
full set of a desktop VM's devices (a qcow2 disk, a user-mode NIC, a display and its input
devices, waiting for a seat), whose overhead is the one the goal is for; each with its overhead
by kind (--stats)."""
import argparse
import glob
import os
import re
import select
import socket
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

MARKER = "shoji-guest: init started"
KINDS = ("Rss", "Pss", "Anonymous")
# The guest ticks on its console after the marker until the monitor is stopped (SIGTERM):
# memory is read SETTLE_S after the marker, once the guest's console and framebuffer are drawn
# (at the marker itself a display's framebuffer is mostly untouched, which hid 4 MiB of it).
CMDLINE = "console=ttyS0 quiet shoji.action=tick"
SETTLE_S = 5


def kvm_stat(pid, name="exits"):
    """One of KVM's statistics (summed over vCPUs) for the VM that process pid owns, from
    /sys/kernel/debug/kvm/PID-FD/NAME; None where there is none."""
    total = None
    for d in glob.glob(f"/sys/kernel/debug/kvm/{pid}-*"):
        try:
            with open(os.path.join(d, name)) as f:
                total = (total or 0) + int(f.read())
        except OSError:
            pass
    return total


def free_port():
    """A TCP port on the host's loopback that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def kvm_exits(pid):
    return kvm_stat(pid, "exits")


def memory_kib(pid, guest_mib):
    """{"Rss", "Pss", "Anonymous"} of the process and of its guest-RAM mapping (the largest
    mapping at least as big as the guest's memory), in KiB: (whole process, guest RAM)."""
    total, guest, size = dict.fromkeys(KINDS, 0), dict.fromkeys(KINDS, 0), 0
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            word = line.split()[0]
            if "-" in word and not word.endswith(":"):
                a, b = word.split("-")
                size = (int(b, 16) - int(a, 16)) // 1024
            elif word[:-1] in KINDS:
                total[word[:-1]] += int(line.split()[1])
                if size >= guest_mib * 1024:
                    guest[word[:-1]] += int(line.split()[1])
    return total, guest


def children(pid):
    """The pids of the monitor's child processes (shoji-vmm's shoji-slirp, one a slirp NIC)."""
    out = []
    try:
        for t in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{t}/children") as f:
                out += [int(c) for c in f.read().split()]
    except OSError:
        pass
    return out


def tree_memory_kib(pid, guest_mib):
    """memory_kib of the monitor and its helper processes (children) together."""
    total, guest = memory_kib(pid, guest_mib)
    for c in children(pid):
        t, g = memory_kib(c, guest_mib)
        for k in total:
            total[k] += t[k]
            guest[k] += g[k]
    return total, guest


def own_kib(pid, guest_mib, kind):
    """One process's kind of pages (Rss, Pss, or Anonymous plus its page tables) beyond its
    guest-RAM mapping."""
    total, guest = memory_kib(pid, guest_mib)
    tables = 0
    if kind == "Anonymous":
        with open(f"/proc/{pid}/status") as f:
            tables = next(int(line.split()[1]) for line in f if line.startswith("VmPTE:"))
    return total[kind] - guest[kind] + tables


def overhead_kib(pid, guest_mib, kind="Rss", helpers_only=False):
    """RSS (or PSS: shared pages divided among the processes that map them; or Anonymous plus
    the page tables: what is this process's own however many monitors run) of the monitor
    minus that of its guest-RAM mapping, its helper processes' included (with helpers_only,
    theirs alone); None when it is gone."""
    try:
        return (0 if helpers_only else own_kib(pid, guest_mib, kind)) + sum(
            own_kib(c, guest_mib, kind) for c in children(pid))
    except (OSError, StopIteration):
        return None


def watch_console(cmd, timeout, on_output):
    """Runs a monitor (shoji-vmm or QEMU) whose serial console is its stdout, calling
    on_output(pid, console text so far, seconds since the start) as the text grows, until the
    monitor exits (it is killed after timeout seconds). Returns (console text, status, the end
    of its stderr)."""
    start = time.monotonic()
    err = tempfile.TemporaryFile()  # a file, not a pipe: a chatty monitor never blocks on it
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err)
    buf = b""
    fd = p.stdout.fileno()
    while time.monotonic() - start < timeout:
        if not select.select([fd], [], [], 0.5)[0]:
            continue
        chunk = os.read(fd, 65536)
        if not chunk:
            break  # end of output: the monitor has exited
        buf += chunk
        on_output(p.pid, buf.decode(errors="replace"), time.monotonic() - start)
    if p.poll() is None:
        p.kill()
    p.wait()
    err.seek(0)
    return buf.decode(errors="replace"), p.returncode, err.read().decode(errors="replace")[-2000:]


def settled(guest_mib, got, measure=True):
    """on_output for watch_console: the time and exits at the marker, the overhead SETTLE_S
    later (with measure), then SIGTERM, which stops shoji-vmm (printing --stats) and QEMU."""
    def seen(pid, text, elapsed):
        if "s" not in got and MARKER in text:
            got.update(s=elapsed, exits=kvm_exits(pid))
        elif "s" in got and "stopped" not in got and elapsed >= got["s"] + SETTLE_S:
            if measure:
                got.update(over=overhead_kib(pid, guest_mib), pss=overhead_kib(pid, guest_mib, "Pss"),
                           own=overhead_kib(pid, guest_mib, "Anonymous"),
                           helpers=overhead_kib(pid, guest_mib, helpers_only=True),
                           helpers_pss=overhead_kib(pid, guest_mib, "Pss", helpers_only=True))
            got["stopped"] = True
            os.kill(pid, signal.SIGTERM)
    return seen


def run_once(cmd, guest_mib, timeout):
    got = {}
    _, status, err = watch_console(cmd, timeout, settled(guest_mib, got))
    if "s" not in got:
        sys.stderr.write(f"boot: no marker from {cmd[0]} (status {status}): {err}\n")
    return (got.get("s"), got.get("exits"), got.get("over"), got.get("pss"), got.get("own"), got.get("helpers"),
            got.get("helpers_pss"))


def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def fmt(v, unit=""):
    return "n/a" if v is None else (f"{v:.3f}{unit}" if isinstance(v, float) else f"{v}{unit}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--vmm", default="build/src/shoji-vmm")
    ap.add_argument("--guest-dir", default="build/guest")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--memory", type=int, default=256)
    ap.add_argument("--timeout", type=int, default=300)
    ap.add_argument("--img", default="build/src/shoji-img")
    ap.add_argument("--where", action="store_true",
                    help="also boot each monitor once printing the guest kernel's log, and show where its time went")
    a = ap.parse_args()
    kernel = os.path.join(a.guest_dir, "vmlinuz")
    scratch = tempfile.mkdtemp(prefix="shoji-bootbench-")
    try:
        return bench(a, kernel, scratch)
    finally:
        shutil.rmtree(scratch)


def bench(a, kernel, scratch):
    disk = os.path.join(scratch, "disk.qcow2")
    subprocess.run([a.img, "create", "-f", "qcow2", disk, str(1 << 30)], check=True, capture_output=True)
    initrd = os.path.join(a.guest_dir, "initramfs.cpio.gz")
    m = str(a.memory)
    qemu = shutil.which("qemu-system-x86_64")
    qemu_common = ["-enable-kvm", "-cpu", "host", "-m", m, "-smp", "1", "-nodefaults",
                   "-no-user-config", "-display", "none", "-serial", "stdio", "-no-reboot",
                   "-kernel", kernel, "-initrd", initrd, "-append", CMDLINE]
    peers = {
        "shoji-vmm": [a.vmm, "--kernel", kernel, "--initrd", initrd, "--memory", m, "--cpus", "1",
                      "--cmdline", CMDLINE],
    }
    # The same kernel unpacked (guest/build.sh takes the ELF out of the bzImage): no decompressor
    # runs in the guest. QEMU cannot boot it (its x86 loader needs a PVH note this kernel lacks), so
    # its ratio is against QEMU booting the bzImage, and says so.
    vmlinux = os.path.join(a.guest_dir, "vmlinux")
    if os.path.exists(vmlinux):
        peers["shoji-vmm vmlinux"] = [vmlinux if c == kernel else c for c in peers["shoji-vmm"]]
    peers["shoji-vmm full"] = peers["shoji-vmm"] + [
        "--disk", f"{disk},format=qcow2", "--net", "slirp",
        "--display", f"socket:{os.path.join(scratch, 'display.sock')},size=1280x800"]
    if qemu:
        peers["qemu microvm"] = [qemu, "-M", "microvm"] + qemu_common
        peers["qemu q35"] = [qemu, "-M", "q35"] + qemu_common
    else:
        print("boot: qemu-system-x86_64 not found; shoji-vmm alone")
    results = {name: [] for name in peers}
    for i in range(a.runs):
        for name, cmd in peers.items():
            results[name].append(run_once(cmd, a.memory, a.timeout))
    print(f"boot to init marker, {a.runs} runs each, {a.memory} MiB, 1 vCPU "
          f"({'emulated harness machine: compare ratios, not seconds' if os.environ.get('SHOJI_IN_HARNESS') else 'host KVM'})")
    print(f"{'monitor':<17} {'median s':>9} {'min s':>8} {'max s':>8} {'exits':>9} {'overhead KiB':>13} "
          f"{'own KiB':>8}")
    summary = {}
    for name, rs in results.items():
        times = [r[0] for r in rs if r[0] is not None]
        summary[name] = (med(times),) + tuple(med([r[i] for r in rs]) for i in range(1, 7))
        print(f"{name:<17} {fmt(summary[name][0]):>9} {fmt(min(times) if times else None):>8} "
              f"{fmt(max(times) if times else None):>8} {fmt(summary[name][1]):>9} "
              f"{fmt(summary[name][2]):>13} {fmt(summary[name][4]):>8}")
    print(f"(overhead: RSS beyond guest RAM, {SETTLE_S} s after the marker, the monitor's helper processes "
          "included; own: its anonymous pages and page tables, what each more monitor costs, where the binary's "
          "and libraries' pages are shared)")
    s = summary["shoji-vmm"]
    for peer in ("qemu microvm", "qemu q35"):
        if peer in summary and s[0] and summary[peer][0]:
            p = summary[peer]
            print(f"ratio shoji-vmm / {peer}, time to init: {s[0] / p[0]:.2f}x (lower is better)")
            if s[1] and p[1]:
                print(f"ratio shoji-vmm / {peer}, KVM exits to init: {s[1] / p[1]:.2f}x (lower is better)")
            if s[4] and p[4]:
                print(f"ratio shoji-vmm / {peer}, memory of its own: {s[4] / p[4]:.2f}x (lower is better)")
    v = summary.get("shoji-vmm vmlinux")
    if v and v[0] and s[0]:
        print(f"ratio shoji-vmm vmlinux / shoji-vmm, time to init (the same kernel, not decompressed in the guest): "
              f"{v[0] / s[0]:.2f}x (lower is better)")
        for peer in ("qemu microvm", "qemu q35"):
            if peer in summary and summary[peer][0]:
                print(f"ratio shoji-vmm vmlinux / {peer} bzImage, time to init (QEMU cannot boot this vmlinux): "
                      f"{v[0] / summary[peer][0]:.2f}x (lower is better)")
    elif "shoji-vmm vmlinux" in summary:
        print("shoji-vmm vmlinux: no complete boot; no ratio")
    for name, goal in (("shoji-vmm", ""), ("shoji-vmm full", " (goal <= 2 MiB)")):
        over, pss, own = summary[name][2], summary[name][3], summary[name][4]
        print(f"{name} memory overhead: " + ("n/a" if over is None else f"{over / 1024:.2f} MiB{goal}") +
              ("" if pss is None else f"; counting shared pages by their share (PSS): {pss / 1024:.2f} MiB") +
              ("" if own is None else f"; its own (anonymous pages and page tables): {own / 1024:.2f} MiB"))
        helpers, helpers_pss = summary[name][5], summary[name][6]
        if helpers:
            print(f"{name}: of that overhead, its helper processes' (shoji-slirp, beside the monitor): "
                  f"{helpers / 1024:.2f} MiB RSS, {(helpers_pss or 0) / 1024:.2f} MiB PSS")
        # Where it goes: one more run with --stats, which sorts the monitor's pages by kind when
        # it is stopped, SETTLE_S after the marker.
        _, _, err = watch_console(peers[name] + ["--stats"], a.timeout, settled(a.memory, {}, measure=False))
        kinds = re.search(r"overhead by kind: (.*)", err)
        print(f"{name} overhead by kind (--stats, {SETTLE_S} s after the marker): {kinds[1] if kinds else 'not reported: ' + err[-300:]}")
    if a.where:
        for name in ("shoji-vmm", "shoji-vmm vmlinux", "qemu microvm", "qemu q35"):
            if name in peers:
                where(name, peers[name], summary[name][0], a.timeout)
    return 0 if s[0] and summary["shoji-vmm full"][0] else 1


LOG_LINE = re.compile(r"^\[\s*(\d+\.\d+)\] (.*)$")


def where(name, cmd, median_s, timeout):
    """Boots cmd once with the guest printing its kernel log (shoji.action=bootlog) and prints
    the kernel's own time to init against the median time to the marker (the rest: the monitor
    and firmware before the kernel's clock starts, and the console's lines), and the largest
    gaps between the kernel's log lines."""
    cmd = [c.replace("shoji.action=tick", "shoji.action=bootlog") for c in cmd]
    text, status, err = watch_console(cmd, timeout, lambda *_: None)
    body = text.split("shoji-guest: bootlog begin", 1)[-1].split("shoji-guest: bootlog end", 1)
    lines = [(float(m[1]), m[2].strip()) for m in map(LOG_LINE.match, body[0].splitlines()) if m]
    if len(body) < 2 or not lines:
        print(f"where: {name}: no kernel log from the guest (status {status}): {err[-300:]}")
        return
    init = next((t for t, msg in lines if "Run /init" in msg), None)
    print(f"where: {name}: the kernel ran /init at {fmt(init)} s of its own clock; median time to the marker "
          f"{fmt(median_s)} s" + (f", so {median_s - init:.3f} s before and around it (the monitor, the kernel's "
                                  "decompression, the initramfs' /init to its first line)" if init and median_s else ""))
    gaps = sorted(((lines[i][0] - lines[i - 1][0], lines[i - 1][1], lines[i][1]) for i in range(1, len(lines))
                   if init is None or lines[i][0] <= init), reverse=True)[:8]
    for gap, before, after in gaps:
        print(f"where: {name}:   {gap:7.3f} s between '{before[:70]}' and '{after[:70]}'")


if __name__ == "__main__":
    sys.exit(main())
