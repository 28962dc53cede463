#!/usr/bin/env python3
"""The toolstack end to end: shojid and the shoji command driving three VMs at once. Daemon
restarts (SIGTERM and kill -9) keep VMs running and the new daemon adopts them; a monitor
killed with -9 is reported crashed within a second and can be started again; 20 concurrent
commands and two concurrent starts leave consistent state; hostile API messages get errors;
callers outside root and the shoji group are refused. Runs against the real shoji-vmm (in the
KVM harness) or against tests/integration/fake_vmm.py (anywhere, no KVM)."""
import argparse
import contextlib
import fcntl
import glob
import hashlib
import json
import os
import pty
import pwd
import random
import re
import shutil
import signal
import socket
import stat
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.request

import vmmtest

MARKER = "shoji-guest: init started"


class Toolstack:
    def __init__(self, a):
        self.bindir, self.vmm, self.guest_dir = a.bindir, a.vmm, a.guest_dir
        self.real = not a.vmm.endswith(".py")
        self.boot_timeout = 240 if self.real else 20
        self.dir = tempfile.mkdtemp(prefix="shoji-ts-", dir=scratch_base(a.bindir))
        os.chmod(self.dir, 0o755)
        self.state, self.run = os.path.join(self.dir, "state"), os.path.join(self.dir, "run")
        self.env = dict(os.environ, SHOJI_STATE_DIR=self.state, SHOJI_RUNTIME_DIR=self.run,
                        SHOJI_TEST_JOB_HOLD=os.path.join(self.dir, "job-hold"))  # test builds: see imagejob.c
        if not self.real:  # the stand-in run's own tree of USB devices (usbscan.c); the harness machine has real ones
            self.env["SHOJI_TEST_USB_SYSFS"] = os.path.join(self.dir, "usb-devices")
        self.daemon = None
        self.daemon_args = []
        self.seen_serial = {}  # each VM's console as serial() last read it
        self.daemon_log = open(os.path.join(self.dir, "shojid.log"), "ab")
        if self.real and os.geteuid() == 0:
            kvm_for_a_group()



    def start_daemon(self):
        self.daemon = subprocess.Popen([os.path.join(self.bindir, "shojid"), "--vmm", self.vmm, "--slirp",
                                        os.path.join(self.bindir, "shoji-slirp"), *self.daemon_args],
                                       env=self.env, stdin=subprocess.DEVNULL,
                                       stdout=self.daemon_log, stderr=self.daemon_log)
        wait_until(lambda: self.shoji("list")[0] == 0, 20, "shojid answers")

    def stop_daemon(self, sig=signal.SIGTERM):
        self.daemon.send_signal(sig)
        self.daemon.wait(20)
        self.daemon = None

    def shoji(self, *args, input=None, env=None, prefix=(), timeout=300):
        p = subprocess.run(list(prefix) + [os.path.join(self.bindir, "shoji"), *args],
                           env=dict(self.env, **(env or {})), input=input, capture_output=True,
                           text=True, timeout=timeout)
        return p.returncode, p.stdout, p.stderr

    def ok(self, *args, **kw):
        rc, out, err = self.shoji(*args, **kw)
        assert rc == 0, f"shoji {' '.join(args)}: exit {rc}: {err.strip()}"
        return out

    def js(self, *args):
        return json.loads(self.ok("--json", *args))

    def status(self, rc_expected, *args, words=()):
        rc, out, err = self.shoji(*args)
        assert rc == rc_expected, f"shoji {' '.join(args)}: exit {rc}, expected {rc_expected}: {err}"
        for w in words:
            assert w in err, f"shoji {' '.join(args)}: {w!r} not in {err!r}"
        return err

    def create(self, name, action="shell", memory="128M"):
        self.ok("create", name, "--kernel", os.path.join(self.guest_dir, "vmlinuz"),
                "--initrd", os.path.join(self.guest_dir, "initramfs.cpio.gz"),
                "--memory", memory, "--cmdline",
                f"console=ttyS0 quiet shoji.action={action} shoji.name={name}")

    def vm(self, name):
        return self.js("info", name)["vm"]

    def serial(self, name):
        rc, out, err = self.shoji("--json", "logs", name, "--bytes", "65536")
        if rc:  # gone (a disposable VM's logs go with it): say what the daemon and the guest last said
            raise AssertionError(f"shoji logs {name}: exit {rc}: {err.strip()}\n--- shojid on {name}:\n"
                                 + "\n".join(self.daemon_lines(name)[-12:]) + f"\n--- {name}'s serial as last read (end):\n"
                                 + self.seen_serial.get(name, "(never read)")[-1500:])
        text = json.loads(out)["serial"]
        self.seen_serial[name] = text
        return text

    def daemon_lines(self, name):
        with open(os.path.join(self.dir, "shojid.log"), "rb") as f:
            return [line for line in f.read().decode(errors="replace").splitlines() if f" {name} " in line]

    def wait_marker(self, name):
        try:
            wait_until(lambda: MARKER in self.serial(name), self.boot_timeout, f"{name}: init marker")
        except AssertionError as e:  # say what the guest and its monitor got to
            logs = self.js("logs", name, "--bytes", "3000")
            raise AssertionError(f"{e}\n--- {name}: {self.vm(name)}\n--- serial (end):\n"
                                 f"{logs.get('serial', '')}\n--- monitor log (end):\n"
                                 f"{logs.get('monitor', '')}") from None

    def monitors(self, name):
        """pids of processes whose command line has this VM's control socket."""
        sock = os.path.join(self.run, name, "control.sock")
        found = []
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    args = f.read().split(b"\0")
            except OSError:
                continue
            if sock.encode() in args and b"--control-socket" in args:
                found.append(int(pid))
        return found

    def cleanup(self):
        for name in os.listdir(os.path.join(self.state, "vms")) if os.path.isdir(self.state) else []:
            if name.endswith(".ini"):
                for pid in self.monitors(name[:-4]):
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except OSError:
                        pass
        if self.daemon:
            self.daemon.kill()
            self.daemon.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def kvm_for_a_group():
    """Jailed monitors open /dev/kvm as the jail user with /dev/kvm's group (shojid picks it);
    a distribution's udev makes it root:kvm 0660, the harness machine's devtmpfs root 0600."""
    st = os.stat("/dev/kvm")
    if st.st_gid == 0 or (st.st_mode & 0o060) != 0o060:
        os.chown("/dev/kvm", -1, 4243)
        os.chmod("/dev/kvm", 0o660)
    if os.path.exists("/dev/vhost-vsock"):  # as udev's default rule leaves it
        os.chmod("/dev/vhost-vsock", 0o666)


def scratch_base(bindir):
    """Where the daemon's state and sockets go: /run (a tmpfs, where the jail user can be given
    the VM's files, and socket paths stay short) when it is writable, else the build tree."""
    if os.access("/run", os.W_OK):
        return "/run"
    base = os.path.join(os.path.dirname(os.path.abspath(bindir)), "tmp")
    os.makedirs(base, exist_ok=True)
    return base


def wait_until(pred, timeout, what):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out ({timeout}s) waiting for: {what}")


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def events(ts, name):
    return [(e["event"], e["detail"]) for e in ts.js("events", name)["events"]]


VMS = ("alpha", "beta", "gamma")


def test_definitions_and_errors(ts):
    for n in VMS:
        ts.create(n)
    ts.status(7, "create", "alpha", "--kernel", "/k", words=["already exists"])
    ts.status(3, "info", "nosuch", words=["there is no VM 'nosuch'"])
    ts.status(3, "start", "nosuch")
    ts.status(2, "info", "../x", words=["not a VM name"])
    ts.status(2, "create", "bad", "--kernel", "/k", "--memory", "12M", words=["at least 32M"])
    ts.status(2, "create", "bad", "--memory", "1G", words=["--kernel PATH is needed"])
    ts.status(2, "frobnicate", words=["unknown command"])
    ts.status(2, "set", "alpha", "memory=huge", words=["not a size"])
    ts.status(4, "pause", "alpha", words=["only a running VM"])
    bad = os.path.join(ts.dir, "bad.ini")
    with open(bad, "w") as f:
        f.write("[vm]\nname = bad\nkernel = /k\nmemroy = 1G\n")
    ts.status(2, "create", "--from", bad, words=[f"{bad}:4:", "unknown key 'memroy'"])
    assert [v["name"] for v in ts.js("list")["vms"]] == list(VMS)
    ts.ok("set", "alpha", "memory=192M", "label=blue")
    v = ts.vm("alpha")
    assert v["memory_mib"] == 192 and v["label"] == "blue" and v["state"] == "stopped", v
    # edit: an editor that breaks the file is refused with the line; a good edit is saved.
    rc, out, err = ts.shoji("edit", "alpha", env={"EDITOR": "sed -i s/^cpus.*/cpus=zero/"})
    assert rc == 2 and "cpus 'zero'" in err and ".ini:" in err, (rc, err)
    ts.ok("edit", "alpha", env={"EDITOR": "sed -i s/^cpus.*/cpus=2/"})
    assert ts.vm("alpha")["cpus"] == 2
    ts.ok("set", "alpha", "cpus=1", "memory=128M")
    assert "usage: shoji [--json]" in ts.ok("--help")
    assert "usage: shoji stop NAME [--timeout S]" in ts.ok("stop", "--help")


def test_three_vms_run_at_once(ts):
    for n in VMS:
        out = ts.ok("start", n)
        assert f"started '{n}'" in out, out
    for n in VMS:
        ts.wait_marker(n)
    listed = {v["name"]: v for v in ts.js("list")["vms"]}
    for n in VMS:
        assert listed[n]["state"] == "running" and alive(listed[n]["pid"]), listed[n]
        assert ts.monitors(n) == [listed[n]["pid"]]
    ts.status(4, "start", "alpha", words=["already running"])
    ts.status(4, "delete", "alpha", words=["stop it first"])
    ts.ok("pause", "beta")
    assert ts.vm("beta")["state"] == "paused"
    ts.ok("resume", "beta")
    assert ts.vm("beta")["state"] == "running"


def restart_keeps_vms(ts, sig):
    before = {v["name"]: v["pid"] for v in ts.js("list")["vms"]}
    ts.stop_daemon(sig)
    rc, _, err = ts.shoji("list")
    assert rc == 6 and "shojid is not running" in err, (rc, err)
    for n in VMS:
        assert alive(before[n]), f"{n}'s monitor died with shojid"
    if sig == signal.SIGKILL:
        # As if the daemon had died before writing gamma's state: the keeper's lock file knows.
        with open(os.path.join(ts.state, "vms", "gamma", "state.json"), "w") as f:
            f.write('{"state":"stopped"}')
    ts.start_daemon()
    after = {v["name"]: (v["state"], v.get("pid")) for v in ts.js("list")["vms"]}
    for n in VMS:
        assert after[n] == ("running", before[n]), (n, after[n], before[n])
        assert ("adopted", f"monitor pid {before[n]}") in events(ts, n)
        if getattr(ts, "cgroups", None):  # the new daemon found each VM's cgroup again
            assert ts.vm(n).get("cgroup") == ts.cgroups[n], (n, ts.vm(n))


def test_daemon_restart_keeps_vms(ts):
    restart_keeps_vms(ts, signal.SIGTERM)


def test_daemon_kill9_keeps_vms(ts):
    restart_keeps_vms(ts, signal.SIGKILL)
    ts.ok("pause", "gamma")  # the adopted monitor is driven through its control socket
    ts.ok("resume", "gamma")


def test_monitor_kill9_reported_within_a_second(ts):
    pid = ts.vm("beta")["pid"]
    t0 = time.time()
    os.kill(pid, signal.SIGKILL)
    # The daemon's own time stamp on the event measures it (a shoji call in the emulated
    # machine alone can take longer than a second).
    wait_until(lambda: ts.vm("beta")["state"] == "stopped", 30, "beta reported stopped")
    ev = ts.js("events", "beta")["events"][-1]
    took = ev["time"] - t0
    assert ev["event"] == "crashed" and "signal 9 (SIGKILL)" in ev["detail"], ev
    assert took < 1.0, f"the crash was recorded {took:.3f} s after the kill"
    assert "SIGKILL" in ts.vm("beta")["last_exit"]
    print(f"   crash recorded {took * 1000:.0f} ms after the kill")
    ts.ok("start", "beta")
    ts.wait_marker("beta")
    assert ts.vm("beta")["state"] == "running"


def test_sigsys_reported(ts):
    # A system call outside the monitor's allow-list: a build with test hooks (and the
    # stand-in) makes one on request; otherwise SIGSYS is sent by hand, which looks the same
    # from outside (but does not reach a jailed monitor, the first process of its PID namespace).
    pid = ts.vm("gamma")["pid"]
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(os.path.join(ts.run, "gamma", "control.sock"))
    s.sendall(b'{"cmd":"test-forbidden-syscall"}\n')
    try:
        answer = s.recv(4096)
        hooked = not answer or json.loads(answer).get("ok") is not False
    except OSError:
        hooked = True  # killed before it could answer
    s.close()
    if not hooked:
        os.kill(pid, signal.SIGSYS)
    print(f"   SIGSYS {'from the seccomp filter' if hooked else 'sent by hand'}")
    wait_until(lambda: ts.vm("gamma")["state"] == "stopped", 5, "gamma reported stopped")
    ev = events(ts, "gamma")[-1]
    assert ev[0] == "crashed" and "SIGSYS" in ev[1] and "seccomp" in ev[1], ev
    ts.ok("start", "gamma")


def test_keeper_kill9(ts):
    # The keeper is gone without a record: its monitor is ended too, the VM reported crashed.
    with open(os.path.join(ts.state, "vms", "gamma", "lock")) as f:
        keeper, monitor = map(int, f.read().split())
    assert ts.vm("gamma")["pid"] == monitor
    os.kill(keeper, signal.SIGKILL)
    wait_until(lambda: ts.vm("gamma")["state"] == "stopped", 30, "gamma reported stopped")
    ev = events(ts, "gamma")[-1]
    assert ev[0] == "crashed" and "keeper" in ev[1], ev
    wait_until(lambda: not alive(monitor), 10, "gamma's monitor ended")
    ts.ok("start", "gamma")


def test_twenty_concurrent_commands(ts):
    cmds = []
    for i in range(20):
        cmds.append([["list"], ["info", VMS[i % 3]], ["set", "alpha", f"label=#0000{i:02x}"],
                     ["logs", "beta"], ["events", "gamma"]][i % 5])
    results = [None] * len(cmds)

    def run(i):
        results[i] = ts.shoji("--json", *cmds[i])

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(cmds))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for c, (rc, out, err) in zip(cmds, results):
        assert rc == 0, f"{c}: exit {rc}: {err}"
        json.loads(out)
    with open(os.path.join(ts.state, "vms", "alpha.ini")) as f:
        text = f.read()
    assert text.count("label = #0000") == 1, text
    for n in VMS:
        assert ts.vm(n)["state"] == "running"


MIB = 1 << 20


def sanitized(bindir):
    """Whether this build has sanitizers (its monitors get a larger memory budget)."""
    try:
        with open(os.path.join(bindir, "..", "meson-info", "intro-buildoptions.json")) as f:
            opts = {o["name"]: o["value"] for o in json.load(f)}
        return opts.get("b_sanitize", "none") not in ("none", [])
    except (OSError, ValueError, KeyError):
        return False


