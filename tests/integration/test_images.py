#!/usr/bin/env python3
"""Templates, snapshots and disposable VMs through shojid and shoji, with every disk's content
checked by hash through shoji-img: a template imported from raw and from a qcow2 chain; a VM
whose root is a template overlay gets the template's new version at its next start while its
private disk keeps its writes, and an old version goes once no running VM uses it; snapshots
created, reverted and deleted offline (merge and commit), and live through the monitor's
disk-snapshot command; disposable VMs removed when they stop, after a kill -9 of the monitor,
and by a new daemon after both died. Runs against tests/integration/fake_vmm.py (which speaks
disk-snapshot but writes nothing) or, in the KVM harness, against the real monitor (jailed, as
root), whose guest writes the template VM's disks."""
import argparse
import contextlib
import hashlib
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import time

import vmmtest
from test_toolstack import (OVMF_CODE, Skip, Toolstack, as_jail, check_vars_file, control, events, monitor_args, need_uefi,
                            run_tests, wait_until)

MIB = 1 << 20
PATTERN = (b"shoji-disk-pattern\n" * 60000)[:MIB]


class Images(Toolstack):
    def __init__(self, a):
        super().__init__(a)
        self.img = os.path.join(a.bindir, "shoji-img")
        self.kernel = os.path.join(a.guest_dir, "vmlinuz")
        self.jailed = os.geteuid() == 0
        help_text = subprocess.run([a.vmm, "--help"], capture_output=True, text=True).stdout if self.real else ""
        self.has_volatile = not self.real or "volatile" in help_text
        self.notes = []
        if self.real and os.environ.get("SHOJI_TEST_NO_JAIL") == "1":
            self.daemon_args = ["--no-jail"]
            self.jailed = False
            self.notes.append("real monitor run without a jail (SHOJI_TEST_NO_JAIL=1)")

    def path(self, *p):
        return os.path.join(self.dir, *p)

    def sh_img(self, *args, data=None):
        p = subprocess.run([self.img, *args], input=data, capture_output=True)
        assert p.returncode == 0, f"shoji-img {' '.join(args)}: {p.stderr.decode()}"
        return p.stdout

    def read(self, image, size):
        return self.sh_img("read", image, "0", str(size))

    def write(self, image, off, data):
        self.sh_img("write", image, str(off), data=data)

    def info(self, image):
        out = self.sh_img("info", image).decode()
        return dict(line.split(": ", 1) for line in out.splitlines() if ": " in line)

    def qcow2(self, name, size, backing=None, vm=None):
        p = self.path(name)
        args = ["create", "-f", "qcow2"] + (["-b", backing, "-F", "raw"] if backing else []) + [p]
        self.sh_img(*(args + ([] if backing else [str(size)])))
        if vm:
            self.give(p, vm)
        return p

    def give(self, p, vm):
        """The image to VM vm's jail uid alone, as the start-time check asks."""
        if self.jailed:
            os.chown(p, self.vm(vm)["jail_uid"], -1)
            os.chmod(p, 0o600)

    def guest_vm(self, name, action, memory="128M"):
        self.ok("create", name, "--kernel", self.kernel, "--initrd",
                os.path.join(self.guest_dir, "initramfs.cpio.gz"), "--memory", memory, "--cmdline",
                f"console=ttyS0 quiet shoji.action={action} shoji.name={name}")

    def wait_stopped(self, name):
        wait_until(lambda: self.vm(name)["state"] == "stopped", self.boot_timeout, f"{name} stopped")

    def template_image(self, name, version=None):
        t = self.js("template", "info", name)["template"]
        v = version or t["current"]
        return next(x["path"] for x in t["versions"] if x["version"] == v)


def h(b):
    return hashlib.sha256(b).hexdigest()


def raw_file(ts, name, size, chunks):
    """A sparse raw image with random data at the given MiB offsets; returns its bytes."""
    data = bytearray(size)
    for off in chunks:
        data[off * MIB:(off + 1) * MIB] = os.urandom(MIB)
    with open(ts.path(name), "wb") as f:
        f.truncate(size)
        for off in chunks:
            f.seek(off * MIB)
            f.write(data[off * MIB:(off + 1) * MIB])
    return bytes(data)


