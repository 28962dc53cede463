#!/usr/bin/env python3
"""Hostile parties against shojid, tried as an attacker would, with the stand-in monitor (or the
real one in the KVM harness): a client that attaches descriptors to its API requests, and a
compromised monitor that attaches descriptors to every control reply, must not leave one
descriptor behind in root's daemon, which answers throughout; a member of the group acts on
no VM but its own, sees no other in the list or the events, and takes no display unless it is
the seat's user. (The seat's, the monitor's and the image layer's own hostile cases live in
their suites; docs/SECURITY.md lists them all.)"""
import contextlib
import grp
import json
import os
import shutil
import socket
import subprocess
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


def test_hung_monitor_holds_up_no_one(ts):
    """A monitor that stops answering its control socket costs shojid one call's time-out, then
    is not asked again for a while: its VM's info comes at once (without what only the monitor
    knows), another VM is served at once meanwhile, and stopping it kills it at once."""
    if ts.real:
        raise Skip("needs the stand-in monitor (a real one cannot be told to hang)")
    for name in ("hung", "fine"):
        ts.create(name)
        ts.ok("start", name)
    s = socket.socket(socket.AF_UNIX)
    s.connect(ts.vm("hung")["control_socket"])
    s.sendall(b'{"cmd":"fake-hang"}\n')
    assert json.loads(s.makefile().readline()) == {"ok": True}
    s.close()
    t = time.monotonic()
    first = ts.vm("hung")  # the call that times out (3 s)
    took = time.monotonic() - t
    assert 2.5 < took < 6 and "uptime_s" not in first, (took, first)
    for name in ("hung", "fine", "hung"):
        t = time.monotonic()
        info = ts.vm(name)
        took = time.monotonic() - t
        assert took < 1.5, f"info on {name} took {took:.1f} s with a hung monitor"
        assert ("uptime_s" in info) == (name == "fine"), info
    t = time.monotonic()
    ts.ok("stop", "hung", "--timeout", "0")
    wait_until(lambda: ts.vm("hung")["state"] == "stopped", 10, "hung stopped")
    assert time.monotonic() - t < 5, f"stopping a hung monitor took {time.monotonic() - t:.1f} s"
    ts.ok("start", "hung")  # a new monitor is asked again
    wait_until(lambda: "uptime_s" in ts.vm("hung"), 10, "the new monitor answering")
    for name in ("hung", "fine"):
        ts.ok("kill", name)
        wait_until(lambda n=name: ts.vm(n)["state"] == "stopped", 20, f"{name} stopped")
        ts.ok("delete", name)


# Members of the group the daemon serves (here "users", which Debian has), impersonated with
# setpriv: no user needs to exist.
GROUP, ALICE, BOB, SEAT = "users", 5001, 5002, 5003


def as_user(uid):
    gid = grp.getgrnam(GROUP).gr_gid
    return ["setpriv", "--reuid", str(uid), "--regid", str(gid), "--groups", str(gid)]


def api_as(ts, uid, req):
    """One raw API request as uid; the reply object."""
    code = ("import json,socket,sys;s=socket.socket(socket.AF_UNIX);s.connect(sys.argv[1]);"
            "s.sendall(sys.argv[2].encode()+b'\\n');print(s.makefile().readline())")
    out = subprocess.run(as_user(uid) + [sys.executable, "-c", code, os.path.join(ts.run, "shojid.sock"),
                                         json.dumps(req)], capture_output=True, text=True, timeout=30)
    return json.loads(out.stdout)


def members_possible(ts):
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        raise Skip("needs root and setpriv")
    try:
        grp.getgrnam(GROUP)
    except KeyError:
        raise Skip(f"no group '{GROUP}' to serve") from None


