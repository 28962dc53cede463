#!/usr/bin/env python3
"""The monitor's host-side controls, with the Debian guest: the control socket (status, pause,
resume, graceful shutdown through the ACPI power button, hard stop) and what hostile clients do
to it, the serial socket and log, and the sandbox (jail and seccomp allow-list); then the guest
agent's tests (test_agent.py), in the same harness boot."""
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time

import vmmtest

TICK = re.compile(r"shoji-guest: tick (\d+)")
CONTROL_MAX_LINE = 4 * ((256 * 1024 + 2) // 3) + 4096  # control_proto.h, for SHOJI_CLIPBOARD_MAX
JAIL_ID = 4242


KERNEL_TROUBLE = re.compile(r"WARNING:|BUG:|Oops|general protection|double fault|Kernel panic")


class Vm:
    """A shoji-vmm process whose serial console goes to a log file the test reads."""

    def __init__(self, env, action, extra=(), cpus=1, memory=256, tmp=None, boot=None):
        """boot: what the guest boots from (default: the test guest's kernel and initramfs
        running action)."""
        self.env = env
        self.tmp = tmp or scratch(action)
        self.ctl_path = os.path.join(self.tmp, "control.sock")
        self.log_path = os.path.join(self.tmp, "serial.log")
        self.err_path = os.path.join(self.tmp, "stderr")
        boot = boot or ["--kernel", env.kernel, "--initrd", env.initrd,
                        "--cmdline", f"console=ttyS0 quiet shoji.action={action}"]
        args = [env.vmm, *boot, "--cpus", str(cpus), "--memory", str(memory),
                "--control-socket", self.ctl_path, "--serial-log", self.log_path, *extra]
        self.err = open(self.err_path, "wb")
        self.p = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                  stderr=self.err)

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def ticks(self):
        return [int(m) for m in TICK.findall(self.log())]

    def stderr(self):
        with open(self.err_path, "rb") as f:
            return f.read().decode(errors="replace")

    def wait_for(self, what, timeout=240):
        """Waits until what(self) is true; fails if the monitor ends first."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if what(self):
                return
            if self.p.poll() is not None:
                raise AssertionError(f"shoji-vmm ended with {self.p.returncode} while waiting:\n"
                                     + self.tail())
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting:\n{self.tail()}\n"
                             + vmmtest.stuck_report(self.p.pid, self.env.emulation_faults))

    def wait_exit(self, timeout=240):
        try:
            return self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
            raise AssertionError(f"shoji-vmm did not end in {timeout}s:\n{self.tail()}")

    def connect(self):
        end = time.monotonic() + 30
        while True:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                s.connect(self.ctl_path)
                s.settimeout(30)
                return s
            except OSError:
                s.close()
                if time.monotonic() > end:
                    raise
                time.sleep(0.1)

    def tail(self, n=25):
        """The console's last n lines and the monitor's errors, after the guest kernel's first
        warning or oops (with what follows it) where that came earlier."""
        log = self.log().splitlines()
        first = next((i for i, line in enumerate(log) if KERNEL_TROUBLE.search(line)), None)
        head = log[first:first + 20] + ["..."] if first is not None and first < len(log) - n else []
        return "\n".join(head + log[-n:] + ["--- stderr ---"] + self.stderr().splitlines()[-n:])

    def close(self):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()
        self.err.close()


def scratch(name):
    """A fresh directory in /tmp: the emulated machine's work tree (9p) cannot hold sockets."""
    return tempfile.mkdtemp(prefix=f"shoji-ctl-{name}-")


def request(s, obj):
    """Sends one request (a dict, or raw bytes as they are) and returns the reply as a dict."""
    data = obj if isinstance(obj, bytes) else json.dumps(obj).encode() + b"\n"
    s.sendall(data)
    return json.loads(read_line(s))


_pending = {}  # socket -> bytes received past the last line returned


def read_line(s):
    buf = _pending.pop(s, b"")
    while b"\n" not in buf:
        chunk = s.recv(4096)
        if not chunk:
            raise AssertionError(f"connection closed; got {buf!r}")
        buf += chunk
    line, rest = buf.split(b"\n", 1)
    if rest:
        _pending[s] = rest
    return line + b"\n"