def test_template_import(ts):
    ts.base = raw_file(ts, "base.raw", 32 * MIB, [0, 5, 31])
    rc, out, err = ts.shoji("template", "import", "base", ts.path("base.raw"))
    assert rc == 0, err
    assert "importing: 100%" in err and "imported from" in out, (out, err)
    t = ts.js("template", "list")["templates"]
    assert [x["name"] for x in t] == ["base"] and t[0]["current"] == 1 and t[0]["size"] == 32 * MIB, t
    assert h(ts.read(ts.template_image("base"), 32 * MIB)) == h(ts.base)
    info = ts.info(ts.template_image("base"))
    assert info["file format"] == "qcow2" and "backing file" not in info, info
    assert int(info["disk size"].split()[0]) < 8 * MIB, info  # zero clusters are not copied
    # A qcow2 chain: the template is its guest-visible content, standalone.
    over = ts.qcow2("over.qcow2", None, backing="base.raw")
    ts.write(over, 5 * MIB + 100, b"overlay-bytes")
    want = ts.read(over, 32 * MIB)
    ts.ok("template", "import", "chained", over)
    assert h(ts.read(ts.template_image("chained"), 32 * MIB)) == h(want)
    ts.status(7, "template", "import", "base", ts.path("base.raw"), words=["--replace"])
    ts.status(2, "template", "import", "other", ts.path("nosuch.img"), words=["cannot open"])
    ts.status(3, "template", "info", "nosuch", words=["there is no template 'nosuch'"])
    ts.status(2, "template", "import", "../x", ts.path("base.raw"), words=["not a template name"])
    ts.ok("template", "delete", "chained")
    assert not os.path.exists(os.path.join(ts.state, "templates", "chained"))
    assert not [f for f in os.listdir(os.path.join(ts.state, "templates", "base")) if f.endswith(".part")]


def test_template_vm(ts):
    if ts.real:
        ts.guest_vm("app", "disktest")
    else:
        ts.create("app")
    priv = ts.qcow2("private.qcow2", 8 * MIB, vm="app")
    ts.ok("set", "app", "disk.root.template=base", "disk.data.path=" + priv, "disk.data.format=qcow2")
    ts.ok("start", "app")
    overlay = os.path.join(ts.state, "vms", "app", "disks", "root.volatile.qcow2")
    v1 = ts.template_image("base")
    assert ts.info(overlay)["backing file"] == v1
    if ts.real:  # the guest writes the pattern on its root and "x\n" on its private disk
        ts.wait_stopped("app")
        assert "disk write=ok" in ts.serial("app"), ts.serial("app")[-2000:]
    else:
        ts.write(overlay, 0, PATTERN)
        ts.write(priv, 0, b"x\n")
    assert ts.read(overlay, MIB) == PATTERN  # the root's writes, until the next start
    assert h(ts.read(v1, 32 * MIB)) == h(ts.base)  # the template never changes
    # A new version while it runs: the running VM keeps v1.
    new = raw_file(ts, "base2.raw", 32 * MIB, [1, 7])
    ts.ok("template", "import", "base", ts.path("base2.raw"), "--replace")
    t = ts.js("template", "info", "base")["template"]
    assert t["current"] == 2 and t["vms"] == ["app"], t
    if not ts.real:
        assert [v["version"] for v in t["versions"]] == [2, 1] and t["versions"][1]["in_use"], t
        ts.ok("stop", "app")
    t = ts.js("template", "info", "base")["template"]
    assert [v["version"] for v in t["versions"]] == [2], t  # v1 went with its last user
    assert not os.path.exists(v1)
    # The next start: a fresh root on v2; the private disk kept its write.
    if ts.real:
        ts.ok("set", "app", "cmdline=console=ttyS0 quiet shoji.action=poweroff shoji.name=app")
    ts.ok("start", "app")
    if ts.real:
        ts.wait_stopped("app")
    else:
        ts.ok("stop", "app")
    assert ts.info(overlay)["backing file"] == ts.template_image("base", 2)
    assert h(ts.read(overlay, 32 * MIB)) == h(new)
    assert ts.read(priv, 2) == b"x\n"
    ts.status(4, "template", "delete", "base", words=["used by VM 'app'"])
    ts.status(2, "set", "app", "disk.root.readonly=yes", words=["takes no format or readonly"])


