#!/usr/bin/env python3
"""qcow2 interoperability between shoji-img and QEMU, checked both ways by hash.

shoji -> QEMU: images created and written by shoji-img pass `qemu-img check` and read back,
through `qemu-img convert -O raw`, exactly as a byte model of the disk says.
QEMU -> shoji: images made by `qemu-img create/convert` (compressed, backing chains of depth 3,
several cluster sizes, preallocated metadata, zero clusters and discards made by qemu-io) are
read by shoji-img exactly as qemu-img reads them, and written by shoji-img correctly; an image
QEMU left dirty (lazy refcounts, killed) is repaired by shoji; shoji-img convert flattens QEMU's
chains.
Exit status 77 (skipped) where qemu-img is missing."""
import argparse
import hashlib
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

IMG = None
MIB = 1 << 20


def run(*args, check=True, stdin=None, **kw):
    r = subprocess.run([str(a) for a in args], input=stdin, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, **kw)
    if check and r.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, args))} -> {r.returncode}: {r.stderr.decode()}")
    return r


def img(*args, **kw):
    return run(IMG, *args, **kw)


def sha(b):
    return hashlib.sha256(b).hexdigest()


def qemu_raw(path):
    out = path + ".raw"
    run("qemu-img", "convert", "-O", "raw", path, out)
    with open(out, "rb") as f:
        data = f.read()
    os.unlink(out)
    return data


def qemu_check(t, path):
    r = run("qemu-img", "check", path, check=False)
    t.assertEqual(r.returncode, 0, r.stdout.decode() + r.stderr.decode())


def shoji_read(path, size):
    return img("read", path, 0, size).stdout


class Base(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="shoji-interop-")
        self.rng = random.Random(self.id())

    def tearDown(self):
        shutil.rmtree(self.dir)

    def p(self, name):
        return os.path.join(self.dir, name)

    def rand(self, n):
        return self.rng.randbytes(n)

    def random_writes(self, path, model, count, max_len=200000):
        """Writes random bytes at random places through shoji-img, mirrored in model."""
        for _ in range(count):
            n = self.rng.randint(1, max_len)
            off = self.rng.randrange(0, len(model) - n)
            data = self.rand(n)
            img("write", path, off, stdin=data)
            model[off:off + n] = data