def cgroup2_here():
    with open("/proc/self/mounts") as f:
        return any(line.split()[1:3] == ["/sys/fs/cgroup", "cgroup2"] for line in f)


def test_cgroups(ts):
    # Each running VM's keeper and monitor are in its own cgroup, with memory.max its RAM plus
    # the stated overhead (256 MiB, 48 MiB a disk; a sanitizer build 1024 MiB and half its RAM more) and
    # pids.max 64 + vCPUs + 2 per NIC (a TAP NIC: 1 + its queue pairs, each a vhost-net worker) and
    # 2 + 4 (its workers) per disk.
    ts.cgroups = {}
    if os.geteuid() != 0 or not cgroup2_here():
        raise Skip("no cgroup2 at /sys/fs/cgroup, or not root")
    with open(os.path.join(ts.dir, "shojid.log"), "rb") as f:
        said = [line for line in f.read().decode(errors="replace").splitlines() if "without a cgroup" in line]
    if said:
        raise Skip(f"shojid may not make cgroups here: {said[-1]}")
    for n in VMS:
        v = ts.vm(n)
        cg = v["cgroup"]
        assert os.path.basename(cg) == f"vm-{n}", v
        with open(os.path.join(ts.state, "vms", n, "lock")) as f:
            keeper, monitor = map(int, f.read().split())
        with open(os.path.join(cg, "cgroup.procs")) as f:
            procs = {int(x) for x in f.read().split()}
        assert {keeper, monitor} <= procs, (n, keeper, monitor, procs)
        mem = v["memory_mib"] + 256 + 48 * v["disks"] + ((1024 + v["memory_mib"] // 2) if sanitized(ts.bindir) else 0)
        with open(os.path.join(cg, "memory.max")) as f:
            assert int(f.read()) == mem * MIB, (n, mem)
        with open(os.path.join(cg, "pids.max")) as f:
            assert int(f.read()) == 64 + v["cpus"] + 6 * v["disks"] + 2 * v["nics"], n
        assert v["cgroup_memory_max"] == str(mem * MIB), v
        ts.cgroups[n] = cg
    print(f"   cgroups under {os.path.dirname(cg)}")


def as_jail(uid, gid, *cmd):
    """Runs cmd as a monitor jailed as uid/gid would: no supplementary groups."""
    return subprocess.run(["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", *cmd],
                          capture_output=True, text=True).returncode


def jail_gid(ts, name):
    args = open(f"/proc/{ts.vm(name)['pid']}/cmdline", "rb").read().decode().split("\0")
    return int(args[args.index("--jail-gid") + 1]), int(args[args.index("--jail-uid") + 1])


def test_monitor_in_its_own_pid_namespace(ts):
    # A jailed monitor is the first process of a PID namespace of its own: it sees and can
    # signal no other process; shojid still knows it by its pid here.
    if os.geteuid() != 0:
        raise Skip("needs root (no jail otherwise)")
    mine = os.readlink("/proc/self/ns/pid")
    seen = set()
    for n in VMS:
        pid = ts.vm(n)["pid"]
        ns = os.readlink(f"/proc/{pid}/ns/pid")
        assert ns != mine, f"{n}'s monitor shares the host's PID namespace"
        with open(f"/proc/{pid}/status") as f:
            nspid = re.search(r"^NSpid:\s*(.*)$", f.read(), re.M)[1].split()
        assert nspid[-1] == "1", f"{n}'s monitor is pid {nspid[-1]} in its namespace, not 1"
        seen.add(ns)
    assert len(seen) == len(VMS), "two monitors share a PID namespace"


def test_jail_uid_per_vm(ts):
    # Each VM has a jail uid of its own that no passwd entry has; its monitor runs as it; the
    # files shojid made for it are its uid's alone; another VM's uid cannot reach them.
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        raise Skip("needs root and setpriv")
    uids = {n: ts.vm(n)["jail_uid"] for n in VMS}
    assert len(set(uids.values())) == len(VMS), uids
    for n, u in uids.items():
        try:
            raise AssertionError(f"{n}'s jail uid {u} is {pwd.getpwuid(u).pw_name}'s")
        except KeyError:
            pass
        with open(os.path.join(ts.state, "vms", n, "state.json")) as f:
            assert json.load(f)["jail_uid"] == u
        gid, on_cmdline = jail_gid(ts, n)
        assert on_cmdline == u, (n, on_cmdline, u)
        for p, mode in ((os.path.join(ts.run, n), 0o700), (os.path.join(ts.state, "vms", n, "serial.log"), 0o600)):
            st = os.stat(p)
            assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (u, mode), (p, st.st_uid, oct(st.st_mode))
        st = os.stat(os.path.join(ts.state, "vms", n))
        assert st.st_uid == 0 and not st.st_mode & 0o022, oct(st.st_mode)
    a, b = uids["alpha"], uids["beta"]
    assert as_jail(a, gid, "ls", os.path.join(ts.run, "alpha")) == 0  # its own: yes
    assert as_jail(a, gid, "ls", os.path.join(ts.run, "beta")) != 0, "alpha's uid entered beta's runtime dir"
    assert as_jail(b, gid, "ls", os.path.join(ts.run, "alpha")) != 0, "beta's uid entered alpha's runtime dir"
    # The logs themselves, reached through links in a directory anyone may enter (their own
    # directory is root's 0750, which alone would stop any uid).
    probe = os.path.join(ts.dir, "probe")
    os.mkdir(probe, 0o755)
    try:
        for n in ("alpha", "beta"):
            os.link(os.path.join(ts.state, "vms", n, "serial.log"), os.path.join(probe, n))
        assert as_jail(a, gid, "cat", os.path.join(probe, "alpha")) == 0
        assert as_jail(a, gid, "cat", os.path.join(probe, "beta")) != 0, "alpha's uid read beta's serial log"
        assert as_jail(a, gid, "sh", "-c", f"echo x >>{probe}/beta") != 0, "alpha's uid wrote beta's log"
    finally:
        shutil.rmtree(probe)
    ts.jail_uids = uids


def test_two_concurrent_starts(ts):
    ts.ok("stop", "alpha", "--timeout", "3")
    assert ts.vm("alpha")["state"] == "stopped"
    out = [None, None]

    def run(i):
        out[i] = ts.shoji("start", "alpha")

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    rcs = sorted(r[0] for r in out)
    assert rcs == [0, 4], out
    assert any("already" in r[2] for r in out), out
    ts.wait_marker("alpha")
    assert len(ts.monitors("alpha")) == 1, ts.monitors("alpha")


def raw(ts, payload, read=True):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    # With a time-out set, a Unix connect to a full backlog fails at once (EAGAIN) instead of
    # waiting: after a flood of connections, give the daemon time to drain them.
    end = time.monotonic() + 10
    while True:
        try:
            s.connect(os.path.join(ts.run, "shojid.sock"))
            break
        except BlockingIOError:
            if time.monotonic() > end:
                raise
            time.sleep(0.05)
    try:
        s.sendall(payload)
    except BrokenPipeError:
        pass  # refused early: the answer is still there to read
    data = b""
    if read:
        while not data.endswith(b"\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    s.close()
    return data


def test_hostile_api_messages(ts):
    cases = [b"garbage\n", b"{\n", b"[]\n", b"{\"cmd\":\"start\",\"name\":\"../../etc\"}\n",
             b"{\"cmd\":\"start\",\"name\":{\"x\":1}}\n", b"{\"cmd\":\"list\",\"x\":1}\n",
             b"\x00\xff\xfe\n", b"[" * 5000 + b"\n", b"{\"cmd\":\"set\",\"name\":\"alpha\",\"assign\":[\"memory=2T\"]}\n",
             b"{\"cmd\":\"create\",\"name\":\"evil\",\"definition\":\"[vm]\\nname=evil\\nkernel=/k\\n[x]\\n\"}\n",
             b"{\"cmd\":\"stop\",\"name\":\"alpha\",\"timeout\":-5}\n"]
    for c in cases:
        rep = json.loads(raw(ts, c))
        assert rep["ok"] is False and rep["error"], (c[:40], rep)
    # A line over the limit is refused; a connection closed mid-line or mid-request is fine.
    rep = json.loads(raw(ts, b"x" * (300 * 1024)))
    assert rep["ok"] is False and "too long" in rep["error"], rep
    raw(ts, b"{\"cmd\":\"li", read=False)
    many = [socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) for _ in range(80)]
    for s in many:
        try:
            s.connect(os.path.join(ts.run, "shojid.sock"))
        except OSError:
            pass
    for s in many:
        s.close()
    # Two requests on one line-stream are answered in order.
    two = raw(ts, b"{\"cmd\":\"ping\"}\n{\"cmd\":\"list\"}\n", read=False)
    assert two == b""
    rep = json.loads(raw(ts, b"{\"cmd\":\"ping\"}\n"))
    assert rep["ok"] is True and rep["pid"] == ts.daemon.pid
    assert "evil" not in [v["name"] for v in ts.js("list")["vms"]]
    assert ts.vm("alpha")["memory_mib"] == 128


class Skip(Exception):
    """Raised by a test that cannot run here: counted as skipped, with the reason."""


def test_permission_denied(ts):
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        raise Skip("needs root and setpriv")
    rc, out, err = ts.shoji("list", prefix=["setpriv", "--reuid", "65534", "--regid", "65534",
                                            "--clear-groups"])
    assert rc == 5 and "permission denied" in err, (rc, out, err)
    rc, out, _ = ts.shoji("--json", "start", "alpha", prefix=["setpriv", "--reuid", "65534",
                                                               "--regid", "65534", "--clear-groups"])
    assert rc == 5 and json.loads(out)["code"] == "permission", out


def console_on_a_terminal(ts, name, stdout=subprocess.PIPE):
    """shoji console NAME with a pseudo-terminal as its input, as a user runs it."""
    master, slave = pty.openpty()
    p = subprocess.Popen([os.path.join(ts.bindir, "shoji"), "console", name], env=ts.env,
                         stdin=slave, stdout=stdout, stderr=subprocess.PIPE)
    os.close(slave)
    return p, master


def detach(p, master):
    """Types Ctrl-]: the console command must end with status 0."""
    try:
        os.write(master, b"\x1d")
        rc = p.wait(20)
        err = p.stderr.read().decode()
        assert rc == 0 and "Detached from" in err, (rc, err)
    finally:
        p.kill()
        p.wait()
        os.close(master)


def test_console(ts):
    # The shell answers through the console; a second attach is refused; Ctrl-] detaches.
    p, master = console_on_a_terminal(ts, "alpha")
    os.set_blocking(p.stdout.fileno(), False)
    got = b""
    end = time.monotonic() + (60 if ts.real else 10)
    sent = 0
    # The real guest's shell computes 42; the fake guest only echoes.
    want = b"console-42" if ts.real else b"echo console-$((6*7))"
    while want not in got and time.monotonic() < end and p.poll() is None:
        if sent < time.monotonic() - 2:  # the shell may not be reading yet: say it again
            os.write(master, b"echo console-$((6*7))\r")
            sent = time.monotonic()
        time.sleep(0.1)
        got += p.stdout.read() or b""
    if want not in got:
        p.kill()
        rc = p.wait()
        os.close(master)
        raise AssertionError(f"no answer on the console (exit {rc}): {p.stderr.read()!r} {got[-500:]!r}")
    try:
        assert want.decode() in ts.serial("alpha")
        ts.status(4, "console", "alpha", words=["in use by another client"])
    finally:
        detach(p, master)
    assert ts.vm("alpha")["state"] == "running"
    p, master = console_on_a_terminal(ts, "alpha", stdout=subprocess.DEVNULL)  # free again
    time.sleep(1)
    detach(p, master)


def test_stop_kill_delete(ts):
    out = ts.ok("stop", "beta", "--timeout", "5" if ts.real else "2")
    assert "stopped 'beta'" in out
    ev = events(ts, "beta")[-1]
    assert ev[0] == "stopped", ev
    ts.ok("kill", "gamma")
    ev = events(ts, "gamma")[-1]
    assert ev[0] == "stopped" and "killed on request" in ev[1], ev
    ts.status(4, "stop", "gamma", words=["not running"])
    ts.ok("delete", "gamma")
    ts.status(3, "info", "gamma")
    assert not os.path.exists(os.path.join(ts.state, "vms", "gamma"))
    ts.ok("stop", "alpha", "--timeout", "0")
    assert all(v["state"] == "stopped" for v in ts.js("list")["vms"])
    for n, cg in getattr(ts, "cgroups", {}).items():  # each VM's cgroup went with it
        wait_until(lambda: not os.path.exists(cg), 5, f"{cg} removed")
    if getattr(ts, "jail_uids", None):  # gamma's uid is free: no VM has it
        assert ts.jail_uids["gamma"] not in [v.get("jail_uid") for v in ts.js("list")["vms"]]


def test_failed_start_is_reported(ts):
    # Not a bzImage (the real monitor refuses it); fake.exit=1 makes the fake one refuse too.
    ts.ok("create", "broken", "--kernel", os.path.join(ts.guest_dir, "initramfs.cpio.gz"),
          "--cmdline", "fake.exit=1")
    rc, _, err = ts.shoji("start", "broken")
    assert rc == 1 and "did not start" in err and "exit status 1" in err, (rc, err)
    assert ts.vm("broken")["state"] == "stopped"
    ts.ok("delete", "broken")
    if os.geteuid() == 0:  # jailed monitors: a disk the jail user cannot write is refused early
        disk = os.path.join(ts.dir, "private.img")
        with open(disk, "wb") as f:
            f.truncate(1 << 20)
        os.chmod(disk, 0o600)
        ts.create("private")
        ts.ok("set", "private", f"disk.root.path={disk}")
        rc, _, err = ts.shoji("start", "private")
        uid = ts.vm("private")["jail_uid"]
        assert rc == 1 and f"not writable by jail uid {uid}" in err and f"chown {uid} " in err, (rc, err)
        ts.ok("delete", "private")


def test_autostart(ts):
    # Autostart VMs start when shojid first runs after the host boots (the runtime directory is
    # a tmpfs, so its marker is gone then); a daemon restart does not start them again.
    assert ts.vm("alpha")["state"] == "stopped"
    ts.ok("set", "alpha", "autostart=yes")
    ts.stop_daemon()
    os.unlink(os.path.join(ts.run, "autostart.done"))
    ts.start_daemon()
    wait_until(lambda: ts.vm("alpha")["state"] == "running", 30, "alpha autostarted")
    assert any(e == "started" for e, _ in events(ts, "alpha"))
    ts.wait_marker("alpha")
    ts.ok("kill", "alpha")
    ts.stop_daemon()
    ts.start_daemon()  # same host boot: no second autostart
    time.sleep(1)
    assert ts.vm("alpha")["state"] == "stopped"
    ts.ok("set", "alpha", "autostart=no")


def free_uid(u):
    """No passwd entry and no /etc/subuid range has u."""
    try:
        pwd.getpwuid(u)
        return False
    except KeyError:
        pass
    try:
        with open("/etc/subuid") as f:
            for line in f:
                parts = line.strip().split(":")
                if len(parts) == 3 and int(parts[1]) <= u < int(parts[1]) + int(parts[2]):
                    return False
    except (OSError, ValueError):
        pass
    return True


def restart_with(ts, args):
    ts.stop_daemon()
    ts.daemon_args = args
    ts.start_daemon()


def test_jail_uid_range_and_migration(ts):
    # A VM from before (no jail uid recorded, its files the old shared user's) gets a uid of its
    # own at the daemon's start, and its files with it. Then a two-uid range whose first uid is a
    # passwd entry's: only the second is ever given, a third VM is refused (and not created),
    # and a deleted VM's uid is given again.
    if os.geteuid() != 0:
        raise Skip("needs root (jailed monitors)")
    state = os.path.join(ts.state, "vms", "alpha", "state.json")
    with open(state) as f:
        old = json.load(f)
    del old["jail_uid"]
    ts.stop_daemon()
    with open(state, "w") as f:
        json.dump(old, f)
    os.chown(os.path.join(ts.state, "vms", "alpha", "serial.log"), 65534, 65534)
    ts.start_daemon()
    u = ts.vm("alpha")["jail_uid"]
    assert u not in [v.get("jail_uid") for v in ts.js("list")["vms"] if v["name"] != "alpha"]
    assert os.stat(os.path.join(ts.state, "vms", "alpha", "serial.log")).st_uid == u
    taken = sorted({p.pw_uid for p in pwd.getpwall()})
    p = next((x for x in taken if 1000 <= x < 65000 and free_uid(x + 1)), None)
    if p is None:
        raise Skip("no passwd uid from 1000 with a free uid above it")
    restart_with(ts, ["--jail-uids", f"{p}-{p + 1}"])
    try:
        ts.create("r1")
        assert ts.vm("r1")["jail_uid"] == p + 1, (p, ts.vm("r1"))
        ts.status(1, "create", "r2", "--kernel", "/k", words=["no free jail uid", "--jail-uids"])
        assert "r2" not in [v["name"] for v in ts.js("list")["vms"]]
        assert not os.path.exists(os.path.join(ts.state, "vms", "r2.ini"))
        ts.ok("delete", "r1")
        ts.create("r2")
        assert ts.vm("r2")["jail_uid"] == p + 1
        ts.ok("delete", "r2")
    finally:
        restart_with(ts, [])


def test_devices_through_the_toolstack(ts):
    # A definition with a qcow2 root, a read-only raw disk, a user-mode NIC and a vsock CID
    # reaches the guest: it writes its pattern to the qcow2 disk and powers off.
    img = os.path.join(ts.bindir, "shoji-img")
    root, ro = os.path.join(ts.dir, "delta.qcow2"), os.path.join(ts.dir, "ro.img")
    subprocess.run([img, "create", "-f", "qcow2", root, "64M"], check=True, capture_output=True)
    with open(ro, "wb") as f:
        f.write(b"read-only-disk!!".ljust(1 << 20, b"\0"))
    ts.ok("create", "delta", "--kernel", os.path.join(ts.guest_dir, "vmlinuz"),
          "--initrd", os.path.join(ts.guest_dir, "initramfs.cpio.gz"), "--memory", "128M",
          "--cmdline", "console=ttyS0 quiet shoji.action=disktest",
          "--disk", f"{root},format=qcow2,serial=DELTA-ROOT", "--disk", f"{ro},ro",
          "--net", "slirp", *(["--vsock", "41"] if ts.real else []))
    if os.geteuid() == 0:  # the VM's jail uid must be able to write its disk
        os.chown(root, ts.vm("delta")["jail_uid"], -1)
    ts.ok("start", "delta")
    if not ts.real:
        ts.ok("kill", "delta")
        ts.ok("delete", "delta")
        return
    wait_until(lambda: ts.vm("delta")["state"] == "stopped", ts.boot_timeout, "delta powers off")
    log = ts.serial("delta")
    assert "disk write=ok vdb_head=read-only-disk!! vdb_write=refused vda_serial=DELTA-ROOT" in log, log[-2000:]
    pci = log.split("pci=")[1].split()[0]
    for dev, what in (("0x1af4:0x1042", "virtio-blk"), ("0x1af4:0x1041", "virtio-net"),
                      ("0x1af4:0x1053", "virtio-vsock")):
        assert dev in pci, f"no {what} in the guest's PCI list: {pci}"
    ev = events(ts, "delta")[-1]
    assert ev[0] == "stopped", ev
    data = subprocess.run([img, "read", root, "0", str(1 << 20)], check=True,
                          capture_output=True).stdout
    assert data == (b"shoji-disk-pattern\n" * 60000)[:1 << 20], data[:64]
    rc = subprocess.run([img, "check", root], capture_output=True, text=True)
    assert rc.returncode == 0, rc.stdout + rc.stderr
    ts.ok("delete", "delta")


OVMF_CODE, OVMF_VARS = "/usr/share/OVMF/OVMF_CODE_4M.fd", "/usr/share/OVMF/OVMF_VARS_4M.fd"


def control(ts, name, req):
    """One request to VM name's monitor on its control socket (as shojid makes them)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(10)
        s.connect(os.path.join(ts.run, name, "control.sock"))
        s.sendall((json.dumps(req) + "\n").encode())
        return json.loads(s.makefile().readline())


def monitor_args(ts, name):
    """The running monitor's arguments, also cut at commas (the real one may cut them in place)."""
    with open(f"/proc/{ts.vm(name)['pid']}/cmdline", "rb") as f:
        args = f.read().decode().split("\0")
    return args, [p for a in args for p in a.split(",")]


def check_vars_file(ts, name, path):
    """VM name's variable store: a copy of the template, 0600, the VM's jail uid's (the daemon's
    own uid when monitors are not jailed)."""
    st = os.lstat(path)
    owner = ts.vm(name)["jail_uid"] if os.geteuid() == 0 else os.geteuid()
    assert stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600 and st.st_uid == owner, \
        (path, oct(st.st_mode), st.st_uid, owner)
    with open(path, "rb") as a, open(OVMF_VARS, "rb") as b:
        return a.read() == b.read()


def need_uefi(ts, name):
    """Skips where the stand-in monitor or Debian's OVMF is missing; without OVMF, first shows
    that firmware = uefi fails at start naming the package."""
    if ts.real:
        raise Skip("looks at what the stand-in monitor was given and writes through it")
    if not (os.path.exists(OVMF_CODE) and os.path.exists(OVMF_VARS)):
        ts.ok("create", name, "--firmware", "uefi")
        ts.status(1, "start", name, words=["OVMF", "apt install ovmf"])
        ts.ok("delete", name)
        raise Skip("Debian's OVMF is not installed (apt install ovmf): only the error was checked")


def test_firmware_vm(ts):
    # firmware = uefi, boot = disk: the monitor gets --firmware OVMF_CODE,vars=STORE and no
    # kernel; the VM's own store is a fresh copy of OVMF_VARS, kept across a stop and a start,
    # removed with the VM.
    need_uefi(ts, "fw")
    disk = os.path.join(ts.dir, "fw-root.img")
    with open(disk, "wb") as f:
        f.truncate(1 << 20)
    ts.ok("create", "fw", "--firmware", "uefi", "--disk", disk, "--memory", "128M")
    if os.geteuid() == 0:
        os.chown(disk, ts.vm("fw")["jail_uid"], -1)
    v = ts.vm("fw")
    assert v["firmware"] == "uefi" and v["boot"] == "disk", v
    out = ts.ok("info", "fw")
    assert re.search(r"^firmware +uefi$", out, re.M) and re.search(r"^boot +disk$", out, re.M), out
    with open(os.path.join(ts.state, "vms", "fw.ini")) as f:
        text = f.read()
    assert "firmware = uefi\nboot = disk\n" in text and "kernel" not in text and "cmdline" not in text, text
    store = os.path.join(ts.state, "vms", "fw", "uefi-vars.fd")
    assert not os.path.exists(store)  # made at the first start
    ts.ok("start", "fw")
    args, _ = monitor_args(ts, "fw")
    assert args[args.index("--firmware") + 1] == f"{OVMF_CODE},vars={store}", args
    assert not {"--kernel", "--initrd", "--cmdline"} & set(args), args
    assert check_vars_file(ts, "fw", store), "the store is not a copy of the template"
    assert ts.vm("fw")["firmware_vars"] == store
    # The guest changes a variable: the store keeps it across a stop and a start.
    assert control(ts, "fw", {"cmd": "fake-write-vars", "data": "shoji-marker"})["ok"]
    ts.ok("stop", "fw", "--timeout", "2")
    ts.ok("start", "fw")
    assert not check_vars_file(ts, "fw", store)
    with open(store, "rb") as f:
        assert f.read(12) == b"shoji-marker"
    with open(OVMF_VARS, "rb") as f:
        assert f.read(12) != b"shoji-marker", "the template was written"
    # A kernel VM switched to firmware in one set; the edits one by one would not check.
    ts.status(2, "set", "fw", "kernel=/k", words=["boot = disk boots the disks", "remove kernel"])
    ts.status(2, "set", "fw", "kernel=/k", "boot=kernel", words=["not supported yet", "remove firmware"])
    ts.create("fwk")
    ts.status(2, "set", "fwk", "firmware=uefi", words=["not supported yet"])
    ts.ok("set", "fwk", "firmware=uefi", "kernel=", "initrd=", "cmdline=")
    assert ts.vm("fwk")["boot"] == "disk"
    ts.ok("delete", "fwk")
    ts.ok("kill", "fw")
    ts.ok("delete", "fw")
    assert not os.path.exists(store) and not os.path.exists(os.path.dirname(store))


def firmware_start_fails(ts, name, code, template, words):
    """A VM with firmware = code and firmware-vars = template: its start refused with words,
    and no store (nor half of one) left."""
    ts.ok("set", name, f"firmware={code}", f"firmware-vars={template}")
    rc, _, err = ts.shoji("start", name)
    assert rc == 1 and all(w in err for w in words), (rc, err, words)
    assert ts.vm(name)["state"] == "stopped"
    left = [f for f in os.listdir(os.path.join(ts.state, "vms", name)) if f.startswith("uefi-vars")]
    assert not left, left


def test_firmware_errors(ts):
    # Bad definitions are refused with the file, the line and the fix; bad files at start,
    # naming the file, before anything is made.
    if ts.real:
        raise Skip("the stand-in monitor's check of the firmware files is what passes here")
    bad = os.path.join(ts.dir, "fwbad.ini")
    for body, words in (("boot = disk\n", ["boot = disk needs firmware", "firmware = uefi", "apt install ovmf"]),
                        ("firmware = /x/CODE.fd\n", ["needs firmware-vars = PATH"]),
                        ("firmware = uefi\nkernel = /k\n", ["not supported yet"]),
                        ("firmware = bios\n", [f"{bad}:3:", "not uefi or a path"])):
        with open(bad, "w") as f:
            f.write("[vm]\nname = fwbad\n" + body)
        ts.status(2, "create", "--from", bad, words=[f"{bad}:"] + words)
    ts.status(2, "create", "fwbad", "--firmware", "/x/CODE.fd", words=["needs firmware-vars"])
    ts.status(2, "create", "fwbad", "--firmware", "uefi", "--kernel", "/k", words=["not supported yet"])
    code, tmpl = os.path.join(ts.dir, "CODE.fd"), os.path.join(ts.dir, "VARS.fd")
    for p in (code, tmpl):
        with open(p, "wb") as f:
            f.write(b"\xff" * 65536)
        os.chmod(p, 0o644)
    ts.ok("create", "fwbad", "--firmware", f"{code},vars={tmpl}")
    firmware_start_fails(ts, "fwbad", "/nosuch/CODE.fd", tmpl, ["firmware '/nosuch/CODE.fd'", "No such file"])
    tdir, fifo, link, big, empty = (os.path.join(ts.dir, n) for n in ("vars.d", "vars.fifo", "vars.link",
                                                                       "vars.big", "vars.empty"))
    os.mkdir(tdir)
    os.mkfifo(fifo)
    os.symlink(tmpl, link)
    with open(big, "wb") as f:
        f.truncate(17 << 20)
    open(empty, "wb").close()
    firmware_start_fails(ts, "fwbad", code, tdir, [f"firmware-vars '{tdir}'", "not a regular file"])
    firmware_start_fails(ts, "fwbad", code, fifo, [f"firmware-vars '{fifo}'", "a FIFO"])
    firmware_start_fails(ts, "fwbad", code, "/nosuch/VARS.fd", ["firmware-vars '/nosuch/VARS.fd'", "No such file"])
    firmware_start_fails(ts, "fwbad", code, link, [link, "symbolic link"])
    firmware_start_fails(ts, "fwbad", code, big, [big, "1 byte to 16 MiB"])
    firmware_start_fails(ts, "fwbad", code, empty, [empty, "1 byte to 16 MiB"])
    os.chmod(tmpl, 0o666)
    firmware_start_fails(ts, "fwbad", code, tmpl, [tmpl, "written by others than root", "chmod go-w"])
    os.chmod(tmpl, 0o600)
    firmware_start_fails(ts, "fwbad", code, tmpl, [tmpl, "not readable by all"])
    if os.geteuid() == 0:
        os.chmod(tmpl, 0o644)
        os.chown(tmpl, 1, -1)  # a template someone else may rewrite: not copied by root
        firmware_start_fails(ts, "fwbad", code, tmpl, [tmpl, "chown root"])
        os.chown(tmpl, 0, -1)
        os.chmod(code, 0o600)  # the jail uid must read the code image itself
        firmware_start_fails(ts, "fwbad", code, tmpl, ["firmware", code, "not readable by jail uid"])
        os.chmod(code, 0o644)
    os.chmod(tmpl, 0o644)
    ts.ok("start", "fwbad")  # the same VM with good files
    ts.ok("kill", "fwbad")
    ts.ok("delete", "fwbad")


def test_guest_agent_through_toolstack(ts):
    # A VM with a vsock CID runs the guest's agent: shoji info shows what it reports (shojid
    # copies only well-formed entries: the stand-in monitor salts its report), and shoji stop
    # asks the agent first (the event says so).
    cid = 3000 + os.getpid() % 100000
    ts.create("agent", action="tick")
    ts.ok("set", "agent", f"vsock-cid={cid}")
    if not os.path.exists("/dev/vhost-vsock"):
        ts.status(1, "start", "agent", words=["/dev/vhost-vsock", "modprobe vhost_vsock"])
        ts.ok("delete", "agent")
        raise Skip("no /dev/vhost-vsock on this host: only the error was checked")
    ts.ok("start", "agent")
    wait_until(lambda: ts.vm("agent").get("agent", {}).get("state") == "ready", ts.boot_timeout, "agent ready")
    wait_until(lambda: "info" in ts.vm("agent")["agent"], 30, "agent info")
    a = ts.vm("agent")["agent"]
    info = a["info"]
    assert info["hostname"] == ("agent" if ts.real else "fake") and info["os"], a
    assert "info" in a["caps"] and "power" in a["caps"], a
    out = ts.ok("info", "agent")
    assert re.search(r"^agent +ready \(info power", out, re.M), out
    assert re.search(r"^  hostname +", out, re.M), out
    assert all(c >= " " for c in out.replace("\n", "")), f"a control character reached the terminal: {out!r}"
    if not ts.real:
        assert set(info) == {"os", "hostname", "addresses"}, info  # not kernel, "Bad Key", uptime-s
        assert a["caps"] == ["info", "power"] and "error" not in a, a
    ts.ok("stop", "agent", "--timeout", "60")
    ev = [e for e in events(ts, "agent") if e[0] == "shutdown"]
    assert ev and "the guest agent" in ev[-1][1], events(ts, "agent")
    if ts.real:
        assert "shoji-agent: the host asked for a power-off" in ts.serial("agent")


def clip_vm(ts, name, cid, label, word):
    # the stand-in monitor serves the clipboard without a vsock device, which shojid would
    # refuse where the host has no /dev/vhost-vsock
    ts.create(name, action="tick")
    ts.ok("set", name, *([f"vsock-cid={cid}"] if ts.real else []), f"label={label}", f"param=clip={word}")
    ts.ok("start", name)


def test_clipboard_between_vms(ts):
    # The clipboard moves only on the user's copy and paste (here shoji clipboard, as root: the
    # seat's chords make the same requests), under both VMs' [policy], read at each act; every
    # copy, paste and refusal is an event without the content; a third VM sees nothing.
    if ts.real and not os.path.exists("/dev/vhost-vsock"):
        raise Skip("no /dev/vhost-vsock on this host: no guest agent to hold a clipboard")
    cid = 4000 + os.getpid() % 100000
    for i, (name, label, word) in enumerate([("cw", "blue", "secret-of-work"), ("cp", "green", "personal"),
                                             ("cx", "red", "third")]):
        clip_vm(ts, name, cid + i, label, word)
    for name in ("cw", "cp", "cx") if ts.real else ():
        wait_until(lambda: ts.vm(name).get("agent", {}).get("state") == "ready", ts.boot_timeout, f"{name}: agent")
    assert ts.ok("clipboard").strip() == "nothing held"
    ts.status(4, "clipboard", "paste", "cp", words=["nothing is held", "copy from a VM first"])
    assert ts.ok("clipboard", "copy", "cw").startswith("holding 14 bytes from cw"), ts.ok("clipboard")
    held = ts.js("clipboard")
    assert held["held"] and held["from"] == "cw" and held["bytes"] == 14, held
    assert ts.ok("clipboard", "paste", "cp").strip() == "pasted 14 bytes from cw into cp"
    wait_until(lambda: "clipboard set: 14 bytes: secret-of-work" in ts.serial("cp"), 30, "cp's clipboard set")
    ts.status(4, "clipboard", "paste", "cx", words=["nothing is held"])  # one paste per copy
    # policy: read at each act, so a change applies to a running VM at once
    ts.ok("set", "cw", "policy.clipboard-out=deny")
    ts.status(8, "clipboard", "copy", "cw", words=["copy from cw refused", "clipboard-out = deny"])
    assert not ts.js("clipboard")["held"]
    ts.ok("set", "cw", "policy.clipboard-out=allow label:red")
    ts.ok("clipboard", "copy", "cw")
    ts.status(8, "clipboard", "paste", "cp", words=["cw's clipboard-out does not let its clipboard into cp"])
    ts.ok("set", "cx", "policy.clipboard-max=8")
    ts.status(8, "clipboard", "paste", "cx", words=["14 bytes are more than cx's clipboard-max (8)"])
    ts.ok("set", "cx", "policy.clipboard-max=256K", "policy.clipboard-in=deny cw")
    ts.status(8, "clipboard", "paste", "cx", words=["cx's clipboard-in does not take cw's clipboard"])
    assert ts.js("clipboard")["held"]  # a refused paste leaves it held
    ts.ok("clipboard", "clear")
    assert not ts.js("clipboard")["held"]
    ev = [e for n in ("cw", "cp", "cx") for e in events(ts, n) if e[0].startswith("clipboard")]
    kinds = [e[0] for e in ev]
    assert kinds.count("clipboard-copy") == 2 and kinds.count("clipboard-paste") == 1, ev
    assert kinds.count("clipboard-refused") == 4 and kinds.count("clipboard-cleared") == 1, ev
    assert not any("secret" in e[1] for e in ev), ev  # who, where and how much, never what
    for e in ev:
        if e[0] == "clipboard-paste":
            assert "14 bytes from cw pasted into cp" in e[1], ev
    time.sleep(1)
    assert "clipboard set" not in ts.serial("cx"), ts.serial("cx")  # nothing reached it unasked
    if not ts.real:  # a monitor whose reply lies about its size holds nothing
        ts.ok("stop", "cx")
        ts.ok("set", "cx", "param=clip=hostile")
        ts.ok("start", "cx")
        ts.status(1, "clipboard", "copy", "cx", words=["malformed"])
        assert not ts.js("clipboard")["held"]
    ts.ok("stop", "cw")
    ts.status(4, "clipboard", "copy", "cw", words=["stopped", "only while it runs"])
    for name in ("cw", "cp", "cx"):
        ts.shoji("kill", name)
        ts.ok("delete", name)


def links(ts):
    """{(vm, nic): (peer, state, why)} from shoji net."""
    return {(l["vm"], l["nic"]): (l.get("peer", l["type"]), l["state"], l.get("why", "")) for l in ts.js("net")["links"]}


def link_state(ts, vm):
    return links(ts)[(vm, "net0")][1]


def test_links_between_vms(ts):
    # Two VMs whose definitions name each other are joined when both run, monitor to monitor;
    # a third that names one of them, unasked, is refused; the link goes down when one VM
    # stops and comes back when it starts again, the other VM untouched. Under the real
    # monitor each guest fetches the file its peer serves over the link (linktest).
    ip = {"lka": "10.9.0.1", "lkb": "10.9.0.2", "lkc": "10.9.0.3"}
    peer = {"lka": "lkb", "lkb": "lka", "lkc": "lka"}
    for name in ("lka", "lkb", "lkc"):
        ts.ok("create", name, "--kernel", os.path.join(ts.guest_dir, "vmlinuz"),
              "--initrd", os.path.join(ts.guest_dir, "initramfs.cpio.gz"), "--memory", "128M",
              "--cmdline", f"console=ttyS0 quiet shoji.action=linktest shoji.name={name} "
              f"shoji.ip={ip[name]}/24 shoji.peer={ip[peer[name]]}", "--net", f"vm={peer[name]}")
    ts.ok("start", "lka")
    assert links(ts)[("lka", "net0")] == ("lkb", "down", "the peer is not running"), links(ts)
    assert links(ts)[("lkb", "net0")][2] == "the VM is not running", links(ts)
    ts.ok("start", "lkb")
    wait_until(lambda: link_state(ts, "lka") == "up" and link_state(ts, "lkb") == "up", 30, "the link up")
    assert ("link-up", "nic net0 linked to lkb:net0") in events(ts, "lka"), events(ts, "lka")
    ts.ok("start", "lkc")  # names lka, which does not name it back
    wait_until(lambda: any(e[0] == "link-refused" for e in events(ts, "lkc")), 30, "lkc refused")
    assert link_state(ts, "lkc") == "down" and link_state(ts, "lka") == "up", links(ts)
    assert "lka  " in ts.ok("net") and "lkb" in ts.ok("net")

    def served(name):  # what the VM's latest boot serves
        m = re.findall(r"linktest serving sha256=(\w+)", ts.serial(name))
        return m[-1] if m else None

    def fetched(name, sha):
        return f"linktest peer sha256={sha}" in ts.serial(name)

    if ts.real and os.geteuid() == 0:  # jailed: a monitor whose NICs are links has no host network
        net = os.readlink(f"/proc/{ts.vm('lka')['pid']}/ns/net")
        assert net != os.readlink("/proc/self/ns/net"), "lka's monitor shares the host's network namespace"
    if ts.real:
        for a, b in (("lka", "lkb"), ("lkb", "lka")):
            wait_until(lambda: served(b) and fetched(a, served(b)), ts.boot_timeout, f"{a} fetches from {b}")
        # lkc, refused, fetched nothing from lka all this while (its guest reports only what it got)
        assert not re.search(r"linktest peer sha256=(?!e3b0c442)", ts.serial("lkc")), ts.serial("lkc")[-1500:]
    else:  # the stand-in monitors pass a frame across, and it reaches lkb alone
        assert control(ts, "lka", {"cmd": "fake-link-send", "nic": "0", "data": "frame-from-lka"})["ok"]
        wait_until(lambda: "fake: nic 0 received: frame-from-lka" in ts.serial("lkb"), 10, "the frame at lkb")
        assert "frame-from-lka" not in ts.serial("lkc")
        # both monitors say they take headers on a link: shojid asks each for them
        assert all("fake: nic 0 linked with offload" in ts.serial(n) for n in ("lka", "lkb")), ts.serial("lka")
    ts.ok("kill", "lkb")
    wait_until(lambda: link_state(ts, "lka") == "down", 30, "lka's link down once lkb is gone")
    assert any(e[0] == "link-down" for e in events(ts, "lka")), events(ts, "lka")
    if ts.real:
        wait_until(lambda: "linktest carrier=0" in ts.serial("lka").split("linktest carrier=1")[-1],
                   60, "lka's guest sees no carrier")
    old = served("lkb")
    ts.ok("start", "lkb")
    wait_until(lambda: link_state(ts, "lka") == "up", 30, "the link up again")
    assert ts.vm("lka")["state"] == "running"
    if ts.real:
        wait_until(lambda: served("lkb") and served("lkb") != old and fetched("lka", served("lkb")),
                   ts.boot_timeout, "lka fetches from the restarted lkb")
    else:
        assert control(ts, "lkb", {"cmd": "fake-link-send", "nic": "0", "data": "back-again"})["ok"]
        wait_until(lambda: "fake: nic 0 received: back-again" in ts.serial("lka"), 10, "the frame at lka")
    for name in ("lka", "lkb", "lkc"):
        ts.ok("kill", name)
        ts.ok("delete", name)


def test_link_flood(ts):
    # A flood from one VM does not starve another: a hub VM linked to two VMs serves a file to
    # one (its fetches timed one after another) while the other sends it UDP datagrams as fast
    # as its stack takes them. The flooder's link holds a bounded queue (the link socket's
    # buffer) and pushes back on its sender, who cannot take the hub's other link's share: the
    # fetches go on, each whole, and the flooder's datagrams keep moving. Each side's figures
    # are printed.
    if not ts.real:
        raise Skip("needs guests on real monitors (the stand-in monitors move no traffic)")
    ip = {"fh": "10.9.1.1/24", "fa": "10.9.1.2/24", "fc": "10.9.2.2/24"}
    cmdline = {"fh": "shoji.action=floodhub shoji.ip2=10.9.2.1/24", "fa": "shoji.action=flood shoji.peer=10.9.1.1",
               "fc": "shoji.action=fetchloop shoji.peer=10.9.2.1"}
    nets = {"fh": ["vm=fa", "vm=fc"], "fa": ["vm=fh"], "fc": ["vm=fh"]}
    for name in ("fh", "fa", "fc"):
        args = ["create", name, "--kernel", os.path.join(ts.guest_dir, "vmlinuz"), "--initrd",
                os.path.join(ts.guest_dir, "initramfs.cpio.gz"), "--memory", "128M", "--cmdline",
                f"console=ttyS0 quiet shoji.name={name} shoji.ip={ip[name]} {cmdline[name]}"]
        for n in nets[name]:
            args += ["--net", n]
        ts.ok(*args)

    def fetches():
        return [(sha, float(t)) for sha, t in re.findall(r"fetchloop sha256=(\w+) in ([\d.]+) s", ts.serial("fc"))]

    def flooded():
        return [(int(n), int(r)) for n, r in re.findall(r"netflood sent (\d+) datagrams \(\d+ MiB\), (\d+) refused",
                                                        ts.serial("fa"))]
    ts.ok("start", "fh")
    ts.ok("start", "fc")
    wait_until(lambda: "floodhub serving" in ts.serial("fh"), ts.boot_timeout, "the hub serving")
    blob = re.search(r"floodhub serving sha256=(\w+)", ts.serial("fh"))[1]
    wait_until(lambda: len(fetches()) >= 4, ts.boot_timeout, "fc's first fetches")
    quiet = fetches()[1:]  # the first may have begun before the hub served
    ts.ok("start", "fa")
    wait_until(lambda: len(flooded()) >= 1, ts.boot_timeout, "fa flooding")
    start = len(fetches())
    try:
        wait_until(lambda: len(fetches()) >= start + 3 and len(flooded()) >= 3, 300, "fc's fetches under the flood")
    except AssertionError as e:  # which side stopped, and where each guest was
        tails = {n: ts.serial(n)[-800:] for n in ("fh", "fa", "fc")}
        raise AssertionError(f"{e}: fc fetched {len(fetches()) - start} under the flood, fa reported {flooded()}; "
                             f"the hub's NICs: {control(ts, 'fh', {'cmd': 'status'}).get('nics')}; serial ends: "
                             f"{tails}") from None
    loud = fetches()[start:]
    assert all(sha == blob for sha, _ in quiet + loud), (blob, quiet, loud)
    (n0, _), (n1, refused) = flooded()[0], flooded()[-1]
    assert n1 > n0, flooded()  # the flood kept moving meanwhile
    assert {k: v[1] for k, v in links(ts).items() if k[0] in ("fh", "fa", "fc")} == \
        {("fh", "net0"): "up", ("fh", "net1"): "up", ("fa", "net0"): "up", ("fc", "net0"): "up"}, links(ts)
    hub = control(ts, "fh", {"cmd": "status"})
    print(f"note: fc's 1 MiB fetches from the hub took {statistics.median(t for _, t in quiet):.2f} s (median of "
          f"{len(quiet)}) alone, {statistics.median(t for _, t in loud):.2f} s (median of {len(loud)}, slowest "
          f"{max(t for _, t in loud):.2f} s) while fa flooded it; fa sent {n1} datagrams ({n1 * 1400 >> 20} MiB), "
          f"{refused} refused by its own stack; the hub's NICs: {hub.get('nics')}")
    for name in ("fa", "fc", "fh"):
        ts.ok("kill", name)
        ts.ok("delete", name)


def test_link_guards(ts):
    # What shojid decides alone, so the stand-in monitor shows it: a NIC whose peer does not name
    # it back is refused whether or not the peer runs (nobody learns which VMs run or exist); a
    # VM that stops sends link-down only to peers that had offered it a link; a definition
    # edited while its VM runs never steers a link to a NIC the running monitor has otherwise;
    # two ends with one MAC are refused.
    if ts.real:
        raise Skip("shojid's own decisions: the stand-in monitor shows them without guests")

    def make(name, *nets):
        args = ["create", name, "--kernel", os.path.join(ts.guest_dir, "vmlinuz"), "--memory", "64M"]
        for n in nets:
            args += ["--net", n]
        ts.ok(*args)

    make("lgp", "vm=lgq", "vm=lgr")  # lgr does not name lgp back
    make("lgq", "vm=lgp")
    make("lgr", "vm=lgq")  # nor does lgq name lgr
    ts.ok("start", "lgr")  # its peer lgq is not running: refused all the same, and said alike
    wait_until(lambda: any(e[0] == "link-refused" for e in events(ts, "lgr")), 30, "lgr refused")
    assert links(ts)[("lgr", "net0")] == ("lgq", "down", "the peer offers no NIC of type vm back"), links(ts)
    ts.ok("start", "lgp")
    ts.ok("start", "lgq")
    wait_until(lambda: link_state(ts, "lgp") == "up" and link_state(ts, "lgq") == "up", 30, "lgp-lgq up")
    assert links(ts)[("lgp", "net1")][1:] == ("down", "the peer offers no NIC of type vm back"), links(ts)
    ts.ok("kill", "lgp")
    wait_until(lambda: any(e[0] == "link-down" for e in events(ts, "lgq")), 30, "lgq's link-down")
    assert not any(e[0] == "link-down" for e in events(ts, "lgr")), events(ts, "lgr")

    # lgq's definition edited while it runs: its NIC's MAC is no longer the running monitor's
    ts.ok("set", "lgq", "nic.net0.mac=52:54:00:00:00:99")
    ts.ok("start", "lgp")
    wait_until(lambda: any(e[0] == "link-failed" and "restart that VM" in e[1] for e in events(ts, "lgp")),
               30, "the join refused for lgq's edited definition")
    assert link_state(ts, "lgp") == "down" and link_state(ts, "lgq") == "down", links(ts)
    ts.ok("kill", "lgq")
    ts.ok("start", "lgq")  # restarted on its new definition: joined
    wait_until(lambda: link_state(ts, "lgp") == "up" and link_state(ts, "lgq") == "up", 30, "lgp-lgq up again")

    ts.ok("kill", "lgq")  # both ends with one MAC: refused
    ts.ok("kill", "lgp")
    ts.ok("set", "lgp", "nic.net0.mac=52:54:00:00:00:99")
    ts.ok("start", "lgp")
    ts.ok("start", "lgq")
    wait_until(lambda: any(e[0] == "link-refused" and "the same MAC" in e[1] for e in events(ts, "lgq")),
               30, "a MAC on both ends refused")
    assert link_state(ts, "lgq") == "down", links(ts)
    for name in ("lgp", "lgq", "lgr"):
        ts.ok("kill", name)
        ts.ok("delete", name)


def usb_descriptors(vid, pid, configs):
    """A device descriptor and its configurations (each a list of interface classes), as sysfs
    shows a device's `descriptors`."""
    out = bytes([18, 1, 0, 2, 0, 0, 0, 64, vid & 255, vid >> 8, pid & 255, pid >> 8, 0, 1, 1, 2, 3, len(configs)])
    for value, classes in enumerate(configs, 1):
        body = b"".join(bytes([9, 4, n, 0, 0, c, 0, 0, 0]) for n, c in enumerate(classes))
        out += bytes([9, 2, (9 + len(body)) & 255, (9 + len(body)) >> 8, len(classes), value, 0, 0x80, 50]) + body
    return out


def usb_device(root, port, descriptors, product):
    d = os.path.join(root, port)
    os.makedirs(d, mode=0o755)
    for name, data in (("descriptors", descriptors), ("busnum", b"1\n"), ("devnum", b"5\n"), ("product", product)):
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)
        os.chmod(os.path.join(d, name), 0o444)
    return d


def test_usb_list(ts):
    # shoji usb list: the host's devices as a confined scan of sysfs (a test tree in the stand-in
    # run, the harness machine's own hub and stick in the real one) reads them: every interface
    # class of every configuration, names made printable, a cut-short set of descriptors marked,
    # and with a VM named, what its [policy] lets it have and why not.
    if ts.real:
        return usb_list_real(ts)
    root = ts.env["SHOJI_TEST_USB_SYSFS"]
    assert ts.js("usb", "list")["devices"] == []  # no USB bus: no devices
    os.makedirs(root, mode=0o755)
    usb_device(root, "1-2", usb_descriptors(0x0781, 0x5567, [[0xff], [0xff, 0x08]]), b"\x1b[2JCruzer\n")
    usb_device(root, "1-3", usb_descriptors(0x046d, 0xc31c, [[0x03]]), b"Keyboard\n")
    usb_device(root, "1-1", usb_descriptors(0x05e3, 0x0608, [[0x09]]), b"Hub\n")
    usb_device(root, "1-4", usb_descriptors(0x0403, 0x6001, [[0xff]])[:-4], b"Serial\n")
    usb_device(root, "usb1", usb_descriptors(0x1d6b, 2, [[0x09]]), b"root hub\n")
    secret = usb_device(root, "1-5", usb_descriptors(0x1234, 1, [[0x0b]]), b"Card reader\n")
    if os.geteuid() == 0:  # read only by root: the scan, as nobody, cannot read it
        os.chmod(os.path.join(secret, "descriptors"), 0o400)
    devs = ts.js("usb", "list")["devices"]
    ports = [d["port"] for d in devs]
    assert ports == (["1-1", "1-2", "1-3", "1-4"] + ([] if os.geteuid() == 0 else ["1-5"])), devs
    by = {d["port"]: d for d in devs}
    assert by["1-2"]["id"] == "0781:5567" and by["1-2"]["classes"] == ["vendor", "storage"], by["1-2"]
    assert by["1-2"]["product"] == "?[2JCruzer" and by["1-2"]["holder"] == "host", by["1-2"]
    assert by["1-2"]["interfaces"][1] == "2.0 alt 0: ff/00/00", by["1-2"]
    assert by["1-3"]["classes"] == ["hid"] and by["1-3"]["complete"], by["1-3"]
    assert not by["1-4"]["complete"], by["1-4"]
    out = ts.ok("usb", "list")
    assert "1-2          0781:5567 vendor,storage" in out and "\x1b" not in out, out
    assert "(descriptors incomplete)" in out, out

    ts.create("usbvm")
    ts.ok("set", "usbvm", "policy.usb-storage=deny")
    verdicts = {d["port"]: (d["allowed"], d.get("why", "")) for d in ts.js("usb", "list", "usbvm")["devices"]}
    assert verdicts["1-2"] == (False, "usbvm may not have USB storage (usb-storage = deny in its policy)"), verdicts
    assert not verdicts["1-3"][0] and "an input device stays with the seat" in verdicts["1-3"][1], verdicts
    assert not verdicts["1-1"][0] and "hub" in verdicts["1-1"][1], verdicts
    assert verdicts["1-4"] == (False, "its descriptors could not all be read (cut short, malformed, or more "
                               "than 64 interfaces), so it cannot be judged"), verdicts
    ts.ok("set", "usbvm", "policy.usb-allow=id:046d:c31c")
    out = ts.ok("usb", "list", "usbvm")
    assert "allowed" in out and "refused: usbvm may not have USB storage" in out, out
    ts.status(3, "usb", "list", "nosuchvm", words=["nosuchvm"])
    ts.status(2, "usb", "attach", words=["say list"])
    ts.ok("delete", "usbvm")
    usb_host_policy(ts)


def usb_list_real(ts):
    """The harness machine's devices as the kernel shows them (kvm-run: a hub, a stick behind it)."""
    devs = harness_usb(ts)
    if "46f4:0001" not in devs:
        raise Skip("no harness USB stick here (the command ran on the host's own KVM)")
    hub, stick = devs["0409:55aa"], devs["46f4:0001"]
    assert hub["classes"] == ["hub"] and stick["classes"] == ["storage"], devs
    kbd, serial = devs["0627:0001"], devs["0403:6001"]
    assert kbd["classes"] == ["hid"] and kbd["product"] == "QEMU USB Keyboard", kbd
    assert serial["classes"] == ["vendor"] and serial["product"] == "QEMU USB SERIAL", serial
    assert stick["port"] == hub["port"] + ".1" and stick["product"] == "QEMU USB HARDDRIVE", devs
    assert stick["complete"] and stick["interfaces"] == ["1.0 alt 0: 08/06/50"], stick
    ts.create("usbvm")
    ts.ok("set", "usbvm", "policy.usb-storage=deny")
    v = {d["id"]: (d["allowed"], d.get("why", "")) for d in ts.js("usb", "list", "usbvm")["devices"]}
    assert v["46f4:0001"] == (False, "usbvm may not have USB storage (usb-storage = deny in its policy)"), v
    assert not v["0409:55aa"][0], v
    assert v["0627:0001"] == (False, KEYBOARD_STAYS), v
    assert v["0403:6001"] == (True, ""), v
    ts.ok("set", "usbvm", "policy.usb-storage=allow")
    assert {d["id"]: d["allowed"] for d in ts.js("usb", "list", "usbvm")["devices"]}["46f4:0001"]
    ts.ok("delete", "usbvm")


def sysfs_write(path, text):
    with open(path, "w") as f:
        f.write(text)


def test_usb_attach_errors(ts):
    # What an attach or a detach refuses before any device moves, each with its fix.
    ts.create("usbvm3", action="tick")
    ts.status(4, "usb", "attach", "usbvm3", "1-2", words=["'usbvm3' is not running", "start it first"])
    ts.status(3, "usb", "attach", "nosuchvm", "1-2", words=["nosuchvm"])
    ts.status(2, "usb", "attach", "usbvm3", "1-02", words=["port"])
    ts.status(2, "usb", "attach", "usbvm3", words=["attach VM DEVICE"])
    ts.status(4, "usb", "detach", "1-2", words=["1-2 is not attached to a VM"])
    ts.ok("start", "usbvm3")
    if not ts.real:  # the stand-in monitor runs without a vsock device
        ts.status(4, "usb", "attach", "usbvm3", "1-2", words=["no vsock device", "vsock-cid=auto"])
    ts.ok("kill", "usbvm3")
    ts.ok("delete", "usbvm3")


HARNESS_USB = ("46f4:0001", "0627:0001", "0403:6001")  # tests/harness/kvm-run's: stick, keyboard, serial


def harness_usb(ts):
    """The harness machine's USB devices as shoji usb list shows them, by id: where its hub
    (QEMU's, 0409:55aa) is there, once the devices behind it have all come (the emulated
    machine may still be enumerating them when a suite starts)."""
    def by_id():
        return {d["id"]: d for d in ts.js("usb", "list")["devices"]}
    if "0409:55aa" in by_id():
        wait_until(lambda: all(i in by_id() for i in HARNESS_USB), 30, "the harness's USB devices enumerated")
    return by_id()


def harness_stick(ts, checked=""):
    """The harness machine's USB stick as shoji usb list shows it, for a test with a guest;
    a skip where there is none (the stand-in run), saying what was checked instead."""
    if not ts.real:
        raise Skip("needs the harness machine's USB stick and a guest" + (f" ({checked})" if checked else ""))
    stick = harness_usb(ts).get("46f4:0001")
    if not stick or not os.path.exists("/dev/vhost-vsock"):
        raise Skip("no harness USB stick or /dev/vhost-vsock here")
    return stick


def on_host_driver(port, driver_name):
    """Whether the device at port is the host's: with the kernel's generic USB driver, its
    first interface with driver_name."""
    def driver(d):
        return os.path.basename(os.readlink(d + "/driver")) if os.path.exists(d + "/driver") else None
    dev = "/sys/bus/usb/devices/" + port
    return driver(dev) == "usb" and driver(f"{dev}/{port}:1.0") == driver_name


def stick_on_host_driver(port):
    return on_host_driver(port, "usb-storage")


KEYBOARD_STAYS = ("an input device stays with the seat unless a usb-allow rule names it "
                  "(id:0627:0001, its port, or class:hid with each of its classes)")


def test_usb_attach(ts):
    # shoji usb attach gives the harness's stick to a running VM: shojid opens its usbfs node
    # for a jailed exporter (which takes the stick from usb-storage and serves it over USB/IP from
    # userspace) and hands the guest's agent a vsock connection, which the agent gives to
    # vhci-hcd; the guest reads the stick's first bytes. A VM whose policy denies storage is
    # refused (an event says so); detach, and killing the VM, give the stick back to the host's
    # usb-storage driver. The exporter runs as nobody, and usbip-host is never involved.
    stick = harness_stick(ts)
    port = stick["port"]
    assert stick_on_host_driver(port), "the stick is not with usb-storage to begin with"
    ts.create("usbvm", action="usbwatch")
    ts.ok("set", "usbvm", "vsock-cid=auto", "policy.usb-storage=deny")
    ts.ok("start", "usbvm")
    wait_until(lambda: ts.vm("usbvm").get("agent", {}).get("state") == "ready", ts.boot_timeout, "agent ready")
    # a host process on an unprivileged port cannot hand the guest a device: the agent closes
    cid = int(re.search(r"vsock CID (\d+)", dict(events(ts, "usbvm"))["started"])[1])
    with socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM) as s:
        s.settimeout(10)
        s.connect((cid, 5901))
        try:  # the agent may close before the request is all sent: that is the refusal too
            s.sendall(b"SUSB\x01\x03\x00\x00" + struct.pack("<I", stick["bus"] << 16 | stick["device"]) + bytes(4))
            answer = s.recv(1)
        except (BrokenPipeError, ConnectionResetError):
            answer = b""
        assert answer == b"", "the agent answered a host process on an unprivileged port"
    ts.status(8, "usb", "attach", "usbvm", port, words=["usbvm may not have USB storage", "usb-storage"])
    assert any(e[0] == "usb-refused" and port in e[1] for e in events(ts, "usbvm")), events(ts, "usbvm")
    assert stick_on_host_driver(port), "a refused device left its host driver"
    ts.ok("set", "usbvm", "policy.usb-storage=allow")
    t0 = time.monotonic()
    ts.ok("usb", "attach", "usbvm", port)
    attach_s = time.monotonic() - t0
    disk_line = re.compile(r"usb disk ([^\r\n]*)\r?\n")  # whole: the console log grows a few bytes at a time
    wait_until(lambda: disk_line.search(ts.serial("usbvm")), 90, "the stick's disk in the guest")
    seen = time.monotonic() - t0
    line = disk_line.search(ts.serial("usbvm"))[1]
    assert line.startswith("shoji-usb-stick after"), ts.serial("usbvm")[-1500:]
    wait_until(lambda: re.search(r"blkio seq-read: [\d.]+ MiB in", ts.serial("usbvm")), 60, "the guest's timed read")
    print(f"note: shoji usb attach took {attach_s:.2f} s; the disk was visible in the guest {seen:.1f} s after it began")
    holders = {d["port"]: d["holder"] for d in ts.js("usb", "list")["devices"]}
    assert holders[port] == "usbvm", holders
    exporters = [p for p in usbfs_users(stick) if p != ts.daemon.pid]
    assert len(exporters) == 1 and os.stat(f"/proc/{exporters[0]}").st_uid == 65534, exporters
    claimed = os.path.realpath(f"/sys/bus/usb/devices/{port}/{port}:1.0/driver")
    assert os.path.basename(claimed) == "usbfs", f"the stick's interface is with {claimed}, not the exporter's usbfs"
    assert not os.path.isdir(f"/sys/bus/usb/drivers/usbip-host/{port}"), "usbip-host has the stick"
    ts.status(4, "usb", "attach", "usbvm", port, words=["already attached", f"shoji usb detach {port}"])
    ts.ok("usb", "detach", port)
    wait_until(lambda: "usb disk gone" in ts.serial("usbvm"), 60, "the disk gone from the guest")
    wait_until(lambda: stick_on_host_driver(port), 30, "the stick back with usb-storage")
    assert {d["port"]: d["holder"] for d in ts.js("usb", "list")["devices"]}[port] == "host"
    assert usbfs_users(stick) == [], "the device is still open after the detach"
    ts.ok("usb", "attach", "usbvm", port)  # again, then the VM is killed while it holds it
    wait_until(lambda: ts.serial("usbvm").count("usb disk shoji-usb-stick") == 2, 90, "the stick again")
    ts.ok("kill", "usbvm")
    wait_until(lambda: stick_on_host_driver(port), 30, "the stick back with usb-storage after the kill")
    assert stick_reads(port), "the stick does not read on the host after the VM had it"
    ev = events(ts, "usbvm")
    kinds = [e[0] for e in ev if e[0].startswith("usb-")]
    assert kinds == ["usb-refused", "usb-attach", "usb-detach", "usb-attach", "usb-detach"], ev
    why = [e[1].split(": ", 1)[1] for e in ev if e[0] == "usb-detach"]
    assert why == ["detached on request", "the VM stopped"], ev
    ts.ok("delete", "usbvm")