def test_members_act_only_on_their_own_vms(ts):
    members_possible(ts)
    ts.create("rootvm")
    rc, _, err = ts.shoji("create", "alicevm", "--kernel", os.path.join(ts.guest_dir, "vmlinuz"),
                          "--memory", "64M", prefix=as_user(ALICE))
    assert rc == 0, err
    assert ts.vm("alicevm")["owner"] == ALICE
    names = lambda uid: [v["name"] for v in json.loads(ts.shoji("--json", "list", prefix=as_user(uid))[1])["vms"]]
    assert names(ALICE) == ["alicevm"], names(ALICE)
    assert names(BOB) == [], f"bob sees {names(BOB)}"
    for target in ("alicevm", "rootvm"):
        for args in (["info", target], ["start", target], ["stop", target], ["kill", target],
                     ["delete", target], ["set", target, "memory=96M"], ["logs", target],
                     ["console", target], ["snapshot", "create", target], ["events", target]):
            t0 = time.monotonic()
            rc, _, err = ts.shoji(*args, prefix=as_user(BOB))
            assert rc == 5 and f"VM '{target}' belongs to uid" in err, (args, rc, err)
            assert time.monotonic() - t0 < 5, f"{args} took {time.monotonic() - t0:.1f}s"
    ev = json.loads(ts.shoji("--json", "events", prefix=as_user(BOB))[1])["events"]
    assert not [e for e in ev if e.get("vm") in ("alicevm", "rootvm")], ev
    ts.ok("info", "alicevm")  # root acts on every VM
    rc, _, err = ts.shoji("set", "alicevm", "memory=96M", prefix=as_user(ALICE))
    assert rc == 0, err
    assert ts.vm("alicevm")["memory_mib"] == 96  # and nothing bob tried changed it before
    ts.ok("delete", "alicevm")
    ts.ok("delete", "rootvm")


def test_definition_paths_checked_as_the_owner(ts):
    """alice names, as her VM's kernel or disk, a file she cannot open (in a root-only
    directory), a FIFO, and another VM's overlay in the state directory: each start is refused
    at once with an error naming the file, and the daemon answers throughout."""
    members_possible(ts)
    kernel = os.path.join(ts.guest_dir, "vmlinuz")
    rc, _, err = ts.shoji("create", "alicevm", "--kernel", kernel, "--memory", "64M", prefix=as_user(ALICE))
    assert rc == 0, err
    private = os.path.join(ts.dir, "root-only")
    os.makedirs(private, mode=0o700)
    hidden = os.path.join(private, "vmlinuz")
    shutil.copy(kernel, hidden)
    os.chmod(hidden, 0o644)  # readable, but behind a directory alice cannot enter
    fifo = os.path.join(ts.dir, "disk.fifo")
    os.mkfifo(fifo, 0o666)
    ts.create("rootvm")
    overlay = os.path.join(ts.state, "vms", "rootvm", "state.json")
    cases = [(["kernel=" + hidden], "cannot be opened by the VM's owner"),
             (["disk.d.path=" + fifo, "disk.d.format=raw"], "a FIFO"),
             (["disk.d.path=" + overlay, "disk.d.format=raw"], "state directory")]
    for settings, why in cases:
        ts.ok("set", "alicevm", *settings)
        t0 = time.monotonic()
        rc, _, err = ts.shoji("start", "alicevm", prefix=as_user(ALICE))
        assert rc != 0 and (why in err or "cannot be opened by the VM's owner" in err), (settings, rc, err)
        assert time.monotonic() - t0 < 5, f"{settings} took {time.monotonic() - t0:.1f}s"
        ping(ts)
        assert ts.vm("alicevm")["state"] == "stopped"
        ts.ok("set", "alicevm", "kernel=" + kernel, *(["disk.d="] if "disk" in settings[0] else []))
    ts.ok("delete", "alicevm")
    ts.ok("set", "rootvm", "disk.d.path=" + overlay, "disk.d.format=raw")  # root too
    rc, _, err = ts.shoji("start", "rootvm")
    assert rc != 0 and "state directory" in err, (rc, err)
    ts.ok("set", "rootvm", "disk.d.path=" + overlay, "disk.d.format=raw")  # root too
    rc, _, err = ts.shoji("start", "rootvm")
    assert rc != 0 and "state directory" in err, (rc, err)
    ts.ok("delete", "rootvm")


