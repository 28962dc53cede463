#!/usr/bin/env python3
"""qcow2 disks under shoji-vmm: the guest writes a pattern to a qcow2 overlay on a raw backing
file, and the host checks the overlay with `qemu-img check` and its content with
`qemu-img convert` and a hash; a qcow2 file given without format= is refused in one line; and
a monitor killed with SIGKILL while the guest writes leaves an image qemu-img finds no
corruption in."""
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import vmmtest

MIB = 1 << 20
IMG = None
PATTERN = (b"shoji-disk-pattern\n" * 60000)[:MIB]


from vmmtest import qemu_check, qemu_raw


def scratch():
    return tempfile.mkdtemp(prefix="shoji-qcow2-")


def make_overlay(d, base_size=16 * MIB):
    base = os.urandom(base_size)
    with open(os.path.join(d, "base.raw"), "wb") as f:
        f.write(base)
    overlay = os.path.join(d, "overlay.qcow2")
    subprocess.run([IMG, "create", "-f", "qcow2", "-b", "base.raw", "-F", "raw", overlay], check=True)
    return base, overlay


def test_guest_writes_qcow2_overlay(env):
    d = scratch()
    try:
        base, overlay = make_overlay(d)
        r = env.boot("disktest", memory=256, extra=["--disk", f"{overlay},format=qcow2,serial=q1"])
        assert r.rc == 0, f"exit status {r.rc}:\n{r.tail()}"
        line = next((l for l in r.out.splitlines() if l.startswith("shoji-guest: disk ")), "")
        assert "write=ok" in line and "vda_serial=q1" in line, f"{line!r}\n{r.tail()}"
        rc, out = qemu_check(overlay)
        assert rc == 0, f"qemu-img check: {rc}\n{out}"
        got = qemu_raw(overlay)
        want = PATTERN + base[MIB:]
        assert hashlib.sha256(got).hexdigest() == hashlib.sha256(want).hexdigest(), \
            "the overlay does not read back as the pattern over the backing file"
        with open(os.path.join(d, "base.raw"), "rb") as f:
            assert f.read() == base, "the backing file changed"
    finally:
        shutil.rmtree(d)


def test_qcow2_without_format_refused(env):
    d = scratch()
    try:
        _, overlay = make_overlay(d, MIB)
        r = env.boot("poweroff", extra=["--disk", overlay], timeout=60)
        assert r.rc == 1, f"exit status {r.rc}, expected 1:\n{r.tail()}"
        lines = [l for l in r.err.splitlines() if l.strip()]
        assert len(lines) == 1 and "format=qcow2" in lines[0], r.err
    finally:
        shutil.rmtree(d)


def test_killed_while_writing(env):
    d = scratch()
    try:
        _, overlay = make_overlay(d)
        p = subprocess.Popen([env.vmm, "--kernel", env.kernel, "--initrd", env.initrd, "--memory", "256",
                              "--cmdline", "console=ttyS0 quiet shoji.action=shell",
                              "--disk", f"{overlay},format=qcow2"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        os.set_blocking(p.stdout.fileno(), False)
        out, sent, writes_seen, start = b"", False, None, time.monotonic()
        try:
            while time.monotonic() - start < 240:
                out += p.stdout.read() or b""
                if not sent and b"ready; type" in out:
                    # Scattered 64 KiB writes with a flush now and then, forever.
                    p.stdin.write(b"i=0; while true; do dd if=/dev/urandom of=/dev/vda bs=65536 count=4 "
                                  b"seek=$(( (i * 37) % 250 )) 2>/dev/null; i=$((i+1)); "
                                  b"[ $((i % 5)) = 0 ] && sync && echo wrote-$i; done\n")
                    p.stdin.flush()
                    sent = True
                if sent and writes_seen is None and b"wrote-10" in out:
                    writes_seen = time.monotonic()
                if writes_seen and time.monotonic() - writes_seen > 2:
                    break
                assert p.poll() is None, f"the monitor ended early ({p.returncode}): {out[-2000:]!r}"
                time.sleep(0.05)
            assert writes_seen, f"the guest never wrote: {out[-2000:]!r}"
        finally:
            p.send_signal(signal.SIGKILL)
            p.wait()
        assert os.path.getsize(overlay) > MIB, "the guest's writes never reached the overlay"
        rc, report = qemu_check(overlay)
        assert rc in (0, 3), f"qemu-img check after SIGKILL: {rc}\n{report}"
        assert subprocess.run([IMG, "check", overlay], capture_output=True).returncode in (0, 3)
    finally:
        shutil.rmtree(d)


TESTS = [test_guest_writes_qcow2_overlay, test_qcow2_without_format_refused, test_killed_while_writing]

if __name__ == "__main__":
    args = sys.argv[1:]
    IMG = vmmtest.take_img(args)
    sys.exit(vmmtest.main(TESTS, args))
