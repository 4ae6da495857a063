//go:build !unix

package main

import "os"

// openStream opens a pipe or device for reading.
func openStream(_ *env, path string) (*os.File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, usageError("read input: %v", err)
	}
	return f, nil
}
