#!/usr/bin/env python3
"""Three VMs in a chain, with the real netvm and firewall images (guest/image/recipes) and the
real monitor, in the KVM harness: an app VM (the test guest's chaintest action, its address by
DHCP) linked to a firewall VM linked to a net VM, whose first NIC is the uplink (user-mode NAT,
no host loopback); the firewall's uplink is its second NIC, named by the guest parameter
uplink. The net VM and the firewall run on templates (a fresh overlay each start) and
route with shoji-router; the firewall's policy is its guest parameter allow=tcp:OPEN. Checked:

- the app VM fetches a page from a server behind the net VM (this machine's own address, port
  OPEN), through the firewall: it got its address from the firewall's DHCP and the firewall its
  own from the net VM's;
- the same server on a port the policy closes stays out of reach, and so does this machine's
  loopback (10.0.2.2, on the open port), which the net VM's NAT does not reach;
- the app VM cannot open a connection to the net VM's own address (its DNS port, which the net
  VM serves to the firewall) while its own router's DNS port opens (the probe's control);
- killing the firewall cuts the app VM off (its link down, the page unreachable); starting the
  firewall again restores the path without restarting the app VM or the net VM.

    test_netchain.py --bindir B --vmm VMM --guest-dir G --netvm BOOT.json --firewall BOOT.json"""
import hashlib
import os
import re
import sys
import time

from test_images import nat_address, serve
from test_toolstack import Toolstack, failed_status, image_suite_args, links, run_single, wait_until

PAGE = b"shoji-netchain-page\n"


def define(ts, name, text):
    path = os.path.join(ts.dir, name + ".ini")
    with open(path, "w") as f:
        f.write(text)
    ts.ok("create", "--from", path)


def router_ini(name, template, boot, up, down, extra="", uplink_mac=None):
    """A router VM's definition: its image's direct boot, a root disk on the template, the uplink
    NIC (up: its lines) first, then the link to the VM down; extra: more [vm] lines. With
    uplink_mac the link down comes first and the uplink, with that MAC, second: the guest
    parameter uplink names it."""
    nic_up, nic_down = f"[nic up]\n{up}\n", f"[nic down]\ntype = vm\npeer = {down}\n"
    if uplink_mac:
        extra += f"param = uplink={uplink_mac}\n"
        nic_up += f"mac = {uplink_mac}\n"
    nics = f"{nic_down}\n{nic_up}" if uplink_mac else f"{nic_up}\n{nic_down}"
    return (f"[vm]\nname = {name}\nmemory = 256M\nkernel = {boot['kernel']}\ninitrd = {boot['initrd']}\n"
            f"cmdline = {boot['cmdline']}\n{extra}\n[disk root]\ntemplate = {template}\n\n{nics}")


def reports(ts, name):
    """The app guest's chaintest lines so far, in order: (what, state), "carrier=1" as
    ("carrier", "1")."""
    return re.findall(r"shoji-guest: chaintest (\S+?)[ =](\S+)", ts.serial(name))


def last(ts, name, what, since=0):
    """The last state the app reported for what, from report number since on (None: none)."""
    states = [s for w, s in reports(ts, name)[since:] if w == what]
    return states[-1] if states else None


