#!/usr/bin/env python3
"""Network and host-socket devices, end to end: virtio-net on the user-mode NAT (the guest
fetches a file from a server on the host's loopback, and a host port forward reaches a server in
the guest), virtio-net on a TAP interface (served by the monitor, and by vhost-net), and virtio-vsock through vhost-vsock (bytes both
ways). Contents are compared by SHA-256."""
import functools
import hashlib
import http.server
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

import vmmtest

BLOB = 2 << 20


def serve_dir(directory, addr="127.0.0.1"):
    """An HTTP server on addr (a free port) for directory, on a thread; returns (server, port)."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=directory)
    handler.log_message = lambda *a: None
    srv = http.server.ThreadingHTTPServer((addr, 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv, srv.server_address[1]


def blob_dir():
    d = tempfile.mkdtemp(prefix="shoji-net-")
    data = os.urandom(BLOB)
    with open(os.path.join(d, "blob"), "wb") as f:
        f.write(data)
    return d, hashlib.sha256(data).hexdigest()


def fetch_when_serving(url, fetched):
    """A stop_when for Env.run: once the guest serves its file, fetch it, then stop the VM."""
    def check(out):
        m = re.search(r"net serving sha256=([0-9a-f]{64})", out)
        if not m:
            return False
        try:
            with urllib.request.urlopen(url, timeout=60) as resp:
                fetched.append((m[1], hashlib.sha256(resp.read()).hexdigest()))
        except OSError as e:
            fetched.append((m[1], f"error: {e}"))
        return True
    return check


def check_nettest(r, want_sha, fetched):
    assert r.rc == 6, f"exit status {r.rc}, expected 6 (stopped by the test):\n{r.tail()}"
    m = re.search(r"net fetched sha256=(\S+)", r.out)
    assert m and m[1] == want_sha, f"the guest fetched {m and m[1]}, expected {want_sha}:\n{r.tail()}"
    assert fetched, f"the guest never served its file:\n{r.tail()}"
    served, got = fetched[0]
    assert served == got, f"through the forward the host got {got}, the guest served {served}"


def test_slirp_fetch_and_forward(env):
    """The guest fetches from the host's loopback (host-loopback=on) and serves through a
    forward. The monitor runs as root, unjailed: its shoji-slirp runs as nobody all the same."""
    d, sha = blob_dir()
    srv, port = serve_dir(d)
    host_port = vmmtest.free_port()
    fetched, procs = [], {}
    forward_check = fetch_when_serving(f"http://127.0.0.1:{host_port}/blob", fetched)

    def check(out):
        if "net serving" in out and not procs:
            procs.update(slirp=process("shoji-slirp"))
        return forward_check(out)
    try:
        r = env.boot("nettest", extra=["--net", f"slirp,host-loopback=on,fwd=tcp:127.0.0.1:{host_port}:8080"],
                     cmdline=f"shoji.url=http://10.0.2.2:{port}/blob", stop_when=check)
    finally:
        srv.shutdown()
    check_nettest(r, sha, fetched)
    if os.geteuid() == 0:
        uid = procs["slirp"][1]["Uid"].split()
        assert uid == ["65534"] * 4, f"an unjailed root monitor's shoji-slirp runs as {uid}, not nobody"
    # The NIC is a virtio-net PCI function (modern ID 0x1041).
    assert "0x1af4:0x1041" in r.report()["pci"].values(), r.report()["pci"]


EMPTY_SHA = hashlib.sha256(b"").hexdigest()


def listen_addrs(port):
    """The local IPv4 addresses of TCP sockets listening on port (from /proc/net/tcp)."""
    addrs = []
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            hexaddr, hexport = local.split(":")
            if state == "0A" and int(hexport, 16) == port:
                addrs.append(socket.inet_ntoa(bytes.fromhex(hexaddr)[::-1]))
    return addrs


JAIL_ID = 4243


def process(name):
    """(pid, its /proc status fields, its network namespace) of the one process called name."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/comm") as f:
                if f.read().strip() != name:
                    continue
            with open(f"/proc/{pid}/status") as f:
                fields = dict(re.findall(r"^(\w+):[ \t]*(.*)$", f.read(), re.M))
            found.append((int(pid), fields, os.readlink(f"/proc/{pid}/ns/net")))
        except OSError:
            continue
    assert len(found) == 1, f"{len(found)} processes called {name}"
    return found[0]


