#!/bin/sh
# install.sh — bake osmanager into an appliance image tree, or install it on
# the running system.
#
#   ./install.sh [--root DIR] [--prefix /usr|/usr/local] [--arch A]
#                [--init systemd|sysvinit|upstart|auto] [--dry-run] [--no-start]
#
#   --root DIR     the image's root (default /; DESTDIR=DIR is the same)
#   --prefix P     where the binaries and docs go: P/sbin/osmanager,
#                  P/bin/osmctl, P/share/doc/osmanager (default /usr/local)
#   --arch A       amd64, arm64 or 386 (default: the image's /bin/sh with
#                  --root, else uname -m)
#   --init I       the init integration; auto (default) looks at what
#                  <root>/sbin/init is and says why it chose
#   --dry-run      say what would change, change nothing
#   --no-start     do not start the agent (it is only started when --root is
#                  / and that init is running as PID 1 of this root)
#
# The binaries come from scripts/build (run when Go is there, $GO or go; the
# build cache makes it cheap) in $OSM_BUILD_OUT (default build/out)
# /linux-<arch>/; without Go (a chroot) they must be built already. Idempotent: a second run changes
# nothing. Never overwrites the appliance's own /LuoYun/custom files or
# /LuoYun/build/VERSION. Writes the list of what it installed to
# /LuoYun/.install-manifest, which uninstall.sh follows.
set -eu
cd "$(dirname "$0")"
src=$(pwd)
prog=install.sh

usage() {
	echo "usage: ./install.sh [--root DIR] [--prefix /usr|/usr/local] [--arch amd64|arm64|386] [--init systemd|sysvinit|upstart|auto] [--dry-run] [--no-start]" >&2
	exit 2
}
die() { echo "$prog: $*" >&2; exit 1; }
say() { echo "$prog: $*"; }

root=${DESTDIR:-/}
prefix=/usr/local
arch=
init=auto
dry=no
start=yes
while [ $# -gt 0 ]; do
	case $1 in
	--root | --prefix | --arch | --init) [ $# -ge 2 ] || usage ;;
	esac
	case $1 in
	--root) root=$2; shift 2 ;;
	--root=*) root=${1#*=}; shift ;;
	--prefix) prefix=$2; shift 2 ;;
	--prefix=*) prefix=${1#*=}; shift ;;
	--arch) arch=$2; shift 2 ;;
	--arch=*) arch=${1#*=}; shift ;;
	--init) init=$2; shift 2 ;;
	--init=*) init=${1#*=}; shift ;;
	--dry-run) dry=yes; shift ;;
	--no-start) start=no; shift ;;
	-h | --help) sed -n '2,25s/^# \{0,1\}//p' "$0"; exit 0 ;;
	*) echo "$prog: unknown argument $1" >&2; usage ;;
	esac
