//go:build unix && !linux

package pgtest

import "syscall"

// credential is the user the PostgreSQL programs run as, when not ours.
type credential struct{ uid, gid uint32 }

// sysProcAttr runs a child as cred (nil: as us).
func sysProcAttr(cred *credential, _ bool) *syscall.SysProcAttr {
	a := &syscall.SysProcAttr{}
	if cred != nil {
		a.Credential = &syscall.Credential{Uid: cred.uid, Gid: cred.gid}
	}
	return a
}