def test_usb_attach_waits_on_its_own(ts):
    # An attach's hand-over goes on from shojid's loop: a guest whose agent takes the request
    # and never answers holds up that attach alone, whose caller is told once the agent's time
    # (3 s) is up, with the stick still the host's; meanwhile shojid answers another caller
    # while the attach still waits, and a second attach of the stick is told it is being given.
    stick = harness_stick(ts, "the attach's steps")
    port = stick["port"]
    ts.create("usbmute", action="tick")
    ts.ok("set", "usbmute", "vsock-cid=auto", "param=agent=usb-mute")
    ts.ok("start", "usbmute")
    wait_until(lambda: "usb agent mute" in ts.serial("usbmute"), ts.boot_timeout, "the mute agent")
    t0 = time.monotonic()
    attach = subprocess.Popen([os.path.join(ts.bindir, "shoji"), "usb", "attach", "usbmute", port], env=ts.env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(0.5)
        assert attach.poll() is None, attach.communicate()
        t1 = time.monotonic()
        ts.ok("list")
        served = time.monotonic() - t1
        assert attach.poll() is None, "shojid answered another caller only once the attach had ended"
        ts.status(4, "usb", "attach", "usbmute", port, words=["being given to VM 'usbmute'", "wait"])
        out, err = attach.communicate(timeout=30)
    finally:
        if attach.poll() is None:
            attach.kill()
    took = time.monotonic() - t0
    print(f"note: shojid answered a list in {served:.2f} s while the attach waited; the attach failed after {took:.2f} s")
    assert attach.returncode != 0 and "did not answer the USB request within 3000 ms" in err, (attach.returncode, err)
    assert 2.5 < took < 20, took
    assert stick_on_host_driver(port), "a device whose attach failed left its host driver"
    assert {d["port"]: d["holder"] for d in ts.js("usb", "list")["devices"]}[port] == "host"
    assert not [e for e in events(ts, "usbmute") if e[0] in ("usb-attach", "usb-detach")], events(ts, "usbmute")
    ts.ok("kill", "usbmute")
    ts.ok("delete", "usbmute")


def test_usb_given_back_when_shojid_stops(ts):
    # The exporters end with shojid: one that stops gives every device back first; one killed
    # leaves its record (runtime/usb-holds), by which the next gives the device back at its
    # start. Either way the stick is the host's again, with an event for the VM, which runs on.
    stick = harness_stick(ts)
    port = stick["port"]
    ts.create("usbstop", action="usbwatch")
    ts.ok("set", "usbstop", "vsock-cid=auto")
    ts.ok("start", "usbstop")
    wait_until(lambda: ts.vm("usbstop").get("agent", {}).get("state") == "ready", ts.boot_timeout, "agent ready")
    for n, how in ((1, signal.SIGTERM), (2, signal.SIGKILL)):
        ts.ok("usb", "attach", "usbstop", port)
        wait_until(lambda: ts.serial("usbstop").count("usb disk shoji-usb-stick") == n, 90, "the stick in the guest")
        ts.stop_daemon(how)
        ts.start_daemon()
        wait_until(lambda: stick_on_host_driver(port), 30, f"the stick back with usb-storage after shojid's {how.name}")
        assert {d["port"]: d["holder"] for d in ts.js("usb", "list")["devices"]}[port] == "host"
        assert usbfs_users(stick) == [], "the stick is still open after shojid's end"
    why = [e[1].split(": ", 1)[1] for e in events(ts, "usbstop") if e[0] == "usb-detach"]
    assert why == ["shojid stopped", "shojid stopped while the VM held it"], events(ts, "usbstop")
    assert ts.vm("usbstop")["state"] == "running"
    wait_until(lambda: stick_reads(port), 30, "the stick reading on the host")
    ts.ok("kill", "usbstop")
    ts.ok("delete", "usbstop")


def test_usb_keyboard_and_serial(ts):
    # The harness's other two devices: its keyboard (HID) is refused to a VM whose policy does
    # not name it, with an event, and stays with the host's usbhid; its FTDI serial adapter,
    # neither storage nor input, is given, the guest's ftdi_sio makes it a ttyUSB0 and writes a
    # line through it (the adapter's bulk OUT, after ftdi_sio's control requests), which comes
    # out of the emulated adapter; detached, it is back with the host's ftdi_sio.
    if not ts.real:
        raise Skip("needs the harness machine's USB keyboard and serial adapter and a guest")
    devs = harness_usb(ts)
    kbd, serial = devs.get("0627:0001"), devs.get("0403:6001")
    out = "/run/harness/usbserial.out"
    if not kbd or not serial or not os.path.exists(out) or not os.path.exists("/dev/vhost-vsock"):
        raise Skip("no harness USB keyboard and serial adapter (or no /dev/vhost-vsock) here")
    assert on_host_driver(kbd["port"], "usbhid") and on_host_driver(serial["port"], "ftdi_sio"), devs
    ts.create("usbser", action="usbwatch")
    ts.ok("set", "usbser", "vsock-cid=auto")
    ts.ok("start", "usbser")
    wait_until(lambda: ts.vm("usbser").get("agent", {}).get("state") == "ready", ts.boot_timeout, "agent ready")
    ts.status(8, "usb", "attach", "usbser", kbd["port"], words=[KEYBOARD_STAYS])
    assert any(e[0] == "usb-refused" and kbd["port"] in e[1] for e in events(ts, "usbser")), events(ts, "usbser")
    assert on_host_driver(kbd["port"], "usbhid"), "a refused keyboard left usbhid"
    before = os.path.getsize(out)
    ts.ok("usb", "attach", "usbser", serial["port"])
    wait_until(lambda: "usb serial ttyUSB0" in ts.serial("usbser"), 90, "the serial adapter in the guest")
    assert "usb serial ttyUSB0 written" in ts.serial("usbser"), ts.serial("usbser")[-1500:]

    def written():
        with open(out, "rb") as f:
            f.seek(before)
            return f.read()
    wait_until(lambda: b"hello from the guest" in written(), 30, "the guest's line out of the adapter")
    assert {d["port"]: d["holder"] for d in ts.js("usb", "list")["devices"]}[serial["port"]] == "usbser"
    ts.ok("usb", "detach", serial["port"])
    wait_until(lambda: "usb serial gone" in ts.serial("usbser"), 60, "the adapter gone from the guest")
    wait_until(lambda: on_host_driver(serial["port"], "ftdi_sio"), 30, "the adapter back with ftdi_sio")
    kinds = [e[0] for e in events(ts, "usbser") if e[0].startswith("usb-")]
    assert kinds == ["usb-refused", "usb-attach", "usb-detach"], events(ts, "usbser")
    ts.ok("kill", "usbser")
    ts.ok("delete", "usbser")


def usbfs_users(stick):
    """The processes that hold the stick's usbfs node open."""
    node = "/dev/bus/usb/%03d/%03d" % (stick["bus"], stick["device"])
    users = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if any(os.path.realpath(f"/proc/{pid}/fd/{fd}") == node for fd in os.listdir(f"/proc/{pid}/fd")):
                users.append(int(pid))
        except OSError:
            pass
    return users


def test_usb_unplug(ts):
    # A stick unplugged while the guest reads it (its hub port disabled: the host kernel then
    # sees it leave) is detached cleanly: shojid hears it go (usb-unplug), gives the port back and
    # says "unplugged", the disk leaves the guest, the VM runs on. Plugged again (usb-plug), the
    # stick is the host's, with usb-storage, and reads as before.
    stick = harness_stick(ts)
    port = stick["port"]
    hub, number = port.rsplit(".", 1)
    switch = f"/sys/bus/usb/devices/{hub}:1.0/{hub}-port{number}/disable"
    if not os.path.exists(switch):
        raise Skip(f"this kernel has no {switch} to unplug the stick with")
    ts.create("usbgone", action="usbwatch")
    ts.ok("set", "usbgone", "vsock-cid=auto", "policy.usb-storage=allow")
    ts.ok("start", "usbgone")
    wait_until(lambda: ts.vm("usbgone").get("agent", {}).get("state") == "ready", ts.boot_timeout, "agent ready")
    ts.ok("usb", "attach", "usbgone", port)
    wait_until(lambda: re.search(r"blkio seq-read: [\d.]+ MiB in", ts.serial("usbgone")), 90, "the guest reading the stick")
    try:
        sysfs_write(switch, "1")
        wait_until(lambda: any(e[0] == "usb-detach" for e in events(ts, "usbgone")), 30, "the detach")
        assert [e[1] for e in events(ts, "usbgone") if e[0] == "usb-detach"] == [f"{port} 46f4:0001: unplugged"], \
            events(ts, "usbgone")
        wait_until(lambda: "usb disk gone" in ts.serial("usbgone"), 60, "the disk gone from the guest")
        assert ts.vm("usbgone")["state"] == "running"
        assert port not in {d["port"] for d in ts.js("usb", "list")["devices"]}
    finally:
        sysfs_write(switch, "0")
    wait_until(lambda: stick_on_host_driver(port), 60, "the stick back on the host once plugged again")
    assert stick_reads(port)
    hotplug = [(e["event"], e["detail"]) for e in ts.js("events")["events"] if e["event"] in ("usb-plug", "usb-unplug")]
    assert hotplug[-2:] == [("usb-unplug", f"{port} 46f4:0001"), ("usb-plug", f"{port} 46f4:0001")], hotplug
    assert {d["port"]: d["holder"] for d in ts.js("usb", "list")["devices"]}[port] == "host"
    usb_auto_focused(ts, port, switch)
    ts.ok("kill", "usbgone")
    ts.ok("delete", "usbgone")


@contextlib.contextmanager
def seat_focus(ts, name):
    """Says to shojid, as the seat does, that name is shown, for as long as the block runs (the
    word lasts as long as its connection)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(os.path.join(ts.run, "shojid.sock"))
        s.sendall(json.dumps({"cmd": "seat-focus", "name": name}).encode() + b"\n")
        reply = json.loads(s.makefile().readline())
        assert reply["ok"], reply
        yield


def replug(ts, switch):
    """The stick out (its hub port disabled) and in again, each heard by shojid."""
    def count(kind):
        return sum(1 for e in ts.js("events")["events"] if e["event"] == kind)
    plugs, unplugs = count("usb-plug"), count("usb-unplug")
    sysfs_write(switch, "1")
    wait_until(lambda: count("usb-unplug") > unplugs, 30, "the stick heard gone")
    sysfs_write(switch, "0")
    wait_until(lambda: count("usb-plug") > plugs, 60, "the stick heard back")


def usb_auto_focused(ts, port, switch):
    # usb-auto = focused: while the seat shows usbgone, the stick plugged in goes to it (the guest
    # reads it), or is refused where its policy denies storage (an event, the stick left with the
    # host); with no seat to say what is shown, it stays with the host.
    def moves():
        return [e[0] for e in events(ts, "usbgone") if e[0] in ("usb-attach", "usb-refused", "usb-attach-failed")]
    before = moves()
    ts.ok("set", "usbgone", "policy.usb-auto=focused")
    with seat_focus(ts, "usbgone"):
        replug(ts, switch)
        wait_until(lambda: len(moves()) > len(before), 60, "the stick given to the shown VM")
        assert moves()[len(before):] == ["usb-attach"], events(ts, "usbgone")
        wait_until(lambda: ts.serial("usbgone").count("usb disk shoji-usb-stick") == 2, 90, "the guest reading it again")
        ts.ok("usb", "detach", port)
        ts.ok("set", "usbgone", "policy.usb-storage=deny")
        replug(ts, switch)
        wait_until(lambda: len(moves()) > len(before) + 1, 60, "the stick judged for the shown VM")
        assert moves()[len(before) + 1:] == ["usb-refused"], events(ts, "usbgone")
        wait_until(lambda: stick_on_host_driver(port), 60, "the refused stick with the host")
    ts.ok("set", "usbgone", "policy.usb-storage=allow")
    wait_until(lambda: ts.js("usb", "list")["seat_focus"] is None, 10, "the focus forgotten with the seat")
    replug(ts, switch)
    wait_until(lambda: stick_on_host_driver(port), 60, "the stick with the host")
    time.sleep(2)  # an attach would have begun within the plug's handling
    assert len(moves()) == len(before) + 2, events(ts, "usbgone")
    assert {d["port"]: d["holder"] for d in ts.js("usb", "list")["devices"]}[port] == "host"


def kernel_log():
    """The kernel's log as /dev/kmsg holds it now (read without consuming it)."""
    fd = os.open("/dev/kmsg", os.O_RDONLY | os.O_NONBLOCK)
    lines = []
    try:
        while True:
            try:
                lines.append(os.read(fd, 8192).decode(errors="replace").split(";", 1)[-1])
            except BlockingIOError:
                return lines
            except OSError:  # a record overwritten while read: go on
                continue
    finally:
        os.close(fd)


def usbip_message(rng, devid, seq):
    """One USB/IP message a hostile guest could send: mostly ones the relay's filter lets pass
    with wild values within its rules (any control request with a consistent setup, transfers
    on any endpoint of up to a MiB, ISO packets within their buffer, unlinks of anything), and
    one in twenty that breaks a rule (the relay then ends the connection). Big-endian."""
    if rng.random() < 0.02:  # a rule broken: a wild header, or garbage
        wild = struct.pack(">10I", rng.choice((1, 3)), seq, devid ^ rng.choice((0, 1)), rng.getrandbits(2), rng.getrandbits(5),
                           rng.getrandbits(12), rng.choice((0x7fffffff, 0xffffffff, 2 << 20)), 0, rng.getrandbits(12), 0)
        return wild + bytes(rng.getrandbits(8) for _ in range(8))
    if rng.random() < 0.1:
        return struct.pack(">6I", 2, seq, devid, rng.choice((0, 1)), 0, rng.choice((max(seq - 1, 0), rng.getrandbits(32)))) + bytes(24)
    # the stick's endpoints (0; 1 in, 2 out, bulk), and now and then one it has not
    ep, direction = rng.choice(((0, 0), (0, 1), (0, 0), (0, 1), (1, 1), (2, 0), (1, 1), (2, 0))
                               + ((rng.randrange(16), rng.choice((0, 1))),) * (rng.random() < 0.1))
    flags = rng.choice((0, 0x200, 0x1, 0x40, 0x3ff & rng.getrandbits(10)))
    packets = 0
    if ep == 0:
        length = rng.choice((0, 0, 1, 8, 18, 64, 255, 4096, 0xffff))
        rtype = rng.choice((0x00, 0x01, 0x02, 0x20, 0x21, 0x22, 0x40, 0x41, 0x60)) | (0x80 if direction == 1 else 0)
        request = rng.choice((0, 1, 3, 5, 6, 7, 8, 10, 11, 12, 0xfe, 0xff, rng.getrandbits(8)))
        if rtype == 0 and request == 9:
            request = 6
        setup = struct.pack("<BBHHH", rtype, request, rng.getrandbits(16), rng.getrandbits(16), length)
        if length == 0 and direction == 1:
            direction = 0
            setup = bytes([setup[0] & 0x7f]) + setup[1:]
    else:
        length = rng.choice((0, 1, 13, 31, 512, 4096, 65536, rng.getrandbits(20)))
        setup = bytes(rng.getrandbits(8) for _ in range(8))
        packets = rng.choice((0, 0, 0, 0xffffffff, 1, 4, 32)) if length else 0
    head = struct.pack(">10I", 1, seq, devid, direction, ep, flags, length, rng.getrandbits(16), packets, rng.getrandbits(8))
    data = bytes(rng.getrandbits(8) for _ in range(length)) if direction == 0 and length <= 65536 else b""
    if direction == 0 and length > 65536:
        data = bytes(length)
    iso = b""
    if packets not in (0, 0xffffffff):
        for _ in range(packets):
            off = rng.randrange(length + 1)
            iso += struct.pack(">4I", off, rng.randrange(length - off + 1), rng.getrandbits(8), 0)
    return head + setup + data + iso


def disk_node(usb_dir, what):
    """The node of the disk of the USB device at usb_dir (a sysfs directory), once there (made
    from sysfs when the harness has no udev to make it)."""
    block = f"{usb_dir}/*:1.0/host*/target*/*/block/*"
    wait_until(lambda: glob.glob(block), 30, what)
    sys_dir = glob.glob(block)[0]
    node = "/dev/" + os.path.basename(sys_dir)
    if not os.path.exists(node):
        major, minor = map(int, open(sys_dir + "/dev").read().split(":"))
        os.mknod(node, 0o600 | stat.S_IFBLK, os.makedev(major, minor))
    return node


def stick_reads(port):
    """Whether the stick's disk, on the host, begins as the harness wrote it."""
    node = disk_node(f"/sys/bus/usb/devices/{port}", "the stick's disk on the host")
    with open(node, "rb") as f:
        return f.read(15) == b"shoji-usb-stick"


USBDEVFS_RESET = 0x5514  # _IO('U', 20)


def usb_reset(stick):
    """Resets the stick as shojid's give-back does (a guest may have left it in any state)."""
    fd = os.open("/dev/bus/usb/%03d/%03d" % (stick["bus"], stick["device"]), os.O_RDWR)
    try:
        fcntl.ioctl(fd, USBDEVFS_RESET, 0)
    finally:
        os.close(fd)


def test_usb_exporter_fuzzed(ts):
    # What a hostile guest sends on its USB/IP connection reaches the exporter (usb_libusb.c; the
    # one shojid runs jailed, here unconfined, with the test as the guest), and from it only
    # usbfs calls reach the host kernel. Rounds of wild messages, each until the exporter ends
    # the connection for a broken rule or the messages run out; then the exporter has never
    # crashed, the kernel has logged no oops, warning or sanitizer report, and the stick, reset
    # and given back to usb-storage, reads as before.
    if not ts.real:
        raise Skip("needs the harness machine's kernel and USB stick")
    stick = harness_usb(ts).get("46f4:0001")
    if not stick:
        raise Skip("no harness USB stick here")
    exporter = os.path.join(ts.bindir, "..", "tests", "unit", "usbip_export_run")
    port = stick["port"]
    node = "/dev/bus/usb/%03d/%03d" % (stick["bus"], stick["device"])
    devid = stick["bus"] << 16 | stick["device"]
    seed = int(os.environ.get("SHOJI_USBIP_SEED", random.getrandbits(32)))
    rng = random.Random(seed)
    print(f"note: the USB exporter fuzzed with seed {seed} (SHOJI_USBIP_SEED={seed} repeats it)")
    before = len(kernel_log())
    sent, ends, passed = 0, {}, 0
    deadline = time.monotonic() + 40

    def drain(sock):
        try:
            while sock.recv(65536):
                pass
        except OSError:
            pass

    try:
        for rnd in range(60):
            guest, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            proc = subprocess.Popen([exporter, str(theirs.fileno()), node, str(devid), "1"],
                                    pass_fds=(theirs.fileno(),), stdout=subprocess.PIPE, text=True)
            theirs.close()
            reader = threading.Thread(target=drain, args=(guest,), daemon=True)
            reader.start()
            try:
                for seq in range(1, 301):
                    guest.sendall(usbip_message(rng, devid, seq))
                    sent += 1
            except OSError:  # the exporter ended the connection
                pass
            guest.shutdown(socket.SHUT_RDWR)
            out = proc.communicate(timeout=60)[0].strip()
            reader.join(10)
            guest.close()
            assert proc.returncode == 0, f"the exporter died (status {proc.returncode}): {out!r}"
            m = re.match(r"(\w+).*\((\d+) messages passed\)", out)
            assert m and m[1] in ("closed", "broke"), f"the exporter ended otherwise: {out!r}"
            ends[m[1]] = ends.get(m[1], 0) + 1
            passed += int(m[2])
            usb_reset(stick)
            if time.monotonic() > deadline:
                break
    finally:
        sysfs_write("/sys/bus/usb/drivers_probe", f"{port}:1.0")
    bad = [line for line in kernel_log()[before:]
           if re.search(r"BUG|Oops|general protection|WARNING:|KASAN|UBSAN|Call Trace|refcount_t", line)]
    assert not bad, "the kernel complained while the exporter was fuzzed:\n" + "".join(bad[:20])
    # usbfs claims an interface a request names on the caller's word, logging each: the exporter
    # stalls a request for an interface or endpoint it did not claim, so the guest cannot flood
    # the host's log that way
    claims = [line for line in kernel_log()[before:] if "did not claim interface" in line]
    assert not claims, "the guest's requests made usbfs claim interfaces:\n" + "".join(claims[:5])
    wait_until(lambda: stick_on_host_driver(port), 30, "the stick back with usb-storage")
    assert stick_reads(port), "the stick reads otherwise after the fuzzing"
    assert passed > 500, f"only {passed} messages passed the filter: the exporter was hardly fuzzed"
    print(f"note: {sent} USB/IP messages sent in {rnd + 1} connections, {passed} passed the filter to the device; "
          f"rounds ended {ends}; no crash, no kernel complaint")


def usb_host_policy(ts):
    # The host's default policy (--usb-policy) holds where a VM says nothing; the VM's word
    # wins; a file others may write, or a bad line, is refused naming the file and the fix.
    policy = os.path.join(ts.dir, "usb.conf")
    with open(policy, "w") as f:
        f.write("# the host's default\n[usb]\nusb-storage = deny\nusb-deny = id:0403:*\n")
    os.chmod(policy, 0o644)
    restart_with(ts, ["--usb-policy", policy])
    try:
        ts.create("usbvm2")

        def verdicts():
            return {d["port"]: (d["allowed"], d.get("why", "")) for d in ts.js("usb", "list", "usbvm2")["devices"]}
        v = verdicts()
        assert v["1-2"] == (False, "usbvm2 may not have USB storage (usb-storage = deny in the host's policy)"), v
        assert v["1-4"] == (False, "the host's usb-deny names it (id:0403:*)"), v
        ts.ok("set", "usbvm2", "policy.usb-storage=allow")
        assert verdicts()["1-2"] == (True, ""), verdicts()
        ts.ok("set", "usbvm2", "policy.usb-storage=")  # unset: the host's word again
        assert not verdicts()["1-2"][0]
        os.chmod(policy, 0o666)
        ts.status(1, "usb", "list", "usbvm2", words=[policy, "chown root and chmod go-w"])
        os.chmod(policy, 0o644)
        with open(policy, "a") as f:
            f.write("usb-storage = allow\n")
        ts.status(1, "usb", "list", "usbvm2", words=[f"{policy}:5: usb-storage is given twice"])
        ts.ok("usb", "list")  # the list alone judges nothing
        ts.ok("delete", "usbvm2")
    finally:
        restart_with(ts, [])


def test_slirp_nat_as_net_uid(ts):
    # A slirp NIC's NAT is shoji-slirp, which the monitor starts before its jail: jailed, it runs
    # as the VM's net uid (--net-uid), neither root nor the monitor's uid, in the host's network
    # namespace and under its own seccomp filter, while the monitor has an empty one. When it
    # ends (the monitor's log says how), shojid starts another as the same uid and hands its
    # socket over (net-link): the NIC comes up again, the forward reaches the guest through it,
    # and after a guest reboot too; each ends with the VM.
    web, boot = vmmtest.free_port(), vmmtest.free_port()
    ts.ok("create", "nat", "--kernel", os.path.join(ts.guest_dir, "vmlinuz"), "--initrd",
          os.path.join(ts.guest_dir, "initramfs.cpio.gz"), "--memory", "128M", "--cmdline",
          "console=ttyS0 quiet shoji.action=nettest shoji.url=http://10.0.2.2:1/none", "--net",
          f"slirp,fwd=tcp:{web}:8080,fwd=tcp:{boot}:8081")
    ts.ok("start", "nat")
    vm = ts.vm("nat")
    args, _ = monitor_args(ts, "nat")
    if os.geteuid() == 0:
        assert vm["net_uid"] not in (0, vm["jail_uid"]) and args[args.index("--net-uid") + 1] == str(vm["net_uid"]), \
            (vm, args)
    if ts.real:
        kids = []

        def helper():
            kids[:] = [c for t in os.listdir(f"/proc/{vm['pid']}/task")
                       for c in open(f"/proc/{vm['pid']}/task/{t}/children").read().split()]
            return kids
        wait_until(helper, 30, "the monitor's shoji-slirp")
        pid = int(kids[0])
        nat_confined(ts, vm, pid)
        assert os.readlink(f"/proc/{vm['pid']}/ns/net") != os.readlink("/proc/self/ns/net"), \
            "a slirp VM's monitor shares the host's network"
        wait_until(lambda: "net serving sha256=" in ts.serial("nat"), ts.boot_timeout, "nat serving")
        os.kill(pid, signal.SIGKILL)
    else:
        control(ts, "nat", {"cmd": "fake-nat-end", "nic": "0"})
    wait_until(lambda: any(e == "uplink-failed" and "shoji-slirp" in d and "ended" in d for e, d in events(ts, "nat")),
               60, "the NAT's end seen")
    wait_until(lambda: uplink_of(ts, "nat", "shoji-slirp") and alive(uplink_of(ts, "nat", "shoji-slirp")), 60,
               "a new shoji-slirp")
    wait_until(lambda: control(ts, "nat", {"cmd": "status"})["nics"][0]["link"] == "up", 30, "the NIC up again")
    again = uplink_of(ts, "nat", "shoji-slirp")
    nat_confined(ts, vm, again)
    with open(f"/proc/{again}/cmdline", "rb") as f:
        argv = f.read().decode().split("\0")
    assert argv[argv.index("--fwd") + 1] == f"tcp:127.0.0.1:{web}:8080", argv  # the definition's forwards
    if ts.real:
        mlog = ts.js("logs", "nat", "--bytes", "65536")["monitor"]
        # (the pid in the monitor's own PID namespace)
        assert re.search(r"NIC 0's user-mode NAT \(shoji-slirp, pid \d+\) was killed by signal 9", mlog), mlog[-1500:]
        nat_serves(ts, web, 1)  # through the new shoji-slirp
        socket.create_connection(("127.0.0.1", boot), 30).close()  # the guest reboots
        nat_serves(ts, web, 2)  # the next boot's NIC is on it too
        assert uplink_of(ts, "nat", "shoji-slirp") == again and alive(again), events(ts, "nat")
    ts.ok("kill", "nat")
    wait_until(lambda: not alive(again), 30, "the new shoji-slirp gone with its VM")
    if ts.real:
        assert not alive(pid), f"the first shoji-slirp ({pid}) still runs"
    ts.ok("delete", "nat")


def test_slirp_nat_old_monitor(ts):
    # A monitor started before shojid restarted slirp NICs' NATs (adopted after an upgrade)
    # cannot take a new shoji-slirp's socket: when its own ends, shojid says once that the VM
    # must restart, and starts none, look after look.
    if ts.real:
        raise Skip("needs a monitor from before the change: the stand-in plays one")
    ts.ok("create", "oldnat", "--kernel", os.path.join(ts.guest_dir, "vmlinuz"), "--cmdline",
          "fake.old_monitor=1", "--net", "slirp")
    ts.ok("start", "oldnat")
    assert "takes_socket" not in control(ts, "oldnat", {"cmd": "status"})["nics"][0]
    control(ts, "oldnat", {"cmd": "fake-nat-end", "nic": "0"})
    said = lambda: [d for e, d in events(ts, "oldnat") if e == "uplink-failed"]  # noqa: E731
    wait_until(lambda: said(), 30, "the refusal said")
    assert "restart the VM" in said()[0] and "older shoji" in said()[0], said()
    time.sleep(12)  # past the next look (every 10 s)
    assert len(said()) == 1 and uplink_of(ts, "oldnat", "shoji-slirp") is None, events(ts, "oldnat")
    assert control(ts, "oldnat", {"cmd": "status"})["nics"][0]["link"] == "down"
    ts.ok("kill", "oldnat")
    ts.ok("delete", "oldnat")


def nat_serves(ts, port, boots):
    """The blob the guest's boot number boots serves comes through the forward on port."""
    wait_until(lambda: ts.serial("nat").count("net serving sha256=") >= boots, ts.boot_timeout, f"nat serving (boot {boots})")
    want = ts.serial("nat").split("net serving sha256=")[boots].split()[0]
    got = hashlib.sha256(urllib.request.urlopen(f"http://127.0.0.1:{port}/blob", timeout=60).read()).hexdigest()
    assert got == want, (boots, got, want)


def nat_confined(ts, vm, pid):
    """shoji-slirp pid runs under its seccomp filter, as the VM's net uid (where jailed) in the
    host's network namespace."""
    with open(f"/proc/{pid}/status") as f:
        st = dict(re.findall(r"^(\w+):[ \t]*(.*)$", f.read(), re.M))
    assert st["Name"] == "shoji-slirp" and st["Seccomp"] == "2" and st["NoNewPrivs"] == "1", st
    if os.geteuid() == 0:
        assert st["Uid"].split() == [str(vm["net_uid"])] * 4 and st["CapEff"] == "0" * 16, st
        assert os.readlink(f"/proc/{pid}/ns/net") == os.readlink("/proc/self/ns/net"), \
            "shoji-slirp is not in the host's network"


def uplink_of(ts, name, program="passt"):
    """The pid of the passt (or shoji-slirp) that shojid's last uplink-up event names for VM
    name's NIC net0."""
    ups = [d for e, d in events(ts, name) if e == "uplink-up" and d.startswith("nic net0:") and f" {program} pid" in d]
    return int(re.search(rf"{program} pid (\d+)", ups[-1])[1]) if ups else None


def ip_udp_frame(src, dst, sport, dport, payload):
    """An Ethernet frame from the guest's MAC carrying one IPv4 UDP datagram (no UDP checksum)."""
    udp = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0, socket.inet_aton(src),
                     socket.inet_aton(dst))
    words = sum(struct.unpack("!10H", ip))
    words = (words >> 16) + (words & 0xFFFF)
    ip = ip[:10] + struct.pack("!H", ~(words + (words >> 16)) & 0xFFFF) + ip[12:]
    return bytes.fromhex("02fc00000001525400123456") + b"\x08\x00" + ip + udp


