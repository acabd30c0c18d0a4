package pgtest

import "syscall"

// credential is the user the PostgreSQL programs run as, when not ours.
type credential struct{ uid, gid uint32 }

// sysProcAttr runs a child as cred (nil: as us). A server also gets SIGQUIT
// (PostgreSQL's immediate shutdown) when the test process dies without
// stopping it.
func sysProcAttr(cred *credential, server bool) *syscall.SysProcAttr {
	a := &syscall.SysProcAttr{}
	if cred != nil {
		a.Credential = &syscall.Credential{Uid: cred.uid, Gid: cred.gid}
	}
	if server {
		a.Pdeathsig = syscall.SIGQUIT
	}
	return a
}
