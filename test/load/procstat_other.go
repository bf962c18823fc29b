//go:build !linux

package main

import (
	"errors"
	"time"
)

// errNoProc is returned where /proc is needed: the suite's CPU and RSS
// figures are Linux-only.
var errNoProc = errors.New("process statistics need Linux /proc")

func procCPU(int) (time.Duration, error) { return 0, errNoProc }

func procPeakRSS(int) (int64, error) { return 0, errNoProc }

func resetPeakRSS(int) error { return errNoProc }

func procRSS(int) (int64, error) { return 0, errNoProc }

func setNofile(int, uint64) error { return errNoProc }

func nofile() (soft, hard uint64, err error) { return 0, 0, errNoProc }

func procNofile(int) (string, error) { return "", errNoProc }
