# Sourced by the image tests, after they set $src (the source tree): skip and fail (exit 77 and
# 1 with a line saying why), $mirror (SHOJI_IMAGE_MIRROR, else Debian's), and the functions below.
skip() {
	echo "SKIP: $*"
	exit 77
}
fail() {
	echo "FAIL: $*"
	exit 1
}
mirror=${SHOJI_IMAGE_MIRROR:-http://deb.debian.org/debian}

#
# image_test_begin NAME: the start of an image test run through meson in the KVM harness:
# checks that meson set SHOJI_BINDIR, SHOJI_VMM, SHOJI_GUEST_DIR and SHOJI_SCRATCH, that mtools
# is there (boot_files.py), and sets $scratch (a fresh temporary folder) and $dir (a fresh
# folder in SHOJI_SCRATCH, which the harness machine sees), both removed at exit.
image_test_begin() {
	local v
	for v in SHOJI_BINDIR SHOJI_VMM SHOJI_GUEST_DIR SHOJI_SCRATCH; do
		[ -n "${!v:-}" ] || fail "$v is not set (run this through meson test)"
	done
	command -v mcopy >/dev/null || skip "mcopy not found (apt-get install mtools) to take the kernel out of the image"
	scratch=$(mktemp -d "${TMPDIR:-/tmp}/shoji-$1-test.XXXXXX")
	dir=$SHOJI_SCRATCH/$1
	# shellcheck disable=SC2064 # the folders as they are now
	trap "rm -rf '$scratch' '$dir'" EXIT
	trap 'exit 1' INT TERM HUP
	rm -rf "$dir" && mkdir -p "$dir"
}

# image_or_build RECIPE GIVEN VARNAME sets $image to GIVEN (a built
# image, named by the environment variable VARNAME) or else builds RECIPE with guest/image/build
# into $scratch/image.qcow2 (with its manifest; minutes, downloads packages), skipping (exit 77)
# where the tools or the mirror are missing. Needs $scratch; SHOJI_IMAGE_CACHE=DIR is the build's
# --cache.
image_or_build() {
	local recipe=$1 given=$2 var=$3
	if [ -n "$given" ]; then
		[ -r "$given" ] || fail "$var=$given is not a readable file"
		image=$given
		return 0
	fi
	local t
	for t in mmdebstrap:mmdebstrap sfdisk:fdisk mkfs.vfat:dosfstools mcopy:mtools mkfs.ext4:e2fsprogs; do
		command -v "${t%%:*}" >/dev/null || skip "${t%%:*} not found (apt-get install ${t#*:}) to build the image"
	done
	[ -r /usr/lib/systemd/boot/efi/systemd-bootx64.efi ] || skip "systemd-boot not found (apt-get install systemd-boot-efi)"
	if [ "$(id -u)" != 0 ]; then # mmdebstrap --mode=unshare
		command -v newuidmap >/dev/null || skip "newuidmap not found (apt-get install uidmap) to build the image as a user"
		grep -q "^\($(id -un)\|$(id -u)\):" /etc/subuid 2>/dev/null ||
			skip "no subuid range for $(id -un) in /etc/subuid to build the image as a user"
	fi
	python3 -c "import urllib.request, sys; urllib.request.urlopen(sys.argv[1] + '/dists/bookworm/InRelease', timeout=20)" \
		"$mirror" 2>/dev/null || skip "the Debian mirror $mirror is unreachable (set $var to a built image)"
	image=$scratch/image.qcow2
	local cache=() start
	[ -n "${SHOJI_IMAGE_CACHE:-}" ] && cache=(--cache "$SHOJI_IMAGE_CACHE")
	echo "building $recipe (guest/image/build; several minutes)"
	start=$(date +%s)
	"$src"/guest/image/build "$recipe" "$image" --mirror "$mirror" "${cache[@]}" >"$scratch/build.log" 2>&1 ||
		{ tail -20 "$scratch/build.log"; fail "guest/image/build failed (log above)"; }
	cp "$image.manifest" "$scratch/" 2>/dev/null
	echo "built in $(($(date +%s) - start)) s: $(tail -1 "$scratch/build.log")"
}
