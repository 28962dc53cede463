#!/usr/bin/env python3
"""Soak test of the toolstack: for about --minutes (10 by default), several VMs (each with a
qcow2 disk of its own and a second disk on a template) and a disposable VM go through start,
live snapshot, graceful stop, shoji kill, SIGKILL of the monitor, restart and (stopped)
snapshot delete, chosen at random with a printed seed, while every guest writes numbered,
flushed records to its disks (the test guest's shoji.action=io).

After each stop or kill: every image of the VM is checked (shoji-img check and qemu-img check;
after a kill, leaked clusters are allowed, counted and repaired, corruption never), and the
last record the guest reported flushed must be on the disk, read through the snapshot chain
(also after each snapshot delete, which folds a layer). At the end: every VM stopped, its
snapshots deleted, its images checked, the VM and the template deleted; then shojid's open
descriptors and resident memory must be what they were after the warm-up round (within the
stated tolerance), and no monitor, keeper, socket, cgroup or stray file may be left.

Every failed step is printed with its error and counted, never retried; the exit status is 1
when any check failed. A guest crash that only the emulated harness machine causes
(vmmtest.emulation_fault) is printed and counted apart."""
import argparse
import hashlib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "integration"))
import vmmtest  # noqa: E402

MIB = 1 << 20
RECORD = 65536
MAX_SNAPSHOTS = 5  # per VM: its chain stays well below the 16 files a qcow2 chain may have
FD_TOLERANCE = 2  # descriptors more than after the warm-up
RSS_TOLERANCE = 0.10  # and at least RSS_TOLERANCE_KIB
RSS_TOLERANCE_KIB = 512
CRASH = re.compile(r"exit status (\d+) \([^)]*\): (.*)")


class Failed(Exception):
    """A step that did not do what it should: printed with its error and counted."""


class ImageBad(Failed):
    """An image that does not check clean."""


class RecordLost(Failed):
    """A record the guest reported flushed that is not on its disk, or its own read-back differs."""


