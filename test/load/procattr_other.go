//go:build !linux

package main

import "syscall"

// childAttrs is empty off Linux: there is no parent-death signal, and the
// suite's deferred stops are the only cleanup.
func childAttrs() *syscall.SysProcAttr { return &syscall.SysProcAttr{} }
