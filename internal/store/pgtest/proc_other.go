//go:build !unix

package pgtest

import "syscall"

// credential is the user the PostgreSQL programs run as; switching users is
// not supported here (and os.Geteuid never reports root).
type credential struct{ uid, gid uint32 }

func sysProcAttr(*credential, bool) *syscall.SysProcAttr { return nil }