def test_member_names_a_firmware_template(ts):
    """alice's firmware VM names, as its variable store template (which root copies into a file
    her VM reads), a root-only file: refused, as she cannot read it; then a root file her gid
    may read but not everyone: refused by root's own check before any copy. No store is made,
    and the daemon answers throughout."""
    members_possible(ts)
    code, secret = os.path.join(ts.dir, "fw-code.fd"), os.path.join(ts.dir, "fw-secret.fd")
    for p, mode in ((code, 0o644), (secret, 0o600)):
        with open(p, "wb") as f:
            f.write(b"not for alice\n" * 4096)
        os.chmod(p, mode)
    rc, _, err = ts.shoji("create", "alicefw", "--firmware", f"{code},vars={secret}", prefix=as_user(ALICE))
    assert rc == 0, err
    store = os.path.join(ts.state, "vms", "alicefw", "uefi-vars.fd")
    for gid, why in ((0, "not readable by the VM's owner"), (ALICE, "not readable by all")):
        os.chown(secret, 0, gid)
        os.chmod(secret, 0o640)
        rc, _, err = ts.shoji("start", "alicefw", prefix=as_user(ALICE))
        assert rc != 0 and why in err and secret in err, (gid, rc, err)
        assert not os.path.exists(store) and not os.path.exists(store + ".new")
        ping(ts)
    ts.ok("delete", "alicefw")


@contextlib.contextmanager
def held_job(ts, request):
    """Sends request while the test build's hook holds every image job before its work (a FIFO
    at SHOJI_TEST_JOB_HOLD); yields the reply that came at once (None: it waits) and a function
    that lets the job go and returns the reply."""
    hold = ts.env["SHOJI_TEST_JOB_HOLD"]
    os.mkfifo(hold, 0o666)
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.connect(os.path.join(ts.run, "shojid.sock"))
            s.sendall(json.dumps(request).encode() + b"\n")
            s.settimeout(2)
            try:
                early = s.recv(4096)
            except socket.timeout:
                early = None

            def release():
                with open(hold, "wb") as f:
                    f.write(b"x")
                s.settimeout(60)
                return json.loads(s.makefile().readline())
            yield early, release
    finally:
        os.unlink(hold)


def test_image_jobs_leave_the_daemon_answering(ts):
    """A snapshot delete's image job, then a start's check of its files, are held (the test
    build's hook): meanwhile shojid answers list and other VMs' requests, refuses changes to the
    VM under way as busy, and answers the parked caller once the job ends."""
    img = os.path.join(ts.bindir, "shoji-img")
    ts.create("slow")
    ts.create("other")
    disk = os.path.join(ts.dir, "slow.qcow2")
    subprocess.run([img, "create", "-f", "qcow2", disk, str(8 << 20)], check=True, capture_output=True)
    jail_uid = ts.vm("slow").get("jail_uid")
    if os.geteuid() == 0 and jail_uid is not None:
        os.chown(disk, jail_uid, -1)
    ts.ok("set", "slow", "disk.data.path=" + disk, "disk.data.format=qcow2")
    ts.ok("snapshot", "create", "slow", "s1")
    with held_job(ts, {"cmd": "snapshot-delete", "name": "slow", "snapshot": "s1"}) as (early, release):
        if early is not None:
            raise Skip(f"the job did not wait (a build without -Dtest_hooks=true?): {early!r}")
        t0 = time.monotonic()
        ping(ts)
        ts.ok("info", "other")
        ts.ok("set", "other", "memory=96M")
        rc, _, err = ts.shoji("start", "slow")
        assert rc == 4 and "busy deleting a snapshot" in err, (rc, err)
        rc, _, err = ts.shoji("snapshot", "create", "slow")
        assert rc == 4 and "busy" in err, (rc, err)
        assert time.monotonic() - t0 < 5, f"answers took {time.monotonic() - t0:.1f}s"
        reply = release()
    assert reply["ok"], reply
    assert ts.js("snapshot", "list", "slow")["snapshots"] == []
    # A start is parked on the check of the files its definition names, the same way.
    with held_job(ts, {"cmd": "start", "name": "other"}) as (early, release):
        assert early is None, early
        t0 = time.monotonic()
        ping(ts)
        ts.ok("info", "slow")
        rc, _, err = ts.shoji("start", "other")
        assert rc == 4 and "already starting" in err, (rc, err)
        assert time.monotonic() - t0 < 5, f"answers took {time.monotonic() - t0:.1f}s"
        reply = release()
    assert reply["ok"], reply
    ts.ok("kill", "other")
    ts.ok("delete", "slow")
    ts.ok("delete", "other")