class ShojiToQemu(Base):
    def test_cluster_sizes(self):
        for cs in (512, 4096, 65536, 2 * MIB):
            with self.subTest(cluster_size=cs):
                path = self.p(f"c{cs}.qcow2")
                size = 24 * MIB + 4096
                img("create", "-f", "qcow2", "-o", f"cluster_size={cs}", path, size)
                model = bytearray(size)
                self.random_writes(path, model, 25)
                # Zeroes and discards over whole and partial clusters.
                img("zero", path, 1000, 3 * cs + 17)
                model[1000:1000 + 3 * cs + 17] = bytes(3 * cs + 17)
                img("zero", "-u", path, 5 * MIB, 2 * cs)
                model[5 * MIB:5 * MIB + 2 * cs] = bytes(2 * cs)
                img("discard", path, 8 * MIB, 4 * cs)  # aligned: whole clusters read as zeroes
                model[8 * MIB:8 * MIB + 4 * cs] = bytes(4 * cs)
                self.random_writes(path, model, 5)
                qemu_check(self, path)
                self.assertEqual(sha(qemu_raw(path)), sha(model))
                self.assertEqual(img("check", path, check=False).returncode, 0)

    def test_overlay_on_raw_and_qcow2(self):
        size = 16 * MIB
        base = bytearray(self.rand(size))
        with open(self.p("base.raw"), "wb") as f:
            f.write(base)
        img("create", "-f", "qcow2", "-b", "base.raw", "-F", "raw", self.p("mid.qcow2"))
        img("create", "-f", "qcow2", "-b", "mid.qcow2", "-F", "qcow2", self.p("top.qcow2"), 20 * MIB)
        model = bytearray(base) + bytearray(4 * MIB)
        self.random_writes(self.p("top.qcow2"), model, 30, max_len=70000)
        qemu_check(self, self.p("top.qcow2"))
        self.assertEqual(sha(qemu_raw(self.p("top.qcow2"))), sha(model))
        info = run("qemu-img", "info", "--output=json", self.p("top.qcow2")).stdout.decode()
        self.assertIn('"backing-filename": "mid.qcow2"', info)
        self.assertIn('"backing-filename-format": "qcow2"', info)
        with open(self.p("base.raw"), "rb") as f:
            self.assertEqual(f.read(), base)  # the backing file is never written

    def test_alternating_writers(self):
        """shoji-img and qemu-io take turns writing one image; each reads what the other wrote."""
        size = 32 * MIB
        path = self.p("m.qcow2")
        img("create", "-f", "qcow2", "-o", "cluster_size=4096", path, size)
        model = bytearray(size)
        for turn in range(4):
            self.random_writes(path, model, 10, max_len=50000)
            off = self.rng.randrange(0, size - MIB) & ~65535  # discards then cover whole clusters
            byte = self.rng.randrange(1, 255)
            run("qemu-io", "-f", "qcow2", "-c", f"write -P {byte} {off} 300k", "-c", f"discard {off + 400 * 1024} 64k",
                path)
            model[off:off + 300 * 1024] = bytes([byte]) * (300 * 1024)
            model[off + 400 * 1024:off + 464 * 1024] = bytes(64 * 1024)
            qemu_check(self, path)
            self.assertEqual(img("check", path, check=False).returncode, 0)
            self.assertEqual(sha(shoji_read(path, size)), sha(model), f"turn {turn}")
            self.assertEqual(sha(qemu_raw(path)), sha(model), f"turn {turn}")

    def test_check_exit_status_and_leak_repair(self):
        path = self.p("l.qcow2")
        img("create", "-f", "qcow2", path, 4 * MIB)
        img("write", path, 0, stdin=self.rand(70000))  # L2 table at cluster 4, data at 5 and 6
        img("write", path, MIB, stdin=self.rand(65536))  # cluster 7
        img("discard", path, MIB, 65536)  # cluster 7 free again, inside the file
        qemu_check(self, path)
        # A leak: cluster 7's refcount raised behind everyone's back (the refcount block is at
        # cluster 2 of a fresh image).
        with open(path, "r+b") as f:
            f.seek(2 * 65536 + 2 * 7)
            f.write(b"\x00\x01")
        self.assertEqual(run("qemu-img", "check", path, check=False).returncode, 3)
        self.assertEqual(img("check", path, check=False).returncode, 3)
        self.assertEqual(img("check", "-r", "leaks", path, check=False).returncode, 0)
        qemu_check(self, path)
        # A corruption: a data cluster's refcount dropped to 0.
        with open(path, "r+b") as f:
            f.seek(2 * 65536 + 2 * 5)
            f.write(b"\x00\x00")
        self.assertEqual(run("qemu-img", "check", path, check=False).returncode, 2)
        self.assertEqual(img("check", path, check=False).returncode, 2)

    def test_killed_writer_leaves_no_corruption(self):
        """shoji-img killed with SIGKILL while writing: qemu-img check finds leaks at worst."""
        import signal
        import time
        with open(self.p("base.raw"), "wb") as f:
            f.write(self.rand(8 * MIB))
        for k, delay in enumerate((0.05, 0.15, 0.3, 0.6)):
            path = self.p(f"k{k}.qcow2")
            img("create", "-f", "qcow2", "-o", f"cluster_size={512 if k % 2 else 65536}", "-b", "base.raw",
                "-F", "raw", path, 256 * MIB)
            proc = subprocess.Popen([IMG, "write", path, str(k * 777)], stdin=subprocess.PIPE,
                                    stderr=subprocess.DEVNULL)
            end = time.monotonic() + delay
            try:
                while time.monotonic() < end:
                    proc.stdin.write(self.rand(256 * 1024))
            except BrokenPipeError:
                pass
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            try:
                proc.stdin.close()
            except BrokenPipeError:
                pass
            r = run("qemu-img", "check", path, check=False)
            self.assertIn(r.returncode, (0, 3), r.stdout.decode() + r.stderr.decode())
            self.assertIn(img("check", path, check=False).returncode, (0, 3))


