#!/usr/bin/env python3
"""The files a direct kernel boot of a guest/image/build image needs: its kernel and initrd,
copied out of the image's ESP (/RECIPE/vmlinuz-RELEASE, /RECIPE/initrd.img-RELEASE), and its
kernel command line, from the image's manifest (IMAGE.manifest). Written to OUT_DIR with
OUT_DIR/boot.json ({"img", "kernel", "initrd", "cmdline"}, absolute paths), kept while the
image is unchanged. Run outside the KVM harness (it converts the image to a sparse raw file in
TMPDIR for mtools):

    boot_files.py SHOJI_IMG IMAGE.qcow2 OUT_DIR    prints OUT_DIR/boot.json"""
import json
import os
import subprocess
import sys
import tempfile


class BadImage(Exception):
    pass


def manifest_fields(img):
    try:
        with open(img + ".manifest") as f:
            text = f.read()
    except OSError as e:
        raise BadImage(f"{img}.manifest: {e.strerror}: boot_files needs the manifest guest/image/build writes "
                       "beside the image") from e
    fields = dict(line.split(": ", 1) for line in text.splitlines() if ": " in line and not line.startswith("#"))
    for k in ("recipe", "kernel", "cmdline"):
        if k not in fields:
            raise BadImage(f"{img}.manifest has no '{k}:' line: rebuild the image with guest/image/build")
    return fields


def boot_files(shoji_img, img, out_dir):
    img, out_dir = os.path.abspath(img), os.path.abspath(out_dir)
    if not os.path.isfile(img):
        raise BadImage(f"no image {img}: build it with guest/image/build RECIPE {img}")
    fields = manifest_fields(img)
    recipe, rel = fields["recipe"].split()[0], fields["kernel"]
    out = os.path.join(out_dir, "boot.json")
    stamp = str(os.stat(img).st_mtime_ns)
    try:
        with open(out) as f:
            if json.load(f).get("stamp") == stamp:
                return out
    except (OSError, ValueError):
        pass
    os.makedirs(out_dir, exist_ok=True)
    names = [f"vmlinuz-{rel}", f"initrd.img-{rel}"]
    with tempfile.TemporaryDirectory() as tmp:
        raw = os.path.join(tmp, "disk.raw")
        subprocess.run([shoji_img, "convert", "-f", "qcow2", "-O", "raw", img, raw], check=True)
        subprocess.run(["mcopy", "-o", "-n", "-i", f"{raw}@@1M", *(f"::/{recipe}/{n}" for n in names), out_dir],
                       check=True, env=dict(os.environ, MTOOLS_SKIP_CHECK="1"))
    with open(out, "w") as f:
        json.dump({"img": img, "kernel": os.path.join(out_dir, names[0]), "initrd": os.path.join(out_dir, names[1]),
                   "cmdline": fields["cmdline"], "stamp": stamp}, f)
    return out


def main():
    if len(sys.argv) != 4:
        print(__doc__.rsplit("\n\n", 1)[1], file=sys.stderr)
        return 2
    try:
        print(boot_files(*sys.argv[1:]))
        return 0
    except (BadImage, subprocess.CalledProcessError) as e:
        print(f"boot_files: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
