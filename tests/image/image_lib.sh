# Sourced by the image tests: image_or_build RECIPE GIVEN VARNAME sets $image to GIVEN (a built
# image, named by the environment variable VARNAME) or else builds RECIPE with guest/image/build
# into $scratch/image.qcow2 (with its manifest; minutes, downloads packages), skipping (exit 77)
# where the tools or the mirror are missing. Needs $src, $scratch, $mirror and the functions
# skip and fail of the caller; SHOJI_IMAGE_CACHE=DIR is the build's --cache.
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