done
case $root in /*) ;; *) root=$src/$root ;; esac
[ "$root" = / ] || root=${root%/}
[ -d "$root" ] || die "--root $root: not a directory"
R=${root%/} # prefix for paths inside the root ("" for /)
case $prefix in
/usr | /usr/local | /opt/*) prefix=${prefix%/} ;;
*) die "--prefix $prefix: want /usr, /usr/local or /opt/…" ;;
esac
case $init in auto | systemd | sysvinit | upstart) ;; *) die "--init $init: want systemd, sysvinit, upstart or auto" ;; esac
case $prefix$root in *[!A-Za-z0-9/._+-]*) die "--root and --prefix: only letters, digits and / . _ + - please" ;; esac

# --- the architecture ---------------------------------------------------

# elf_arch FILE prints the Go arch of an ELF executable (its e_machine).
elf_arch() {
	m=$(od -An -tx1 -j18 -N2 "$1" 2>/dev/null | tr -d ' \n')
	case $m in
	3e00) echo amd64 ;;
	b700) echo arm64 ;;
	0300) echo 386 ;;
	esac
}

# resolve PATH prints PATH inside the root with every symlink followed inside
# the root (an image's absolute links point into the image, not the host).
resolve() {
	rest=$1 cur= n=0
	while [ -n "$rest" ]; do
		while case $rest in /*) true ;; *) false ;; esac do rest=${rest#/}; done
		[ -n "$rest" ] || break
		comp=${rest%%/*}
		case $rest in */*) rest=${rest#*/} ;; *) rest= ;; esac
		case $comp in
		.) continue ;;
		..) cur=${cur%/*}; continue ;;
		esac
		if [ -L "$R$cur/$comp" ]; then
			n=$((n + 1))
			[ $n -le 40 ] || return 1
			t=$(readlink "$R$cur/$comp")
			case $t in /*) cur= ;; esac
			rest=$t/$rest
		else
			cur=$cur/$comp
		fi
	done
	echo "${cur:-/}"
}

if [ -z "$arch" ]; then
	if [ -n "$R" ] && sh_path=$(resolve /bin/sh) && [ -f "$R$sh_path" ]; then
		arch=$(elf_arch "$R$sh_path")
		[ -n "$arch" ] && say "arch $arch: from $R/bin/sh"
	fi
	[ -n "$arch" ] || arch=$(uname -m)
fi
case $arch in
x86_64 | amd64) arch=amd64 ;;
aarch64 | arm64) arch=arm64 ;;
i386 | i486 | i586 | i686 | 386) arch=386 ;;
*) die "arch $arch: osmanager is built for amd64, arm64 and 386 (--arch)" ;;
esac

# --- the binaries -------------------------------------------------------

# $GO: the go command (default: go from PATH, else /usr/local/go/bin/go).
if [ -z "${GO:-}" ]; then
	GO=go
	command -v go > /dev/null 2>&1 || GO=/usr/local/go/bin/go
fi
out=${OSM_BUILD_OUT:-build/out}
case $out in /*) ;; *) out=$src/$out ;; esac
bin=$out/linux-$arch
if command -v "$GO" > /dev/null 2>&1 && [ -x scripts/build ]; then
	PATH=$(dirname "$(command -v "$GO")"):$PATH
	export PATH
	if [ "$dry" = yes ]; then
		say "would run scripts/build --arch $arch --out $out"
	else
		scripts/build --arch "$arch" --out "$out" >&2 || die "scripts/build failed"
	fi
fi
if [ ! -f "$bin/osmanager" ] || [ ! -f "$bin/osmctl" ]; then
	die "no $bin/osmanager and osmctl, and no Go here to build them: run 'scripts/build --arch $arch' on a machine with Go 1.26 (or copy build/out/linux-$arch/ from one), then run install.sh again"
fi
version=$(sed -n '1s/^osmanager //p' build/VERSION)

# --- the init system ----------------------------------------------------

why=
detect_init() {
	[ -e "$R/sbin/init" ] || [ -L "$R/sbin/init" ] || { why="$R/sbin/init is missing"; return 1; }
	p=$(resolve /sbin/init) || { why="$R/sbin/init: symlink loop"; return 1; }
	via=
	[ "$p" = /sbin/init ] || via=" (a symlink to $p)"
	[ -f "$R$p" ] || { why="$R/sbin/init$via is not a file"; return 1; }
	case $p in
	*/systemd) init=systemd why="$R/sbin/init$via is systemd"; return 0 ;;
	*/upstart) init=upstart why="$R/sbin/init$via is upstart"; return 0 ;;
	*/busybox) init=sysvinit why="$R/sbin/init$via is busybox init: the sysvinit script is installed; run it from /etc/inittab (::sysinit:/etc/init.d/osmanager start)"; return 0 ;;
	esac
	for s in /lib/systemd/systemd /usr/lib/systemd/systemd; do
		if sp=$(resolve $s) && [ -f "$R$sp" ] && cmp -s "$R$p" "$R$sp"; then
			init=systemd why="$R/sbin/init$via is the same file as $s"
			return 0
		fi
	done
	if grep -aq 'INIT_VERSION=sysvinit' "$R$p"; then
		init=sysvinit why="$R/sbin/init$via is sysvinit's init (it says INIT_VERSION=sysvinit)"
	elif grep -aqi 'upstart' "$R$p"; then
		init=upstart why="$R/sbin/init$via is upstart's init (it names upstart)"
	elif grep -aq 'systemd' "$R$p"; then
		init=systemd why="$R/sbin/init$via names systemd"
	else
		why="$R/sbin/init$via is none of systemd, sysvinit, upstart, busybox"
		return 1
	fi
}
if [ "$init" = auto ]; then
	detect_init || die "cannot tell the init system: $why; pass --init systemd|sysvinit|upstart"
	say "init $init: $why"