def test_snapshots_offline(ts):
    ts.create("snappy")
    disk = ts.qcow2("snap.qcow2", 8 * MIB, vm="snappy")
    ts.ok("set", "snappy", "disk.data.path=" + disk, "disk.data.format=qcow2")

    def top():
        return ts.js("snapshot", "list", "snappy")["disks"][0]["chain"][-1]

    def content():
        chain = ts.js("snapshot", "list", "snappy")["disks"]
        return h(ts.read(chain[0]["chain"][-1] if chain else disk, 8 * MIB))

    ts.write(disk, 0, os.urandom(3 * MIB))
    h0 = content()
    ts.ok("snapshot", "create", "snappy", "s1")
    ts.write(top(), MIB, os.urandom(MIB))
    h1 = content()
    out = ts.ok("snapshot", "create", "snappy")
    assert "'snap2'" in out, out
    ts.write(top(), 2 * MIB + 17, b"later")
    assert content() not in (h0, h1)
    assert [s["name"] for s in ts.js("snapshot", "list", "snappy")["snapshots"]] == ["s1", "snap2"]
    ts.status(7, "snapshot", "create", "snappy", "s1", words=["already has a snapshot 's1'"])
    ts.status(3, "snapshot", "revert", "snappy", "nosuch", words=["no snapshot 'nosuch'"])
    ts.status(4, "delete", "snappy", words=["has snapshots"])
    # Revert: exactly the snapshot's content; the later snapshot is gone.
    out = ts.ok("snapshot", "revert", "snappy", "s1")
    assert "later snapshots were dropped" in out, out
    assert content() == h0
    assert [s["name"] for s in ts.js("snapshot", "list", "snappy")["snapshots"]] == ["s1"]
    ts.write(top(), 4 * MIB, os.urandom(MIB))
    ts.ok("snapshot", "create", "snappy", "s2")
    ts.write(top(), 5 * MIB, os.urandom(MIB))
    h4 = content()
    # Delete the newer one: merged into the overlay above it.
    ts.ok("snapshot", "delete", "snappy", "s2")
    assert content() == h4 and len(ts.js("snapshot", "list", "snappy")["disks"][0]["chain"]) == 2
    ts.ok("snapshot", "revert", "snappy", "s1")
    assert content() == h0
    ts.write(top(), 6 * MIB, os.urandom(MIB))
    h5 = content()
    # Delete the oldest: written into the definition's own image, no snapshot left.
    ts.ok("snapshot", "delete", "snappy", "s1")
    assert ts.js("snapshot", "list", "snappy") == {"ok": True, "snapshots": [], "disks": []}
    assert h(ts.read(disk, 8 * MIB)) == h5
    assert not os.listdir(os.path.join(ts.state, "vms", "snappy", "disks"))
    ts.sh_img("check", disk)
    if subprocess.run(["which", "qemu-img"], capture_output=True).returncode == 0:
        r = subprocess.run(["qemu-img", "check", disk], capture_output=True, text=True)
        assert r.returncode == 0, r.stdout + r.stderr
    # Raw disks are refused with the fix.
    raw = ts.path("raw.img")
    with open(raw, "wb") as f:
        f.truncate(MIB)
    ts.give(raw, "snappy")
    ts.ok("set", "snappy", "disk.raw.path=" + raw)
    ts.status(2, "snapshot", "create", "snappy", words=["disk 'raw' is raw", "convert"])
    ts.ok("set", "snappy", "disk.raw=")
    # A disk added after a snapshot keeps its content through a revert to it, and once the
    # snapshots are gone nothing is left to stop the VM's deletion.
    added = ts.qcow2("added.qcow2", 4 * MIB, vm="snappy")
    ts.ok("snapshot", "create", "snappy", "t1")
    ts.ok("set", "snappy", "disk.added.path=" + added, "disk.added.format=qcow2")
    ts.ok("snapshot", "create", "snappy", "t2")
    chains = {c["id"]: c["chain"] for c in ts.js("snapshot", "list", "snappy")["disks"]}
    ts.write(chains["added"][-1], 0, b"kept")
    ts.ok("snapshot", "revert", "snappy", "t1")
    chains = {c["id"]: c["chain"] for c in ts.js("snapshot", "list", "snappy")["disks"]}
    assert chains["added"] == [added] and ts.read(added, 4) == b"kept", chains
    ts.ok("snapshot", "delete", "snappy", "t1")
    assert ts.js("snapshot", "list", "snappy")["disks"] == []
    ts.ok("delete", "snappy")
    assert not os.path.exists(os.path.join(ts.state, "vms", "snappy"))


