#!/usr/bin/env python3
"""Lifecycle benchmark: for N VMs, create + start + wait for the guest's init marker on the
serial log + hard stop, one VM after another ("serial") and all at once ("parallel"), done
through shojid and the shoji command, and done with shoji-vmm alone (the same kernel, initrd,
memory and serial log file). Prints the times and the ratios toolstack / direct.

With --baseline-bindir (bench/lifecycle --baseline REV builds one), also the cost of the
sandbox: the same cycles through shojid with its jail (as root), this build against the
baseline's shojid and monitor, interleaved in one run.

With --disposable, also a VM whose root disk is on a template (a qcow2 image, a volatile
overlay over it): `shoji run --disposable` against `shoji start` of a VM defined on the same
template and against shoji-vmm alone with the same disk (--disk IMAGE,volatile=DIR), one VM
after another: the toolstack's share (start / monitor) and the disposable's own (run / start),
and what each adds per VM in milliseconds.

With --stand-in, no KVM is needed: tests/integration/fake_vmm.py (a stand-in for shoji-vmm that
speaks its toolstack contract and boots nothing) is the monitor, and each way of starting a VM
on the template is timed until its monitor's control socket answers: the stand-in started
directly, `shoji create --from` + `shoji start`, and `shoji run --disposable`. The differences
are the toolstack's own milliseconds per VM on this machine's CPU, outside any emulation."""
import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

MARKER = b"shoji-guest: init started"


def wait_marker(path, timeout):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            with open(path, "rb") as f:
                if MARKER in f.read():
                    return True
        except OSError:
            pass
        time.sleep(0.01)
    return False


class Steps:
    """Each peer's time per step of its cycles, summed: "start" (until its command returned),
    "boot" (from then to the guest's marker), "stop" (stopping, and deleting, it)."""

    def __init__(self):
        self.steps = {"start": 0.0, "boot": 0.0, "stop": 0.0}
        self.t = None

    def step(self, name):
        """Ends the current step as name (the first call starts the clock)."""
        now = time.monotonic()
        if name and self.t is not None:
            self.steps[name] += now - self.t
        self.t = now