def end_with(vm, c, cmd, want_rc, timeout=120):
    """Sends cmd ("shutdown" or "stop"), which must be accepted, and checks the exit status.
    These VMs have no agent: a shutdown is the ACPI power button's."""
    want = {"ok": True, "via": "acpi"} if cmd == "shutdown" else {"ok": True}
    rep = request(c, {"cmd": cmd})
    assert rep == want, rep
    rc = vm.wait_exit(timeout)
    assert rc == want_rc, f"exit status {rc} after {cmd}, expected {want_rc}:\n{vm.tail()}"


def closed(s):
    """True when the server has closed the connection (after any pending data)."""
    s.settimeout(10)
    try:
        while True:
            if not s.recv(4096):
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False


def test_control_protocol_and_hostile_clients(env):
    vm = Vm(env, "tick", cpus=2)
    try:
        vm.wait_for(lambda v: len(v.ticks()) >= 2)
        st = os.stat(vm.ctl_path)
        assert st.st_mode & 0o777 == 0o600, f"control socket mode {oct(st.st_mode)}"
        c = vm.connect()
        r = request(c, {"cmd": "status"})
        assert r["ok"] is True and r["state"] == "running", r
        assert r["pid"] == vm.p.pid and r["cpus"] == 2 and r["memory_mib"] == 256, r
        assert isinstance(r["uptime_s"], float) and r["uptime_s"] > 0, r
        # Errors keep the connection: each bad line gets one error line.
        for bad in (b"garbage\n", b"{\"cmd\":\"reboot\"}\n", b"[1,2]\n", b"{\"cmd\":7}\n",
                    b"{}\n", b"\n", b"{\"cmd\":\"status\"} trailing\n", b"\"\\u0000\"\n",
                    b"{\"cmd\":\"st\\u0000atus\"}\n", b"\xff\xfe{\n", b"[" * 5000 + b"\n"):
            r = request(c, bad)
            assert r["ok"] is False and r["error"] and "\n" not in r["error"], (bad[:40], r)
        # Several requests in one write, and one request split over several writes.
        c.sendall(b'{"cmd":"status"}\n{"cmd":"status"}\n')
        assert json.loads(read_line(c))["ok"] and json.loads(read_line(c))["ok"]
        for part in (b'{"cm', b'd":"sta', b'tus"}\r\n'):
            c.sendall(part)
            time.sleep(0.05)
        assert json.loads(read_line(c))["state"] == "running"
        # A line over CONTROL_MAX_LINE (a clipboard-set's base64 and 4 KiB): an error, then the
        # connection is closed.
        big = vm.connect()
        big.sendall(b"x" * (CONTROL_MAX_LINE + 1024))
        r = json.loads(read_line(big))
        assert r["ok"] is False and "longer" in r["error"], r
        assert closed(big), "an over-long line must close the connection"
        big.close()
        # A client that disconnects mid-line, and one that never reads its replies.
        half = vm.connect()
        half.sendall(b'{"cmd":"sta')
        half.close()
        deaf = vm.connect()
        deaf.setblocking(False)
        try:
            for _ in range(20000):
                deaf.send(b'{"cmd":"status"}\n')
        except (BlockingIOError, BrokenPipeError, ConnectionResetError):
            pass
        deaf.close()
        # More connections than the monitor serves at once: the extra ones are told and closed.
        many = [vm.connect() for _ in range(12)]
        refused = 0
        for s in many:
            s.settimeout(2)
            try:
                data = s.recv(4096)
                if data and b"too many" in data:
                    refused += 1
            except socket.timeout:
                pass
        for s in many:
            s.close()
        assert refused >= 1, "connections beyond the limit were not refused"
        # The monitor and the guest are still fine.
        assert request(c, {"cmd": "status"})["state"] == "running"
        n = len(vm.ticks())
        vm.wait_for(lambda v: len(v.ticks()) > n + 1)

        # Pause: the guest makes no progress; pause is idempotent; resume goes on.
        t0 = time.monotonic()
        r = request(c, {"cmd": "pause"})
        pause_s = time.monotonic() - t0
        assert r == {"ok": True, "state": "paused"}, r
        assert request(c, {"cmd": "pause"})["state"] == "paused"
        assert request(c, {"cmd": "status"})["state"] == "paused"
        time.sleep(0.5)  # output already on its way out of the UART
        frozen = vm.ticks()
        time.sleep(4)
        assert vm.ticks() == frozen, f"the guest ticked while paused: {frozen[-3:]} -> {vm.ticks()[-3:]}"
        assert vm.p.poll() is None
        t0 = time.monotonic()
        r = request(c, {"cmd": "resume"})
        resume_s = time.monotonic() - t0
        assert r == {"ok": True, "state": "running"}, r
        assert request(c, {"cmd": "resume"})["state"] == "running"
        vm.wait_for(lambda v: len(v.ticks()) > len(frozen) + 2, timeout=120)
        print(f"# pause reply {pause_s * 1000:.1f} ms, resume reply {resume_s * 1000:.1f} ms "
              "(emulated machine; ratios only)")

        # Hard stop: the reply, then exit status 6 at once; the socket is removed.
        end_with(vm, c, "stop", 6, timeout=60)
        assert "control socket" in vm.stderr(), vm.stderr()
        assert not os.path.exists(vm.ctl_path), "the control socket was not removed at exit"
    finally:
        vm.close()