else
	say "init $init: --init"
fi

# --- what to install ----------------------------------------------------
# Every file is first made in a staging tree, then copied into the root only
# when it differs, so a second run writes nothing.

tmp=$(mktemp -d "${TMPDIR:-/tmp}/osm-install.XXXXXX")
rctool= manifest=
manifest_new() {
	LC_ALL=C sort -u "$tmp/manifest" > "$tmp/manifest.sorted" &&
		{
			echo "# osmanager $version install manifest (install.sh; uninstall.sh reads it)"
			echo "# prefix $prefix init $init${rctool:+ rc-tool $rctool}"
			cat "$tmp/manifest.sorted"
		} > "$tmp/manifest.new"
}
write_manifest() {
	manifest_new && cp "$tmp/manifest.new" "$R$manifest.osm-new" && chmod 0644 "$R$manifest.osm-new" &&
		mv "$R$manifest.osm-new" "$R$manifest"
}
# A run that fails half way still leaves the manifest of what it put in
# place (with the earlier run's), so uninstall.sh can take it away.
on_exit() {
	rc=$?
	if [ $rc -ne 0 ] && [ "$dry" = no ] && [ -n "${manifest:-}" ] && [ -s "$tmp/manifest" ] && [ -d "$R$(dirname "$manifest")" ]; then
		[ ! -f "$R$manifest" ] || grep -E '^(file|link) ' "$R$manifest" >> "$tmp/manifest" || true
		write_manifest && echo "$prog: failed; what it installed is listed in $manifest (uninstall.sh removes it)" >&2
	fi
	rm -rf "$tmp"
	exit $rc
}
trap on_exit EXIT
stage=$tmp/stage
docdir=$prefix/share/doc/osmanager
sbindir=$prefix/sbin

# dest PATH: PATH inside the root with its directory's symlinks resolved
# in the root (/sbin -> usr/sbin in a merged-/usr image), so that no write
# follows a link out of the root and the manifest names the real files.
dest() {
	d=$(resolve "$(dirname "$1")") || die "$1: symlink loop in $root"
	echo "${d%/}/$(basename "$1")"
}

manifest=$(dest /LuoYun/.install-manifest)

# stage SRC DEST MODE [render]: DEST inside the root.
: > "$tmp/files"
: > "$tmp/would"
stage() {
	t=$(dest "$2")
	mkdir -p "$stage$(dirname "$t")"
	if [ "${4:-}" = render ]; then
		sed -e "s|@SBINDIR@|$sbindir|g" -e "s|@DOCDIR@|$docdir|g" "$1" > "$stage$t"
	else
		cat "$1" > "$stage$t"
	fi
	chmod "$3" "$stage$t"
	echo "$t" >> "$tmp/files"
}
stage "$bin/osmanager" "$sbindir/osmanager" 0755
stage "$bin/osmctl" "$prefix/bin/osmctl" 0755
stage README.md "$docdir/README.md" 0644
stage build/CHANGELOG "$docdir/CHANGELOG" 0644
# The www/ pages are templates to copy and change: installed as live pages
# they would hide the built-in page (which follows the agent's updates).
for f in $(cd custom/www && find . -type f | sed 's|^\./||' | sort); do
	stage "custom/www/$f" "$docdir/www-templates/$f" 0644