def test_displays_only_for_the_seat_user(ts):
    members_possible(ts)
    ts.create("shown")
    ts.ok("set", "shown", "display=on")
    r = api_as(ts, BOB, {"cmd": "display", "name": "shown"})
    assert r["ok"] is False and r["code"] == "permission" and "seat" in r["error"], r
    r = api_as(ts, SEAT, {"cmd": "display", "name": "shown"})  # allowed; the VM is not running
    assert r["code"] == "state", r
    listed = [v["name"] for v in api_as(ts, SEAT, {"cmd": "list"})["vms"]]
    assert listed == ["shown"], listed  # it sees the VMs with a display, to show them
    r = api_as(ts, SEAT, {"cmd": "stop", "name": "shown"})
    assert r["code"] == "permission", r  # but acts on none it does not own
    ts.ok("delete", "shown")


class SeatConnection:
    """A process of uid with one connection to shojid held open, as the seat holds its own: each
    say() sends seat-focus on it and returns the reply."""
    CODE = ("import socket,sys;s=socket.socket(socket.AF_UNIX);s.connect(sys.argv[1]);f=s.makefile()\n"
            "for line in sys.stdin:\n s.sendall(line.encode());print(f.readline().strip(),flush=True)")

    def __init__(self, ts, uid):
        self.p = subprocess.Popen(as_user(uid) + [sys.executable, "-c", self.CODE, os.path.join(ts.run, "shojid.sock")],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def say(self, name):
        self.p.stdin.write(json.dumps({"cmd": "seat-focus", **({"name": name} if name else {})}) + "\n")
        self.p.stdin.flush()
        return json.loads(self.p.stdout.readline())

    def close(self):
        self.p.stdin.close()
        self.p.wait(10)


def test_usb_and_focus_only_for_the_seat_user(ts):
    # Moving USB devices and saying which VM is shown (where usb-auto = focused sends a device
    # plugged in) are the seat's: a member who is not its user is refused each, whatever VM it
    # names, and never learns which VM is in front. The seat's word lasts as long as the
    # connection that said it and names only a VM it may show; a refused word takes back that
    # connection's earlier one; another connection that speaks and goes leaves the seat's word.
    members_possible(ts)
    ts.create("shown")
    ts.ok("set", "shown", "display=on")
    ts.create("shown2")
    ts.ok("set", "shown2", "display=on")
    ts.create("headless")

    def focus():
        return ts.js("usb", "list")["seat_focus"]
    for req in ({"cmd": "usb-attach", "name": "shown", "device": "1-2"}, {"cmd": "usb-detach", "device": "1-2"},
                {"cmd": "seat-focus", "name": "shown"}, {"cmd": "seat-focus"}):
        r = api_as(ts, BOB, req)
        assert r["ok"] is False and r["code"] == "permission" and "seat's user" in r["error"], (req, r)
    r = api_as(ts, SEAT, {"cmd": "seat-focus", "name": "headless"})
    assert r["code"] == "permission" and "no display" in r["error"], r
    r = api_as(ts, SEAT, {"cmd": "seat-focus", "name": "nosuchvm"})
    assert r["code"] == "not-found", r
    seat = SeatConnection(ts, SEAT)
    try:
        assert seat.say("shown")["ok"] is True
        assert focus() == "shown"
        assert "the seat shows shown" in ts.ok("usb", "list")
        assert "seat_focus" not in api_as(ts, BOB, {"cmd": "usb-list"}), "a member learnt which VM is shown"
        assert api_as(ts, SEAT, {"cmd": "usb-list"})["seat_focus"] == "shown"
        other = SeatConnection(ts, SEAT)
        assert other.say("shown2")["ok"] is True
        assert focus() == "shown2"
        other.close()
        wait_until(lambda: focus() == "shown", 5, "the seat's word again once the other connection went")
        assert seat.say("headless")["code"] == "permission"
        assert focus() is None, "a refused switch left the earlier VM taking devices"
        assert seat.say("shown2")["ok"] is True and focus() == "shown2"
    finally:
        seat.close()
    wait_until(lambda: focus() is None, 5, "the focus forgotten with its connection")
    for vm in ("shown", "shown2", "headless"):
        ts.ok("delete", vm)


def test_tampered_overlay_header_is_refused(ts):
    """The jail uid rewrites its snapshot overlay's backing name to a root-only file: deleting
    the snapshot must neither write that file nor change the VM's chain."""
    if os.geteuid() != 0 or not shutil.which("qemu-img"):
        raise Skip("needs root and qemu-img")
    img = os.path.join(ts.bindir, "shoji-img")
    ts.create("victim")
    disk = os.path.join(ts.dir, "victim.qcow2")
    subprocess.run([img, "create", "-f", "qcow2", disk, str(8 << 20)], check=True, capture_output=True)
    os.chown(disk, ts.vm("victim")["jail_uid"], -1)
    os.chmod(disk, 0o600)
    ts.ok("set", "victim", "disk.data.path=" + disk, "disk.data.format=qcow2")
    ts.ok("snapshot", "create", "victim", "s1")
    chain = ts.js("snapshot", "list", "victim")["disks"][0]["chain"]
    secret = os.path.join(ts.dir, "root-only.raw")
    with open(secret, "wb") as f:
        f.write(b"root's own bytes" * 65536)
    os.chmod(secret, 0o600)
    with open(secret, "rb") as f:
        before = f.read()
    subprocess.run([img, "write", chain[-1], "0"], input=os.urandom(65536), check=True)
    # What the jail uid can do to the file it owns: name another backing file.
    subprocess.run(["qemu-img", "rebase", "-u", "-f", "qcow2", "-b", secret, "-F", "raw", chain[-1]],
                   check=True, capture_output=True)
    t0 = time.monotonic()
    rc, _, err = ts.shoji("snapshot", "delete", "victim", "s1")
    assert rc != 0 and "changed outside shoji" in err, (rc, err)
    assert time.monotonic() - t0 < 10
    with open(secret, "rb") as f:
        assert f.read() == before, "root's file was written through the tampered header"
    assert ts.js("snapshot", "list", "victim")["disks"][0]["chain"] == chain
    ping(ts)


def test_published_template_is_immutable(ts):
    """The importer keeps the descriptor shojid gave it for the import: writing through it after
    the commit must not change the published template."""
    if os.geteuid() != 0:
        raise Skip("needs root (the published file is root's)")
    src = os.path.join(ts.dir, "tmpl-src.qcow2")
    subprocess.run([os.path.join(ts.bindir, "shoji-img"), "create", "-f", "qcow2", src, str(4 << 20)],
                   check=True, capture_output=True)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(os.path.join(ts.run, "shojid.sock"))
        s.sendall(b'{"cmd":"template-begin","name":"frozen"}\n')
        msg, fds, _, _ = socket.recv_fds(s, 4096, 1)
        version = json.loads(msg)["version"]
        with open(src, "rb") as f:
            os.write(fds[0], f.read())
        s.sendall(json.dumps({"cmd": "template-commit", "name": "frozen", "version": version,
                              "source": src}).encode() + b"\n")
        reply = json.loads(s.makefile().readline())
    assert reply["ok"], reply
    t = ts.js("template", "info", "frozen")["template"]
    published = next(x["path"] for x in t["versions"] if x["version"] == version)
    with open(published, "rb") as f:
        before = f.read()
    os.pwrite(fds[0], b"\xff" * 65536, 0)  # the importer writes on
    os.close(fds[0])
    with open(published, "rb") as f:
        assert f.read() == before, "a write through the importer's descriptor changed the template"
    st = os.stat(published)
    assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (0, 0, 0o444), (st.st_uid, st.st_gid, oct(st.st_mode))
    ts.ok("template", "delete", "frozen")


TESTS = [test_client_descriptor_flood, test_hung_monitor_holds_up_no_one, test_published_template_is_immutable, test_tampered_overlay_header_is_refused, test_hostile_monitor_descriptors,
         test_members_act_only_on_their_own_vms, test_definition_paths_checked_as_the_owner,
         test_member_names_a_firmware_template,
         test_image_jobs_leave_the_daemon_answering,
         test_displays_only_for_the_seat_user, test_usb_and_focus_only_for_the_seat_user]


def main():
    a = parse_args("--control-socket")
    if not a:
        return 77
    ts = Toolstack(a)
    ts.daemon_args += ["--group", GROUP, "--seat-user", str(SEAT)]
    return run_tests(ts, TESTS)


if __name__ == "__main__":
    sys.exit(main())
