package bench

import (
	"bytes"
	"os"
	"strconv"
)

// resetPeakRSS resets the process's peak RSS (VmHWM), so that vmHWMMB measures from now.
func resetPeakRSS() { _ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) }

// vmHWMMB is the process's peak RSS in MB since resetPeakRSS (VmHWM), or peakRSSMB when
// /proc cannot tell.
func vmHWMMB() float64 {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return peakRSSMB()
	}
	for line := range bytes.Lines(status) {
		if v, ok := bytes.CutPrefix(line, []byte("VmHWM:")); ok {
			kb, err := strconv.ParseFloat(string(bytes.TrimSpace(bytes.TrimSuffix(bytes.TrimSpace(v), []byte("kB")))), 64)
			if err == nil {
				return kb / 1024
			}
		}
	}
	return peakRSSMB()
}