done
case $init in
systemd)
	stage init/systemd/osmanager.service /etc/systemd/system/osmanager.service 0644 render
	;;
sysvinit)
	stage init/sysvinit/osmanager /etc/init.d/osmanager 0755 render
	[ -d "$R/etc/logrotate.d" ] && stage init/logrotate/osmanager /etc/logrotate.d/osmanager 0644
	;;
upstart)
	stage init/upstart/osmanager.conf /etc/init/osmanager.conf 0644 render
	[ -d "$R/etc/logrotate.d" ] && stage init/logrotate/osmanager /etc/logrotate.d/osmanager 0644
	;;
esac

# The previous manifest: directories an earlier run created stay ours.
: > "$tmp/manifest"
if [ -f "$R$manifest" ]; then
	grep -E '^(dir|seed|moved) ' "$R$manifest" >> "$tmp/manifest" || true
fi
# A previous install for another init or prefix: its files go (uninstall.sh
# of the old set would otherwise leave them, and two inits would start it).
changes=0
change() {
	changes=$((changes + 1))
	if [ "$dry" = yes ]; then say "would $*"; fi
}

# mkdirs DIR: make DIR (resolved) inside the root, noting every directory made.
mkdirs() {
	[ -d "$R$1" ] && [ ! -L "$R$1" ] && return 0
	[ ! -L "$R$1" ] || die "$1 in $root: a symlink where a directory should be"
	if [ "$dry" = yes ]; then
		grep -qxF "$1" "$tmp/would" && return 0
		echo "$1" >> "$tmp/would"
	fi
	mkdirs "$(dirname "$1")"
	change "create $1/"
	[ "$dry" = yes ] || mkdir "$R$1"
	grep -qxF "dir $1" "$tmp/manifest" || echo "dir $1" >> "$tmp/manifest"
}

# put DEST: the staged file into the root, when it differs.
put() {
	mode=$(stat -c %a "$stage$1")
	if [ -f "$R$1" ] && [ ! -L "$R$1" ] && cmp -s "$stage$1" "$R$1" && [ "$(stat -c %a "$R$1")" = "$mode" ]; then
		return 0
	fi
	mkdirs "$(dirname "$1")"
	change "install $1"
	if [ "$dry" = no ]; then
		cp "$stage$1" "$R$1.osm-new"
		chmod "$mode" "$R$1.osm-new"
		mv -f "$R$1.osm-new" "$R$1"
	fi
}

# link DEST TARGET: a symlink, when it differs.
link() {
	set -- "$(dest "$1")" "$2"
	[ -L "$R$1" ] && [ "$(readlink "$R$1")" = "$2" ] && { echo "link $1" >> "$tmp/manifest"; return 0; }
	mkdirs "$(dirname "$1")"
	change "link $1 -> $2"
	[ "$dry" = yes ] || ln -sfn "$2" "$R$1"
	echo "link $1" >> "$tmp/manifest"
}

