#!/usr/bin/env bash
# Interop check of guest/image/build: the debian-base image boots through Debian's OVMF in QEMU
# on the i440FX (pc) and the q35 machine, from virtio-blk, and reports on the serial console
# "shoji-guest: booted RELEASE" (multi-user.target reached) and "shoji-guest: address IFACE
# ADDR" (a DHCP lease from QEMU's user network). Prints the time to each line per machine.
#
#   tests/image/test_image_boot.sh
#
# Environment:
#   SHOJI_TEST_IMAGE=IMG.qcow2   boot this image instead of building debian-base (minutes,
#                                downloads packages)
#   SHOJI_IMAGE_CACHE=DIR        --cache for the build (keeps the .deb files between runs)
#   SHOJI_IMAGE_MIRROR=URL       --mirror for the build (default http://deb.debian.org/debian)
#   SHOJI_IMAGE_MACHINES         the machines to boot (default "pc q35 shoji": QEMU's, then
#                                shoji-vmm's, through tests/image/shoji_boot.py, in the KVM
#                                harness where there is no KVM; needs SHOJI_VMM, SHOJI_GUEST_DIR
#                                and SHOJI_SCRATCH, a folder the harness can write, as meson sets)
#   SHOJI_IMAGE_BOOT_TIMEOUT     seconds per boot (default 600: TCG is slow)
#   SHOJI_IMAGE_SMP              vCPUs (default 1)
#   SHOJI_IMAGE_KEEP=DIR         keep the image, its manifest and the serial logs in DIR
#
# Uses KVM when /dev/kvm is usable, else TCG. Exit status: 0 passed, 1 failed, 77 skipped
# (no QEMU, no OVMF, no mmdebstrap or mtools or sfdisk, or the Debian mirror is unreachable).
set -uo pipefail

src=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=tests/image/image_lib.sh
. "$src/tests/image/image_lib.sh"
code=/usr/share/OVMF/OVMF_CODE_4M.fd
vars=/usr/share/OVMF/OVMF_VARS_4M.fd
machines=${SHOJI_IMAGE_MACHINES:-pc q35 shoji}
limit=${SHOJI_IMAGE_BOOT_TIMEOUT:-600}

PATH=$PATH:/usr/sbin:/sbin # mkfs.*, sfdisk

command -v qemu-system-x86_64 >/dev/null || skip "qemu-system-x86_64 not found (apt-get install qemu-system-x86)"
[ -r "$code" ] && [ -r "$vars" ] || skip "$code or $vars not found (apt-get install ovmf)"