class Direct(Steps):
    """shoji-vmm started by hand, stopped with SIGTERM (its hard stop, exit status 6); `disk`:
    more arguments (a disk)."""

    def __init__(self, a, work, disk=()):
        super().__init__()
        self.a, self.work, self.disk = a, work, list(disk)

    def cycle(self, name):
        log = os.path.join(self.work, f"direct-{name}.log")
        self.step(None)
        p = subprocess.Popen([self.a.vmm, "--kernel", self.a.kernel, "--initrd", self.a.initrd,
                              "--memory", str(self.a.memory), "--cpus", "1", "--rng",
                              "--cmdline", f"console=ttyS0 quiet shoji.action=shell shoji.name={name}",
                              "--serial", f"file:{log}"] + self.disk,
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        self.step("start")
        ok = wait_marker(log, self.a.timeout)
        self.step("boot")
        p.send_signal(signal.SIGTERM)
        p.wait()
        self.step("stop")
        os.unlink(log)
        return ok


class Toolstack:
    """The same through shojid: shoji create, start, (marker), stop --timeout 0, delete."""

    def __init__(self, a, work, bindir=None, jail=False, vmm=None):
        self.a, self.bindir = a, bindir or a.bindir
        self.env = dict(os.environ, SHOJI_STATE_DIR=os.path.join(work, "state"),
                        SHOJI_RUNTIME_DIR=os.path.join(work, "run"))
        self.log = open(os.path.join(work, "shojid.log"), "ab")
        # --no-jail: the direct runs have no jail either, so the ratio is the toolstack's own cost.
        self.daemon = subprocess.Popen([os.path.join(self.bindir, "shojid"), "--vmm",
                                        vmm or os.path.join(self.bindir, "shoji-vmm")] + ([] if jail else ["--no-jail"]),
                                       env=self.env, stdout=self.log, stderr=self.log)
        end = time.monotonic() + 20
        while self.shoji("list") != 0 and time.monotonic() < end:
            time.sleep(0.05)

    def shoji(self, *args, out=None):
        """shoji's exit status; with out (a list), its output and then its errors are appended
        there."""
        r = subprocess.run([os.path.join(self.bindir, "shoji"), *args], env=self.env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if out is not None:
            out += [r.stdout, r.stderr]
        return r.returncode

    def serial_log(self, name):
        return os.path.join(self.env["SHOJI_STATE_DIR"], "vms", name, "serial.log")

    def cycle(self, name):
        rc = self.shoji("create", name, "--kernel", self.a.kernel, "--initrd", self.a.initrd,
                        "--memory", f"{self.a.memory}M", "--cmdline",
                        f"console=ttyS0 quiet shoji.action=shell shoji.name={name}")
        rc = rc or self.shoji("start", name)
        ok = rc == 0 and wait_marker(self.serial_log(name), self.a.timeout)
        self.shoji("stop", name, "--timeout", "0")
        self.shoji("delete", name)
        return ok

    def close(self):
        self.daemon.terminate()
        self.daemon.wait()


class OnTemplate(Steps):
    """A VM on template `benchtpl` through shojid (ts, a Toolstack): defined on it and started
    (shoji create --from, start), or a disposable one (shoji run --disposable); then stopped, and
    deleted (a disposable one goes by itself)."""

    def __init__(self, ts, work, disposable):
        super().__init__()
        self.ts, self.a, self.work, self.disposable = ts, ts.a, work, disposable

    def cycle(self, name):
        cmdline = f"console=ttyS0 quiet shoji.action=shell shoji.name={name}"
        self.step(None)
        if self.disposable:
            out = []
            rc = self.ts.shoji("--json", "run", "--disposable", "benchtpl", "--kernel", self.a.kernel, "--initrd",
                               self.a.initrd, "--memory", f"{self.a.memory}M", "--cmdline", cmdline, out=out)
            name = json.loads(out[0])["name"] if rc == 0 else None
        else:
            defn = os.path.join(self.work, f"{name}.ini")
            with open(defn, "w") as f:
                f.write(f"[vm]\nname = {name}\nmemory = {self.a.memory}M\nkernel = {self.a.kernel}\n"
                        f"initrd = {self.a.initrd}\ncmdline = {cmdline}\n[disk root]\ntemplate = benchtpl\n")
            rc = self.ts.shoji("create", "--from", defn) or self.ts.shoji("start", name)
        self.step("start")
        ok = rc == 0 and wait_marker(self.ts.serial_log(name), self.a.timeout)
        self.step("boot")
        if name:
            self.ts.shoji("stop", name, "--timeout", "0")
            if not self.disposable:
                self.ts.shoji("delete", name)
        self.step("stop")
        return ok


def template_share(a, work):
    """The disposable start against a plain start on the same template and the monitor alone
    with the same disk, interleaved over 3 rounds (best of each); None when a VM failed."""
    image, volatile = os.path.join(work, "template.qcow2"), os.path.join(work, "volatile")
    subprocess.run([os.path.join(a.bindir, "shoji-img"), "create", "-f", "qcow2", image, "1G"], check=True,
                   capture_output=True)
    os.makedirs(volatile)
    ts = Toolstack(a, work)
    peers = {"shoji-vmm": Direct(a, work, ["--disk", f"{image},format=qcow2,volatile={volatile}"]),
             "shoji start": OnTemplate(ts, work, False), "shoji run --disposable": OnTemplate(ts, work, True)}
    times = {k: [] for k in peers}
    try:
        out = []
        if ts.shoji("template", "import", "benchtpl", image, out=out) != 0:
            print(f"lifecycle: FAILED: shoji template import: {out[1].strip()}")
            return None
        for _ in range(3):
            for k, peer in peers.items():
                t, ok = run(peer, a.vms, False)
                if not ok:
                    print(f"lifecycle: FAILED: a VM did not start ({k}); no template figure")
                    return None
                times[k].append(t)
    finally:
        ts.close()
    rounds = len(times["shoji-vmm"]) * a.vms
    return {k: min(v) for k, v in times.items()}, {k: {s: t / rounds for s, t in p.steps.items()}
                                                   for k, p in peers.items()}


def print_template_share(a, best, steps):
    print(f"on a template (qcow2, volatile overlay), {a.vms} VMs one after another, best of 3 rounds:")
    for k, t in best.items():
        st = steps[k]
        print(f"  {k:<24} {t:8.3f} s  ({t / a.vms * 1000:.0f} ms a VM; on average its command "
              f"{st['start'] * 1000:.0f} ms, then to the marker {st['boot'] * 1000:.0f} ms, "
              f"stopping {st['stop'] * 1000:.0f} ms)")
    direct, start, disp = best["shoji-vmm"], best["shoji start"], best["shoji run --disposable"]
    print(f"  the toolstack adds {(start - direct) / a.vms * 1000:.0f} ms a VM; the disposable's own steps "
          f"{(disp - start) / a.vms * 1000:.0f} ms")
    print(f"ratio shoji start / shoji-vmm, on a template: {start / direct:.2f}x (lower is better)")
    print(f"ratio shoji run --disposable / shoji start, on a template: {disp / start:.2f}x (lower is better)")
    print(f"ratio shoji run --disposable / shoji-vmm, on a template: {disp / direct:.2f}x (lower is better)")


def wait_socket(path, timeout=30):
    """Whether the Unix socket at path accepts a connection within timeout seconds."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as c:
            try:
                c.connect(path)
                return True
            except OSError:
                time.sleep(0.001)
    return False


def stand_in_starts(a, work, ts, image, volatile):
    """One round of the three starts with the stand-in monitor: {way: seconds}, or the first
    failure's words."""
    common = ["--kernel", a.kernel, "--initrd", a.initrd, "--memory", f"{a.memory}M", "--cmdline", "quiet"]
    out, took = [], {}
    sock = os.path.join(work, "direct.sock")
    t = time.monotonic()
    p = subprocess.Popen([a.vmm, *common, "--control-socket", sock, "--serial", "file:/dev/null",
                          "--disk", f"{image},format=qcow2,volatile={volatile}"],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ok = wait_socket(sock)
    took["monitor alone"] = time.monotonic() - t
    p.terminate()
    p.wait()
    if os.path.exists(sock):
        os.unlink(sock)
    if not ok:
        return "the stand-in monitor's control socket never answered"
    defn = os.path.join(work, "plain.ini")
    with open(defn, "w") as f:
        f.write(f"[vm]\nname = plain\nmemory = {a.memory}M\nkernel = {a.kernel}\ninitrd = {a.initrd}\n"
                "cmdline = quiet\n[disk root]\ntemplate = benchtpl\n")
    t = time.monotonic()
    if ts.shoji("create", "--from", defn, out=out) or ts.shoji("start", "plain", out=out):
        return f"shoji create/start: {out[-1].strip()}"
    took["shoji start"] = time.monotonic() - t
    ts.shoji("stop", "plain", "--timeout", "0")
    ts.shoji("delete", "plain")
    t = time.monotonic()
    if ts.shoji("--json", "run", "--disposable", "benchtpl", *common, out=out):
        return f"shoji run --disposable: {out[-1].strip()}"
    took["shoji run --disposable"] = time.monotonic() - t
    ts.shoji("stop", json.loads(out[-2])["name"], "--timeout", "0")
    return took


def stand_in_share(a, base):
    """--stand-in: the toolstack's own share of a start, with the stand-in monitor (no KVM),
    over a.rounds interleaved rounds; 0, or 1 where a start failed."""
    a.vmm = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "tests", "integration", "fake_vmm.py"))
    work = tempfile.mkdtemp(prefix="shoji-lcs-", dir=base)
    os.chmod(work, 0o755)  # shojid checks an imported template as an unprivileged user
    image, volatile = os.path.join(work, "template.qcow2"), os.path.join(work, "volatile")
    os.makedirs(volatile)
    subprocess.run([os.path.join(a.bindir, "shoji-img"), "create", "-f", "qcow2", image, "64M"], check=True,
                   capture_output=True)
    ts = Toolstack(a, work, vmm=a.vmm)
    times = {}
    try:
        out = []
        if ts.shoji("template", "import", "benchtpl", image, out=out):
            print(f"lifecycle: FAILED: shoji template import: {out[1].strip()}")
            return 1
        for _ in range(a.rounds):
            took = stand_in_starts(a, work, ts, image, volatile)
            if isinstance(took, str):
                print(f"lifecycle: FAILED: {took}; no stand-in figure")
                return 1
            for k, v in took.items():
                times.setdefault(k, []).append(v)
    finally:
        ts.close()
        shutil.rmtree(work, ignore_errors=True)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"lifecycle --stand-in: until the monitor's control socket answers, {a.rounds} interleaved rounds, "
          "with tests/integration/fake_vmm.py standing in for shoji-vmm (this machine's CPU, no KVM, no boot)")
    for k, v in times.items():
        print(f"  {k:<24} median {med[k] * 1000:6.1f} ms  (runs {min(v) * 1000:.1f}-{max(v) * 1000:.1f})")
    # The stand-in's own start (a Python interpreter's) varies by tens of ms: the best of each
    # way is the steadier figure, the medians' difference the noisier one.
    best = {k: min(v) for k, v in times.items()}
    for k in ("shoji start", "shoji run --disposable"):
        print(f"  {k}: the toolstack adds {(best[k] - best['monitor alone']) * 1000:.1f} ms a VM, best against "
              f"best ({(med[k] - med['monitor alone']) * 1000:.1f} ms, median against median)")
    print(f"ratio shoji run --disposable / shoji start, stand-in monitor, best of each: "
          f"{best['shoji run --disposable'] / best['shoji start']:.2f}x (lower is better)")
    return 0


