package main

import (
	"errors"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"

	"github.com/sluice-llm/sluice"
)

// version is the release, set at build time: go build -ldflags "-X main.version=v1.2.3".
var version = "dev"

// versionString is what sluice --version prints: the release, the commit it was built
// from (when the build recorded it) and the Go version.
func versionString() string {
	commit, modified := "unknown", false
	if info, ok := debug.ReadBuildInfo(); ok {
		if version == "dev" && info.Main.Version != "" && info.Main.Version != "(devel)" {
			version = info.Main.Version // go install …@vX.Y.Z
		}
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				commit = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
	}
	if len(commit) > 12 {
		commit = commit[:12]
	}
	if modified {
		commit += "+dirty"
	}
	return fmt.Sprintf("sluice %s (commit %s, %s %s/%s)", version, commit, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

// printError prints a command's error after the program's name, once. The errors of
// package sluice name it already ("sluice: budget exhausted: …"); the commands put such an
// error first in their own messages ("%w; job … stopped"), so an error that is one of
// them (errors.Is) is printed as it is.
func printError(w io.Writer, err error) {
	if fromSluice(err) {
		fmt.Fprintln(w, err)
		return
	}
	fmt.Fprintln(w, "sluice:", err)
}

// sluiceErrors are the sentinel errors of package sluice a command's error may be.
var sluiceErrors = []error{
	sluice.ErrAborted, sluice.ErrBudgetExhausted, sluice.ErrInterrupted, sluice.ErrFailed,
	sluice.ErrAuth, sluice.ErrQuota, sluice.ErrUnknownModel, sluice.ErrUnreachable,
	sluice.ErrEndpointNotFound, sluice.ErrBreakerOpen, sluice.ErrRateLimited,
}

// fromSluice reports whether err is one of package sluice's errors.
func fromSluice(err error) bool {
	for _, s := range sluiceErrors {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}
