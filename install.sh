#!/bin/sh
# install.sh — bake osmanager into an appliance image (or a running guest).
#
#   ./install.sh [--no-start]         build and install as root
#   DESTDIR=/mnt/image ./install.sh   install into a mounted image tree
#
# The binaries come from scripts/build (always rebuilt when Go is there; the
# build cache makes that cheap) into $OSM_BUILD_OUT (default build/out)
# /linux-<arch>/, for ARCH (default: Go's host arch, else uname -m). Without
# Go, the binaries must already be built there.
#
# Installs /usr/local/sbin/osmanager, /usr/local/bin/osmctl, /LuoYun/{build,custom}
# (never overwriting an appliance's own custom/ files or VERSION) and the init
# script for systemd, sysvinit or upstart, whichever the target uses.
set -eu
cd "$(dirname "$0")"
DESTDIR=${DESTDIR:-}
START=yes
[ "${1:-}" = "--no-start" ] && START=no
[ -n "$DESTDIR" ] && START=no

export PATH="$PATH:/usr/local/go/bin"
arch=${ARCH:-$(go env GOARCH 2>/dev/null || uname -m)}
case $arch in x86_64) arch=amd64 ;; aarch64) arch=arm64 ;; i386 | i686) arch=386 ;; esac
out=${OSM_BUILD_OUT:-build/out}
bin=$out/linux-$arch
if command -v go >/dev/null; then
	scripts/build --arch "$arch" --out "$out"
elif [ ! -x "$bin/osmanager" ] || [ ! -x "$bin/osmctl" ]; then
	echo "install.sh: no $bin/osmanager and no Go to build it: run scripts/build --arch $arch on a machine with Go first" >&2
	exit 1
fi

install -d "$DESTDIR/usr/local/sbin" "$DESTDIR/usr/local/bin" "$DESTDIR/LuoYun/conf" \
	"$DESTDIR/LuoYun/build" "$DESTDIR/usr/local/share/doc/osmanager"
install -m 0755 "$bin/osmanager" "$DESTDIR/usr/local/sbin/osmanager"
install -m 0755 "$bin/osmctl" "$DESTDIR/usr/local/bin/osmctl"
chmod 0700 "$DESTDIR/LuoYun/conf"
install -m 0644 README.md build/CHANGELOG "$DESTDIR/usr/local/share/doc/osmanager/"
[ -e "$DESTDIR/LuoYun/build/VERSION" ] || install -m 0644 build/VERSION "$DESTDIR/LuoYun/build/VERSION"
# custom/: copy what the appliance does not have yet. The www/ pages are
# templates to copy and change: installed as live pages they would hide the
# built-in page (which follows the agent's updates), so they go to the docs.
(cd custom && find . -type d ! -path './www*') | while read -r d; do install -d "$DESTDIR/LuoYun/custom/$d"; done
(cd custom && find . -type f ! -path './www/*') | while read -r f; do
	[ -e "$DESTDIR/LuoYun/custom/$f" ] || cp -p "custom/$f" "$DESTDIR/LuoYun/custom/$f"
done
cp -r custom/www "$DESTDIR/usr/local/share/doc/osmanager/www-templates"

if [ -d "$DESTDIR/run/systemd/system" ] || [ -d "$DESTDIR/lib/systemd/system" ] || [ -d "$DESTDIR/usr/lib/systemd/system" ]; then
	init=systemd
	install -d "$DESTDIR/etc/systemd/system/multi-user.target.wants"
	install -m 0644 init/systemd/osmanager.service "$DESTDIR/etc/systemd/system/osmanager.service"
	ln -sf ../osmanager.service "$DESTDIR/etc/systemd/system/multi-user.target.wants/osmanager.service"
elif [ -d "$DESTDIR/etc/init" ] && [ ! -d "$DESTDIR/etc/init.d" ]; then
	init=upstart
	install -m 0644 init/upstart/osmanager.conf "$DESTDIR/etc/init/osmanager.conf"
else
	init=sysvinit
	install -d "$DESTDIR/etc/init.d"
	install -m 0755 init/sysvinit/osmanager "$DESTDIR/etc/init.d/osmanager"
	for rl in 2 3 4 5; do install -d "$DESTDIR/etc/rc$rl.d"; ln -sf ../init.d/osmanager "$DESTDIR/etc/rc$rl.d/S01osmanager"; done
	for rl in 0 1 6; do install -d "$DESTDIR/etc/rc$rl.d"; ln -sf ../init.d/osmanager "$DESTDIR/etc/rc$rl.d/K99osmanager"; done
fi
echo "installed osmanager $("$bin/osmanager" version | cut -d' ' -f2) ($init) into ${DESTDIR:-/}"

if [ "$START" = yes ]; then
	case $init in
	systemd) systemctl daemon-reload && systemctl restart osmanager ;;
	upstart) initctl start osmanager || true ;;
	sysvinit) /etc/init.d/osmanager restart ;;
	esac
fi