# Files left by an earlier install with another prefix or init system.
if [ -f "$R$manifest" ]; then
	for f in $(sed -n 's/^\(file\|link\) //p' "$R$manifest"); do
		if ! grep -qxF "$f" "$tmp/files" && { [ -e "$R$f" ] || [ -L "$R$f" ]; }; then
			case $f in
			/etc/rc*.d/*osmanager) [ "$init" = sysvinit ] && continue ;;
			/etc/systemd/system/*.wants/osmanager.service) [ "$init" = systemd ] && continue ;;
			esac
			change "remove $f (from an earlier install)"
			[ "$dry" = yes ] || rm -f "$R$f"
		fi
	done
fi

# --- the old LuoYun OS manager's jobs -----------------------------------
# The Python OS manager started from rc links (/etc/rc?.d/S??luoyun-*, to
# /LuoYun/osmanager.sh or /LuoYun/bin/*/start), init scripts
# (/etc/init.d/luoyun*), upstart jobs (/etc/init/luoyun/*.conf from its RPM,
# /etc/init/luoyun*.conf) or systemd units (luoyun*.service). They are moved,
# path kept, under /LuoYun/old-init/ (uninstall.sh moves them back); its
# /LuoYun/custom files stay and are used as they are.
old=$(cd "$R/" && ls -d etc/rc.d/rc[0-6S].d/[SK][0-9][0-9]luoyun* etc/rc[0-6S].d/[SK][0-9][0-9]luoyun* \
	etc/init.d/luoyun* etc/rc.d/init.d/luoyun* etc/init/luoyun etc/init/luoyun*.conf \
	etc/systemd/system/luoyun*.service etc/systemd/system/*.wants/luoyun*.service \
	lib/systemd/system/luoyun*.service usr/lib/systemd/system/luoyun*.service 2> /dev/null | sort -u || true)
for o in $old; do
	[ -e "$R/$o" ] || [ -L "$R/$o" ] || continue
	# /etc/rc3.d may itself be a link into /etc/rc.d: move each entry once.
	d=$(resolve "/$(dirname "$o")")/$(basename "$o")
	[ -e "$R/LuoYun/old-init$d" ] || [ -L "$R/LuoYun/old-init$d" ] && continue
	say "old LuoYun job /$o: disabled, moved to /LuoYun/old-init$d"
	mkdirs "/LuoYun/old-init$(dirname "$d")"
	change "move /$o to /LuoYun/old-init$d"
	[ "$dry" = yes ] || mv "$R$d" "$R/LuoYun/old-init$d"
	echo "moved $d" >> "$tmp/manifest"
done

# --- install ------------------------------------------------------------

# /LuoYun first: the manifest's place, should a step below fail.
mkdirs "$(dest /LuoYun)"
for f in $(cat "$tmp/files"); do
	put "$f"
	echo "file $f" >> "$tmp/manifest"
done

# The init links.
case $init in
systemd)
	link /etc/systemd/system/multi-user.target.wants/osmanager.service ../osmanager.service
	;;
sysvinit)
	# The tools of the image when we can run them in it (they order the
	# links from the LSB header, insserv on Debian), else the links by hand.
	tool=
	if [ -n "$R" ] && [ "$(id -u)" = 0 ] && chroot "$R" /bin/true 2> /dev/null; then
		incroot="chroot $R"
	elif [ -z "$R" ]; then
		incroot=
	else
		incroot=no
	fi
	if [ "$incroot" != no ]; then
		for t in update-rc.d chkconfig; do
			for d in /usr/sbin /sbin; do [ -x "$R$d/$t" ] && tool=$t && break 2; done
		done
	fi
	# Once: when the links are there, a later run leaves them (and insserv's
	# .depend files) alone.
	have=$(cd "$R$(resolve /etc/rc2.d)" 2> /dev/null && ls -d S[0-9][0-9]osmanager 2> /dev/null || true)
	if [ -n "$have" ]; then
		tool=
		[ -f "$R$manifest" ] && rctool=$(sed -n 's/^# prefix .* rc-tool \([a-z.-]*\)$/\1/p' "$R$manifest")
	fi
	if [ "$dry" = no ] && [ -n "$tool" ]; then
		rctool=$tool
		if case $tool in
			update-rc.d) $incroot update-rc.d osmanager defaults > /dev/null ;;
			chkconfig) $incroot chkconfig --add osmanager ;;
			esac; then
			say "rc links made with $tool"
		else
			say "$tool failed: making the rc links by hand"
			rctool=
		fi
	fi
	for rl in 0 1 2 3 4 5 6; do
		rcd=$(resolve /etc/rc$rl.d)
		cur=$(cd "$R$rcd" 2> /dev/null && ls -d [SK][0-9][0-9]osmanager 2> /dev/null || true)
		if [ -n "$cur" ]; then
			for l in $cur; do echo "link $rcd/$l" >> "$tmp/manifest"; done
			continue
		fi
		case $rl in 2 | 3 | 4 | 5) l=S05osmanager ;; *) l=K95osmanager ;; esac
		link "$rcd/$l" ../init.d/osmanager
	done
	;;
esac

# The LuoYun dir: state in conf/ (0700), the appliance's custom/ and
# build/VERSION seeded from the templates only where absent (a seed is
# noted with its checksum: uninstall.sh --purge removes it only unchanged).
mkdirs "$(dest /LuoYun/conf)"
if [ "$dry" = no ] && [ "$(stat -c %a "$R/LuoYun/conf")" != 700 ]; then chmod 0700 "$R/LuoYun/conf"; fi
# checksum prints ALGO:SUM of stdin with the first tool there (busybox may
# lack cksum; uninstall.sh uses the algorithm named).
checksum() {
	for c in sha256sum md5sum cksum; do
		if command -v $c > /dev/null 2>&1; then
			echo "$c:$($c | cut -d' ' -f1)"
			return 0
		fi
	done
	die "no sha256sum, md5sum or cksum here"
}
seed() {
	set -- "$1" "$(dest "$2")" "$3"
	if [ -e "$R$2" ] || [ -L "$R$2" ]; then return 0; fi
	mkdirs "$(dirname "$2")"
	change "seed $2"
	if [ "$dry" = no ]; then
		cp "$1" "$R$2.osm-new"
		chmod "$3" "$R$2.osm-new"
		mv "$R$2.osm-new" "$R$2"
	fi
	echo "seed $(checksum < "$1") $2" >> "$tmp/manifest"
}
for f in $(cd custom && find . -type f ! -path './www/*' | sed 's|^\./||' | sort); do
	mode=0644
	[ -x "custom/$f" ] && mode=0755
	seed "custom/$f" "/LuoYun/custom/$f" $mode
done
seed build/VERSION /LuoYun/build/VERSION 0644

# The manifest: sorted, unique, written only when it changed.
if ! manifest_new || ! cmp -s "$tmp/manifest.new" "$R$manifest"; then
	change "write $manifest"
	[ "$dry" = yes ] || write_manifest
fi

if [ "$dry" = yes ]; then
	say "dry run: $changes changes for osmanager $version ($init, $prefix) in $root, none made"
	exit 0
fi
say "installed osmanager $version ($init, $prefix/sbin/osmanager) into $root: $changes changes"

# --- start --------------------------------------------------------------
# Only when this init runs as PID 1 of this very root: never in a chroot
# (an image being built) or for another root.
[ "$start" = yes ] || { say "not started (--no-start)"; exit 0; }
[ -z "$R" ] || { say "not started: --root is not /; it starts at the image's next boot"; exit 0; }
if [ "$(stat -Lc %d:%i / 2> /dev/null)" != "$(stat -Lc %d:%i /proc/1/root/ 2> /dev/null)" ]; then
	say "not started: this is a chroot (or /proc is not mounted); it starts at the image's boot"
	exit 0
fi
case $init in
systemd)
	[ -d /run/systemd/system ] || { say "not started: systemd is not running here"; exit 0; }
	systemctl daemon-reload && systemctl restart osmanager.service || die "systemctl restart osmanager failed: see journalctl -u osmanager"
	say "started: systemctl restart osmanager"
	;;
upstart)
	initctl version 2> /dev/null | grep -q upstart || { say "not started: upstart is not running here"; exit 0; }
	initctl restart osmanager 2> /dev/null || initctl start osmanager || die "initctl start osmanager failed"
	say "started: initctl start osmanager"
	;;
sysvinit)
	if [ -d /run/systemd/system ] || initctl version 2> /dev/null | grep -q upstart; then
		say "not started: PID 1 is not sysvinit"
		exit 0
	fi
	/etc/init.d/osmanager restart || die "/etc/init.d/osmanager restart failed: see /var/log/osmanager.log"
	say "started: /etc/init.d/osmanager restart"
	;;
esac
