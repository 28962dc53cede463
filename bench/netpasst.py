"""netpasst: bench/net's uplink case, the user-mode NAT served by passt (Debian's) outside the
monitor. Under shoji-vmm a passt is given one end of a stream socket pair (--fd) and the monitor
the other end through its control socket (net-link), as shojid does for a NIC of type passt;
under QEMU a passt listens on a Unix socket that -netdev stream connects to, as libvirt does.
Both passts have the same options: the guest at 10.0.2.15 via 10.0.2.2, no host loopback, and
the host reaching the guest's ports 5201 and 5202 through forwards on the loopback."""
import os
import socket
import subprocess
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

    def before(self):
        if self.path:  # QEMU: passt listens first, and -netdev stream connects to it
            self.p = subprocess.Popen(passt_args(self.ports) + ["-s", self.path], stdin=subprocess.DEVNULL,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            deadline = time.monotonic() + 30
            while not os.path.exists(self.path):
                if time.monotonic() > deadline or self.p.poll() is not None:
                    raise RuntimeError(f"passt did not listen on {self.path}")
                time.sleep(0.05)

    def after(self):
        if self.ctl:  # shoji-vmm: passt on one end of a pair, the other end handed to the monitor
            a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                self.p = subprocess.Popen(passt_args(self.ports) + ["--fd", str(b.fileno())], pass_fds=[b.fileno()],
                                          stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                          stderr=subprocess.DEVNULL)
                netlink.control(self.ctl, '{"cmd":"net-link","nic":"0"}', a.fileno())
            finally:
                a.close()
                b.close()

    def close(self):
        if self.p:
            self.p.kill()
            self.p.wait()
            self.p = None
        if self.path and os.path.exists(self.path):
            os.unlink(self.path)
