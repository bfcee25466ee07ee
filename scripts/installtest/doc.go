// Package installtest tests the appliance builder's tools as real
// processes: install.sh and uninstall.sh against scratch image trees (a
// Debian systemd tree, a sysvinit-core tree, an upstart tree, a RHEL-like
// merged-/usr tree, the old LuoYun layout), the sysvinit script with a fake
// agent, and the .deb and .rpm of scripts/build --packages (dpkg --root into
// a busybox chroot; rpm -qlp and rpm -qp --scripts). It has no code of its
// own: only tests.
package installtest