def run(peer, n, parallel):
    names = [f"bench{i}" for i in range(n)]
    oks = [False] * n
    start = time.monotonic()
    if parallel:
        ts = [threading.Thread(target=lambda i=i: oks.__setitem__(i, peer.cycle(names[i])))
              for i in range(n)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
    else:
        for i in range(n):
            oks[i] = peer.cycle(names[i])
    return time.monotonic() - start, all(oks)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bindir", default="build/src")
    ap.add_argument("--vmm", default=None)
    ap.add_argument("--guest-dir", default="build/guest")
    ap.add_argument("--vms", type=int, default=3)
    ap.add_argument("--memory", type=int, default=128)
    ap.add_argument("--timeout", type=int, default=300)
    ap.add_argument("--baseline-bindir", help="another build's src/ (shojid, shoji, shoji-vmm): "
                    "compare jailed starts through shojid with it (needs root)")
    ap.add_argument("--baseline-name", default="baseline")
    ap.add_argument("--stand-in", action="store_true",
                    help="only the toolstack's own time per start, with the monitor's stand-in (no KVM)")
    ap.add_argument("--rounds", type=int, default=20, help="--stand-in's rounds")
    ap.add_argument("--disposable", action="store_true",
                    help="also shoji run --disposable against shoji start and shoji-vmm, on a template")
    a = ap.parse_args()
    a.bindir = os.path.abspath(a.bindir)
    a.vmm = os.path.abspath(a.vmm or os.path.join(a.bindir, "shoji-vmm"))
    a.kernel = os.path.abspath(os.path.join(a.guest_dir, "vmlinuz"))
    a.initrd = os.path.abspath(os.path.join(a.guest_dir, "initramfs.cpio.gz"))
    # /run: a tmpfs (also in the harness machine) where files can be given to the jail user.
    base = "/run" if os.access("/run", os.W_OK) else os.path.abspath("build/tmp")
    os.makedirs(base, exist_ok=True)
    if a.stand_in:
        return stand_in_share(a, base)
    work = tempfile.mkdtemp(prefix="shoji-lc-", dir=base)
    direct, ts = Direct(a, work), Toolstack(a, work)
    results = {}
    try:
        # Interleaved, so that a drift of the machine hits both alike.
        for mode in ("serial", "parallel"):
            for name, peer in (("shoji-vmm", direct), ("shojid", ts)):
                results[(name, mode)] = run(peer, a.vms, mode == "parallel")
    finally:
        ts.close()
        shutil.rmtree(work, ignore_errors=True)
    where = ("emulated harness machine: compare ratios, not seconds"
             if os.environ.get("SHOJI_IN_HARNESS") else "host KVM")
    print(f"lifecycle: create + start to the init marker + stop, {a.vms} VMs of {a.memory} MiB ({where})")
    print(f"{'path':<11} {'serial s':>9} {'parallel s':>11}")
    for name in ("shoji-vmm", "shojid"):
        s, p = results[(name, "serial")], results[(name, "parallel")]
        print(f"{name:<11} {s[0]:>9.3f} {p[0]:>11.3f}" + ("" if s[1] and p[1] else "  (some VM failed)"))
    failed = [k for k, v in results.items() if not v[1]]
    if failed:  # a VM that never reached its marker: no figure is worth printing
        print(f"lifecycle: FAILED: some VM did not start in {', '.join(f'{n} {m}' for n, m in failed)}")
        return 1
    for mode in ("serial", "parallel"):
        r = results[("shojid", mode)][0] / results[("shoji-vmm", mode)][0]
        print(f"ratio shojid / shoji-vmm, {mode}: {r:.2f}x (lower is better)")
    if a.disposable:
        work = tempfile.mkdtemp(prefix="shoji-lct-", dir=base)
        os.chmod(work, 0o755)  # shojid checks an imported template as an unprivileged user
        try:
            share = template_share(a, work)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        if share is None:
            return 1
        print_template_share(a, *share)
    if a.baseline_bindir:
        return sandbox_cost(a, base)
    return 0


def kvm_for_a_group():
    """Jailed monitors open /dev/kvm with its group (the harness machine's is root 0600)."""
    st = os.stat("/dev/kvm")
    if st.st_gid == 0 or (st.st_mode & 0o060) != 0o060:
        os.chown("/dev/kvm", -1, 4243)
        os.chmod("/dev/kvm", 0o660)


def sandbox_cost(a, base):
    """Jailed cycles through shojid: this build against the baseline, interleaved, a few rounds."""
    if os.geteuid() != 0:
        print("lifecycle: FAILED: the sandbox comparison needs root (jailed monitors)")
        return 1
    kvm_for_a_group()
    times = {"this": [], "base": []}
    ok = True
    for _ in range(3):
        for key, bindir in (("this", a.bindir), ("base", os.path.abspath(a.baseline_bindir))):
            work = tempfile.mkdtemp(prefix="shoji-lcj-", dir=base)
            os.chmod(work, 0o755)
            ts = Toolstack(a, work, bindir=bindir, jail=True)
            try:
                t, good = run(ts, a.vms, False)
            finally:
                ts.close()
                shutil.rmtree(work, ignore_errors=True)
            ok = ok and good
            times[key].append(t)
    if not ok:
        print("lifecycle: FAILED: a jailed VM did not start; no sandbox figure")
        return 1
    this, old = min(times["this"]), min(times["base"])
    print(f"jailed through shojid, {a.vms} VMs one after another, best of 3: this build {this:.3f} s, "
          f"{a.baseline_name} {old:.3f} s")
    print(f"ratio this build / {a.baseline_name}, jailed start: {this / old:.2f}x (lower is better)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
