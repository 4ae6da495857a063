//go:build !unix

package bench

import "time"

// peakRSSMB is not measured where getrusage is not available.
func peakRSSMB() float64 { return 0 }

// cpuTime is not measured where getrusage is not available.
func cpuTime() time.Duration { return 0 }
