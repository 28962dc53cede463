"""vmmtest: what the integration tests share: running shoji-vmm with a time limit, reading the
guest's report line, synthetic kernels, and a tiny runner that prints 'N passed, N failed'."""
import contextlib
import glob
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import traceback

# In the emulated harness machine a Linux guest has now and then triple-faulted (its vCPU back
# at the reset vector, where KVM's SVM leaves it after a shutdown): a fault of the emulation,
# which no test causes on purpose in a Linux guest. "rip 0xfff0" alone proves nothing: every
# triple fault under nested SVM shows it, a monitor's own bug included. So it counts as the
# emulation's only with the guest's word beside it: the guest had booted (its init printed
# GUEST_BOOTED, so the monitor's entry state, tables and devices had done their part) and its
# kernel printed no failure of its own (GUEST_FAILED) before it went. A suite that failed and
# met such a fault exits with EMULATION_FAULT_STATUS, and tests/harness/kvm-run runs it once
# more (counted: scripts/test prints the reruns).
EMULATION_FAULT_STATUS = 75
GUEST_BOOTED = "shoji-guest: init started"
GUEST_FAILED = re.compile(r"Kernel panic|BUG: |Oops|general protection fault|double fault|invalid opcode")


def emulation_fault(rc, err, guest_out):
    """Whether a monitor's exit (status rc, stderr err), with what its guest printed
    (guest_out), is that fault of the emulation."""
    return (bool(os.environ.get("SHOJI_IN_HARNESS")) and rc == 4 and "rip 0xfff0" in err
            and GUEST_BOOTED in guest_out and not GUEST_FAILED.search(guest_out))


def count_rerun(what, why):
    """A step run again inside a suite: said on stdout and counted with kvm-run's reruns (the
    file SHOJI_RERUN_LOG names, which scripts/test counts and lists before its verdict)."""
    print(f"note: running again: {what}: {why}", flush=True)
    log = os.environ.get("SHOJI_RERUN_LOG")
    if log:
        with open(log, "a") as f:
            f.write(f"{what} (inside its suite): {why}\n")


def failed_status(failed, passed, fault):
    """A suite's exit status; fault: what met an emulation fault (None: nothing did)."""
    if failed and fault:
        print(f"note: a guest failed as only the emulated machine makes it fail ({fault}); "
              f"exit status {EMULATION_FAULT_STATUS} asks kvm-run to run the suite once more")
        return EMULATION_FAULT_STATUS
    return 1 if failed or not passed else 0


REPORT = re.compile(r"shoji-guest: cpus=(\d+) online=(\S+) ram_kib=(\d+) memtotal_kib=(\d+) "
                    r"rtc_epoch=(\S+) date_epoch=(\d+) pci=(\S+) hwrng=(\S+)")


class Result:
    def __init__(self, rc, out, err, seconds):
        self.rc, self.out, self.err, self.seconds = rc, out, err, seconds

    def report(self):
        m = REPORT.search(self.out)
        if not m:
            raise AssertionError("no guest report in the console output:\n" + self.tail())
        return {"cpus": int(m[1]), "online": m[2], "ram_kib": int(m[3]),
                "memtotal_kib": int(m[4]), "rtc_epoch": m[5], "date_epoch": int(m[6]),
                "pci": dict(p.split("=") for p in m[7].split(",")) if m[7] != "none" else {},
                "hwrng": m[8]}

    def tail(self, n=25):
        lines = (self.out + "\n--- stderr ---\n" + self.err).splitlines()
        return "\n".join(lines[-n:])


class Env:
    def __init__(self, vmm, guest_dir):
        self.vmm, self.guest_dir = vmm, guest_dir
        self.kernel = os.path.join(guest_dir, "vmlinuz")
        self.initrd = os.path.join(guest_dir, "initramfs.cpio.gz")
        self.emulation_faults = []

    def run(self, args, timeout=240, stop_when=None, env=None):
        """Runs shoji-vmm with args. stop_when(stdout_so_far) -> True sends SIGTERM."""
        start = time.monotonic()
        errf = tempfile.TemporaryFile()  # a file, not a pipe: a chatty monitor never blocks on it
        p = subprocess.Popen([self.vmm] + args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=errf, env=dict(os.environ, **(env or {})))
        out = b""
        os.set_blocking(p.stdout.fileno(), False)
        stopped = False
        while p.poll() is None:
            if time.monotonic() - start > timeout:
                stuck = stuck_report(p.pid, self.emulation_faults)
                p.kill()
                try:  # longer than the harness machine's hung-task panic, which reruns the command
                    p.wait(300)
                except subprocess.TimeoutExpired:
                    raise AssertionError(f"shoji-vmm did not finish in {timeout}s, and SIGKILL did not end it "
                                         "in 300 s (stuck in the kernel)") from None
                raise AssertionError(f"shoji-vmm did not finish in {timeout}s:\n"
                                     + out.decode(errors="replace")[-2000:] + "\n" + stuck)
            chunk = p.stdout.read() or b""
            out += chunk
            if stop_when and not stopped and stop_when(out.decode(errors="replace")):
                p.send_signal(signal.SIGTERM)
                stopped = True
            time.sleep(0.05)
        out += p.stdout.read() or b""
        errf.seek(0)
        err = errf.read()
        return Result(p.returncode, out.decode(errors="replace"), err.decode(errors="replace"),
                      time.monotonic() - start)

    def boot(self, action, cpus=1, memory=256, extra=(), cmdline="", kernel=None, **kw):
        r = self.run(["--kernel", kernel or self.kernel, "--initrd", self.initrd, "--cpus", str(cpus),
                      "--memory", str(memory), "--cmdline",
                      f"console=ttyS0 quiet shoji.action={action} {cmdline}".strip(), *extra],
                     **kw)
        if emulation_fault(r.rc, r.err, r.out):
            self.emulation_faults.append(r.err.strip().splitlines()[-1])
        return r


