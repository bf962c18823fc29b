package main

import "syscall"

// childAttrs makes the kernel kill a child with SIGKILL when the suite
// dies, even by SIGKILL, so no server outlives a run.
func childAttrs() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
