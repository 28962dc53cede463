#!/usr/bin/env python3
"""The guest agent (shoji-agent in the test guest, over vsock) against the monitor's agent link,
through the control socket: the guest's info in the status; another host process without the
VM's token refused by the agent; the wall clock set again after a
20 s pause; shutdown through the agent; the guest's clipboard (the test guest's is the file
/tmp/clipboard) set and read back through the control socket, and the requests the monitor
refuses; and a hostile stand-in agent (garbage, a huge length, a wrong version, silence, a
hang-up, an answer to nothing, a flood of hellos) that the monitor drops, counts and reports
while it keeps answering at once (a clipboard request with an error) and the guest keeps
running, its shutdown then going through the ACPI power button. Run with test_control.py's
boots."""
import base64
import json
import os
import socket
import struct
import time

from test_control import Vm, read_line, request

PAUSE_S = 20


def _cid():
    """A vsock CID of this process's own (the harness may run other VMs)."""
    return 1000 + os.getpid() % 1000000


def _vm(env, action, agent="1", name="agentvm"):
    boot = ["--kernel", env.kernel, "--initrd", env.initrd, "--cmdline",
            f"console=ttyS0 quiet shoji.action={action} shoji.name={name} shoji.agent={agent}"]
    vm = Vm(env, action, extra=["--vsock", str(_cid())], boot=boot)
    vm.cid = _cid()
    return vm


def agent_status(c):
    rep = request(c, {"cmd": "status"})
    assert rep.get("ok") is True, rep
    return rep["agent"]


# A status reply at most: a monitor that waited on its agent would take AGENT_HELLO_MS or
# AGENT_REPLY_MS (5 s, src/vmm/agent_link.h). Below that, not a tighter bound: the emulated
# machine, its two CPUs busy with a booting guest, has held a reply back for over 2 s.
STATUS_S = 4


def wait_agent(vm, c, pred, timeout=180):
    """Polls the status until pred(agent) holds; each reply must come without waiting on the
    agent (STATUS_S)."""
    end = time.monotonic() + timeout
    while True:
        t = time.monotonic()
        a = agent_status(c)
        took = time.monotonic() - t
        assert took < STATUS_S, f"the monitor took {took:.1f} s to answer a status"
        if pred(a):
            return a
        if time.monotonic() > end:
            raise AssertionError(f"agent state not reached: {a}\n{vm.tail()}")
        assert vm.p.poll() is None, f"the monitor ended ({vm.p.returncode}):\n{vm.tail()}"
        time.sleep(0.5)


def _frame(typ, payload=b""):
    return struct.pack("<HBBI", 0x5341, 1, typ, len(payload)) + payload


def _intruder(vm, c):
    """Another host process, without the VM's token, connects to the agent and asks for a
    power-off: the agent says nothing, the guest runs on and the monitor's link is untouched."""
    before = agent_status(c)
    s = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect((vm.cid, 5900))
    s.sendall(_frame(1, struct.pack("<I", 0x1f) + b"0" * 32) + _frame(4))  # hello, wrong token; shutdown
    try:
        got = s.recv(64)
    except (socket.timeout, ConnectionResetError):
        got = b""
    s.close()
    assert got == b"", f"the agent answered a host without the token: {got!r}"
    vm.wait_for(lambda v: "refused a host connection without this VM's token" in v.log(), 30)
    ticks = len(vm.ticks())
    time.sleep(2)
    assert len(vm.ticks()) > ticks, "the guest stopped:\n" + vm.tail()
    after = agent_status(c)
    assert after["state"] == "ready" and after["faults"] == before["faults"], (before, after)


def test_agent_info_time_shutdown(env):
    vm = _vm(env, "tick")
    try:
        c = vm.connect()
        a = wait_agent(vm, c, lambda a: a["state"] == "ready" and "info" in a)
        info = a["info"]
        assert info["hostname"] == "agentvm", info
        assert info["os"] and info["kernel"] and info["agent-version"] == "1", info
        assert info["addresses"] == "none", info  # no NIC
        assert int(info["uptime-s"]) >= 0 and set(a["caps"]) >= {"info", "power", "time", "clipboard"}, a
        _intruder(vm, c)
        # A pause of PAUSE_S: kvmclock is restored at resume (vm_control.c), so the guest's clock
        # is that far behind until the agent sets it (the check below allows 3 s).
        assert request(c, {"cmd": "pause"})["state"] == "paused"
        time.sleep(PAUSE_S)
        assert request(c, {"cmd": "resume"})["state"] == "running"
        resumed = time.time()
        a = wait_agent(vm, c, lambda a: a.get("time_syncs", 0) >= 1 and a.get("info_s_ago", 99) == 0
                       and time.time() - resumed > 1, timeout=60)
        skew = int(a["info"]["time"]) + a["info_s_ago"] - time.time()
        print(f"# after a {PAUSE_S} s pause: the guest's clock {skew:+.1f} s off the host's once set "
              f"({a['time_syncs']} setting, seen {time.time() - resumed:.1f} s after the resume)", flush=True)
        assert abs(skew) < 3, f"the guest's clock is {skew:.1f} s off the host's after the resume: {a}"
        rep = request(c, {"cmd": "shutdown"})
        assert rep == {"ok": True, "via": "agent"}, rep
        rc = vm.wait_exit(120)
        assert rc == 0, f"exit status {rc} after a shutdown through the agent:\n{vm.tail()}"
        assert "shoji-agent: the host asked for a power-off" in vm.log(), vm.tail()
        assert "power button pressed" not in vm.log(), "the ACPI button was pressed too:\n" + vm.tail()
    finally:
        vm.close()


