package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"strings"
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

// printError prints a command's error once prefixed: errors that pass through packages
// which name themselves ("sluice: budget exhausted") do not repeat the prefix.
func printError(w io.Writer, err error) {
	msg := strings.TrimPrefix(err.Error(), "sluice: ")
	msg = strings.ReplaceAll(msg, ": sluice: ", ": ")
	fmt.Fprintln(w, "sluice:", msg)
}