def test_chain(ts, boots, addr):
    t0 = time.monotonic()
    for role in ("netvm", "firewall"):
        ts.ok("template", "import", role, boots[role]["img"])
    print(f"# templates imported in {time.monotonic() - t0:.0f} s", flush=True)
    root = os.path.join(ts.dir, "www")
    os.makedirs(root, exist_ok=True)
    srv_open, port_open = serve(root, PAGE)
    srv_closed, port_closed = serve(root, PAGE)
    page = "sha256=" + hashlib.sha256(PAGE).hexdigest()
    try:
        define(ts, "netvm", router_ini("netvm", "netvm", boots["netvm"], "type = slirp", "fw"))
        # The firewall's uplink is its second NIC, named by its MAC (the guest parameter uplink).
        define(ts, "fw", router_ini("fw", "firewall", boots["firewall"], "type = vm\npeer = netvm", "app",
                                    f"param = allow=tcp:{port_open}\n", uplink_mac="52:54:00:0f:00:01"))
        probes = "\n\t".join((f"shoji.probe=open=http://{addr}:{port_open}/page.html",
                                f"shoji.probe=closed=http://{addr}:{port_closed}/page.html",
                                f"shoji.probe=hostlo=http://10.0.2.2:{port_open}/page.html",
                                "shoji.probe=netvm=tcp://10.137.1.1:53", "shoji.probe=router=tcp://10.138.1.1:53"))
        define(ts, "app", f"""[vm]
name = app
memory = 128M
kernel = {os.path.join(ts.guest_dir, 'vmlinuz')}
initrd = {os.path.join(ts.guest_dir, 'initramfs.cpio.gz')}
cmdline = console=ttyS0 quiet shoji.action=chaintest shoji.ip=dhcp
\t{probes}

[nic net0]
type = vm
peer = fw
""")
        # One boot at a time: the emulated machine copes badly with several at once.
        started = []
        try:
            for name in ("netvm", "fw", "app"):
                t0 = time.monotonic()
                ts.ok("start", name)
                started.append(name)
                if name == "app":
                    wait_chain(ts, lambda: last(ts, "app", "open") == page, 300,
                               "the app VM fetching the page through the chain", started)
                else:
                    wait_chain(ts, lambda: "shoji-guest: booted" in ts.serial(name), 900, f"{name} booted", started)
                print(f"# {name}: {'reached the server' if name == 'app' else 'booted'} "
                      f"{time.monotonic() - t0:.0f} s after its start", flush=True)
            assert re.search(r"shoji-guest: dhcp 10\.138\.1\.\d+/24 via 10\.138\.1\.1", ts.serial("app")), ts.serial("app")[-2000:]
            for name, role, down in (("netvm", "netvm", "10.137.1.1/24"), ("fw", "firewall", "10.138.1.1/24")):
                console = ts.serial(name)
                assert f"shoji-router: {role}: uplink" in console and re.search(
                    f"shoji-router: {role}: downstream \\S+ \\(\\S+\\) {re.escape(down)}", console), console[-3000:]
            assert f"allow tcp:{port_open}" in ts.serial("fw")
            assert re.search(r"shoji-router: firewall: uplink \S+ \(52:54:00:0f:00:01\) by DHCP", ts.serial("fw")), \
                "the firewall's uplink is not the NIC the guest parameter uplink names:\n" + ts.serial("fw")[-3000:]
            wait_chain(ts, lambda: last(ts, "app", "router") == "open", 120, "the app's router's DNS port open (the control)")
            time.sleep(20)  # every probe tried several times more, with the path up
            for what, want in (("closed", "unreachable"), ("hostlo", "unreachable"), ("netvm", "closed")):
                states = {s for w, s in reports(ts, "app") if w == what}
                assert states == {want}, f"{what}: the app VM saw {states}, only {want} expected"
            assert last(ts, "app", "open") == page and ts.vm("app")["state"] == "running"

            ts.ok("kill", "fw")
            mark = len(reports(ts, "app"))
            # (the guest reads its carrier once a round of probes, each up to 10 s while nothing answers)
            wait_chain(ts, lambda: last(ts, "app", "carrier", mark) == "0", 180, "the app VM's link down once fw is gone",
                       ("netvm", "app"))
            wait_chain(ts, lambda: last(ts, "app", "open", mark) == "unreachable", 180, "the app VM cut off",
                       ("netvm", "app"))
            t0 = time.monotonic()
            mark = len(reports(ts, "app"))
            ts.ok("start", "fw")
            wait_chain(ts, lambda: last(ts, "app", "open", mark) == page, 600, "the path back after fw restarted")
            print(f"# the path back {time.monotonic() - t0:.0f} s after fw started again", flush=True)
            assert last(ts, "app", "carrier", mark) == "1"
            for name in ("netvm", "app"):
                assert ts.vm(name)["state"] == "running", ts.vm(name)
            assert last(ts, "app", "closed") == "unreachable"
            want = {("netvm", "down"): "fw", ("fw", "up"): "netvm", ("fw", "down"): "app", ("app", "net0"): "fw"}
            wait_until(lambda: all(links(ts).get(k, ("", ""))[:2] == (peer, "up") for k, peer in want.items()), 30,
                       f"shoji net showing the chain up: {links(ts)}")
        except AssertionError as e:
            raise AssertionError(f"{e}\n{diagnosis(ts)}") from None
    finally:
        for p in (srv_open, srv_closed):
            p.kill()
            p.wait()


def wait_chain(ts, pred, timeout, what, running=("netvm", "fw", "app")):
    """wait_until, given up at once when a VM of running stops (its crash said): the test would
    otherwise wait out its time for nothing."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return
        down = {n: ts.vm(n) for n in running}
        down = {n: vm.get("last_exit", "?") for n, vm in down.items() if vm["state"] != "running"}
        if down:
            raise AssertionError(f"waiting for {what}: " + "; ".join(f"{n} stopped: {why}" for n, why in down.items()))
        time.sleep(1)
    raise AssertionError(f"timed out ({timeout}s) waiting for: {what}")


def diagnosis(ts):
    """The routers' own lines and the end of each console, for a failed wait."""
    out = []
    for name in ("netvm", "fw", "app"):
        try:
            console = ts.serial(name)
        except AssertionError as e:
            out.append(f"--- {name}: {e}")
            continue
        lines = [ln for ln in console.splitlines() if "shoji-router" in ln or "shoji-guest" in ln]
        out.append(f"--- {name}'s console, shoji lines:\n" + "\n".join(lines[-25:])
                   + f"\n--- {name}'s console, end:\n" + console[-1200:])
    return "\n".join(out)


def run(a, boots, addr):
    """The test under shojid; the suite's exit status."""
    ts, failed, passed = None, 0, 0
    try:
        ts = Toolstack(a)
        ts.start_daemon()
        passed, failed = run_single(ts, test_chain, boots, addr)
    finally:
        status = failed_status(ts, failed, passed) if ts else 1
        if ts:
            ts.cleanup()
    print(f"{passed} passed, {failed} failed")
    return status


def main():
    a, boots = image_suite_args("netvm", "firewall")
    with nat_address() as addr:
        if not addr:
            print("SKIP: this machine has no address but loopback for the net VM's NAT to reach")
            return 77
        return run(a, boots, addr)


if __name__ == "__main__":
    sys.exit(main())