def overlays_belong_to_their_vm(ts, name, overlay):
    """A live snapshot's overlay and the template VM app's root overlay are their VM's jail
    uid's alone: each VM's uid reads its own and not the other's (through links in a directory
    anyone may enter; their own directories are root's 0750)."""
    if not ts.jailed:
        return
    mine = ts.vm(name)["jail_uid"]
    other_overlay = os.path.join(ts.state, "vms", "app", "disks", "root.volatile.qcow2")
    other = ts.vm("app")["jail_uid"]
    assert mine != other
    for p, u in ((overlay, mine), (other_overlay, other)):
        st = os.stat(p)
        assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (u, 0o600), (p, st.st_uid, oct(st.st_mode))
    gid = os.stat(os.path.join(ts.run, name)).st_gid
    probe = ts.path("probe")
    os.mkdir(probe, 0o755)
    try:
        os.link(overlay, os.path.join(probe, "mine"))
        os.link(other_overlay, os.path.join(probe, "other"))
        assert as_jail(mine, gid, "head", "-c1", os.path.join(probe, "mine")) == 0
        assert as_jail(mine, gid, "head", "-c1", os.path.join(probe, "other")) != 0, "read app's overlay"
        assert as_jail(other, gid, "head", "-c1", os.path.join(probe, "mine")) != 0, f"read {name}'s overlay"
    finally:
        shutil.rmtree(probe)


def test_live_snapshot(ts):
    ts.create("livevm")
    disk = ts.qcow2("live.qcow2", 8 * MIB, vm="livevm")
    ts.ok("set", "livevm", "disk.data.path=" + disk, "disk.data.format=qcow2")
    ts.write(disk, 0, os.urandom(2 * MIB))
    before = h(ts.read(disk, 8 * MIB))
    ts.ok("start", "livevm")
    rep = ts.js("snapshot", "create", "livevm", "running")
    assert rep["live"] and rep["paused_ms"] >= 0, rep
    assert ts.vm("livevm")["state"] == "running"
    chain = ts.js("snapshot", "list", "livevm")["disks"][0]["chain"]
    assert chain[0] == disk and ts.info(chain[1])["backing file"] == disk, chain
    overlays_belong_to_their_vm(ts, "livevm", chain[1])
    ts.status(4, "snapshot", "revert", "livevm", "running", words=["stop it"])
    ts.status(4, "snapshot", "delete", "livevm", "running", words=["stop it"])
    ts.ok("stop", "livevm")
    ts.write(chain[1], 0, os.urandom(MIB))  # what the guest would have written after it
    ts.ok("snapshot", "revert", "livevm", "running")
    top = ts.js("snapshot", "list", "livevm")["disks"][0]["chain"][-1]
    assert h(ts.read(top, 8 * MIB)) == before
    # Paused VMs too, and it stays paused.
    ts.ok("start", "livevm")
    ts.ok("pause", "livevm")
    ts.ok("snapshot", "create", "livevm", "paused")
    assert ts.vm("livevm")["state"] == "paused"
    # Edited since it started: refused (its disk order may not be the running one).
    ts.ok("set", "livevm", "memory=256M")
    ts.status(4, "snapshot", "create", "livevm", words=["edited since it started"])
    ts.ok("kill", "livevm")