def record(tag, n):
    """What the guest writes as record n (guest/init, action io) and where."""
    unit = f"shoji-io-{tag}-{n}\n".encode()
    data = (unit * (RECORD // len(unit) + 1))[:RECORD]
    return data, ((n * 37 % 256) * 16 + 1) * 4096


def read(path):
    try:
        with open(path, "rb") as f:
            return f.read().decode(errors="replace")
    except OSError:
        return ""


def listing(top):
    """Every path under top, relative to it (directories end with /)."""
    out = set()
    for root, dirs, files in os.walk(top):
        rel = os.path.relpath(root, top)
        for d in dirs:
            out.add(os.path.normpath(os.path.join(rel, d)) + "/")
        for f in files:
            out.add(os.path.normpath(os.path.join(rel, f)))
    return out


def proc_status(pid):
    """(descriptors, VmRSS in KiB) of a process."""
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    m = re.search(r"^VmRSS:\s+(\d+) kB", read(f"/proc/{pid}/status"), re.M)
    return fds, int(m[1])


def kvm_for_a_group():
    """Jailed monitors open /dev/kvm with its group (the harness machine's is root 0600)."""
    st = os.stat("/dev/kvm")
    if st.st_gid == 0 or (st.st_mode & 0o060) != 0o060:
        os.chown("/dev/kvm", -1, 4243)
        os.chmod("/dev/kvm", 0o660)


class VM:
    def __init__(self, name, disposable=False):
        self.name, self.disposable = name, disposable
        self.vm_name = None if disposable else name  # a disposable's (dispN) once it runs
        self.running = False
        self.runs = 0
        self.tag = None  # this run's shoji.name: its records say it
        self.need = 0  # records the guest must report flushed before the next step on it
        self.since = 0.0  # when it began to wait for them
        self.disk = None  # its own qcow2 image (the first disk)
        self.snapshots = []
        self.expect = None  # (tag, record) that the disk must hold, known after a stop
        self.cgroups = set()
        self.seen = ""  # the serial output last read in this run


class Soak:
    def __init__(self, a, work):
        self.a, self.work = a, work
        self.state, self.run = os.path.join(work, "state"), os.path.join(work, "run")
        self.env = dict(os.environ, SHOJI_STATE_DIR=self.state, SHOJI_RUNTIME_DIR=self.run)
        self.img = os.path.join(a.bindir, "shoji-img")
        self.qemu_img = shutil.which("qemu-img")
        self.jailed = os.geteuid() == 0
        self.log = open(os.path.join(work, "shojid.log"), "ab")
        self.t0 = time.monotonic()
        self.counts, self.failures, self.faults = {}, [], []
        self.image_checks = self.leaky = self.durable = self.records = 0
        self.clean = {}  # path -> (inode, size, mtime) when it last checked clean
        self.steps = 0
        if self.jailed:
            kvm_for_a_group()
        self.daemon = subprocess.Popen([os.path.join(a.bindir, "shojid"), "--vmm",
                                        os.path.join(a.bindir, "shoji-vmm")] + ([] if self.jailed else ["--no-jail"]),
                                       env=self.env, stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log)
        end = time.monotonic() + 30
        while self.shoji("list")[0] != 0:
            if time.monotonic() > end or self.daemon.poll() is not None:
                raise SystemExit("soak: shojid did not answer; its log:\n" + read(os.path.join(work, "shojid.log")))
            time.sleep(0.1)

    # ---- helpers ----

    def say(self, text):
        print(f"[{time.monotonic() - self.t0:7.1f}s] {text}", flush=True)

    def shoji(self, *args, timeout=300):
        try:
            p = subprocess.run([os.path.join(self.a.bindir, "shoji"), *args], env=self.env,
                               capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return 124, "", f"no answer in {timeout} s"
        return p.returncode, p.stdout, p.stderr

    def ok(self, *args, timeout=300):
        rc, out, err = self.shoji(*args, timeout=timeout)
        if rc != 0:
            raise Failed(f"shoji {' '.join(args)}: exit {rc}: {err.strip()}")
        return out

    def js(self, *args):
        return json.loads(self.ok("--json", *args))

    def vmdir(self, vm, *p):
        return os.path.join(self.state, "vms", vm.vm_name, *p)

    def serial(self, vm):
        """What the guest printed in this run; for a disposable VM, whose files go when it
        ends, what was last read while it ran."""
        text = read(self.vmdir(vm, "serial.log.1")) + read(self.vmdir(vm, "serial.log"))
        if vm.disposable and not text:
            return vm.seen
        vm.seen = text
        return text

    def flushed(self, vm):
        """The last record this run reported flushed (-1: none); Failed on a reported error."""
        text = self.serial(vm)
        bad = re.search(rf"io {re.escape(vm.tag)} (mismatch|write failed at|read failed at) (\d+)", text)
        if bad:
            raise RecordLost(f"the guest says: {bad[0]}")
        n = re.findall(rf"io {re.escape(vm.tag)} flushed (\d+)", text)
        return int(n[-1]) if n else -1

    def diagnostics(self, vm):
        """The VM's last events and its monitor's messages, for a failure's report."""
        try:
            evs = self.js("events", vm.vm_name)["events"][-6:]
        except (Failed, ValueError, KeyError):
            evs = []
        text = "".join(f"\n  event {e['event']}: {e.get('detail', '')}" for e in evs)
        log = read(self.vmdir(vm, "monitor.log.1")) + read(self.vmdir(vm, "monitor.log"))
        return f"\nevents:{text or ' (none)'}\nmonitor log (end):\n{log[-2000:]}"

    def last_event(self, vm):
        return self.js("events", vm.vm_name)["events"][-1]

    def count(self, kind):
        self.counts[kind] = self.counts.get(kind, 0) + 1

    def fail(self, kind, vm, msg, what=Failed):
        self.failures.append((what, f"{kind} {vm.name}: {msg}"))
        self.say(f"FAILED {kind} {vm.name}: {msg}")

    # ---- set-up ----

    def setup(self, n):
        # The template: a 32 MiB qcow2 image with a little data, the VMs' second disk.
        base = os.path.join(self.work, "template.qcow2")
        self.sh_img("create", "-f", "qcow2", base, "32M")
        self.sh_img("write", base, str(MIB), data=b"soak-template" * 1000)
        self.ok("template", "import", "soakbase", base)
        os.unlink(base)
        t = self.js("template", "info", "soakbase")["template"]
        self.template = next(v["path"] for v in t["versions"] if v["version"] == t["current"])
        self.template_hash = hashlib.sha256(self.sh_img("read", self.template, "0", str(32 * MIB))).hexdigest()
        self.vms = []
        for i in range(n):
            vm = VM(f"soak{i}")
            vm.disk = os.path.join(self.work, f"{vm.name}.qcow2")
            self.sh_img("create", "-f", "qcow2", vm.disk, "64M")
            self.ok("create", vm.name, "--kernel", self.a.kernel, "--initrd", self.a.initrd,
                    "--memory", f"{self.a.memory}M", "--disk", f"{vm.disk},format=qcow2")
            self.ok("set", vm.name, "disk.vdb.template=soakbase")
            if self.jailed:  # the VM's jail uid alone may write its disk
                os.chown(vm.disk, self.js("info", vm.name)["vm"]["jail_uid"], -1)
                os.chmod(vm.disk, 0o600)
            self.vms.append(vm)
        self.vms.append(VM("disposable", disposable=True))

    def sh_img(self, *args, data=None):
        p = subprocess.run([self.img, *args], input=data, capture_output=True)
        if p.returncode != 0:
            raise Failed(f"shoji-img {' '.join(args)}: exit {p.returncode}: {p.stderr.decode().strip()}")
        return p.stdout

    # ---- the steps ----

    def cmdline(self, vm):
        return f"console=ttyS0 loglevel=4 shoji.action=io shoji.name={vm.tag}"

    def start(self, vm):
        vm.runs += 1
        vm.tag = f"{vm.name}.{vm.runs}"
        vm.seen = ""
        if vm.disposable:
            rep = self.js("run", "--disposable", "soakbase", "--kernel", self.a.kernel, "--initrd",
                          self.a.initrd, "--memory", f"{self.a.memory}M", "--cmdline", self.cmdline(vm))
            vm.vm_name = rep["name"]
        else:
            self.ok("set", vm.name, "cmdline=" + self.cmdline(vm))
            self.ok("start", vm.name)
        vm.running = True
        vm.expect = None  # what the disk holds is the new run's to change
        self.wait_for(vm, 3)
        info = self.js("info", vm.vm_name)["vm"]
        if info.get("cgroup"):
            vm.cgroups.add(info["cgroup"])
        return f"monitor pid {info['pid']}"

    def wait_for(self, vm, records):
        """The VM may take its next step once the guest has reported that many more records."""
        vm.need, vm.since = max(self.flushed(vm), -1) + records, time.monotonic()

    def ready(self, vm):
        """Whether the guest has reported the records asked for; Failed when it takes too long."""
        if self.flushed(vm) >= vm.need:
            return True
        if time.monotonic() - vm.since > self.a.boot_timeout:
            raise Failed(f"the guest reported no record {vm.need} in {self.a.boot_timeout} s; serial (end):\n"
                         + self.serial(vm)[-3000:] + self.diagnostics(vm))
        return False

    def snapshot(self, vm):
        name = f"s{vm.runs}-{len(vm.snapshots) + 1}"
        rep = self.js("snapshot", "create", vm.name, name)
        if not rep.get("live"):
            raise Failed(f"the snapshot of a running VM was not live: {rep}")
        vm.snapshots.append(name)
        self.wait_for(vm, 2)  # the guest goes on writing, now to the new overlay
        return f"{name}, live, paused {rep.get('paused_ms')} ms"

    def stop(self, vm):
        self.ok("stop", vm.vm_name, "--timeout", "60")
        return self.ended(vm, "stopped", "exit status 0 (guest powered off)", graceful=True)

    def kill(self, vm):
        self.ok("kill", vm.vm_name)
        return self.ended(vm, "stopped", "killed on request by signal 9")

    def kill9(self, vm):
        pid = self.js("info", vm.vm_name)["vm"]["pid"]
        os.kill(pid, signal.SIGKILL)
        end = time.monotonic() + 30
        while self.state_of(vm) not in ("stopped", None):
            if time.monotonic() > end:
                raise Failed(f"still {self.state_of(vm)} 30 s after SIGKILL of its monitor {pid}")
            time.sleep(0.1)
        return self.ended(vm, "crashed", "monitor killed by signal 9 (SIGKILL)")

    def restart(self, vm):
        said = self.stop(vm)
        return said + "; " + self.start(vm)

    def snapshot_delete(self, vm):
        name = random.choice(vm.snapshots)
        self.ok("snapshot", "delete", vm.name, name)
        vm.snapshots.remove(name)
        said = self.check_images(vm, after_kill=False)
        return f"{name}; {said}" + self.check_record(vm)

    def state_of(self, vm):
        for v in self.js("list")["vms"]:
            if v["name"] == vm.vm_name:
                return v["state"]
        return None

    def ended(self, vm, event, detail, graceful=False):
        """After a stop or kill: the event, no process, images clean, the last record there."""
        vm.running = False
        if vm.disposable:
            return self.disposable_gone(vm, event, detail)
        ev = self.last_event(vm)
        if ev["event"] != event or detail not in ev["detail"]:
            raise Failed(f"expected event {event} ({detail}), got {ev['event']} ({ev['detail']})")
        n = self.flushed(vm)
        vm.expect = (vm.tag, n) if n >= 0 else None
        return self.check_images(vm, after_kill=not graceful) + self.check_record(vm)

    def disposable_gone(self, vm, event, detail):
        """A disposable VM's definition, state, logs and sockets go with it."""
        name = vm.vm_name
        end = time.monotonic() + 10
        while True:
            left = [p for p in (os.path.join(self.state, "vms", name + ".ini"), os.path.join(self.state, "vms", name),
                                os.path.join(self.run, name)) if os.path.exists(p)]
            if not left and self.state_of(vm) is None:
                break
            if time.monotonic() > end:
                raise Failed(f"{name} not removed 10 s after it ended: {left}")
            time.sleep(0.1)
        evs = [e for e in self.js("events", name)["events"]][-2:]
        if [e["event"] for e in evs] != [event, "removed"] or detail not in evs[0]["detail"]:
            raise Failed(f"expected events {event} ({detail}), removed; got {evs}")
        return f"{name} removed"

    # ---- checks ----

    def chain(self, vm):
        disks = self.js("snapshot", "list", vm.name)["disks"]
        return disks[0]["chain"] if disks else [vm.disk]

    def images(self, vm):
        d = self.vmdir(vm, "disks")
        over = sorted(os.path.join(d, f) for f in os.listdir(d)) if os.path.isdir(d) else []
        return [vm.disk] + over

    def check_images(self, vm, after_kill, final=False):
        """shoji-img check and qemu-img check of each of the VM's images that changed since it
        last checked clean (all of them when final). After a kill leaked clusters are allowed:
        counted and repaired (shoji-img check -r leaks); otherwise the image must be clean."""
        checked = []
        for p in self.images(vm):
            st = os.stat(p)
            key = (st.st_ino, st.st_size, st.st_mtime_ns)
            if not final and self.clean.get(p) == key:
                continue
            self.image_checks += 1
            r = subprocess.run([self.img, "check", p], capture_output=True, text=True)
            if r.returncode == 3 and after_kill:
                self.leaky += 1
                fix = subprocess.run([self.img, "check", "-r", "leaks", p], capture_output=True, text=True)
                if fix.returncode != 0:
                    raise ImageBad(f"shoji-img check -r leaks {p}: exit {fix.returncode}: {fix.stdout}{fix.stderr}")
                checked.append(os.path.basename(p) + " (leaks repaired)")
            elif r.returncode != 0:
                raise ImageBad(f"shoji-img check {p}: exit {r.returncode}: {(r.stdout + r.stderr).strip()}")
            else:
                checked.append(os.path.basename(p))
            if self.qemu_img:
                # Without its backing file, which check does not need: the template below an
                # overlay is open in running VMs, and shoji's lock on it keeps out QEMU's (they
                # exclude each other, -U included).
                spec = json.dumps({"driver": "qcow2", "file": {"driver": "file", "filename": p}, "backing": None})
                q = subprocess.run([self.qemu_img, "check", "json:" + spec], capture_output=True, text=True)
                if q.returncode != 0:
                    raise ImageBad(f"qemu-img check {p}: exit {q.returncode}: {(q.stdout + q.stderr).strip()}")
            st = os.stat(p)
            self.clean[p] = (st.st_ino, st.st_size, st.st_mtime_ns)
        return "checked " + (", ".join(checked) if checked else "nothing new")

    def check_record(self, vm):
        """The records the guest reported flushed in its last run are on its disk, read through
        the chain: the last one and the 254 before it (the place of the one before those may
        already hold the next record, written but not reported)."""
        if not vm.expect:
            return ""
        tag, n = vm.expect
        top = self.chain(vm)[-1]
        data = self.sh_img("read", top, "0", str(record(tag, 0)[1] + 256 * RECORD))
        first = max(0, n - 254)
        for j in range(n, first - 1, -1):
            want, off = record(tag, j)
            if data[off:off + RECORD] != want:
                raise RecordLost(f"record {j} of {tag} (the last reported flushed: {n}) is not on the "
                                 f"disk at {off} (read through {os.path.basename(top)}): "
                                 f"{data[off:off + 40]!r}")
        self.durable += 1
        self.records += n - first + 1
        return f"; records {first}-{n} on disk"

    def unexpected_ends(self):
        """VMs that ended without being asked: a failure, or the emulation's fault (counted)."""
        states = {v["name"]: v for v in self.js("list")["vms"]}
        for vm in self.vms:
            if not vm.running or states.get(vm.vm_name, {}).get("state") in ("running", "starting"):
                continue
            vm.running = False
            evs = self.js("events", vm.vm_name)["events"] if vm.vm_name in states or vm.disposable else []
            ended = next((e for e in reversed(evs) if e["event"] in ("stopped", "crashed", "failed")), None)
            detail = ended["detail"] if ended else "(no event)"
            guest = self.serial(vm)
            m = CRASH.search(detail)
            if m and vmmtest.emulation_fault(int(m[1]), m[2], guest):
                self.faults.append(f"{vm.name} ({vm.vm_name}): {detail}")
                self.say(f"EMULATION FAULT {vm.name}: {detail} (the emulated machine's; counted apart)")
            else:
                self.fail("run", vm, f"ended without being asked: {ended and ended['event']} {detail}; "
                                     f"serial (end):\n{guest[-3000:]}" + self.diagnostics(vm))
            if not vm.disposable:  # its images still have to be sound
                self.step("check", vm, lambda: self.check_images(vm, after_kill=True), count=False)

    # ---- the loop ----

    def step(self, kind, vm, fn, count=True):
        if count:
            self.count(kind)
            self.steps += 1
        try:
            said = fn()
            self.say(f"{kind} {vm.name}: ok" + (f" ({said})" if said else ""))
            return True
        except Failed as e:
            if vm.running and self.ended_first(vm):
                self.say(f"{kind} {vm.name}: the VM had ended by itself ({str(e).splitlines()[0]})")
                self.unexpected_ends()  # counts it as a failure or as the emulation's fault
                return False
            self.fail(kind, vm, str(e), type(e))
        except (OSError, ValueError, KeyError, subprocess.SubprocessError) as e:
            self.fail(kind, vm, f"{type(e).__name__}: {e}")
        return False

    def ended_first(self, vm):
        """Whether a VM believed running had ended before the step that failed on it."""
        try:
            return self.state_of(vm) not in ("running", "starting", "paused")
        except (Failed, ValueError, KeyError):
            return False

    def choices(self, vm):
        """The steps that vm may take now, with their weights."""
        if not vm.running:
            c = [("start", self.start, 3)]
            if vm.snapshots:
                c.append(("snapshot-delete", self.snapshot_delete, 3 if len(vm.snapshots) >= MAX_SNAPSHOTS else 1))
            return c
        try:
            if not self.ready(vm):
                return []
        except Failed as e:
            self.fail("run", vm, str(e), type(e))
            self.recover(vm)
            return []
        c = [("stop", self.stop, 2), ("kill", self.kill, 1), ("kill -9", self.kill9, 1)]
        if not vm.disposable:
            c.append(("restart", self.restart, 1))
            if len(vm.snapshots) < MAX_SNAPSHOTS:
                c.append(("snapshot", self.snapshot, 4))
        return c

    def recover(self, vm):
        """A VM that failed a step while running: killed, said so, so the soak goes on."""
        self.say(f"{vm.name}: killed to go on after the failure")
        self.shoji("kill", vm.vm_name)
        vm.running = False
        if not vm.disposable:
            self.step("check", vm, lambda: self.check_images(vm, after_kill=True), count=False)

    def warm_up(self):
        """Each VM: start, a live snapshot, stop; the disposable: run, stop."""
        for vm in self.vms:
            self.step("start", vm, lambda vm=vm: self.start(vm))
        for vm in self.vms:
            while vm.running:
                try:
                    if self.ready(vm):
                        break
                except Failed as e:
                    self.fail("run", vm, str(e), type(e))
                    self.recover(vm)
                time.sleep(0.5)
        for vm in self.vms:
            if vm.running and not vm.disposable:
                self.step("snapshot", vm, lambda vm=vm: self.snapshot(vm))
        for vm in self.vms:
            while vm.running and not self.safe_ready(vm):
                time.sleep(0.5)
            if vm.running:
                self.step("stop", vm, lambda vm=vm: self.stop(vm))

    def safe_ready(self, vm):
        try:
            return self.ready(vm)
        except Failed as e:
            self.fail("run", vm, str(e), type(e))
            self.recover(vm)
            return True

    def soak(self, deadline):
        while time.monotonic() < deadline:
            self.unexpected_ends()
            options = [(vm, c) for vm in self.vms for c in self.choices(vm)]
            if not options:
                time.sleep(0.5)
                continue
            vm, (kind, fn, _) = random.choices(options, weights=[c[2] for _, c in options])[0]
            if self.step(kind, vm, lambda: fn(vm)):
                continue
            if vm.running and self.state_of(vm) in ("running", "paused"):
                self.recover(vm)
            else:
                vm.running = False

    def wind_down(self):
        """Every VM stopped gracefully (once its guest runs), as after the warm-up."""
        for vm in self.vms:
            while vm.running and not self.safe_ready(vm):
                time.sleep(0.5)
            if vm.running:
                self.step("stop", vm, lambda vm=vm: self.stop(vm))
        self.unexpected_ends()

    def tear_down(self):
        """Snapshots deleted (folded into each disk), images checked, VMs and template deleted."""
        for vm in self.vms:
            if vm.disposable:
                continue
            while vm.snapshots:
                if not self.step("snapshot-delete", vm, lambda vm=vm: self.snapshot_delete(vm)):
                    break
            self.step("final check", vm, lambda vm=vm: self.check_images(vm, after_kill=False, final=True)
                      + self.check_record(vm), count=False)
            self.step("delete", vm, lambda vm=vm: self.ok("delete", vm.name) and "", count=False)

        def template():
            got = hashlib.sha256(self.sh_img("read", self.template, "0", str(32 * MIB))).hexdigest()
            if got != self.template_hash:
                raise Failed("the template's content changed")
            r = subprocess.run([self.img, "check", self.template], capture_output=True, text=True)
            if r.returncode != 0:
                raise ImageBad(f"shoji-img check {self.template}: {r.stdout}{r.stderr}")
            self.ok("template", "delete", "soakbase")
            return "unchanged, clean, deleted"
        self.step("template", VM("soakbase"), template, count=False)

    def leftovers(self, before_state, before_run):
        """What is left of the VMs: processes, runtime files, cgroups, state files."""
        procs = []
        for pid in filter(str.isdigit, os.listdir("/proc")):
            comm = read(f"/proc/{pid}/comm").strip()
            cmd = read(f"/proc/{pid}/cmdline")
            ppid = re.search(r"^PPid:\s+(\d+)", read(f"/proc/{pid}/status"), re.M)
            if (comm in ("shoji-vmm", "shoji-keeper") and self.work in cmd) or \
               (ppid and int(ppid[1]) == self.daemon.pid):
                procs.append(f"{pid} {comm}")
        run = sorted(listing(self.run) - before_run)
        gone_run = sorted(before_run - listing(self.run))
        # What the daemon keeps for good: its event log, where the jail uid search goes on, and
        # the (empty) directory of templates.
        state = sorted(p for p in listing(self.state) - before_state
                       if p not in ("events.log", "jail-uids.json")
                       and not (p == "templates/" and not os.listdir(os.path.join(self.state, p))))
        cgroups = sorted(cg for vm in self.vms for cg in vm.cgroups if os.path.exists(cg))
        parents = {os.path.dirname(cg) for vm in self.vms for cg in vm.cgroups}
        cgroups += sorted(os.path.join(p, d) for p in parents if os.path.isdir(p)
                          for d in os.listdir(p) if d.startswith("vm-") and os.path.join(p, d) not in cgroups)
        ours = {f"{vm.name}.qcow2" for vm in self.vms if not vm.disposable} | {"state/", "run/", "shojid.log"}
        work = sorted(f for f in os.listdir(self.work) if (f + "/" if os.path.isdir(os.path.join(self.work, f)) else f) not in ours)
        return procs, run + [f"(gone) {p}" for p in gone_run], cgroups, state, work

    def close(self):
        if self.daemon.poll() is None:
            self.daemon.terminate()
            try:
                self.daemon.wait(30)
            except subprocess.TimeoutExpired:
                self.daemon.kill()
                self.daemon.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=10, help="how long the random steps go on (default 10)")
    ap.add_argument("--vms", type=int, default=3, help="VMs besides the disposable one (default 3)")
    ap.add_argument("--memory", type=int, default=128, help="MiB per VM (default 128)")
    ap.add_argument("--seed", type=int, help="the random choices' seed (default: a new one, printed)")
    ap.add_argument("--bindir", default="build/src")
    ap.add_argument("--guest-dir", default="build/guest")
    ap.add_argument("--boot-timeout", type=int, default=300,
                    help="seconds a guest may take to report its next records (default 300)")
    a = ap.parse_args()
    a.bindir = os.path.abspath(a.bindir)
    a.kernel = os.path.abspath(os.path.join(a.guest_dir, "vmlinuz"))
    a.initrd = os.path.abspath(os.path.join(a.guest_dir, "initramfs.cpio.gz"))
    seed = a.seed if a.seed is not None else random.SystemRandom().randrange(1 << 31)
    random.seed(seed)
    where = ("emulated harness machine: absolute times mean nothing"
             if os.environ.get("SHOJI_IN_HARNESS") else "host KVM")
    print(f"soak: {a.vms} VMs of {a.memory} MiB and a disposable one, {a.minutes:g} min, "
          f"seed {seed} (--seed {seed} repeats the choices; {where})", flush=True)
    # /run: a tmpfs (also in the harness machine) where files can be given to the jail users.
    base = "/run" if os.access("/run", os.W_OK) else os.path.abspath("build/tmp")
    os.makedirs(base, exist_ok=True)
    work = tempfile.mkdtemp(prefix="shoji-soak-", dir=base)
    os.chmod(work, 0o755)
    s = Soak(a, work)
    results = []
    try:
        before_state, before_run = listing(s.state), listing(s.run)
        s.setup(a.vms)
        start = time.monotonic()
        s.warm_up()
        fds0, rss0 = proc_status(s.daemon.pid)
        s.say(f"after the warm-up: shojid has {fds0} descriptors open, VmRSS {rss0} KiB")
        s.soak(start + a.minutes * 60)
        soaked = time.monotonic() - start
        s.wind_down()
        fds1, rss1 = proc_status(s.daemon.pid)
        s.say(f"at the end: shojid has {fds1} descriptors open, VmRSS {rss1} KiB")
        s.tear_down()
        procs, run, cgroups, state, work_left = s.leftovers(before_state, before_run)
    except Failed as e:
        print(f"soak: FAILED to set up: {e}")
        print("--- shojid log (end) ---\n" + read(os.path.join(work, "shojid.log"))[-3000:])
        s.close()
        shutil.rmtree(work, ignore_errors=True)
        return 1
    finally:
        s.close()
    rss_limit = max(rss0 * (1 + RSS_TOLERANCE), rss0 + RSS_TOLERANCE_KIB)

    def check(ok, text):
        results.append(ok)
        print(f"{'PASS' if ok else 'FAIL'} {text}")

    total = sum(s.counts.values())
    print(f"soak: {soaked / 60:.1f} min of random steps after set-up, {time.monotonic() - s.t0:.0f} s in all")
    print("cycles: " + ", ".join(f"{k} {s.counts.get(k, 0)}" for k in
                                 ("start", "snapshot", "stop", "kill", "kill -9", "restart", "snapshot-delete")))
    check(fds1 <= fds0 + FD_TOLERANCE,
          f"shojid descriptors: {fds0} after the warm-up, {fds1} at the end (tolerance +{FD_TOLERANCE})")
    check(rss1 <= rss_limit, f"shojid memory: VmRSS {rss0} KiB after the warm-up, {rss1} KiB at the end "
                             f"(tolerance +{RSS_TOLERANCE:.0%} or +{RSS_TOLERANCE_KIB} KiB, whichever is more)")
    check(not procs, "no monitor, keeper or child of shojid left" + (f": {procs}" if procs else ""))
    check(not run, "no socket or file left in RUNTIME" + (f": {run}" if run else ""))
    check(not cgroups, f"no cgroup left ({sum(len(vm.cgroups) for vm in s.vms)} made)" + (f": {cgroups}" if cgroups else ""))
    check(not state and not work_left, "no stray file in STATE or beside the images"
          + (f": {state + work_left}" if state or work_left else ""))
    check(not [f for w, f in s.failures if w is ImageBad], f"images clean (shoji-img check{', qemu-img check' if s.qemu_img else ''}): "
                        f"{s.image_checks} checks; {s.leaky} with leaks after a kill, repaired"
                        + ("" if s.qemu_img else " (no qemu-img here)"))
    check(not [f for w, f in s.failures if w is RecordLost],
          f"records reported flushed on disk: {s.durable} checks after stops, kills and snapshot deletes, "
          f"{s.records} records compared")
    check(not s.failures, f"steps: {total} cycles, {len(s.failures)} failed")
    for _, f in s.failures:
        print(f"  failed: {f.splitlines()[0]}")
    print(f"emulation faults (the emulated machine's, counted apart): {len(s.faults)}")
    for f in s.faults:
        print(f"  {f}")
    if s.failures:
        print("--- shojid log (end) ---\n" + read(os.path.join(work, "shojid.log"))[-3000:])
    shutil.rmtree(work, ignore_errors=True)
    print(f"ratio shojid fds end / start: {fds1 / fds0:.2f}x (lower is better)")
    print(f"ratio shojid RSS end / start: {rss1 / rss0:.2f}x (lower is better)")
    print(f"soak: {total} cycles, {len(s.failures)} failed")
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