class Cli(Base):
    def one_line_error(self, *args, want):
        r = img(*args, check=False)
        err = r.stderr.decode()
        self.assertEqual(r.returncode, 1, err)
        self.assertEqual(err.count("\n"), 1, err)
        self.assertIn(want, err)

    def test_errors_are_one_line(self):
        run("qemu-img", "create", "-f", "raw", self.p("b.raw"), "1M")
        self.one_line_error("create", "-f", "qcow2", "-b", "b.raw", self.p("x.qcow2"), want="-F raw")
        self.one_line_error("create", "-f", "qcow2", "-b", "nope.raw", "-F", "raw", self.p("x.qcow2"),
                            want="nope.raw")
        self.one_line_error("create", "-f", "qcow2", self.p("x.qcow2"), "12Q", want="not a size")
        self.one_line_error("create", "-f", "qcow2", "-o", "cluster_size=3000", self.p("x.qcow2"), "1M",
                            want="power of two")
        self.one_line_error("create", "-f", "vmdk", self.p("x"), "1M", want="-f raw or -f qcow2")
        img("create", "-f", "qcow2", self.p("x.qcow2"), "1M")
        self.one_line_error("read", self.p("x.qcow2"), "1M", "1", want="beyond its size")
        self.one_line_error("read", "-f", "raw", self.p("missing"), "0", "1", want="missing")
        self.one_line_error("frobnicate", want="unknown command")
        self.one_line_error("check", self.p("b.raw"), want="not qcow2")
        self.assertFalse(os.path.exists(self.p("x")))

    def test_raw_create_info_and_io(self):
        img("create", "-f", "raw", self.p("r.raw"), "3M")
        self.assertEqual(os.path.getsize(self.p("r.raw")), 3 * MIB)
        out = img("info", self.p("r.raw")).stdout.decode()
        self.assertIn("file format: raw", out)
        data = self.rand(5000)
        img("write", self.p("r.raw"), 777, stdin=data)
        self.assertEqual(img("read", self.p("r.raw"), 777, 5000).stdout, data)
        with open(self.p("r.raw"), "rb") as f:
            f.seek(777)
            self.assertEqual(f.read(5000), data)

    def test_locks_exclude_qemu(self):
        """An image shoji-img writes cannot be opened by qemu-img, and the other way round."""
        path = self.p("lk.qcow2")
        img("create", "-f", "qcow2", path, MIB)
        writer = subprocess.Popen([IMG, "write", path, "0"], stdin=subprocess.PIPE)
        try:
            time.sleep(0.5)  # shoji-img has the image open, waiting for its input
            r = run("qemu-img", "check", path, check=False)
            self.assertNotEqual(r.returncode, 0)
            self.assertIn("lock", r.stderr.decode())
        finally:
            writer.stdin.close()
            self.assertEqual(writer.wait(), 0)
        holder = subprocess.Popen(["qemu-io", "-f", "qcow2", path], stdin=subprocess.PIPE,
                                  stdout=subprocess.DEVNULL)
        try:
            time.sleep(0.5)
            r = img("write", path, 0, stdin=b"x", check=False)
            self.assertEqual(r.returncode, 1)
            self.assertIn("is locked", r.stderr.decode())
        finally:
            holder.stdin.close()
            holder.wait()
        img("write", path, 0, stdin=b"x")