def disposables(ts):
    return [v["name"] for v in ts.js("list")["vms"] if v["name"].startswith("disp")]


def leftovers(ts, name):
    return [p for p in (os.path.join(ts.state, "vms", name + ".ini"), os.path.join(ts.state, "vms", name),
                        os.path.join(ts.run, name)) if os.path.exists(p)]


def run_disposable(ts, action="shell"):
    args = ["run", "--disposable", "base", "--kernel", ts.kernel, "--memory", "128M"]
    if ts.real:
        args += ["--initrd", os.path.join(ts.guest_dir, "initramfs.cpio.gz"), "--cmdline",
                 f"console=ttyS0 quiet shoji.action={action}"]
    out = ts.ok(*args)
    name = out.split("'")[1]
    assert name.startswith("disp") and "removed when it stops" in out, out
    return name


def test_disposable(ts):
    if not ts.has_volatile:
        raise Skip("the monitor has no volatile= disks")
    name = run_disposable(ts)
    vm = ts.vm(name)
    assert vm["label"] == "red" and vm["state"] == "running", vm
    # The monitor may cut its --disk argument at the commas in place: look at the pieces.
    args = open(f"/proc/{vm['pid']}/cmdline", "rb").read().decode().replace(",", "\0").split("\0")
    vol = os.path.join(ts.state, "vms", name, "volatile")
    i = args.index(ts.template_image("base"))
    assert "format=qcow2" in args[i:i + 4] and f"volatile={vol}" in args[i:i + 4], args
    # kill -9 of its monitor: the VM and all its files go.
    os.kill(vm["pid"], signal.SIGKILL)
    wait_until(lambda: name not in disposables(ts) and not leftovers(ts, name), 10, f"{name} removed")
    assert any(e["event"] == "removed" for e in ts.js("events", name)["events"])
    # Stopped normally: the same. The name is free again.
    name2 = run_disposable(ts)
    assert name2 == name, (name, name2)
    ts.ok("stop", name2)
    wait_until(lambda: not leftovers(ts, name2), 10, f"{name2} removed")
    # Daemon and monitor both killed: the next daemon removes it.
    name3 = run_disposable(ts)
    pid = ts.vm(name3)["pid"]
    ts.stop_daemon(signal.SIGKILL)
    os.kill(pid, signal.SIGKILL)
    time.sleep(1)
    ts.start_daemon()
    wait_until(lambda: not leftovers(ts, name3), 10, f"{name3} removed by the new daemon")
    assert name3 not in disposables(ts)
    # The guest's writes vanish: a disposable that writes its root and powers off leaves the
    # template as it was and nothing behind.
    image = ts.template_image("base")
    before = h(ts.read(image, 32 * MIB))
    name4 = run_disposable(ts, "disktest")
    if not ts.real:
        ts.ok("stop", name4)
    wait_until(lambda: not leftovers(ts, name4), ts.boot_timeout, f"{name4} removed after its power-off")
    assert h(ts.read(image, 32 * MIB)) == before
    ts.status(3, "run", "--disposable", "nosuch", "--kernel", ts.kernel, words=["no template 'nosuch'"])
    ts.status(2, "run", "--kernel", ts.kernel, words=["--disposable TEMPLATE is needed"])
    assert not disposables(ts)


