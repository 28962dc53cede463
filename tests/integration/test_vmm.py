#!/usr/bin/env python3
"""shoji-vmm's behaviour that needs no Linux boot: synthetic kernels that triple-fault, poke
unknown ports or power off at once, and the one-line errors for bad input (missing or corrupt
kernel, initrd that does not fit, impossible memory or vCPU counts, no /dev/kvm)."""
import os
import sys
import tempfile

import vmmtest
from vmmtest import ASM_POWEROFF, asm_out, synthetic_kernel

TMP = tempfile.mkdtemp(prefix="shoji-test-")


def tmp(name):
    return os.path.join(TMP, name)


def expect_error(r, *words):
    assert r.rc == 1, f"exit status {r.rc}, expected 1:\n{r.tail()}"
    lines = [l for l in r.err.splitlines() if l.strip()]
    assert len(lines) == 1, f"expected one line of error, got:\n{r.err}"
    for w in words:
        assert w in lines[0], f"error does not mention {w!r}: {lines[0]}"


def test_synthetic_poweroff(env):
    k = synthetic_kernel(tmp("off"), ASM_POWEROFF)
    r = env.run(["--kernel", k, "--memory", "64"], timeout=60)
    assert r.rc == 0, f"exit status {r.rc}:\n{r.tail()}"


def test_triple_fault(env):
    # int3 with an empty IDT: #BP -> #GP -> #DF -> shutdown.
    k = synthetic_kernel(tmp("tf"), bytes([0xCC]))
    r = env.run(["--kernel", k, "--memory", "64"], timeout=60)
    assert r.rc == 4, f"exit status {r.rc}, expected 4:\n{r.tail()}"
    assert "triple fault" in r.err, r.err


def test_unknown_ports_are_ignored_and_rate_limited(env):
    # 2000 writes to a port nobody claims, then power off: the guest goes on, the log stays short.
    loop = (bytes([0xB9]) + (2000).to_bytes(4, "little")  # mov ecx, 2000
            + asm_out(0x1234, 0x55)                         # 7 bytes
            + bytes([0xFF, 0xC9, 0x75, 0x100 - 11]))        # dec ecx; jnz loop
    k = synthetic_kernel(tmp("ports"), loop + ASM_POWEROFF)
    r = env.run(["--kernel", k, "--memory", "64", "--stats"], timeout=240)
    assert r.rc == 0, f"exit status {r.rc}:\n{r.tail()}"
    warnings = [l for l in r.err.splitlines() if "no device there" in l]
    assert 1 <= len(warnings) <= 40, f"{len(warnings)} warnings for 2000 accesses"
    assert "0x1234" in warnings[0], warnings[0]
    assert "unclaimed accesses 2000" in r.err, r.err


def test_missing_kernel(env):
    expect_error(env.run(["--kernel", tmp("nope")]), "cannot open kernel", "nope")


def test_not_a_bzimage(env):
    with open(tmp("text"), "w") as f:
        f.write("hello\n" * 200)
    expect_error(env.run(["--kernel", tmp("text")]), "not a bzImage")


def test_elf_kernel(env):
    """An ELF file is taken as a vmlinux, and one that is not for x86-64 is refused by name."""
    with open(tmp("elf"), "wb") as f:
        f.write(b"\x7fELF" + bytes(2000))
    expect_error(env.run(["--kernel", tmp("elf")]), "is an ELF file, but not for x86-64")


def test_truncated_kernel(env):
    with open(env.kernel, "rb") as f:
        head = f.read(40000)
    with open(tmp("trunc"), "wb") as f:
        f.write(head)
    expect_error(env.run(["--kernel", tmp("trunc")]), "truncated")


def test_initrd_does_not_fit(env):
    big = tmp("big-initrd")
    with open(big, "wb") as f:
        f.truncate(200 << 20)
    expect_error(env.run(["--kernel", env.kernel, "--initrd", big, "--memory", "128"]),
                 "does not fit", "--memory")


def test_memory_too_small(env):
    expect_error(env.run(["--kernel", env.kernel, "--memory", "8"]), "--memory", "at least")
    expect_error(env.run(["--kernel", env.kernel, "--memory", "48"]), "too small for kernel")


def test_memory_more_than_host(env):
    # 1 TiB, the most a VM may have (src/common/limits.h), is more than the test machine has.
    expect_error(env.run(["--kernel", env.kernel, "--memory", str(1 << 20)]), "more than this host")
    expect_error(env.run(["--kernel", env.kernel, "--memory", str(8 << 20)]), "from 1 to 1048576")


def test_too_many_cpus(env):
    expect_error(env.run(["--kernel", env.kernel, "--cpus", "300"]), "--cpus")
    expect_error(env.run(["--kernel", env.kernel, "--cpus", "0"]), "--cpus")


def test_no_kvm_device(env):
    k = synthetic_kernel(tmp("off2"), ASM_POWEROFF)
    r = env.run(["--kernel", k], env={"SHOJI_KVM_DEVICE": tmp("no-kvm")})
    expect_error(r, "does not exist", "kvm-run")


def test_bad_options(env):
    expect_error(env.run(["--kernel", env.kernel, "--on-reboot", "maybe"]), "--on-reboot")
    expect_error(env.run(["--kernel", env.kernel, "--serial", "tcp:1"]), "--serial")
    expect_error(env.run(["--frobnicate"]), "unknown option")
    expect_error(env.run(["--kernel", env.kernel, "--memory"]), "--memory needs a value")
    expect_error(env.run([]), "--kernel")


TESTS = [test_synthetic_poweroff, test_triple_fault, test_unknown_ports_are_ignored_and_rate_limited,
         test_missing_kernel, test_not_a_bzimage, test_elf_kernel,
         test_truncated_kernel, test_initrd_does_not_fit, test_memory_too_small,
         test_memory_more_than_host, test_too_many_cpus, test_no_kvm_device, test_bad_options]

if __name__ == "__main__":
    sys.exit(vmmtest.main(TESTS, sys.argv[1:]))
