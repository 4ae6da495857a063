//go:build !linux

package bench

// resetPeakRSS cannot reset the peak RSS here: vmHWMMB measures from the start.
func resetPeakRSS() {}

// vmHWMMB is the process's peak RSS in MB.
func vmHWMMB() float64 { return peakRSSMB() }