def test_disposable_firmware(ts):
    # A disposable VM booting its template disk through firmware: its variable store is a fresh
    # copy of the template in its volatile directory at each run, and goes with it.
    if not ts.has_volatile:
        raise Skip("the monitor has no volatile= disks")
    need_uefi(ts, "fwcheck")
    stores = []
    for _ in range(2):
        out = ts.ok("run", "--disposable", "base", "--firmware", "uefi", "--memory", "128M")
        name = out.split("'")[1]
        store = os.path.join(ts.state, "vms", name, "volatile", "uefi-vars.fd")
        args, pieces = monitor_args(ts, name)
        assert "--kernel" not in args and OVMF_CODE in pieces and f"vars={store}" in pieces, args
        assert check_vars_file(ts, name, store), "not a fresh copy of the template"
        assert not os.path.exists(os.path.join(ts.state, "vms", name, "uefi-vars.fd"))
        assert control(ts, name, {"cmd": "fake-write-vars", "data": "written-by-a-disposable"})["ok"]
        ts.ok("stop", name)
        wait_until(lambda: not leftovers(ts, name), 10, f"{name} removed, its store with it")
        stores.append(store)
    assert stores[0] == stores[1]  # the same name again, and still a fresh store
    assert not disposables(ts)


def host_address():
    """This machine's first non-loopback IPv4 address (what a VM's NAT reaches it by), or None."""
    out = subprocess.run(["ip", "-4", "-o", "addr", "show", "scope", "global"], capture_output=True, text=True).stdout
    for line in out.splitlines():
        return line.split()[3].split("/")[0]
    return None


@contextlib.contextmanager
def nat_address():
    """An address of this machine that a VM's NAT reaches (never its loopback, which the NAT
    keeps out): its first, else (the harness machine, as root) 192.0.2.10 added on lo for the
    while; None where it has neither."""
    addr, added = host_address(), None
    if not addr and os.geteuid() == 0:
        if subprocess.run(["ip", "addr", "add", "192.0.2.10/32", "dev", "lo"], capture_output=True).returncode == 0:
            added = addr = "192.0.2.10"
    try:
        yield addr
    finally:
        if added:
            subprocess.run(["ip", "addr", "del", added + "/32", "dev", "lo"], capture_output=True)


