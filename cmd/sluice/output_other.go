//go:build !unix

package main

import "os"

// lockFile is a no-op where flock is not available.
func lockFile(*os.File) error { return nil }

// orphanedFile cannot tell a leftover from a file being written without flock: it keeps
// every file.
func orphanedFile(*os.File) bool { return false }

// syncDir does nothing where a directory cannot be opened to be synced (Windows).
func syncDir(string) error { return nil }
