#!/usr/bin/env python3
"""The debian-base image under shoji-vmm through Debian's OVMF (run by test_image_boot.sh, in
the KVM harness where the machine has no /dev/kvm): boots to "shoji-guest: booted" and a DHCP
address from the user network, powers off on the ACPI power button (the control socket's
shutdown) with exit status 0, and boots again from the variable store the first run left, this
time with a vsock device: the image's guest agent (shoji-agent.service, its token from fw_cfg)
reports the Debian release in the monitor's status, and the shutdown goes through it.
The image itself is never written: each run boots a qcow2 overlay on it.

    shoji_boot.py --vmm VMM --img IMAGE --dir SCRATCH [--timeout S]"""
import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

CODE = "/usr/share/OVMF/OVMF_CODE_4M.fd"
VARS = "/usr/share/OVMF/OVMF_VARS_4M.fd"


def read(path):
    try:
        with open(path, "rb") as f:
            return f.read().decode(errors="replace")
    except FileNotFoundError:
        return ""


def call(ctl, cmd):
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(30)
        s.connect(ctl)
        s.sendall(json.dumps({"cmd": cmd}).encode() + b"\n")
        buf = b""
        while not buf.endswith(b"\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
        return buf.decode(errors="replace").strip()


def wait_agent(ctl, n, t0, limit=300):
    """The agent's state once it is ready with its info, or None after limit seconds."""
    end = time.monotonic() + limit
    while time.monotonic() < end:
        agent = json.loads(call(ctl, "status")).get("agent", {})
        if agent.get("state") == "ready" and "info" in agent:
            print(f"shoji-vmm run {n}: agent ready after {time.monotonic() - t0:.1f} s: {agent['info']}", flush=True)
            return agent
        time.sleep(1)
    print(f"FAIL: shoji-vmm run {n}: the guest agent was not ready within {limit} s: {agent}")
    return None


def boot_once(a, n, img_dir, vars_path, cid=0):
    overlay = os.path.join(img_dir, f"overlay-{n}.qcow2")
    img = os.path.join(os.path.dirname(a.vmm), "shoji-img")
    r = subprocess.run([img, "create", "-f", "qcow2", "-b", os.path.abspath(a.img), "-F", "qcow2", overlay],
                       capture_output=True, text=True)
    if r.returncode != 0:
        print(f"FAIL: shoji-img create: {r.stderr.strip()}")
        return False
    # The socket in a local folder: --dir may be on a share (9p) that holds no sockets.
    sock_dir = tempfile.mkdtemp()
    log, ctl = os.path.join(a.dir, f"serial-shoji-{n}.log"), os.path.join(sock_dir, "ctl.sock")
    for old in (log, log + ".1"):  # the monitor appends: no line from an earlier run may count
        if os.path.exists(old):
            os.unlink(old)
    err = open(os.path.join(a.dir, f"stderr-shoji-{n}.log"), "wb")
    t0 = time.monotonic()
    p = subprocess.Popen([a.vmm, "--firmware", f"{CODE},vars={vars_path}", "--disk", f"{overlay},format=qcow2",
                          "--net", "slirp", "--rng", "--memory", "1024", "--serial-log", log,
                          "--control-socket", ctl, *(["--vsock", str(cid)] if cid else [])],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
    got = {}
    try:
        while p.poll() is None and time.monotonic() - t0 < a.timeout and len(got) < 2:
            text = read(log)
            for key, line in (("booted", "shoji-guest: booted"), ("address", "shoji-guest: address")):
                if key not in got and line in text:
                    got[key] = time.monotonic() - t0
                    print(f"shoji-vmm run {n}: {text.split(line)[1].splitlines()[0].strip()!r} "
                          f"({key}) after {got[key]:.1f} s", flush=True)
            time.sleep(0.5)
        if len(got) < 2:
            tail = read(log)[-3000:]
            err.flush()
            with open(err.name, "rb") as f:
                stderr = f.read().decode(errors="replace")[-1500:]
            print(f"FAIL: shoji-vmm run {n}: no {'booted' if 'booted' not in got else 'address'} line "
                  f"within {a.timeout} s (status {p.poll()}):\n{tail}\nstderr:\n{stderr}")
            return False
        if cid:
            agent = wait_agent(ctl, n, t0)
            if not agent or "Debian" not in agent["info"].get("os", ""):
                return False
        try:
            reply = call(ctl, "shutdown")
            rc = p.wait(300)
        except (OSError, subprocess.TimeoutExpired) as ex:
            print(f"FAIL: shoji-vmm run {n}: the shutdown did not end the VM: {ex}")
            return False
        print(f"shoji-vmm run {n}: shutdown {reply}, exit status {rc} after {time.monotonic() - t0:.1f} s")
        via = '"via":"agent"' if cid else '"via":"acpi"'
        return rc == 0 and '"ok":true' in reply and via in reply
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        err.close()
        shutil.rmtree(sock_dir, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--vmm", required=True)
    ap.add_argument("--img", required=True)
    ap.add_argument("--dir", required=True)
    ap.add_argument("--timeout", type=int, default=900)
    a = ap.parse_args()
    vars_path = os.path.join(a.dir, "vars-shoji.fd")
    shutil.copyfile(VARS, vars_path)
    cid = 3 + os.getpid() % 100000 + 60000
    ok = boot_once(a, 1, a.dir, vars_path) and boot_once(a, 2, a.dir, vars_path, cid=cid)
    print("PASS: shoji-vmm" if ok else "FAIL: shoji-vmm")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
