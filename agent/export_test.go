package agent

import (
	"syscall"

	"osmanager/agent/paths"
)

type sysStat = syscall.Stat_t

func defaultTestPaths() paths.Paths {
	p := paths.Default()
	p.RootUID, p.RootGID = syscall.Getuid(), syscall.Getgid()
	return p
}
