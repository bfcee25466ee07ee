package agent

import (
	"osmanager/agent/apps/store"
	"osmanager/agent/instance"
	"osmanager/agent/osconfig"
	"osmanager/agent/paths"
	"osmanager/agent/webssh"
)

// The path table (agent/paths) is read here and in the wire_*.go files
// only: each package declares the files it uses, and these fill them.

// osFiles are the boot configurators' files.
func osFiles(p paths.Paths) osconfig.Files {
	return osconfig.Files{
		Shadow: p.Shadow, ShadowLock: p.ShadowLock,
		SSHDir: p.SSHDir(), AuthKeys: p.AuthorizedKeys(), RootUID: p.RootUID, RootGID: p.RootGID,
		Hostname: p.Hostname, Hosts: p.Hosts, Resolv: p.Resolv,
	}
}

// websshFiles are the web terminal's files.
func websshFiles(p paths.Paths) webssh.Files {
	return webssh.Files{
		Shadow: p.Shadow, Passwd: p.Passwd, Group: p.Group, Locale: p.Locale,
		Cert: p.WebSSHCert, Key: p.WebSSHKey, KnownHosts: p.KnownHosts, Shells: p.WebSSHShells,
		Proc: p.Proc, PATH: p.PATH, UserPATH: p.UserPATH,
	}
}

// storeFiles are the app store's dirs in the LuoYun root.
func storeFiles(p paths.Paths) store.Files {
	return store.Files{Dir: p.AppsDir, Data: p.AppsData}
}

// instanceFiles are what a new instance and `osmanager seal` act on.
func instanceFiles(p paths.Paths) instance.Files {
	return instance.Files{
		Conf: p.Conf, InstanceID: p.InstanceID, MachineIDReset: p.MachineIDReset, KnownHosts: p.KnownHosts,
		WebSSHCert: p.WebSSHCert, WebSSHKey: p.WebSSHKey, WebSSHShells: p.WebSSHShells,
		SSHHostKeys: p.SSHHostKeys, MachineID: p.MachineID, DBusMachineID: p.DBusMachineID,
		SSHDPid: p.SSHDPid, AgentLog: p.AgentLog, RootUID: p.RootUID, RootGID: p.RootGID,
	}
}

// scriptEnv is the environment of the appliance's scripts (config and
// status): PATH, and where the LuoYun dir, the kept luoyun.conf and the
// system root are.
func (a *Agent) scriptEnv() []string {
	confPath, _ := a.ly.Path(a.paths.Conf)
	return []string{"PATH=" + a.paths.PATH, "LUOYUN_ROOT=" + a.opts.Root, "LUOYUN_CONF=" + confPath, "OSM_SYSROOT=" + a.sys.Dir()}
}