def test_slirp_defaults_keep_the_host_private(env):
    """Without host-loopback the guest does not reach the host's loopback services through
    10.0.2.2, and a forward without an address listens on 127.0.0.1 alone. The monitor is
    jailed: it runs in an empty network namespace, and the NAT's host sockets are shoji-slirp's,
    a process of the jail's uid under its own system-call filter in the host's namespace."""
    d, _ = blob_dir()
    srv, port = serve_dir(d)
    host_port = vmmtest.free_port()
    fetched, bound, procs = [], [], {}
    forward_check = fetch_when_serving(f"http://127.0.0.1:{host_port}/blob", fetched)

    def check(out):
        if "net serving" in out and not bound:
            bound.extend(listen_addrs(host_port))
            procs.update(vmm=process("shoji-vmm"), slirp=process("shoji-slirp"))
        return forward_check(out)
    os.chown("/dev/kvm", -1, JAIL_ID)
    os.chmod("/dev/kvm", 0o660)
    try:
        r = env.boot("nettest", extra=["--net", f"slirp,fwd=tcp:{host_port}:8080", "--jail-uid", str(JAIL_ID),
                                       "--jail-gid", str(JAIL_ID)],
                     cmdline=f"shoji.url=http://10.0.2.2:{port}/blob", stop_when=check)
    finally:
        srv.shutdown()
    assert r.rc == 6, f"exit status {r.rc}, expected 6 (stopped by the test):\n{r.tail()}"
    m = re.search(r"net fetched sha256=(\S+)", r.out)
    assert m and m[1] == EMPTY_SHA, f"the guest reached the host's loopback through 10.0.2.2:\n{r.tail()}"
    assert bound == ["127.0.0.1"], f"the forward listens on {bound}, expected 127.0.0.1 only"
    assert fetched and fetched[0][0] == fetched[0][1], f"the forward did not work: {fetched}"
    host_net = os.readlink("/proc/self/ns/net")
    (vmm, _, vmm_net), (slirp, slirp_status, slirp_net) = procs["vmm"], procs["slirp"]
    assert vmm_net != host_net, "the jailed monitor shares the host's network namespace"
    assert slirp_net == host_net, "shoji-slirp is not in the host's network namespace"
    assert slirp_status["PPid"] == str(vmm), slirp_status["PPid"]
    assert slirp_status["Uid"].split() == [str(JAIL_ID)] * 4, slirp_status["Uid"]
    assert slirp_status["Seccomp"] == "2" and slirp_status["NoNewPrivs"] == "1", slirp_status
    assert slirp_status["CapEff"] == "0000000000000000", slirp_status["CapEff"]
    print(f"# monitor {vmm} in {vmm_net}, shoji-slirp {slirp} (uid {JAIL_ID}, seccomp) in {slirp_net}")


def tap_fetch(env, vhost, queues=1):
    """The nettest guest on a TAP NIC (vhost=on|off): it fetches a file from the host's end of
    the TAP and serves one back. With queues > 1, a multiqueue TAP and as many vCPUs, one queue
    pair each. Returns the run."""
    tap = "shojitap0"
    mode = ["mode", "tap"] + (["multi_queue"] if queues > 1 else [])  # del too needs the flag
    subprocess.run(["ip", "tuntap", "add", tap, *mode], check=True)
    try:
        subprocess.run(["ip", "addr", "add", "192.168.77.1/24", "dev", tap], check=True)
        subprocess.run(["ip", "link", "set", tap, "up"], check=True)
        d, sha = blob_dir()
        srv, port = serve_dir(d, "192.168.77.1")
        fetched = []
        try:
            r = env.boot("nettest", cpus=queues, extra=["--log-level", "info", "--net", f"tap={tap},vhost={vhost}"],
                         cmdline=f"shoji.ip=192.168.77.2/24 shoji.gw=192.168.77.1 "
                                 f"shoji.url=http://192.168.77.1:{port}/blob",
                         stop_when=fetch_when_serving("http://192.168.77.2:8080/blob", fetched))
        finally:
            srv.shutdown()
        check_nettest(r, sha, fetched)
        return r
    finally:
        subprocess.run(["ip", "tuntap", "del", tap, *mode])


def test_tap(env):
    """Frames through the monitor's own virtio-net."""
    r = tap_fetch(env, "off")
    assert "vhost-net" not in r.err, f"vhost=off used vhost-net:\n{r.err}"


def test_tap_vhost(env):
    """The rings served by the host kernel's vhost-net (the harness machine loads vhost_net)."""
    assert os.path.exists("/dev/vhost-net"), "this machine has no /dev/vhost-net (load vhost_net)"
    r = tap_fetch(env, "on")
    assert "the rings of its 1 queue pair are served by vhost-net" in r.err, f"vhost-net not in use:\n{r.err}"