def test_shutdown_powers_off_cleanly(env):
    vm = Vm(env, "tick")
    try:
        vm.wait_for(lambda v: len(v.ticks()) >= 2)  # acpid is up before the first tick
        end_with(vm, vm.connect(), "shutdown", 0)
        assert "shoji-guest: power button pressed, powering off" in vm.log(), vm.tail()
    finally:
        vm.close()


def test_shutdown_while_paused(env):
    # The button press resumes a paused guest, which then powers off.
    vm = Vm(env, "tick")
    try:
        vm.wait_for(lambda v: len(v.ticks()) >= 2)
        c = vm.connect()
        assert request(c, {"cmd": "pause"})["state"] == "paused"
        end_with(vm, c, "shutdown", 0)
    finally:
        vm.close()


def test_serial_socket_and_log(env):
    tmp = scratch("serial")
    sock_path = os.path.join(tmp, "serial.sock")
    vm = Vm(env, "shell", extra=["--serial", f"socket:{sock_path}"], tmp=tmp)
    try:
        vm.wait_for(lambda v: os.path.exists(sock_path), timeout=30)
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(sock_path)
        s.settimeout(5)
        # A second client is refused while the first is attached.
        second = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        second.connect(sock_path)
        assert closed(second), "a second serial client was not refused"
        second.close()
        vm.wait_for(lambda v: "ready; type 'poweroff'" in v.log())
        got = b""
        end = time.monotonic() + 240
        s.sendall(b"echo serial-in-$((6*7))\n")
        while b"serial-in-42" not in got and time.monotonic() < end:
            try:
                got += s.recv(4096)
            except socket.timeout:
                pass
        assert b"serial-in-42" in got, f"the guest did not run the socket's input: {got[-300:]!r}"
        s.sendall(b"poweroff -f\n")
        rc = vm.wait_exit(120)
        assert rc == 0, f"exit status {rc}:\n{vm.tail()}"
        log = vm.log()
        assert "shoji-guest: init started" in log and "serial-in-42" in log, log[-500:]
        assert not os.path.exists(sock_path), "the serial socket was not removed at exit"
    finally:
        vm.close()


def jail_setup():
    """A scratch directory the jail's user owns, and /dev/kvm open to its group."""
    tmp = scratch("jail")
    os.chown(tmp, JAIL_ID, JAIL_ID)
    os.chown("/dev/kvm", -1, JAIL_ID)
    os.chmod("/dev/kvm", 0o660)
    return tmp


