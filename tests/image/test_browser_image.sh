#!/usr/bin/env bash
# The secure browser end to end with the real browser image: tests/integration/test_browser_image.py
# in the KVM harness (shojid, shoji-seat on Xvfb, `shoji browse URL`, the page checked on the
# seat's screenshot, Ctrl+Q closes the browser and the VM goes). Suite 'slow'.
#
# Environment:
#   SHOJI_TEST_BROWSER_IMAGE=IMG.qcow2   use this browser image (with IMG.qcow2.manifest)
#                                        instead of building it (minutes, downloads packages)
#   SHOJI_IMAGE_CACHE=DIR, SHOJI_IMAGE_MIRROR=URL   the build's --cache and --mirror
#   SHOJI_BINDIR, SHOJI_VMM, SHOJI_GUEST_DIR, SHOJI_SCRATCH   as meson sets them
# Exit status: 0 passed, 1 failed, 77 skipped (no tools to build the image, the mirror is
# unreachable).
set -uo pipefail

src=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=tests/image/image_lib.sh
. "$src/tests/image/image_lib.sh"
image_test_begin browser-image
image_or_build browser "${SHOJI_TEST_BROWSER_IMAGE:-}" SHOJI_TEST_BROWSER_IMAGE

# The image and its boot files where the harness machine sees them (its /tmp is its own).
cp --sparse=always "$image" "$dir/browser.qcow2" && cp "$image.manifest" "$dir/browser.qcow2.manifest" ||
	fail "cannot copy the image to $dir"
boot=$("$src/tests/image/boot_files.py" "$SHOJI_BINDIR/shoji-img" "$dir/browser.qcow2" "$dir/boot") ||
	fail "cannot take the kernel and initrd out of the image"
"$src/tests/harness/kvm-run" --timeout 3000 --memory 8192 --guest-dir "$SHOJI_GUEST_DIR" -- \
	python3 "$src/tests/integration/test_browser_image.py" --bindir "$SHOJI_BINDIR" --vmm "$SHOJI_VMM" \
	--guest-dir "$SHOJI_GUEST_DIR" --browser "$boot"
exit $?
