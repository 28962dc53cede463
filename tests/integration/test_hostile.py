#!/usr/bin/env python3
"""Hostile parties against shojid, tried as an attacker would, with the stand-in monitor (or the
real one in the KVM harness): a client that attaches descriptors to its API requests, and a
compromised monitor that attaches descriptors to every control reply, must not leave one
descriptor behind in root's daemon, which answers throughout. (The seat's, the monitor's and
the image layer's own hostile cases live in their suites; docs/SECURITY.md lists them all.)"""
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_toolstack import Skip, Toolstack, parse_args, run_tests, wait_until  # noqa: E402


def open_fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def ping(ts):
    rc, _, err = ts.shoji("list")
    assert rc == 0, err


def test_client_descriptor_flood(ts):
    pid = ts.daemon.pid
    ping(ts)
    before = open_fds(pid)
    sock_path = os.path.join(ts.run, "shojid.sock")
    junk = [os.open("/dev/null", os.O_RDONLY) for _ in range(50)]
    try:
        for _ in range(100):
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.connect(sock_path)
                socket.send_fds(s, [b'{"cmd":"ping"}\n'], junk)
                s.settimeout(5)
                assert b'"ok":true' in s.recv(4096)
    finally:
        for fd in junk:
            os.close(fd)
    time.sleep(0.2)
    after = open_fds(pid)
    assert after <= before + 1, f"shojid holds {after - before} more descriptors after the flood"
    ping(ts)


def test_hostile_monitor_descriptors(ts):
    if ts.real:
        raise Skip("needs the stand-in monitor (a real one cannot be told to misbehave)")
    ts.create("evil")
    ts.ok("set", "evil", "cmdline=console=ttyS0 shoji.action=shell fake.hostile_fds=1")
    ts.ok("start", "evil")
    pid = ts.daemon.pid
    ts.vm("evil")
    before = open_fds(pid)
    for _ in range(30):  # each asks the monitor for its status over the control socket
        ts.vm("evil")
    ts.ok("pause", "evil")
    ts.ok("resume", "evil")
    after = open_fds(pid)
    assert after <= before + 1, f"shojid kept {after - before} descriptors a monitor pushed on it"
    ts.ok("kill", "evil")
    wait_until(lambda: ts.vm("evil")["state"] == "stopped", 20, "evil stopped")
    ts.ok("delete", "evil")


TESTS = [test_client_descriptor_flood, test_hostile_monitor_descriptors]


def main():
    a = parse_args("--control-socket")
    if not a:
        return 77
    return run_tests(Toolstack(a), TESTS)


if __name__ == "__main__":
    sys.exit(main())