def test_jail(env):
    tmp = jail_setup()
    disk = os.path.join(tmp, "disk.img")
    with open(disk, "wb") as f:
        f.truncate(16 << 20)
    os.chown(disk, JAIL_ID, JAIL_ID)
    vm = Vm(env, "tick", tmp=tmp, extra=["--jail-uid", str(JAIL_ID), "--jail-gid", str(JAIL_ID),
                                         "--disk", disk, "--rng"])
    try:
        vm.wait_for(lambda v: len(v.ticks()) >= 2)
        pid = vm.p.pid
        with open(f"/proc/{pid}/status") as f:
            status = f.read()
        ids = {k: v.split() for k, v in re.findall(r"^(Uid|Gid|Groups|NoNewPrivs|Seccomp|CapEff):[ \t]*(.*)$",
                                                   status, re.M)}
        assert ids["Uid"] == [str(JAIL_ID)] * 4 and ids["Gid"] == [str(JAIL_ID)] * 4, ids
        assert ids.get("Groups", []) == [] and ids["NoNewPrivs"] == ["1"], ids
        assert ids["Seccomp"] == ["2"] and ids["CapEff"] == ["0000000000000000"], ids
        # IPC and UTS namespaces of its own, and (no NIC) an empty network namespace.
        for ns in ("ipc", "uts", "net", "mnt"):
            assert os.readlink(f"/proc/{pid}/ns/{ns}") != os.readlink(f"/proc/self/ns/{ns}"), ns
        # What the monitor sees as its root: only the VM's files.
        root = f"/proc/{pid}/root"
        assert not os.path.exists(root + "/etc/shadow") and not os.path.exists(root + "/etc")
        assert os.path.exists(root + env.kernel) and os.path.exists(root + disk)
        assert os.path.exists(root + "/dev/kvm") and not os.path.exists(root + "/dev/sda")
        seen = sorted(os.listdir(root))
        # dev and proc, plus the top directories of the files bound in (the kernel, initrd and
        # disk): wherever the tree was checked out.
        bound = {p.split("/")[1] for p in (env.kernel, env.initrd, disk)}
        assert set(seen) <= {"dev", "proc"} | bound, (seen, bound)
        print(f"# jail root holds {seen}")
        # The build's test hook makes a system call outside the allow-list: SIGSYS kills the
        # whole monitor.
        c = vm.connect()
        c.sendall(b'{"cmd":"test-forbidden-syscall"}\n')
        rc = vm.wait_exit(60)
        assert rc == -signal.SIGSYS, f"exit status {rc}, expected death by SIGSYS:\n{vm.tail()}"
    finally:
        vm.close()


def test_jail_reboot(env):
    # A guest reboot rebuilds the whole VM inside the jail and under the allow-list.
    tmp = jail_setup()
    vm = Vm(env, "reboot", tmp=tmp, extra=["--jail-uid", str(JAIL_ID), "--jail-gid", str(JAIL_ID)])
    try:
        vm.wait_for(lambda v: v.log().count("shoji-guest: init started") >= 2)
        end_with(vm, vm.connect(), "stop", 6, timeout=60)
    finally:
        vm.close()


def test_no_seccomp_survives_hook(env):
    # With --no-seccomp the same call is harmless: proof that the filter is what kills. Then a
    # stop while paused ends the monitor at once.
    vm = Vm(env, "tick", extra=["--no-seccomp"])
    try:
        vm.wait_for(lambda v: len(v.ticks()) >= 1)
        c = vm.connect()
        assert request(c, {"cmd": "test-forbidden-syscall"}) == {"ok": True}
        assert request(c, {"cmd": "pause"})["state"] == "paused"
        end_with(vm, c, "stop", 6, timeout=60)
    finally:
        vm.close()


TESTS = [test_control_protocol_and_hostile_clients, test_shutdown_powers_off_cleanly,
         test_shutdown_while_paused, test_serial_socket_and_log, test_jail, test_no_seccomp_survives_hook]

if __name__ == "__main__":
    import test_agent  # the guest agent's tests share this file's harness boot
    sys.exit(vmmtest.main(TESTS + test_agent.TESTS, sys.argv[1:], slow=[test_jail_reboot]))