def passt_dns(argv):
    """A copy of shojid's passt (argv, its forwards left out) in a mount namespace whose
    /etc/resolv.conf names 127.0.0.2: the guest's query to 10.0.2.3 reaches that resolver, not
    the host's 127.0.0.1:53 (the gateway's loopback, which --no-map-gw closes), and its answer
    comes back from 10.0.2.3."""
    keep, skip = [], False
    for a in argv[1:]:
        if skip or a in ("-t", "-u"):
            skip = not skip
            continue
        keep.append(a)
    with tempfile.TemporaryDirectory() as d, contextlib.ExitStack() as stack:
        with open(os.path.join(d, "resolv.conf"), "w") as f:
            f.write("nameserver 127.0.0.2\n")
        servers = {}
        for addr in ("127.0.0.1", "127.0.0.2"):
            servers[addr] = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
            servers[addr].bind((addr, 53))
            servers[addr].settimeout(0.1)
        guest, ours = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        stack.enter_context(guest)
        stack.enter_context(ours)
        p = subprocess.Popen(["unshare", "--mount", "sh", "-c", 'mount --bind "$0" /etc/resolv.conf && exec "$@"',
                              os.path.join(d, "resolv.conf"), argv[0], *keep, "-t", "none", "-u", "none"],
                             close_fds=False, preexec_fn=lambda: os.dup2(ours.fileno(), 3),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        stack.callback(p.wait)
        stack.callback(p.kill)
        query = bytes.fromhex("5d1e01000001000000000000076578616d706c6503636f6d0000010001")
        frame = ip_udp_frame("10.0.2.15", "10.0.2.3", 40053, 53, query)
        guest.sendall(struct.pack("!I", len(frame)) + frame)
        heard, deadline = {}, time.monotonic() + 20
        while "127.0.0.2" not in heard and time.monotonic() < deadline:
            for addr, srv in servers.items():
                with contextlib.suppress(socket.timeout):
                    data, peer = srv.recvfrom(2048)
                    heard[addr] = data
                    srv.sendto(data[:2] + b"\x81\x80" + data[4:], peer)
        assert list(heard) == ["127.0.0.2"], f"the guest's DNS query reached {list(heard) or 'no resolver'}"
        guest.settimeout(20)
        got, frames = b"", []
        while not any(b"\x5d\x1e\x81\x80" in f for f in frames):
            got += guest.recv(65536)
            while len(got) >= 4 and len(got) >= 4 + struct.unpack("!I", got[:4])[0]:
                n = struct.unpack("!I", got[:4])[0]
                frames.append(got[4:4 + n])
                got = got[4 + n:]
        answer = next(f for f in frames if b"\x5d\x1e\x81\x80" in f)
        assert answer[12:14] == b"\x08\x00" and socket.inet_ntoa(answer[26:30]) == "10.0.2.3", answer[:40].hex()


def test_passt_uplink(ts):
    # A NIC of type passt: shojid starts a passt of the VM's own (as its net uid, neither root
    # nor the monitor's uid), with the forwards and the host-loopback default mapped to passt's
    # options, and hands the monitor its socket; the monitor needs no host network. passt ends
    # with the VM; a restarted shojid leaves a serving one alone; one that died is replaced.
    if not os.access("/usr/bin/passt", os.X_OK):
        raise Skip("passt is not installed (apt install passt)")
    with vmmtest.routable_interface():
        passt_uplink(ts)


def passt_uplink(ts):
    port = vmmtest.free_port()
    ts.ok("create", "upv", "--kernel", os.path.join(ts.guest_dir, "vmlinuz"), "--initrd",
          os.path.join(ts.guest_dir, "initramfs.cpio.gz"), "--memory", "128M", "--cmdline",
          "console=ttyS0 quiet shoji.action=nettest shoji.url=http://10.0.2.2:1/none",
          "--net", f"passt,fwd=tcp:{port}:8080")
    ts.ok("start", "upv")
    pid = uplink_of(ts, "upv")
    assert pid and alive(pid), events(ts, "upv")
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        argv = f.read().decode().split("\0")
    assert "--no-map-gw" in argv and f"127.0.0.1/{port}:8080" in argv and argv[argv.index("-u") + 1] == "none", argv
    if os.geteuid() == 0:
        passt_dns([a for a in argv if a])
    margs, _ = monitor_args(ts, "upv")
    assert any(a.startswith("passt,mac=") for a in margs) and not any("fwd=" in a for a in margs), margs
    if os.geteuid() == 0:  # jailed: passt runs as the VM's net uid, a uid of its own
        vm = ts.vm("upv")
        with open(f"/proc/{pid}/status") as f:
            uid = int(next(l for l in f if l.startswith("Uid:")).split()[1])
        assert uid == vm["net_uid"] and uid not in (0, vm["jail_uid"]), (uid, vm)
        if ts.real:
            net = os.readlink(f"/proc/{ts.vm('upv')['pid']}/ns/net")
            assert net != os.readlink("/proc/self/ns/net"), "a passt VM's monitor shares the host's network"
    wait_until(lambda: socket.create_connection(("127.0.0.1", port), 2).close() is None, 30,
               f"passt's forward listening on {port}")
    if ts.real:  # the forward reaches the guest's server; 10.0.2.2 is not the host's loopback
        wait_until(lambda: "net serving sha256=" in ts.serial("upv"), ts.boot_timeout, "upv serving")
        want = ts.serial("upv").split("net serving sha256=")[1].split()[0]
        got = hashlib.sha256(urllib.request.urlopen(f"http://127.0.0.1:{port}/blob", timeout=60).read()).hexdigest()
        assert got == want, (got, want)
        assert f"net fetched sha256={hashlib.sha256(b'').hexdigest()}" in ts.serial("upv")
    else:
        assert control(ts, "upv", {"cmd": "status"})["nics"][0]["link"] == "up"
    assert links(ts)[("upv", "net0")] == ("passt", "up", ""), links(ts)
    assert "(passt: user networking)" in ts.ok("net")
    ts.stop_daemon()  # adopted: its passt is left alone while it serves
    ts.start_daemon()
    assert uplink_of(ts, "upv") == pid and alive(pid), events(ts, "upv")
    os.kill(pid, signal.SIGKILL)  # passt gone: the NIC goes down, and shojid starts another
    wait_until(lambda: any(e == "uplink-failed" and "ended" in d for e, d in events(ts, "upv")),
               60, "passt's end seen")
    wait_until(lambda: uplink_of(ts, "upv") not in (None, pid) and alive(uplink_of(ts, "upv")), 60, "a new passt")
    wait_until(lambda: links(ts)[("upv", "net0")][1] == "up", 30, "shoji net: up again")
    if ts.real:  # the new passt reaches the guest, which has sent it nothing: the monitor told it the MAC
        wait_until(lambda: socket.create_connection(("127.0.0.1", port), 2).close() is None, 30,
                   f"the new passt's forward listening on {port}")
        got = hashlib.sha256(urllib.request.urlopen(f"http://127.0.0.1:{port}/blob", timeout=60).read()).hexdigest()
        assert got == want, ("through the new passt", got, want)
    pid = uplink_of(ts, "upv")
    ts.ok("kill", "upv")
    wait_until(lambda: not alive(pid), 30, "passt gone with its VM")
    ts.ok("delete", "upv")


TESTS = [test_definitions_and_errors, test_three_vms_run_at_once, test_cgroups,
         test_monitor_in_its_own_pid_namespace, test_jail_uid_per_vm,
         test_daemon_restart_keeps_vms,
         test_daemon_kill9_keeps_vms, test_monitor_kill9_reported_within_a_second,
         test_sigsys_reported, test_keeper_kill9, test_twenty_concurrent_commands, test_two_concurrent_starts,
         test_hostile_api_messages, test_permission_denied, test_console, test_stop_kill_delete,
         test_failed_start_is_reported, test_autostart, test_jail_uid_range_and_migration,
         test_devices_through_the_toolstack, test_slirp_nat_as_net_uid, test_slirp_nat_old_monitor,
         test_firmware_vm, test_firmware_errors,
         test_guest_agent_through_toolstack, test_clipboard_between_vms, test_links_between_vms, test_link_guards,
         test_usb_list, test_usb_attach_errors]
# The slowest cases (minutes in the harness), run by scripts/test --slow (the meson test
# integration-toolstack-slow) and before an issue they touch is called done.
SLOW_TESTS = [test_usb_attach, test_usb_attach_waits_on_its_own, test_usb_unplug, test_usb_given_back_when_shojid_stops,
              test_usb_keyboard_and_serial, test_link_flood,
              test_usb_exporter_fuzzed, test_passt_uplink]


def parse_args(needs, flags=()):
    """--bindir, --vmm, --guest-dir and the (flag, help) pairs of flags; None when the real
    monitor lacks the option `needs`."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--bindir", required=True, help="where shojid, shoji (and shoji-seat) are")
    ap.add_argument("--vmm", required=True)
    ap.add_argument("--guest-dir", required=True)
    for flag, text in flags:
        ap.add_argument(flag, action="store_true", help=text)
    a = ap.parse_args()
    a.bindir, a.vmm, a.guest_dir = map(os.path.abspath, (a.bindir, a.vmm, a.guest_dir))
    if not a.vmm.endswith(".py"):  # the real monitor: it must speak the contract under test
        usage = subprocess.run([a.vmm, "--help"], capture_output=True, text=True).stdout
        if needs not in usage:
            print(f"SKIP: {a.vmm} has no {needs} yet")
            return None
    return a


def main():
    a = parse_args("--control-socket", [("--slow", "run the slow cases (SLOW_TESTS) instead of the others")])
    if not a:
        return 77  # meson's "skipped"
    if a.slow:
        return run_tests(Toolstack(a), only(SLOW_TESTS))
    stand_in = a.vmm.endswith(".py")  # seconds, not minutes: the slow cases' stand-in parts too
    return run_tests(Toolstack(a), only(TESTS + SLOW_TESTS if stand_in else TESTS))


def only(tests):
    """The tests SHOJI_TESTS names (comma-separated), to run one case again; all when unset."""
    names = [n for n in os.environ.get("SHOJI_TESTS", "").split(",") if n]
    unknown = set(names) - {t.__name__ for t in TESTS + SLOW_TESTS}
    if unknown:
        sys.exit(f"SHOJI_TESTS names no such test: {', '.join(sorted(unknown))}")
    return [t for t in tests if t.__name__ in names] if names else tests


# shojid's record of a monitor that ended with vmmtest.emulation_fault's status and message.
CRASH_LINE = re.compile(r"shojid: (\S+) crashed: exit status (\d+) \(.*?\): (.*)")


def image_suite_args(*boots):
    """The arguments of a suite with built images (tests/image): --bindir, --vmm, --guest-dir,
    and --NAME BOOT.json for each of boots (tests/image/boot_files.py's); (args with absolute
    paths, {NAME: the boot files})."""
    ap = argparse.ArgumentParser()
    for opt in ["--bindir", "--vmm", "--guest-dir"] + [f"--{b}" for b in boots]:
        ap.add_argument(opt, required=True)
    a = ap.parse_args()
    a.bindir, a.vmm, a.guest_dir = map(os.path.abspath, (a.bindir, a.vmm, a.guest_dir))
    files = {}
    for b in boots:
        with open(getattr(a, b)) as f:
            files[b] = json.load(f)
    return a, files


def run_single(ts, test, *args, logs=("shojid.log",)):
    """Runs one test (test(ts, *args)) as the image suites do: "ok" or "not ok" with the ends of
    logs (files in ts.dir) on stdout; (passed, failed)."""
    t0 = time.monotonic()
    try:
        test(ts, *args)
        print(f"ok - {test.__name__} ({time.monotonic() - t0:.1f}s)", flush=True)
        return 1, 0
    except Exception as e:  # noqa: BLE001 - every failure is reported the same way
        print(f"not ok - {test.__name__}: {e}", flush=True)
        for f in logs:
            with open(os.path.join(ts.dir, f), "rb") as fh:
                print(f"--- {f} (end) ---\n" + fh.read().decode(errors="replace")[-3000:])
        return 0, 1


def failed_status(ts, failed, passed):
    """The suite's exit status (vmmtest.failed_status), from what shojid's log says crashed."""
    fault = None
    try:
        with open(os.path.join(ts.dir, "shojid.log"), "rb") as f:
            for m in CRASH_LINE.finditer(f.read().decode(errors="replace")):
                try:  # what the guest printed: the evidence beside the monitor's word
                    with open(os.path.join(ts.state, "vms", m[1], "serial.log"), "rb") as s:
                        guest = s.read().decode(errors="replace")
                except OSError:  # a disposable VM's log goes with it: what the suite last read
                    guest = ts.seen_serial.get(m[1], "")
                if vmmtest.emulation_fault(int(m[2]), m[3], guest):
                    fault = m[0]
                    break
    except OSError:
        pass
    return vmmtest.failed_status(failed, passed, fault)


def run_tests(ts, tests, notes=()):
    """Starts the daemon and runs the tests in order (each builds on what the previous ones
    left); prints one line each, the notes, and the daemon's log when one failed."""
    passed = failed = skipped = 0
    try:
        ts.start_daemon()
        for t in tests:
            start = time.monotonic()
            try:
                t(ts)
                passed += 1
                print(f"ok - {t.__name__} ({time.monotonic() - start:.1f}s)", flush=True)
            except Skip as e:
                skipped += 1
                print(f"ok - {t.__name__} # SKIP {e}", flush=True)
            except Exception as e:  # noqa: BLE001
                failed += 1
                detail = str(e) if isinstance(e, AssertionError) else traceback.format_exc()
                print(f"not ok - {t.__name__}: {detail}", flush=True)
    finally:
        for n in notes:
            print(f"note: {n}")
        if failed:
            with open(os.path.join(ts.dir, "shojid.log"), "rb") as f:
                print("--- shojid log (end) ---\n" + f.read().decode(errors="replace")[-3000:])
        status = failed_status(ts, failed, passed)
        ts.cleanup()
    print(f"{passed} passed, {failed} failed, {skipped} skipped")
    return status


if __name__ == "__main__":
    sys.exit(main())
