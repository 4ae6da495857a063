//go:build !unix

package main

// peakRSSMB is not measured where getrusage is not available.
func peakRSSMB() float64 { return 0 }
