package imapintake

import "syscall"

// childAttr makes Dovecot get SIGTERM (and stop its own processes) when
// the test process dies, so that a failed or timed-out test leaves no
// server behind.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}
