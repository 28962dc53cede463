"""efidisk: a small disk that UEFI firmware boots the test guest from, made in a plain file with
no loop device and no root: an MBR with one EFI system partition (type 0xEF) holding a FAT file
system (mkfs.vfat, mtools) with systemd-boot at the removable path \\EFI\\BOOT\\BOOTX64.EFI and a
loader entry for the guest's kernel, initramfs and command line. A stand-in for the Debian
images guest/image/build makes: it boots the same test guest as direct kernel boot, so a test
can compare the two, and it takes seconds to make.

Needs: dosfstools, mtools, systemd-boot-efi (missing() names what is absent, for a skip)."""
import os
import shutil
import struct
import subprocess
import tempfile

SYSTEMD_BOOT = "/usr/lib/systemd/boot/efi/systemd-bootx64.efi"
OVMF_CODE = "/usr/share/OVMF/OVMF_CODE_4M.fd"
OVMF_VARS = "/usr/share/OVMF/OVMF_VARS_4M.fd"
SECTOR = 512
START = 2048  # the partition's first sector: 1 MiB in


def missing():
    """What this machine lacks to make the disk and boot it (package names), or []."""
    need = [("mkfs.vfat", "dosfstools"), ("mcopy", "mtools")]
    lack = [pkg for tool, pkg in need if not shutil.which(tool)]
    if not os.path.exists(SYSTEMD_BOOT):
        lack.append("systemd-boot-efi")
    if not (os.path.exists(OVMF_CODE) and os.path.exists(OVMF_VARS)):
        lack.append("ovmf")
    return lack


def _run(*args):
    p = subprocess.run(list(args), capture_output=True, text=True)
    if p.returncode != 0:
        raise AssertionError(f"{' '.join(args)}: exit {p.returncode}: {p.stdout}{p.stderr}")


def make(path, kernel, initrd, cmdline, size_mib=64, menu=None):
    """Writes the disk to path (raw). menu: None boots cmdline at once; else a list of
    (title, cmdline) entries shown in systemd-boot's menu for up to 5 minutes, the first the
    default (cmdline is then unused)."""
    work = tempfile.mkdtemp(prefix="shoji-efidisk-")
    try:
        fat = os.path.join(work, "esp.img")
        _run("mkfs.vfat", "-C", "-n", "SHOJI-ESP", "-F", "32", fat, str((size_mib - 1) * 1024))
        entries = menu or [("shoji test guest", cmdline)]
        conf = os.path.join(work, "loader.conf")
        with open(conf, "w") as f:
            f.write(f"default shoji0.conf\ntimeout {300 if menu else 0}\nconsole-mode keep\n")
        files = [(SYSTEMD_BOOT, "::/EFI/BOOT/BOOTX64.EFI"), (kernel, "::/vmlinuz"),
                 (initrd, "::/initramfs.img"), (conf, "::/loader/loader.conf")]
        for i, (title, options) in enumerate(entries):
            entry = os.path.join(work, f"shoji{i}.conf")
            with open(entry, "w") as f:
                f.write(f"title {title}\nsort-key {i}\nlinux /vmlinuz\ninitrd /initramfs.img\noptions {options}\n")
            files.append((entry, f"::/loader/entries/shoji{i}.conf"))
        env = dict(os.environ, MTOOLS_SKIP_CHECK="1")
        for d in ("::/EFI", "::/EFI/BOOT", "::/loader", "::/loader/entries"):
            subprocess.run(["mmd", "-i", fat, d], check=True, env=env, capture_output=True)
        for src, dst in files:
            subprocess.run(["mcopy", "-i", fat, src, dst], check=True, env=env, capture_output=True)
        sectors = os.path.getsize(fat) // SECTOR
        mbr = bytearray(SECTOR)
        # One partition: not active, CHS fields saturated (LBA only), type 0xEF.
        mbr[446:462] = struct.pack("<B3sB3sII", 0, b"\xfe\xff\xff", 0xEF, b"\xfe\xff\xff", START, sectors)
        mbr[510:512] = b"\x55\xaa"
        with open(path, "wb") as out, open(fat, "rb") as src:
            out.write(mbr)
            out.seek(START * SECTOR)
            shutil.copyfileobj(src, out)
            out.truncate((START + sectors) * SECTOR)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def vars_copy(path):
    """A fresh copy of the firmware's variable store template."""
    shutil.copyfile(OVMF_VARS, path)
    os.chmod(path, 0o600)
