# Shared by the maintainer scripts (scripts/build --packages puts it first in
# each). POSIX sh and busybox: they run in images being built (a chroot, dpkg
# --root) as well as on booted systems.

# osm_booted: this root is the one PID 1 runs in (not a chroot, not dpkg
# --root into an image), so the init system here may start services.
osm_booted() {
	a=$(stat -Lc %d:%i / 2> /dev/null) || return 1
	[ "$a" = "$(stat -Lc %d:%i /proc/1/root/ 2> /dev/null)" ]
}
osm_systemd_running() { osm_booted && [ -d /run/systemd/system ]; }
osm_sysv_running() {
	osm_booted && [ ! -d /run/systemd/system ] && ! { initctl version 2> /dev/null | grep -q upstart; }
}

# osm_seed: /LuoYun/conf (0700) and the templates in /LuoYun/custom and
# /LuoYun/build where absent; an appliance's own files are never touched.
osm_seed() {
	mkdir -p /LuoYun/conf /LuoYun/custom /LuoYun/build
	chmod 0700 /LuoYun/conf
	(cd /usr/share/osmanager/custom && find . -type f) | while read -r f; do
		t=/LuoYun/custom/${f#./}
		[ -e "$t" ] || [ -L "$t" ] && continue
		mkdir -p "$(dirname "$t")"
		cp -p "/usr/share/osmanager/custom/${f#./}" "$t"
	done
	[ -e /LuoYun/build/VERSION ] || cp -p /usr/share/osmanager/VERSION /LuoYun/build/VERSION
}
