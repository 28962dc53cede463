#!/usr/bin/env bash
# Builds the demo/test guest and the KVM harness machine from Debian packages:
#   OUTDIR/vmlinuz                    the linux-image-amd64 kernel
#   OUTDIR/vmlinux                    the same kernel unpacked: the ELF inside the bzImage
#   OUTDIR/initramfs.cpio.gz          busybox guest (guest/init) with the device modules
#   OUTDIR/harness-initramfs.cpio.gz  busybox root for the harness machine (tests/harness/init)
#   OUTDIR/kernel-release             the kernel's release string
# Packages come from the package registry through apt; nothing else is downloaded.
set -euo pipefail

out=${1:?usage: guest/build.sh OUTDIR}
src=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$out"
out=$(cd "$out" && pwd)
debs=$out/debs
work=$out/work
mkdir -p "$debs"

die() { echo "guest/build.sh: $*" >&2; exit 1; }

command -v apt-get >/dev/null || die "apt-get not found: the guest is built from Debian packages"
command -v cpio >/dev/null || die "cpio not found: install it with 'apt-get install cpio'"
command -v depmod >/dev/null || die "depmod not found: install it with 'apt-get install kmod'"

# Resolve the real kernel package behind the linux-image-amd64 meta-package.
kpkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
[ -n "$kpkg" ] || die "cannot resolve linux-image-amd64: run 'apt-get update' first"

fetch() { # fetch PACKAGE: download the .deb once into $debs
	local pkg=$1
	if ! ls "$debs/${pkg}"_*.deb >/dev/null 2>&1; then
		(cd "$debs" && apt-get download "$pkg" >/dev/null 2>"$debs/$pkg.err") ||
			die "could not download $pkg: $(tail -1 "$debs/$pkg.err") (run 'apt-get update' first)"
	fi
	ls "$debs/${pkg}"_*.deb | head -1
}

kdeb=$(fetch "$kpkg")
bdeb=$(fetch busybox-static)

rm -rf "$work"
mkdir -p "$work/kernel" "$work/busybox"
dpkg-deb -x "$kdeb" "$work/kernel"
dpkg-deb -x "$bdeb" "$work/busybox"
krel=$(ls "$work/kernel/lib/modules" | head -1)
[ -n "$krel" ] || die "no modules in $kdeb"
depmod -b "$work/kernel" "$krel"

# make_initramfs INIT OUTPUT MODULE...: a busybox root whose /init is INIT, with MODULE and its
# dependencies copied in and listed, in load order, in /etc/modules.order.
make_initramfs() {
	local init=$1 output=$2
	shift 2
	local root=$work/root-$(basename "$output" .cpio.gz)
	rm -rf "$root"
	mkdir -p "$root"/{bin,sbin,etc,proc,sys,dev,tmp,run,mnt,root,lib/modules}
	cp "$work/busybox/bin/busybox" "$root/bin/busybox"
	for applet in $("$root/bin/busybox" --list); do
		[ -e "$root/bin/$applet" ] || ln -s busybox "$root/bin/$applet"
	done
	: >"$root/etc/modules.order"
	local m path
	for m in "$@"; do
		modprobe -d "$work/kernel" -S "$krel" --show-depends "$m" | awk '$1 == "insmod" {print $2}' |
			while read -r path; do
				local name=${path##*/}
				grep -qx "/lib/modules/$name" "$root/etc/modules.order" && continue
				cp "$path" "$root/lib/modules/$name"
				echo "/lib/modules/$name" >>"$root/etc/modules.order"
			done
	done
	install -m 0755 "$init" "$root/init"
	local bin
	for bin in ${extra_bins:-}; do install -m 0755 "$bin" "$root/bin/"; done
	(cd "$root" && find . | LC_ALL=C sort | cpio -o -H newc --quiet -R 0:0) | gzip -6 >"$output.tmp"
	mv "$output.tmp" "$output"
}

guest_modules=(pvpanic-mmio virtio_pci virtio_mmio virtio_blk virtio_net virtio_console virtio-rng
	vmw_vsock_virtio_transport button evdev virtio_gpu virtio_input efivarfs vhci-hcd usb-storage sd_mod
	ftdi_sio)
# extract_vmlinux BZIMAGE OUT: the ELF vmlinux the bzImage carries compressed (its payload, at
# payload_offset past the setup code, payload_length bytes), for booting without the in-guest
# decompressor (shoji-vmm --kernel OUTDIR/vmlinux).
extract_vmlinux() {
	local sects off len magic
	sects=$(od -An -tu1 -j $((0x1f1)) -N1 "$1" | tr -d ' ')
	((sects)) || sects=4
	off=$(od -An -tu4 -j $((0x248)) -N4 "$1" | tr -d ' ')
	len=$(od -An -tu4 -j $((0x24c)) -N4 "$1" | tr -d ' ')
	dd if="$1" of="$2.z" iflag=skip_bytes,count_bytes bs=1M skip=$(((sects + 1) * 512 + off)) count="$len" \
		status=none || die "cannot read the kernel's payload from $1"
	magic=$(od -An -tx1 -N4 "$2.z" | tr -d ' ')
	case $magic in
	fd377a58) xz -dc --single-stream <"$2.z" >"$2.tmp" ;;
	28b52ffd) zstd -qdc <"$2.z" >"$2.tmp" ;;
	*) die "the kernel's payload is compressed in a way this script does not unpack (magic $magic)" ;;
	esac || die "cannot unpack the kernel's payload into $2"
	rm -f "$2.z"
	[ "$(od -An -tx1 -N4 "$2.tmp" | tr -d ' ')" = 7f454c46 ] || die "the kernel's payload is not an ELF vmlinux"
	mv "$2.tmp" "$2"
}

harness_modules=(virtio_pci 9pnet_virtio 9p kvm-amd kvm-intel vhost_vsock vhost_net tun bochs uinput evdev xhci-pci usb-storage sd_mod
	usbhid hid-generic ftdi_sio vhci-hcd)

# The guest's own AF_VSOCK, block-benchmark, display/keyboard, UEFI boot entry, UDP flood and
# TCP transfer tools, from this tree (busybox has none of them).
command -v cc >/dev/null || die "cc not found: install gcc"
for tool in vsock blkio gputest efivar netflood nettcp; do
	cc -static -O2 -Wall -pthread -o "$work/$tool" "$src/guest/$tool.c" || die "cannot build guest/$tool.c (needs libc6-dev)"
done
# The guest agent (src/agent/), with the protocol's framing it shares with the monitor.
cc -static -O2 -Wall -D_GNU_SOURCE -o "$work/shoji-agent" "$src"/src/agent/*.c "$src/src/common/agent_proto.c" \
	"$src/src/common/err.c" || die "cannot build src/agent (needs libc6-dev)"
extra_bins="$work/vsock $work/blkio $work/gputest $work/efivar $work/netflood $work/nettcp $work/shoji-agent" make_initramfs "$src/guest/init" "$out/initramfs.cpio.gz" "${guest_modules[@]}"
make_initramfs "$src/tests/harness/init" "$out/harness-initramfs.cpio.gz" "${harness_modules[@]}"
cp "$work/kernel/boot/vmlinuz-$krel" "$out/vmlinuz.tmp"
extract_vmlinux "$out/vmlinuz.tmp" "$out/vmlinux"
mv "$out/vmlinuz.tmp" "$out/vmlinuz"
echo "$krel" >"$out/kernel-release"
rm -rf "$work"
