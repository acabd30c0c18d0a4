//go:build !linux

package imapintake

import "syscall"

// childAttr sets nothing where the kernel offers no parent-death signal.
func childAttr() *syscall.SysProcAttr { return nil }
