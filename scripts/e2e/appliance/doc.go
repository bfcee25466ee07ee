// Package appliance is the end-to-end test of osmanager baked into a real
// Debian 12 appliance image: it builds the image with mmdebstrap (cached,
// rebuilt when its recipe changes), installs the agent into it as an
// appliance builder would, boots it under qemu with the compute node's exact
// floppy image, a NIC whose MAC the floppy names and the in-tree controller
// on the host, and checks the result from outside (SSH, the web page and
// API, the web terminal, the controller's events) across four boots: the
// first, a reboot with the same floppy, one with a changed floppy and one
// with none.
//
// The test is off unless OSM_E2E_APPLIANCE=1; scripts/e2e-appliance turns
// it on. Other switches:
//
//	OSM_E2E_CACHE     image cache dir (default /var/cache/osmanager-e2e)
//	OSM_E2E_IMAGES    systemd (default), sysvinit, arm64, comma-separated;
//	                  arm64 is the systemd image for arm64 (mmdebstrap
//	                  --arch arm64 under qemu-user), booted under
//	                  qemu-system-aarch64 -M virt with the floppy image as
//	                  its second virtio disk: boots 1 and 2 only
//	OSM_E2E_INSTALL   deb (default: dpkg -i of the freshly built .deb) or binary (copy the binary and the init file)
//	OSM_E2E_ACCEL     kvm or tcg (default: kvm when /dev/kvm works, falling
//	                  back to tcg when nested KVM refuses the guest)
//	OSM_E2E_LATE_NIC  1: a fifth boot whose NIC is hot-plugged after the agent
//	                  is ready
//	OSM_E2E_KEEP      keep the work dir (disk, console logs) and print it
//
// TestBenchCloudInit (OSM_E2E_BENCH=1, scripts/e2e-appliance --bench)
// compares the same image booted with cloud-init and a NoCloud seed;
// OSM_E2E_BENCH_ROUNDS sets the boots per side (default 2).
package appliance
