"""netpasst: bench/net's uplink case, the user-mode NAT served by passt (Debian's) outside the
monitor. Under shoji-vmm a passt is given one end of a stream socket pair (--fd) and the monitor
the other end through its control socket (net-link), as shojid does for a NIC of type passt;
under QEMU a passt listens on a Unix socket that -netdev stream connects to, as libvirt does.
Both passts have the same options: the guest at 10.0.2.15 via 10.0.2.2, no host loopback, and
the host reaching the guest's ports 5201 and 5202 through forwards on the loopback."""
import os
import pwd
import socket
import subprocess
import tempfile
import time

import netlink

PASST = "/usr/bin/passt"


def available():
    return os.access(PASST, os.X_OK)


def passt_args(ports):
    return [PASST, "-f", "-q", "-1", "-4", "-a", "10.0.2.15", "-n", "24", "-g", "10.0.2.2", "--no-map-gw",
            "-t", f"127.0.0.1/{ports[0]}:5201", "-t", f"127.0.0.1/{ports[1]}:5202", "-u", "none"]


class Uplink:
    """One run's passt: before() ahead of the monitor's start, after() once it started, close()."""

    def __init__(self, ports, ctl=None, path=None):
        self.ports, self.ctl, self.path, self.p = ports, ctl, path, None
        self.log = None

    def _start(self, args, **kw):
        """passt, its words kept (said() gives them to a run that failed)."""
        self.log = tempfile.TemporaryFile()
        self.p = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log, **kw)

    def said(self):
        """passt's last words, and how it ended if it did: for a run that failed."""
        if not self.log:
            return "passt was not started"
        self.log.seek(0)
        words = self.log.read().decode(errors="replace").strip().splitlines()[-4:]
        ended = self.p.poll()
        state = "running" if ended is None else f"ended with status {ended}"
        return f"passt {state}; it said: {' | '.join(words) or 'nothing'}"

    def before(self):
        if self.path:  # QEMU: passt listens first, and -netdev stream connects to it
            if os.geteuid() == 0:  # passt started as root becomes nobody: its socket's folder is
                # theirs, and the folders above it must let them pass (or passt ends, saying nothing)
                nobody = pwd.getpwnam("nobody")
                os.makedirs(os.path.dirname(self.path), exist_ok=True)
                os.chown(os.path.dirname(self.path), nobody.pw_uid, nobody.pw_gid)
                os.chmod(os.path.dirname(os.path.dirname(self.path)), 0o711)
            self._start(passt_args(self.ports) + ["-s", self.path])
            deadline = time.monotonic() + 30
            while not os.path.exists(self.path):
                if time.monotonic() > deadline or self.p.poll() is not None:
                    raise RuntimeError(f"passt did not listen on {self.path}: {self.said()}")
                time.sleep(0.05)

    def after(self):
        if self.ctl:  # shoji-vmm: passt on one end of a pair, the other end handed to the monitor
            a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                self._start(passt_args(self.ports) + ["--fd", str(b.fileno())], pass_fds=[b.fileno()])
                netlink.control(self.ctl, '{"cmd":"net-link","nic":"0"}', a.fileno())
            finally:
                a.close()
                b.close()

    def close(self):
        if self.p:
            self.p.kill()
            self.p.wait()
            self.p = None
        if self.log:
            self.log.close()
            self.log = None
        if self.path and os.path.exists(self.path):
            os.unlink(self.path)
