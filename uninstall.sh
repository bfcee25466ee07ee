#!/bin/sh
# uninstall.sh — remove what install.sh put in place. The LuoYun dir keeps
# the instance's config and the appliance's custom/ files unless --purge.
#   ./uninstall.sh [--purge]          DESTDIR=/mnt/image ./uninstall.sh
set -eu
DESTDIR=${DESTDIR:-}
if [ -z "$DESTDIR" ]; then
	systemctl stop osmanager 2>/dev/null || /etc/init.d/osmanager stop 2>/dev/null || initctl stop osmanager 2>/dev/null || true
	systemctl disable osmanager 2>/dev/null || true
fi
rm -f "$DESTDIR/usr/local/sbin/osmanager" "$DESTDIR/usr/local/bin/osmctl" \
	"$DESTDIR/etc/systemd/system/osmanager.service" "$DESTDIR/etc/systemd/system/multi-user.target.wants/osmanager.service" \
	"$DESTDIR/etc/init/osmanager.conf" "$DESTDIR/etc/init.d/osmanager" "$DESTDIR"/etc/rc?.d/[SK]*osmanager
rm -rf "$DESTDIR/usr/local/share/doc/osmanager"
[ "${1:-}" = "--purge" ] && rm -rf "$DESTDIR/LuoYun"
[ -z "$DESTDIR" ] && systemctl daemon-reload 2>/dev/null || true
echo "osmanager removed from ${DESTDIR:-/}"
