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
import os
import sys
import time

import seatlib
from test_images import leftovers, nat_address, serve
from test_seat import SEAT_GROUP, SEAT_UID, Seat, seat_as_user
from test_toolstack import Toolstack, failed_status, image_suite_args, run_single, wait_until

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


def run(a, boot, addr):
    """The test under shojid and a seat; the suite's exit status."""
    x = seatlib.Xvfb()
    ts, seat, failed, passed = None, None, 0, 0
    try:
        ts = Toolstack(a)
        if seat_as_user():
            ts.daemon_args += ["--group", SEAT_GROUP, "--seat-user", str(SEAT_UID)]
        ts.start_daemon()
        seat = Seat(ts, x)
        passed, failed = run_single(ts, test_browser_image, seat, boot, addr, logs=("seat.log", "shojid.log"))
    finally:
        status = failed_status(ts, failed, passed) if ts else 1
        if seat:
            seat.stop()
        if ts:
            ts.cleanup()
        x.stop()
    print(f"{passed} passed, {failed} failed")
    return status


def main():
    a, boots = image_suite_args("browser")
    boot = boots["browser"]
    if seatlib.missing_tools():
        print(f"SKIP: {' and '.join(seatlib.missing_tools())} missing (scripts/install-deps)")
        return 77
    with nat_address() as addr:
        if not addr:
            print("SKIP: this machine has no address but loopback for the guest's NAT to reach")
            return 77
        return run(a, boot, addr)


if __name__ == "__main__":
    sys.exit(main())