def serve(root, page):
    """An HTTP server on every address of this machine for root/page.html (page's bytes):
    (the process, its port)."""
    with open(os.path.join(root, "page.html"), "wb") as f:
        f.write(page)
    srv = subprocess.Popen([sys.executable, "-m", "http.server", "--bind", "0.0.0.0", "--directory", root, "0"],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    return srv, int(srv.stdout.readline().split(" port ")[1].split()[0])


def browse_two(ts, addr, net):
    """Two shoji browse VMs, each fetching what its NAT (net: passt or slirp) lets it
    (test_browse): under slirp one a page at addr and one the same at 10.0.2.2 (the host's
    loopback: refused at once); under passt both the page, and passt's options checked for the
    loopback (passt lets a connection to 10.0.2.2 wait out the guest's TCP, minutes, where slirp
    refuses it; test_passt_uplink shows what passt does with them)."""
    page = b"<html><body>shoji-browse-page</body></html>\n"
    root = os.path.join(ts.dir, "www")
    os.makedirs(root, exist_ok=True)
    srv, port = serve(root, page)
    fetched = (addr, hashlib.sha256(page).hexdigest())
    try:
        vms, cids = [], set()
        for host, want in (fetched, fetched if net == "passt" else ("10.0.2.2", hashlib.sha256(b"").hexdigest())):
            url = f"http://{host}:{port}/page.html"
            args = ["browse", url, "--template", "base", "--kernel", ts.kernel, "--memory", "128M"]
            args += ["--net", "passt"] if net == "passt" else []
            if ts.real:
                args += ["--initrd", os.path.join(ts.guest_dir, "initramfs.cpio.gz"), "--cmdline",
                         "console=ttyS0 quiet shoji.action=nettest"]
            out = ts.ok(*args)
            name = out.split("'")[1]
            assert "no seat is running" in out, out
            vm = ts.vm(name)
            assert vm["label"] == "green" and vm["display"] and vm["nics"] == 1 and vm["vsock_auto"], vm
            margs, pieces = monitor_args(ts, name)
            assert f"url={url}" in margs and "host-loopback=on" not in pieces, margs
            assert margs[margs.index("--net") + 1].split(",")[0] == net, margs
            if net == "passt":  # passt's own options keep the host's loopback out
                ups = [d for e, d in events(ts, name) if e == "uplink-up" and d.startswith("nic net:")]
                assert ups, events(ts, name)
                pid = re.search(r"passt pid (\d+)", ups[-1])[1]
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    assert "--no-map-gw" in f.read().decode().split("\0"), ups
            started = [detail for event, detail in events(ts, name) if event == "started"]
            if os.path.exists("/dev/vhost-vsock"):  # vsock-cid = auto: a CID of its own for the agent
                cid = vm["vsock_cid"]
                assert cid >= 1000000 and cid not in cids and margs[margs.index("--vsock") + 1] == str(cid), (vm, margs)
                assert started and f"vsock CID {cid}" in started[-1], started
                cids.add(cid)
            else:  # no device here: the VM runs without one, and its start says why
                assert "--vsock" not in margs and "vsock_cid" not in vm, (vm, margs)
                assert started and "no vsock device" in started[-1], started
            vms.append((name, url, want))
        if ts.real:  # both run at once, each with its own CID; each read every round, so a gone one is seen
            wait_until(lambda: all(["net fetched sha256=" in ts.serial(n) for n, _, _ in vms]), ts.boot_timeout,
                       "both fetched")
        for name, url, want in vms:
            if ts.real:
                got = ts.serial(name).split("net fetched sha256=")[1].split()[0]
                assert got == want, f"{url}: {got}, not {want}"
            ts.ok("stop", name, "--timeout", "5")
            wait_until(lambda: not leftovers(ts, name), 30, f"{name} removed")
    finally:
        srv.kill()
        srv.wait()


def test_browse(ts):
    # shoji browse: a disposable VM on the template, label green, a display, NAT only (no host
    # loopback; libslirp by default, passt with --net passt), the URL as the guest parameter url.
    # With the real monitor the test guest's nettest action stands in for the browser image's
    # kiosk (a full browser is the image test's): the page comes from a server on this
    # machine's own address, through the NAT, and the same server through the host's loopback
    # (10.0.2.2) stays out of reach. The stand-in run asks for --net passt where passt is
    # installed and checks passt's options (Debian 12's passt repeats the answer to a guest that
    # half-closes its connection, as the test guest's nc does: docs/SECURITY.md).
    if not ts.has_volatile:
        raise Skip("the monitor has no volatile= disks")
    ts.status(2, "browse", "a", "b", words=["one URL at most"])
    ts.status(2, "browse", "http://x/a b", words=["without space"])
    ts.status(2, "browse", "--net", "tap", words=["--net is slirp", "or passt"])
    ts.status(3, "browse", "--template", "nosuch", "--kernel", ts.kernel, words=["no template 'nosuch'"])
    net = "passt" if not ts.real and os.access("/usr/bin/passt", os.X_OK) else "slirp"
    with vmmtest.routable_interface():  # which passt needs to start
        if not ts.real:  # the stand-in monitor fetches nothing
            browse_two(ts, "192.0.2.1", net)
        else:
            with nat_address() as addr:
                if not addr:
                    raise Skip("this machine has no address but loopback for the guest's NAT to reach")
                browse_two(ts, addr, net)
    assert not disposables(ts)


TESTS = [test_template_import, test_template_vm, test_snapshots_offline, test_live_snapshot, test_disposable,
         test_disposable_firmware, test_browse]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bindir", required=True, help="where shojid, shoji and shoji-img are")
    ap.add_argument("--vmm", required=True)
    ap.add_argument("--guest-dir", required=True)
    a = ap.parse_args()
    a.bindir, a.vmm, a.guest_dir = map(os.path.abspath, (a.bindir, a.vmm, a.guest_dir))
    ts = Images(a)
    return run_tests(ts, TESTS, ts.notes)


if __name__ == "__main__":
    sys.exit(main())
