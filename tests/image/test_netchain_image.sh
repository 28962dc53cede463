#!/usr/bin/env bash
# Service VMs in a chain with the real netvm and firewall images: tests/integration/test_netchain.py
# in the KVM harness (shojid, an app VM behind a firewall VM behind a net VM that owns the
# uplink; the firewall's policy, the path cut when the firewall is killed and back when it starts
# again). Suite 'slow'.
#
# Environment:
#   SHOJI_TEST_NETVM_IMAGE=IMG.qcow2, SHOJI_TEST_FIREWALL_IMAGE=IMG.qcow2
#                                        use these images (each with IMG.qcow2.manifest)
#                                        instead of building them (minutes, downloads packages)
#   SHOJI_IMAGE_CACHE=DIR, SHOJI_IMAGE_MIRROR=URL   the builds' --cache and --mirror
#   SHOJI_BINDIR, SHOJI_VMM, SHOJI_GUEST_DIR, SHOJI_SCRATCH   as meson sets them
# Exit status: 0 passed, 1 failed, 77 skipped (no tools to build the images, the mirror is
# unreachable).
set -uo pipefail

src=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=tests/image/image_lib.sh
. "$src/tests/image/image_lib.sh"
image_test_begin netchain-images
boots=()
for role in netvm firewall; do
	var=SHOJI_TEST_${role^^}_IMAGE
	image_or_build "$role" "${!var:-}" "$var"
	# The image and its boot files where the harness machine sees them (its /tmp is its own).
	{ cp --sparse=always "$image" "$dir/$role.qcow2" && cp "$image.manifest" "$dir/$role.qcow2.manifest"; } ||
		fail "cannot copy the $role image to $dir"
	rm -f "$scratch/image.qcow2" "$scratch/image.qcow2.manifest"
	boot=$("$src/tests/image/boot_files.py" "$SHOJI_BINDIR/shoji-img" "$dir/$role.qcow2" "$dir/$role-boot") ||
		fail "cannot take the kernel and initrd out of the $role image"
	boots+=("--$role" "$boot")
done
"$src/tests/harness/kvm-run" --timeout 3000 --memory 6144 --guest-dir "$SHOJI_GUEST_DIR" -- \
	python3 "$src/tests/integration/test_netchain.py" --bindir "$SHOJI_BINDIR" --vmm "$SHOJI_VMM" \
	--guest-dir "$SHOJI_GUEST_DIR" "${boots[@]}"
exit $?
