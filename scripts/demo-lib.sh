# Sourced by scripts/demo and scripts/demo-desktops (bash; $bin is where shojid and shoji are).
#
# demo_daemon: the demo's own shojid, with its state and sockets in $demo, a fresh directory
# that the VMs' jail uids may enter (the checkout may be in a home directory they cannot read);
# at exit every VM it runs is killed, the processes in demo_pids and shojid stopped and $demo
# removed. In the KVM harness (no
# udev) /dev/kvm and /dev/vhost-vsock first get the group and mode Debian's udev rules give
# them, which the jailed monitors reach them through. Defines shoji, which prints each command before it runs it.
demo_daemon() {
	if [ "${SHOJI_IN_HARNESS:-0}" = 1 ] && [ "$(stat -c %g /dev/kvm)" = 0 ]; then
		chgrp "$(getent group kvm | cut -d: -f3 || echo 4243)" /dev/kvm
		chmod 660 /dev/kvm
		[ ! -e /dev/vhost-vsock ] || chmod 666 /dev/vhost-vsock # as udev's default rule
	fi
	demo=$(mktemp -d)
	chmod 755 "$demo"
	export SHOJI_STATE_DIR=$demo/state SHOJI_RUNTIME_DIR=$demo/run
	daemon=
	demo_pids=() # more processes to end at exit (the seat)
	trap demo_cleanup EXIT
	"$bin/shojid" >"$demo/shojid.log" 2>&1 </dev/null &
	daemon=$!
	for _ in $(seq 100); do
		"$bin/shoji" list >/dev/null 2>&1 && return 0
		kill -0 "$daemon" 2>/dev/null || break
		sleep 0.2
	done
	echo "demo: shojid did not start:" >&2
	cat "$demo/shojid.log" >&2
	exit 1
}

demo_cleanup() {
	local rc=$?
	set +e
	[ "$rc" = 0 ] || [ -z "$daemon" ] || demo_report
	for p in "${demo_pids[@]}"; do
		kill "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	if [ -n "$daemon" ]; then
		for vm in $("$bin/shoji" list 2>/dev/null | awk 'NR > 1 { print $1 }'); do
			"$bin/shoji" kill "$vm" >/dev/null 2>&1
		done
		kill "$daemon" 2>/dev/null
		wait "$daemon" 2>/dev/null
	fi
	rm -rf "$demo"
}

# demo_report: after a failure, each VM's state, how its last run ended and the end of its
# serial log, so the reason stays in the demo's output when $demo is gone.
demo_report() {
	echo "demo: failed; the VMs as shojid sees them:" >&2
	"$bin/shoji" list >&2
	for vm in $("$bin/shoji" list 2>/dev/null | awk 'NR > 1 { print $1 }'); do
		"$bin/shoji" info "$vm" 2>/dev/null | awk -v vm="$vm" '$1 == "state" || $1 == "last_exit" { print "demo: " vm ": " $0 }' >&2
		echo "demo: the end of $vm's serial log:" >&2
		tail -n 12 "$SHOJI_STATE_DIR/vms/$vm/serial.log" 2>/dev/null | cat -v >&2 # the guest's bytes: no escape sequence reaches the terminal
	done
}

shoji() {
	echo "\$ shoji $*"
	"$bin/shoji" "$@"
}