def synthetic_kernel(path, code, init_size=0x100000, version=0x020F, xloadflags=1):
    """Writes a minimal bzImage whose 64-bit entry point runs `code` (raw x86-64 bytes)."""
    setup = bytearray(1024)  # setup_sects = 1
    payload = bytearray(0x200) + bytearray(code)
    payload += bytearray(-len(payload) % 16)
    setup[0x1F1] = 1
    struct.pack_into("<I", setup, 0x1F4, len(payload) // 16)
    struct.pack_into("<H", setup, 0x1FE, 0xAA55)
    setup[0x201] = 0x6A  # header ends at 0x26c
    setup[0x202:0x206] = b"HdrS"
    struct.pack_into("<H", setup, 0x206, version)
    setup[0x211] = 0x01  # LOADED_HIGH
    struct.pack_into("<I", setup, 0x22C, 0x7FFFFFFF)
    struct.pack_into("<I", setup, 0x230, 0x200000)
    setup[0x234] = 1
    struct.pack_into("<H", setup, 0x236, xloadflags)
    struct.pack_into("<I", setup, 0x238, 2047)
    struct.pack_into("<Q", setup, 0x258, 0x1000000)
    struct.pack_into("<I", setup, 0x260, init_size)
    with open(path, "wb") as f:
        f.write(setup + payload)
    return path


def asm_out(port, value):
    """mov dx, port; mov al, value; out dx, al"""
    return bytes([0x66, 0xBA]) + struct.pack("<H", port) + bytes([0xB0, value, 0xEE])


ASM_POWEROFF = asm_out(0x600, 0x34) + bytes([0xF4, 0xEB, 0xFD])  # ACPI S5, then hlt forever


def take_img(args):
    """Removes --img PATH (shoji-img) from args and returns its absolute path; exits 77
    (skipped) when it or qemu-img is missing."""
    img = None
    if "--img" in args:
        i = args.index("--img")
        img = os.path.abspath(args[i + 1])
        del args[i:i + 2]
    if not img or not shutil.which("qemu-img"):
        print("shoji-img or qemu-img missing: skipped")
        sys.exit(77)
    return img


def qemu_check(path):
    """qemu-img check: (exit status, report)."""
    r = subprocess.run(["qemu-img", "check", path], capture_output=True, text=True)
    return r.returncode, r.stdout + r.stderr


def qemu_raw(path):
    """What QEMU reads from the image (qemu-img convert -O raw)."""
    out = path + ".raw"
    subprocess.run(["qemu-img", "convert", "-O", "raw", path, out], check=True)
    with open(out, "rb") as f:
        data = f.read()
    os.unlink(out)
    return data


def main(tests, argv, slow=()):
    """Runs tests, or with --slow the slowest cases (slow: minutes in the harness, run by
    scripts/test --slow and before an issue they touch is called done) instead."""
    import argparse
    ap = argparse.ArgumentParser()
    ap.add_argument("--vmm", required=True)
    ap.add_argument("--guest-dir", required=True)
    ap.add_argument("-k", "--only", help="run the tests whose name contains this")
    ap.add_argument("--slow", action="store_true", help="run the slow cases instead of the others")
    a = ap.parse_args(argv)
    tests = slow if a.slow else tests
    env = Env(os.path.abspath(a.vmm), os.path.abspath(a.guest_dir))
    passed = failed = unexplained = 0
    for t in tests:
        if a.only and a.only not in t.__name__:
            continue
        start = time.monotonic()
        faults_before = len(env.emulation_faults)
        try:
            t(env)
            passed += 1
            print(f"ok - {t.__name__} ({time.monotonic() - start:.1f}s)", flush=True)
        except Exception as e:  # noqa: BLE001 - every failure is reported the same way
            failed += 1
            unexplained += len(env.emulation_faults) == faults_before  # this test met no fault
            detail = str(e) if isinstance(e, AssertionError) else traceback.format_exc()
            print(f"not ok - {t.__name__}: {detail}", flush=True)
    print(f"{passed} passed, {failed} failed")
    # A rerun only where every failed test met the emulation's fault itself.
    fault = env.emulation_faults[0] if env.emulation_faults and not unexplained else None
    return failed_status(failed, passed, fault)


def process_threads(pid):
    """Each thread of process pid: name, state, where it sleeps in the kernel and (as root) its
    kernel stack; for a test that timed out, to tell a monitor stuck on a lock from one waiting
    for its guest."""
    out = []
    try:
        tids = sorted(os.listdir(f"/proc/{pid}/task"), key=int)
    except OSError as e:
        return f"(threads of {pid}: {e})"
    for tid in tids:
        base = f"/proc/{pid}/task/{tid}"
        fields = []
        for name in ("comm", "wchan", "stat", "stack"):
            try:
                with open(f"{base}/{name}") as f:
                    fields.append(f.read().strip())
            except OSError:
                fields.append("?")
        comm, wchan, stat, stack = fields
        state = stat.rsplit(")", 1)[-1].split()[0] if ")" in stat else "?"
        frames = " < ".join(line.split()[-1] for line in stack.splitlines()[:6]) if stack != "?" else ""
        out.append(f"  {tid} {comm} {state} {wchan} {frames}".rstrip())
    return "\n".join(out)


KVM_WINDOW_S = 2.0  # how long a stuck monitor's KVM counters are watched


def kvm_activity(pid):
    """KVM's debugfs counters for process pid's VM that moved over KVM_WINDOW_S ({} where
    debugfs is absent), so a vCPU that runs without progress shows where its exits go."""
    def sample():
        got = {}
        for path in glob.glob(f"/sys/kernel/debug/kvm/{pid}-*/*"):
            try:
                with open(path) as f:
                    got[os.path.basename(path)] = int(f.read().split()[0])
            except (OSError, ValueError, IndexError):
                pass
        return got

    before = sample()
    time.sleep(KVM_WINDOW_S)
    after = sample()
    return {k: after[k] - before[k] for k in sorted(after) if k in before and after[k] != before[k]}


def activity_line(moved):
    return f"KVM over {KVM_WINDOW_S:.0f} s: " + (" ".join(f"{k}+{v}" for k, v in moved.items()) or "no counter moved")


# The emulated harness machine's other known fault: a vCPU caught for good in KVM's instruction
# emulator, each exit emulating an instruction and injecting a page fault the guest then finds
# spurious (seen in 2 of 48 runs of test_disks' flushwrite guest: some 20,000 exits a
# second, nearly all insn_emulation with pf_guest, for minutes, with the monitor's threads all
# idle and nothing in its log). Under SVM a write to an MMIO register (a virtio doorbell) is an
# emulated instruction whose bytes KVM fetches by walking the guest's page tables when the CPU
# gives no decode assist, as the emulated CPU does not; the reading is that this walk fails
# again and again in KVM or the emulation, where the monitor takes no part (not proven: the
# guest's RIP is not seen). It counts only with that signature in full, and only in the harness.
def emulation_livelock(moved):
    exits = moved.get("exits", 0)
    return (bool(os.environ.get("SHOJI_IN_HARNESS")) and exits >= 1000 * KVM_WINDOW_S
            and moved.get("insn_emulation", 0) >= 0.9 * exits and moved.get("pf_guest", 0) >= 0.9 * exits)


def stuck_report(pid, faults):
    """For a monitor (pid) that made no progress: its threads and what KVM did meanwhile; a
    vCPU caught in the emulation's livelock is added to faults (a list, as Env's)."""
    moved = kvm_activity(pid)
    if emulation_livelock(moved):
        faults.append(f"vCPU caught in KVM's instruction emulation ({activity_line(moved)})")
    return f"--- the monitor's threads ---\n{process_threads(pid)}\n{activity_line(moved)}"


def free_port():
    """A TCP port on the loopback that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def routable_interface():
    """passt starts only on a host with a routable interface: a machine with none (the emulated
    harness machine) gets a TAP interface with a default route meanwhile (a TAP: the harness
    kernel has no dummy driver), where this runs as root."""
    added = None
    if (not subprocess.run(["ip", "-4", "route", "show", "default"], capture_output=True, text=True).stdout.strip()
            and os.geteuid() == 0):
        added = "shojitest0"
        for cmd in (["tuntap", "add", added, "mode", "tap"], ["addr", "add", "192.0.2.10/24", "dev", added],
                    ["link", "set", added, "up"], ["route", "add", "default", "via", "192.0.2.1", "dev", added]):
            subprocess.run(["ip", *cmd], check=True, capture_output=True)
    try:
        yield
    finally:
        if added:
            subprocess.run(["ip", "link", "del", added], capture_output=True)