CLIPBOARD_MAX = 256 << 10  # SHOJI_CLIPBOARD_MAX
CLIPBOARD_S = 2.5  # a clipboard request's reply at most: the agent's answer within 2 s, and some


def clipboard(c, req):
    """A clipboard request, whose reply must come within CLIPBOARD_S."""
    t = time.monotonic()
    rep = request(c, req)
    took = time.monotonic() - t
    assert took < CLIPBOARD_S, f"a clipboard request took {took:.1f} s: {rep}"
    return rep


def clip_set(c, data):
    return clipboard(c, {"cmd": "clipboard-set", "data": base64.b64encode(data).decode()})


def clip_get(c):
    rep = clipboard(c, {"cmd": "clipboard-get"})
    if rep.get("ok"):
        data = base64.b64decode(rep["data"], validate=True)
        assert rep["kind"] == "text" and rep["bytes"] == len(data), rep
        rep["text"] = data
    return rep


def test_agent_clipboard(env):
    vm = _vm(env, "tick", name="clipvm")
    try:
        c = vm.connect()
        wait_agent(vm, c, lambda a: a["state"] == "ready" and "clipboard" in a.get("caps", []))
        # Nothing copied yet: the guest's command fails, and the monitor says so.
        rep = clip_get(c)
        assert rep["ok"] is False and "did not give its clipboard" in rep["error"], rep
        text = "".join(f"line {i}: h\u00e9llo w\u00f6rld \u2713 \U0001f408\n" for i in range(150)).encode()
        assert len(text) > 4096
        assert clip_set(c, text) == {"ok": True}
        rep = clip_get(c)
        assert rep["ok"] is True and rep["text"] == text, rep
        # The largest clipboard, both ways.
        big = (b"x" * 99 + b"\n") * (CLIPBOARD_MAX // 100) + b"y" * (CLIPBOARD_MAX % 100)
        assert clip_set(c, big) == {"ok": True}
        assert clip_get(c)["text"] == big
        # What the monitor refuses itself: bad base64, not text, too long.
        for data, why in (("aGk", "not base64"), ("aGk=\n", "not base64"),
                          (base64.b64encode(b"a\0b").decode(), "not UTF-8 text"),
                          (base64.b64encode(b"\xff\xfe").decode(), "not UTF-8 text"),
                          (base64.b64encode(big + b"z").decode(), "longer than")):
            rep = clipboard(c, {"cmd": "clipboard-set", "data": data})
            assert rep["ok"] is False and why in rep["error"], (why, rep)
        assert clip_get(c)["text"] == big  # unchanged
        # A request behind a clipboard request is answered after it, in order; another client
        # is answered meanwhile.
        c.sendall(b'{"cmd":"clipboard-get"}\n{"cmd":"status"}\n')
        other = vm.connect()
        assert request(other, {"cmd": "status"})["ok"] is True
        first, second = json.loads(read_line(c)), json.loads(read_line(c))
        assert first.get("bytes") == len(big) and "agent" in second, (first.get("error"), second.keys())
        # Paused: refused at once, not left waiting.
        assert request(c, {"cmd": "pause"})["state"] == "paused"
        rep = clip_get(c)
        assert rep["ok"] is False and "paused" in rep["error"], rep
        assert request(c, {"cmd": "resume"})["state"] == "running"
        assert clip_set(c, b"after the pause") == {"ok": True}
        assert clip_get(c)["text"] == b"after the pause"
        a = agent_status(c)
        assert a["state"] == "ready" and a["faults"] == 0, a
        assert request(c, {"cmd": "stop"}) == {"ok": True}
        vm.wait_exit(60)
    finally:
        vm.close()


def test_hostile_agent(env):
    vm = _vm(env, "tick", agent="hostile")
    try:
        c = vm.connect()
        clip = []

        def round_done(a):
            """A clipboard request meanwhile is answered in time, with an error."""
            if len(clip) < 40:
                clip.append(clip_get(c))
            return "hostile agent round done" in vm.log()

        # One round of every misdeed; the status is answered at once all along.
        wait_agent(vm, c, round_done, timeout=240)
        assert clip and all(r["ok"] is False and r["error"] for r in clip), clip
        print(f"# hostile agent: {len(clip)} clipboard requests refused, e.g. "
              f"{sorted(set(r['error'] for r in clip))[:4]}", flush=True)
        a = agent_status(c)
        print(f"# hostile agent, one round: {a['faults']} faults, state {a['state']}, last: {a.get('error')}",
              flush=True)
        assert a["faults"] >= 5 and a["state"] in ("unresponsive", "connecting"), a
        assert a.get("error"), a
        err = vm.stderr()
        for why in ("bad magic", "longer than the limit", "unsupported version", "did not say hello",
                    "not the one awaited", "said hello twice"):
            assert why in err, f"no fault '{why}' reported:\n{err[-3000:]}"
        before = len(vm.ticks())
        time.sleep(2)
        assert len(vm.ticks()) > before, "the guest stopped running:\n" + vm.tail()
        rep = request(c, {"cmd": "shutdown"})
        assert rep == {"ok": True, "via": "acpi"}, rep
        rc = vm.wait_exit(120)
        assert rc == 0, f"exit status {rc}:\n{vm.tail()}"
    finally:
        vm.close()


TESTS = [test_agent_info_time_shutdown, test_agent_clipboard, test_hostile_agent]
