package main

import (
	"os"
	"strings"
	"testing"
)

// TestStoreURLNotAPath checks that a store URL is never taken for a file's path: a
// postgres:// URL, which these commands cannot use yet, and a URL of an unknown scheme are
// refused with a usage error, and nothing is created where a path would have been.
func TestStoreURLNotAPath(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"postgres flag", []string{"jobs", "--store", "postgres://sluice:s3cret@127.0.0.1:1/test"}, nil, "PostgreSQL"},
		{"postgresql flag", []string{"show", "job-1", "--store", "postgresql://127.0.0.1:1/test"}, nil, "PostgreSQL"},
		{"postgres env", []string{"jobs"}, map[string]string{"SLUICE_STORE": "postgres://sluice:s3cret@127.0.0.1:1/test"}, "PostgreSQL"},
		{"unknown scheme", []string{"jobs", "--store", "mysql://sluice:s3cret@127.0.0.1/test"}, nil, "unknown store scheme"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := runCLI(t, tc.env, tc.args...)
			if res.code != exitUsage {
				t.Errorf("exit %d, want %d (usage); stderr: %s", res.code, exitUsage, res.stderr)
			}
			if !strings.Contains(res.stderr, tc.want) {
				t.Errorf("stderr %q does not say %q", res.stderr, tc.want)
			}
			if strings.Contains(res.stderr+res.stdout, "s3cret") {
				t.Errorf("the output shows the URL's password: %s", res.stderr)
			}
			entries, err := os.ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range entries {
				t.Errorf("%s created in the working directory", e.Name())
			}
		})
	}
}
