package main

import (
	"os"
	"strings"
	"testing"
)

// TestStoreURLNotAPath checks that a store URL is never taken for a file's path: a
// postgres:// URL is a PostgreSQL store (here one that cannot be reached: exit 1, the
// password never shown), a URL of an unknown scheme is refused with a usage error, and
// nothing is created where a path would have been. The error names the store once.
func TestStoreURLNotAPath(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		want string
		code int
	}{
		{"postgres flag", []string{"jobs", "--store", "postgres://sluice:s3cret@127.0.0.1:1/test"}, nil, "sluice: open postgres store postgres://sluice:xxxxx@127.0.0.1:1/test: ", exitError},
		{"postgresql flag", []string{"show", "job-1", "--store", "postgresql://127.0.0.1:1/test"}, nil, "sluice: open postgres store postgresql://127.0.0.1:1/test: ", exitError},
		{"postgres env", []string{"jobs"}, map[string]string{"SLUICE_STORE": "postgres://sluice:s3cret@127.0.0.1:1/test"}, "sluice: open postgres store postgres://sluice:xxxxx@", exitError},
		{"password parameter", []string{"jobs", "--store", "postgres://sluice@127.0.0.1:1/test?password=s3cret"}, nil, "sluice: open postgres store postgres://sluice@127.0.0.1:1/test?password=xxxxx: ", exitError},
		{"unknown scheme", []string{"jobs", "--store", "mysql://sluice:s3cret@127.0.0.1/test"}, nil, "unknown store scheme", exitUsage},
		{"serve on postgres", []string{"serve", "--store", "postgres://sluice:s3cret@127.0.0.1:1/test"}, map[string]string{"SLUICE_API_KEYS": "sk-test-key"}, "sluice: open postgres store postgres://sluice:xxxxx@127.0.0.1:1/test: ", exitError},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := runCLI(t, tc.env, tc.args...)
			if res.code != tc.code {
				t.Errorf("exit %d, want %d; stderr: %s", res.code, tc.code, res.stderr)
			}
			if !strings.Contains(res.stderr, tc.want) {
				t.Errorf("stderr %q does not say %q", res.stderr, tc.want)
			}
			if strings.Contains(res.stderr+res.stdout, "s3cret") {
				t.Errorf("the output shows the URL's password: %s", res.stderr)
			}
			if n := strings.Count(res.stderr, "127.0.0.1:1/test"); n > 1 {
				t.Errorf("the error names the store %d times: %s", n, res.stderr)
			}
			if strings.Count(res.stderr, "store:") > 1 || tc.code != exitUsage && strings.Count(res.stderr, "store") > 1 {
				t.Errorf("the error says store more than once: %s", res.stderr)
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

// TestStoreOpenErrorNamesItOnce checks that a SQLite store that cannot be opened is named
// once in the error, after the operation, and the operation is said once.
func TestStoreOpenErrorNamesItOnce(t *testing.T) {
	path := writeFile(t, t.TempDir(), "not-a-store.db", strings.Repeat("not a database\n", 100))
	res := runCLI(t, nil, "jobs", "--store", path)
	if res.code != exitError {
		t.Errorf("exit %d, want %d; stderr: %s", res.code, exitError, res.stderr)
	}
	if want := "sluice: open sqlite store " + path + ": "; !strings.HasPrefix(res.stderr, want) {
		t.Errorf("stderr %q does not start with %q", res.stderr, want)
	}
	if n := strings.Count(res.stderr, path); n != 1 {
		t.Errorf("the error names the store %d times: %s", n, res.stderr)
	}
	if n := strings.Count(res.stderr, "open"); n != 1 {
		t.Errorf("the error says open %d times: %s", n, res.stderr)
	}
}