def test_tap_multiqueue(env):
    """Two vCPUs on a multiqueue TAP: two queue pairs offered, the guest's driver takes both (on the
    control queue), and frames pass, through the monitor and then through vhost-net (a descriptor
    and a kernel thread a pair)."""
    for vhost in ("off", "on"):
        r = tap_fetch(env, vhost, queues=2)
        assert "the driver uses 2 of its 2 queue pairs" in r.err, f"vhost={vhost}: one pair used:\n{r.err}"
        if vhost == "on":
            assert "the rings of its 2 queue pairs are served by vhost-net" in r.err, r.err


def test_vsock_both_ways(env):
    cid = 42
    data = os.urandom(1 << 20)
    received = []
    lsock = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
    lsock.bind((socket.VMADDR_CID_ANY, 5001))
    lsock.listen(1)
    lsock.settimeout(240)

    def host_receives():
        try:
            c, _ = lsock.accept()
            buf = b""
            while chunk := c.recv(65536):
                buf += chunk
            received.append(hashlib.sha256(buf).hexdigest())
            c.close()
        except OSError as e:
            received.append(f"error: {e}")

    t = threading.Thread(target=host_receives, daemon=True)
    t.start()
    sent = []

    def host_sends(out):
        if sent or "vsock listening" not in out:
            return False
        for _ in range(100):  # the guest prints before it has bound the port
            try:
                s = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
                s.connect((cid, 5000))
                s.sendall(data)
                s.close()
                sent.append(True)
                break
            except OSError:
                time.sleep(0.1)
        else:
            sent.append(False)
        return False

    r = env.boot("vsocktest", extra=["--vsock", str(cid)], stop_when=host_sends)
    t.join(10)
    lsock.close()
    assert r.rc == 0, f"exit status {r.rc}:\n{r.tail()}"
    assert sent == [True], f"the host could not connect to the guest's port 5000:\n{r.tail()}"
    m = re.search(r"vsock received sha256=(\S+)", r.out)
    assert m and m[1] == hashlib.sha256(data).hexdigest(), f"host->guest bytes differ:\n{r.tail()}"
    m = re.search(r"vsock sent sha256=(\S+)", r.out)
    assert m and received and received[0] == m[1], \
        f"guest->host bytes differ: guest {m and m[1]}, host {received}:\n{r.tail()}"


def _holds_vhost_vsock(pid):
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in fds:
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") == "/dev/vhost-vsock":
                return True
        except OSError:
            pass
    return False


def test_vsock_cid_in_use(env):
    # A second VM asking for a CID that a running VM holds gets one clear error.
    holder = subprocess.Popen([env.vmm, "--kernel", env.kernel, "--initrd", env.initrd,
                               "--memory", "128", "--serial", "none", "--vsock", "77",
                               "--cmdline", "console=ttyS0 quiet shoji.action=shell"],
                              stdin=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        # The holder owns the CID once it holds /dev/vhost-vsock open with the CID set;
        # its start is slow under emulation, so wait for the descriptor, not a fixed time.
        deadline = time.monotonic() + 60
        while not _holds_vhost_vsock(holder.pid):
            assert holder.poll() is None, holder.stderr.read().decode()
            assert time.monotonic() < deadline, "the first VM never opened /dev/vhost-vsock"
            time.sleep(0.2)
        time.sleep(1.0)  # the CID is set right after the open, before any vCPU runs
        assert holder.poll() is None, holder.stderr.read().decode()
        r = env.boot("poweroff", extra=["--vsock", "77"], timeout=60)
        assert r.rc == 1, f"exit status {r.rc}, expected 1:\n{r.tail()}"
        assert "already has that CID" in r.err and len(r.err.strip().splitlines()) == 1, r.err
    finally:
        holder.terminate()
        holder.wait(30)


def test_forward_port_taken(env):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        r = env.boot("poweroff", extra=["--net", f"slirp,fwd=tcp:127.0.0.1:{port}:80"], timeout=60)
    assert r.rc == 1, f"exit status {r.rc}, expected 1:\n{r.tail()}"
    assert f"127.0.0.1:{port}" in r.err and "pick another host port" in r.err, r.err


if __name__ == "__main__":
    sys.exit(vmmtest.main([test_slirp_fetch_and_forward, test_slirp_defaults_keep_the_host_private,
                           test_tap, test_tap_vhost, test_tap_multiqueue, test_vsock_both_ways, test_vsock_cid_in_use,
                           test_forward_port_taken], sys.argv[1:]))