class QemuToShoji(Base):
    def qemu_io(self, path, *cmds, fmt="qcow2"):
        args = ["qemu-io", "-f", fmt]
        for c in cmds:
            args += ["-c", c]
        run(*args, path)

    def roundtrip(self, path, size):
        """shoji reads what QEMU reads; then shoji writes, QEMU checks and reads it back."""
        expect = bytearray(qemu_raw(path))
        self.assertEqual(len(expect), size)
        self.assertEqual(sha(shoji_read(path, size)), sha(expect))
        self.random_writes(path, expect, 15, max_len=150000)
        img("zero", path, 65536, 65536 * 2)
        expect[65536:3 * 65536] = bytes(2 * 65536)
        qemu_check(self, path)
        self.assertEqual(sha(qemu_raw(path)), sha(expect))
        self.assertEqual(sha(shoji_read(path, size)), sha(expect))

    def test_plain_with_qemu_io_writes(self):
        for opts in ("cluster_size=65536", "cluster_size=512", "cluster_size=2M",
                     "lazy_refcounts=on", "preallocation=metadata"):
            with self.subTest(opts=opts):
                path = self.p("q.qcow2")
                run("qemu-img", "create", "-f", "qcow2", "-o", opts, path, "12M")
                self.qemu_io(path, "write -P 0x5a 100k 300k", "write -z 1M 256k",
                             "write -P 0x33 2M 64k", "discard 2M 64k", "write -P 0x77 3M 1k")
                self.roundtrip(path, 12 * MIB)
                os.unlink(path)

    def test_compressed(self):
        size = 8 * MIB
        raw = bytearray(size)
        for i in range(0, size, 4096):  # compressible and incompressible stretches
            raw[i:i + 2048] = self.rand(2048) if (i // 4096) % 3 else bytes([i % 251]) * 2048
        with open(self.p("src.raw"), "wb") as f:
            f.write(raw)
        run("qemu-img", "convert", "-c", "-O", "qcow2", self.p("src.raw"), self.p("c.qcow2"))
        check_out = run("qemu-img", "check", self.p("c.qcow2")).stdout.decode()
        self.assertIn("compressed clusters", check_out)
        self.assertNotIn(" 0.00% compressed", check_out)
        self.assertEqual(sha(shoji_read(self.p("c.qcow2"), size)), sha(raw))
        self.roundtrip(self.p("c.qcow2"), size)

    def test_chain_of_depth_three(self):
        size = 6 * MIB
        base = self.rand(size)
        with open(self.p("base.raw"), "wb") as f:
            f.write(base)
        run("qemu-img", "create", "-f", "qcow2", "-b", "base.raw", "-F", "raw", self.p("l1.qcow2"))
        self.qemu_io(self.p("l1.qcow2"), "write -P 1 0 1M", "write -z 2M 64k")
        run("qemu-img", "create", "-f", "qcow2", "-o", "cluster_size=4096", "-b", "l1.qcow2", "-F", "qcow2",
            self.p("l2.qcow2"))
        self.qemu_io(self.p("l2.qcow2"), "write -P 2 512k 1M", "discard 4M 64k")
        run("qemu-img", "create", "-f", "qcow2", "-b", "l2.qcow2", "-F", "qcow2", self.p("l3.qcow2"))
        self.qemu_io(self.p("l3.qcow2"), "write -P 3 1000k 10k")
        # Run from elsewhere: relative backing names resolve against each image's directory.
        self.roundtrip(self.p("l3.qcow2"), size)
        for lower in ("l1.qcow2", "l2.qcow2"):
            qemu_check(self, self.p(lower))

    def test_refused_features(self):
        cases = [("extended_l2=on", "extended L2"), ("compat=0.10", "version 2"),
                 ("compression_type=zstd", "zstd")]
        for opts, want in cases:
            path = self.p("z.qcow2")
            r = run("qemu-img", "create", "-f", "qcow2", "-o", opts, path, "1M", check=False)
            if r.returncode != 0 and "zstd" in opts:
                continue  # this QEMU is built without zstd
            r = img("read", path, 0, 512, check=False)
            self.assertEqual(r.returncode, 1)
            self.assertIn(want, r.stderr.decode())
            self.assertEqual(r.stderr.decode().count("\n"), 1)

    def test_dirty_lazy_refcounts(self):
        """QEMU with lazy refcounts killed mid-way (qemu-io abort) leaves the dirty bit and stale
        refcounts: shoji reads the image as it is, rebuilds the refcounts when it opens it for
        writing (or with check -r all), and QEMU then finds it clean with the same content."""
        for how in ("write", "check"):
            with self.subTest(how=how):
                path = self.p(f"lazy-{how}.qcow2")
                run("qemu-img", "create", "-f", "qcow2", "-o", "lazy_refcounts=on,cluster_size=4096", path, "16M")
                r = run("qemu-io", "-f", "qcow2", "-c", "write -P 0x11 0 3M", "-c", "write -P 0x22 5M 300k",
                        "-c", "abort", path, check=False)
                self.assertNotEqual(r.returncode, 0)
                self.assertIn('"dirty-flag": true', img("info", "--json", path).stdout.decode())
                self.assertNotEqual(run("qemu-img", "check", path, check=False).returncode, 0)
                expect = bytearray(16 * MIB)
                expect[0:3 * MIB] = b"\x11" * (3 * MIB)
                expect[5 * MIB:5 * MIB + 300 * 1024] = b"\x22" * (300 * 1024)
                self.assertEqual(sha(shoji_read(path, 16 * MIB)), sha(expect))  # read-only: as it is
                if how == "write":
                    img("write", path, 7 * MIB, stdin=b"\x33" * 70000)
                    expect[7 * MIB:7 * MIB + 70000] = b"\x33" * 70000
                else:
                    out = img("check", "-r", "all", path).stdout.decode()
                    self.assertIn("rebuilt", out)
                self.assertIn('"dirty-flag": false', img("info", "--json", path).stdout.decode())
                qemu_check(self, path)
                self.assertEqual(sha(qemu_raw(path)), sha(expect))
                self.assertEqual(img("check", path, check=False).returncode, 0)

    def test_convert(self):
        """shoji-img convert flattens a chain made by QEMU (compressed base, two overlays) into a
        standalone qcow2 or raw image with the same content, and refuses an existing target."""
        size = 6 * MIB
        raw = bytearray(size)
        for i in range(0, size, 8192):
            raw[i:i + 4096] = self.rand(4096) if (i // 8192) % 2 else bytes([i % 251]) * 4096
        with open(self.p("src.raw"), "wb") as f:
            f.write(raw)
        run("qemu-img", "convert", "-c", "-O", "qcow2", self.p("src.raw"), self.p("base.qcow2"))
        run("qemu-img", "create", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", self.p("mid.qcow2"))
        self.qemu_io(self.p("mid.qcow2"), "write -P 5 1M 100k", "write -z 3M 64k")
        run("qemu-img", "create", "-f", "qcow2", "-o", "cluster_size=4096", "-b", "mid.qcow2", "-F", "qcow2",
            self.p("top.qcow2"))
        self.qemu_io(self.p("top.qcow2"), "write -P 6 2M 10k")
        expect = qemu_raw(self.p("top.qcow2"))
        r = img("convert", "-p", self.p("top.qcow2"), self.p("flat.qcow2"))
        self.assertIn("100", r.stderr.decode())
        qemu_check(self, self.p("flat.qcow2"))
        info = run("qemu-img", "info", "--output=json", self.p("flat.qcow2")).stdout.decode()
        self.assertNotIn("backing-filename", info)
        self.assertIn('"cluster-size": 4096', info)
        self.assertEqual(sha(qemu_raw(self.p("flat.qcow2"))), sha(expect))
        img("convert", "-O", "raw", self.p("top.qcow2"), self.p("flat.raw"))
        with open(self.p("flat.raw"), "rb") as f:
            self.assertEqual(sha(f.read()), sha(expect))
        r = img("convert", self.p("top.qcow2"), self.p("flat.raw"), check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("exists already", r.stderr.decode())
        r = img("convert", self.p("missing.qcow2"), self.p("new.qcow2"), check=False)
        self.assertEqual(r.returncode, 1)
        self.assertFalse(os.path.exists(self.p("new.qcow2")))

    def test_info(self):
        run("qemu-img", "create", "-f", "raw", self.p("b.raw"), "3M")
        run("qemu-img", "create", "-f", "qcow2", "-b", "b.raw", "-F", "raw", self.p("o.qcow2"))
        out = img("info", "--json", self.p("o.qcow2")).stdout.decode()
        import json
        j = json.loads(out)
        self.assertEqual(j["format"], "qcow2")
        self.assertEqual(j["virtual-size"], 3 * MIB)
        self.assertEqual(j["backing-filename"], "b.raw")
        self.assertEqual(j["backing-filename-format"], "raw")


def main():
    global IMG
    ap = argparse.ArgumentParser()
    ap.add_argument("--img", required=True)
    args, rest = ap.parse_known_args()
    IMG = os.path.abspath(args.img)
    if not shutil.which("qemu-img") or not shutil.which("qemu-io"):
        print("qemu-img or qemu-io missing: skipped")
        return 77
    prog = unittest.main(argv=[sys.argv[0]] + rest, exit=False, verbosity=2)
    return 0 if prog.result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())
