package main

import (
	"os"
	"testing"
	"time"
)

func TestParseStatCPU(t *testing.T) {
	// A command name with spaces and parentheses must not shift the fields.
	line := []byte("4242 (my (odd) name) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 9 0 100 1000 200 18446744073709551615\n")
	got, err := parseStatCPU(line)
	if err != nil {
		t.Fatal(err)
	}
	if want := 3 * time.Second; got != want { // (250+50) ticks of 10 ms
		t.Errorf("cpu = %v, want %v", got, want)
	}
	if _, err := parseStatCPU([]byte("4242 (x) S 1 2")); err == nil {
		t.Error("short line: got nil error, want one")
	}
}

func TestParseStatusKB(t *testing.T) {
	status := []byte("Name:\tncs-gateway\nVmPeak:\t  900000 kB\nVmHWM:\t   51200 kB\nVmRSS:\t   40000 kB\n")
	got, err := parseStatusKB(status, "VmHWM:")
	if err != nil {
		t.Fatal(err)
	}
	if want := int64(51200 << 10); got != want {
		t.Errorf("VmHWM = %d, want %d", got, want)
	}
	if _, err := parseStatusKB(status, "VmSwap:"); err == nil {
		t.Error("missing key: got nil error, want one")
	}
}

func TestProcSelf(t *testing.T) {
	if _, err := procCPU(os.Getpid()); err != nil {
		t.Errorf("procCPU(self): %v", err)
	}
	rss, err := procPeakRSS(os.Getpid())
	if err != nil || rss <= 0 {
		t.Errorf("procPeakRSS(self) = %d, %v; want > 0", rss, err)
	}
}
