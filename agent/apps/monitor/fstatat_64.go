//go:build linux && !(386 || arm || mips || mipsle)

package monitor

import "golang.org/x/sys/unix"

// sysFstatat is fstatat's syscall, which fills unix.Stat_t.
const sysFstatat = unix.SYS_NEWFSTATAT
