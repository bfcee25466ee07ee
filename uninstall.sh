#!/bin/sh
# uninstall.sh — remove what install.sh installed, following the manifest it
# wrote (/LuoYun/.install-manifest).
#
#   ./uninstall.sh [--root DIR] [--purge] [--dry-run]
#
#   --root DIR   the image's root (default /; DESTDIR=DIR is the same)
#   --purge      also the state: /LuoYun/conf (the instance's config, the web
#                terminal's key and pin) and the manifest; the custom/ files
#                and build/VERSION that install.sh seeded go only while they
#                are unchanged (the appliance's own files and edits stay, and
#                so does /LuoYun then)
#   --dry-run    say what would go, remove nothing
#
# Without --purge, /LuoYun/conf and /LuoYun/custom stay. The old LuoYun jobs
# install.sh moved to /LuoYun/old-init/ are moved back. On the running system
# (--root /) the agent is stopped and disabled first.
set -eu
prog=uninstall.sh
die() { echo "$prog: $*" >&2; exit 1; }
say() { echo "$prog: $*"; }
root=${DESTDIR:-/}
purge=no
dry=no
while [ $# -gt 0 ]; do
	case $1 in
	--root) [ $# -ge 2 ] || die "--root needs a value"; root=$2; shift 2 ;;
	--root=*) root=${1#*=}; shift ;;
	--purge) purge=yes; shift ;;
	--dry-run) dry=yes; shift ;;
	-h | --help) sed -n '2,19s/^# \{0,1\}//p' "$0"; exit 0 ;;
	*) echo "usage: ./uninstall.sh [--root DIR] [--purge] [--dry-run]" >&2; exit 2 ;;
	esac
done
case $root in /*) ;; *) root=$(pwd)/$root ;; esac
[ -d "$root" ] || die "--root $root: not a directory"
R=${root%/}
# install.sh wrote the manifest where /LuoYun really is.
m=$R/LuoYun/.install-manifest
[ -L "$R/LuoYun" ] && die "$root/LuoYun is a symlink: run uninstall.sh with --root at its target's root"
[ -f "$m" ] || die "no $m: nothing installed by install.sh here (a package? use dpkg -r / rpm -e)"

n=0
rm1() {
	n=$((n + 1))
	if [ "$dry" = yes ]; then say "would remove $1"; else rm -f "$R$1"; fi
}

if [ -z "$R" ] && [ "$dry" = no ] && [ "$(stat -Lc %d:%i / 2> /dev/null)" = "$(stat -Lc %d:%i /proc/1/root/ 2> /dev/null)" ]; then
	# The running system (not a chroot): stop it under whichever init runs it.
	if [ -d /run/systemd/system ]; then
		systemctl disable --now osmanager.service 2> /dev/null || true
	elif initctl version 2> /dev/null | grep -q upstart; then
		initctl stop osmanager 2> /dev/null || true
	elif [ -x /etc/init.d/osmanager ]; then
		/etc/init.d/osmanager stop || true
	fi
fi

# rc links made by the image's update-rc.d or chkconfig go the same way
# (insserv's .depend files follow), while the init script is still there.
rctool=$(sed -n 's/^# prefix .* rc-tool \([a-z.-]*\)$/\1/p' "$m")
if [ -n "$rctool" ] && [ "$dry" = no ]; then
	incroot=no
	if [ -z "$R" ]; then
		incroot=
	elif [ "$(id -u)" = 0 ] && chroot "$R" /bin/true 2> /dev/null; then
		incroot="chroot $R"
	fi
	if [ "$incroot" != no ]; then
		case $rctool in
		update-rc.d) $incroot update-rc.d -f osmanager remove > /dev/null 2>&1 || true ;;
		chkconfig) $incroot chkconfig --del osmanager > /dev/null 2>&1 || true ;;
		esac
		say "rc links removed with $rctool"
	fi
fi

grep -E '^(file|link) ' "$m" | while read -r _ p; do
	if [ -e "$R$p" ] || [ -L "$R$p" ]; then rm1 "$p"; fi
done

# The old LuoYun jobs go back where they were.
grep '^moved ' "$m" | while read -r _ p; do
	if [ -e "$R/LuoYun/old-init$p" ] || [ -L "$R/LuoYun/old-init$p" ]; then
		if [ -e "$R$p" ] || [ -L "$R$p" ]; then
			say "$p exists again: keeping the old job in /LuoYun/old-init$p"
		elif [ "$dry" = yes ]; then
			say "would move /LuoYun/old-init$p back to $p"
		else
			mv "$R/LuoYun/old-init$p" "$R$p"
			say "old LuoYun job $p restored"
		fi
	fi
done

if [ "$purge" = yes ]; then
	if [ "$dry" = yes ]; then say "would remove /LuoYun/conf"; else rm -rf "$R/LuoYun/conf"; fi
	grep '^seed ' "$m" | while read -r _ sum p; do
		[ -f "$R$p" ] || continue
		c=${sum%%:*}
		if command -v "$c" > /dev/null 2>&1 && [ "$c:$($c < "$R$p" | cut -d' ' -f1)" = "$sum" ]; then
			rm1 "$p"
		else
			say "keeping $p: changed since install.sh put it there"
		fi
	done
fi

# The directories install.sh made, deepest first, while empty; those under
# /LuoYun only with --purge (the old-init tree too, once its jobs are back).
if [ "$dry" = no ]; then
	dirs=$(grep '^dir ' "$m" | cut -d' ' -f2- | awk '{ print length($0), $0 }' | sort -rn | cut -d' ' -f2-)
	if [ "$purge" = yes ]; then
		rm -f "$m"
	else
		# What stays (the state and the seeds) stays listed, for a later --purge.
		grep -E '^(#|seed |dir /LuoYun)' "$m" > "$m.osm-new" || true
		mv -f "$m.osm-new" "$m"
	fi
	[ ! -d "$R/LuoYun/old-init" ] || find "$R/LuoYun/old-init" -depth -type d -exec rmdir {} \; 2> /dev/null || true
	for d in $dirs; do
		case $d in /LuoYun | /LuoYun/*) [ "$purge" = yes ] || continue ;; esac
		rmdir "$R$d" 2> /dev/null || true
	done
	if [ -z "$R" ] && [ -d /run/systemd/system ]; then systemctl daemon-reload 2> /dev/null || true; fi
fi
if [ "$dry" = yes ]; then say "dry run: nothing removed"; else say "osmanager removed from $root"; fi
