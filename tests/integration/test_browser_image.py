#!/usr/bin/env python3
"""The secure browser end to end, with the real browser image (guest/image/recipes/browser) and
the real monitor, in the KVM harness: shojid (monitors jailed), shoji-seat on a virtual X server
(Xvfb), the image imported as the template "browser", and `shoji browse URL` with the page on a
server of this machine reachable only through the VM's NAT. Checked: the seat switches to the
new green VM and its screenshot shows the page (its background colour over a third of the
window, drawn by Firefox in cage); Ctrl+Q typed into the seat closes Firefox, the guest powers
itself off and the disposable VM is removed with its writes. The NAT's limits themselves (no
host loopback) are test_images.py's test_browse, with a light stand-in guest.

Direct kernel boot (the image's kernel, initrd and command line from tests/image/boot_files.py):
OVMF under the harness's emulation hangs now and then (tests/integration/meson.build).

    test_browser_image.py --bindir B --vmm VMM --guest-dir G --browser BOOT.json"""
import argparse
import json
import os
import subprocess
import sys
import time

import seatlib
from test_images import host_address, leftovers, serve
from test_seat import SEAT_GROUP, SEAT_UID, Seat, seat_as_user
from test_toolstack import Toolstack, failed_status, wait_until

PAGE_RGB = 0x7B1FA2
PAGE = (b"<!DOCTYPE html><html><head><title>shoji test page</title></head>"
        b"<body style='background:#7b1fa2;color:#fff;font-size:40px'>shoji-browse-page</body></html>\n")


def test_browser_image(ts, seat, boot, addr):
    t0 = time.monotonic()
    ts.ok("template", "import", "browser", boot["img"])
    print(f"# template imported in {time.monotonic() - t0:.0f} s", flush=True)
    root = os.path.join(ts.dir, "www")
    os.makedirs(root, exist_ok=True)
    srv, port = serve(root, PAGE)
    try:
        url = f"http://{addr}:{port}/page.html"
        t0 = time.monotonic()
        out = ts.ok("browse", url, "--kernel", boot["kernel"], "--initrd", boot["initrd"], "--cmdline", boot["cmdline"])
        name = out.split("'")[1]
        assert f"the seat shows '{name}'" in out, out
        wait_until(lambda: (seat.status().get("active") or "") == name, 60, f"the seat showing {name}")
        vm = ts.vm(name)
        assert vm["label"] == "green" and vm["display"], vm
        last = [0.0]

        def page_drawn():
            try:
                last[0] = seat.shot("browse").share((PAGE_RGB,), top=40)  # under the seat's bar
            except (OSError, ValueError, AssertionError):
                return False
            return last[0] >= 0.33
        try:
            wait_until(page_drawn, 1500, f"the page's colour on the seat (last share {last[0]:.0%})")
        except AssertionError as e:
            raise AssertionError(f"{e}\n--- serial (end):\n{ts.serial(name)[-3000:]}") from None
        print(f"# page on the seat {time.monotonic() - t0:.0f} s after shoji browse "
              f"({last[0]:.0%} of the window)", flush=True)
        seat.input.focus()
        seat.input.key("ctrl+q")
        try:
            wait_until(lambda: not leftovers(ts, name), 300, f"{name} removed after Ctrl+Q closed the browser")
        except AssertionError as e:
            raise AssertionError(f"{e}\n--- serial (end):\n{ts.serial(name)[-3000:]}") from None
        assert name not in [v["name"] for v in ts.js("list")["vms"]]
    finally:
        srv.kill()
        srv.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bindir", required=True)
    ap.add_argument("--vmm", required=True)
    ap.add_argument("--guest-dir", required=True)
    ap.add_argument("--browser", required=True, help="boot.json of tests/image/boot_files.py")
    a = ap.parse_args()
    a.bindir, a.vmm, a.guest_dir = map(os.path.abspath, (a.bindir, a.vmm, a.guest_dir))
    with open(a.browser) as f:
        boot = json.load(f)
    if seatlib.missing_tools():
        print(f"SKIP: {' and '.join(seatlib.missing_tools())} missing (scripts/install-deps)")
        return 77
    addr, added = host_address(), None
    if not addr and os.geteuid() == 0:  # the harness machine: an address of its own for the NAT to reach
        added = addr = "192.0.2.10"
        subprocess.run(["ip", "addr", "add", addr + "/32", "dev", "lo"], check=True)
    if not addr:
        print("SKIP: this machine has no address but loopback for the guest's NAT to reach")
        return 77
    x = seatlib.Xvfb()
    ts, seat, failed, passed = None, None, 0, 0
    try:
        ts = Toolstack(a)
        if seat_as_user():
            ts.daemon_args += ["--group", SEAT_GROUP, "--seat-user", str(SEAT_UID)]
        ts.start_daemon()
        seat = Seat(ts, x)
        t0 = time.monotonic()
        try:
            test_browser_image(ts, seat, boot, addr)
            passed = 1
            print(f"ok - test_browser_image ({time.monotonic() - t0:.1f}s)", flush=True)
        except Exception as e:  # noqa: BLE001
            failed = 1
            print(f"not ok - test_browser_image: {e}", flush=True)
            for f in ("seat.log", "shojid.log"):
                with open(os.path.join(ts.dir, f), "rb") as fh:
                    print(f"--- {f} (end) ---\n" + fh.read().decode(errors="replace")[-3000:])
    finally:
        status = failed_status(ts, failed, passed) if ts else 1
        if seat:
            seat.stop()
        if ts:
            ts.cleanup()
        x.stop()
        if added:
            subprocess.run(["ip", "addr", "del", added + "/32", "dev", "lo"], capture_output=True)
    print(f"{passed} passed, {failed} failed")
    return status


if __name__ == "__main__":
    sys.exit(main())