scratch=$(mktemp -d "${TMPDIR:-/tmp}/shoji-image-test.XXXXXX")
qpid=
cleanup() {
	if [ -n "$qpid" ]; then
		kill "$qpid" 2>/dev/null
		wait "$qpid" 2>/dev/null
	fi
	if [ -n "${SHOJI_IMAGE_KEEP:-}" ]; then
		mkdir -p "$SHOJI_IMAGE_KEEP" && cp -f "$scratch"/*.log "$scratch"/*.manifest "$SHOJI_IMAGE_KEEP"/ 2>/dev/null
		[ -z "${SHOJI_TEST_IMAGE:-}" ] && cp -f "$scratch"/image.qcow2 "$SHOJI_IMAGE_KEEP"/ 2>/dev/null
	fi
	rm -rf "$scratch"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

image_or_build debian-base "${SHOJI_TEST_IMAGE:-}" SHOJI_TEST_IMAGE

accel=tcg
if [ -w /dev/kvm ] && [ -r /dev/kvm ]; then
	accel=kvm
fi

# boot MACHINE: starts QEMU, waits for both lines, prints the times; returns 1 on failure.
boot() {
	local machine=$1 log=$scratch/serial-$1.log
	cp "$vars" "$scratch/vars-$machine.fd"
	local t0 now booted= address=
	t0=$(date +%s%N)
	qemu-system-x86_64 -machine "$machine" -accel "$accel" -m 1024 -smp "${SHOJI_IMAGE_SMP:-1}" -nodefaults -no-user-config \
		-drive if=pflash,format=raw,readonly=on,file="$code" \
		-drive if=pflash,format=raw,file="$scratch/vars-$machine.fd" \
		-drive file="$image",if=none,id=d,snapshot=on -device virtio-blk-pci,drive=d \
		-netdev user,id=n -device virtio-net-pci,netdev=n \
		-serial stdio -display none -monitor none </dev/null >"$log" 2>&1 &
	qpid=$!
	while :; do
		now=$((($(date +%s%N) - t0) / 1000000)) # ms
		if [ -z "$booted" ] && grep -aq "^shoji-guest: booted" "$log"; then
			booted=$now
		fi
		if [ -z "$address" ] && grep -aq "^shoji-guest: \(address\|no address\)" "$log"; then
			address=$now
		fi
		[ -n "$booted" ] && [ -n "$address" ] && break
		kill -0 "$qpid" 2>/dev/null || break
		[ "$now" -gt $((limit * 1000)) ] && break
		sleep 0.5
	done
	kill "$qpid" 2>/dev/null
	wait "$qpid" 2>/dev/null
	qpid=
	if [ -z "$booted" ]; then
		echo "--- last serial output ($machine):"
		tail -c 3000 "$log" | tr -d '\r'
		echo "$machine: no boot marker within $limit s ($accel)"
		return 1
	fi
	echo "$machine ($accel): $(grep -a -m1 '^shoji-guest: booted' "$log" | tr -d '\r') after $((booted / 1000)).$((booted % 1000 / 100)) s"
	if ! grep -aq "^shoji-guest: address [a-z0-9]* [0-9.]*/[0-9]*" "$log"; then
		echo "$machine: no DHCP address: $(grep -a -m1 '^shoji-guest: \(no \)\?address' "$log" | tr -d '\r')"
		return 1
	fi
	echo "$machine ($accel): $(grep -a -m1 '^shoji-guest: address' "$log" | tr -d '\r') after $((address / 1000)).$((address % 1000 / 100)) s"
}

# boot_shoji: the image under shoji-vmm (tests/image/shoji_boot.py); returns 1 on failure.
boot_shoji() {
	[ -x "${SHOJI_VMM:-}" ] && [ -d "${SHOJI_SCRATCH:-}" ] ||
		{ echo "shoji: SHOJI_VMM and SHOJI_SCRATCH are not set (run this through meson test)"; return 1; }
	local dir=$SHOJI_SCRATCH/shoji-image-boot
	rm -rf "$dir" && mkdir -p "$dir"
	# A copy where the harness machine sees it (its /tmp is its own), read-only there.
	cp --sparse=always "$image" "$dir/image.qcow2" || { echo "shoji: cannot copy the image to $dir"; return 1; }
	local run=(python3 "$src/tests/image/shoji_boot.py" --vmm "$SHOJI_VMM" --img "$dir/image.qcow2" --dir "$dir"
		--timeout "$limit")
	if [ "$accel" = kvm ]; then
		"${run[@]}"
	else # -icount: see tests/integration/test_firmware.py
		SHOJI_HARNESS_ICOUNT=shift=0,sleep=off SHOJI_HARNESS_WEDGE_S=900 SHOJI_HARNESS_MEMORY=3072 \
			"$src/tests/harness/kvm-run" --timeout $((limit * 3)) --guest-dir "$SHOJI_GUEST_DIR" -- "${run[@]}"
	fi
	local rc=$?
	cp -f "$dir"/*.log "$scratch"/ 2>/dev/null
	rm -rf "$dir"
	return $rc
}

rc=0
for m in $machines; do
	if [ "$m" = shoji ]; then
		boot_shoji || rc=1
	else
		boot "$m" || rc=1
	fi
done
[ $rc -eq 0 ] && echo "PASS: the image boots through OVMF on: $machines" || echo "FAIL: see above"
exit $rc
