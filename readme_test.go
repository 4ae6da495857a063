package sluice_test

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode"
)

// TestReadmeFirstScreen: a newcomer's first screen of README.md shows the quick start, the
// test command that .ci/run runs, and links to the five jobs.
func TestReadmeFirstScreen(t *testing.T) {
	data, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(data), "\n")
	if len(lines) > 40 {
		lines = lines[:40]
	}
	screen := strings.Join(lines, "\n")
	for _, want := range []string{
		"go run ./cmd/sluice demo", // the quick start, as .ci/run runs it
		"go test -race ./...",      // the test command
		"--base-url https://",      // an example against a real provider
		"/v1",
		"(#run-a-file)", "(#batch-api)", "(#serve)", "(#cost)", "(#pipelines)",
	} {
		if !strings.Contains(screen, want) {
			t.Errorf("the README's first 40 lines lack %q", want)
		}
	}
	ci, err := os.ReadFile(".ci/run")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"go test -race", "go run ./cmd/sluice demo"} {
		if !strings.Contains(string(ci), want) {
			t.Errorf(".ci/run no longer runs %q, which the README promises", want)
		}
	}
	if len(data) > 16<<10 {
		t.Errorf("README.md is %d bytes: keep the reference in docs/", len(data))
	}
}

// TestDocLinks: every relative link in README.md and docs/*.md names a file that exists
// and, with a #fragment, a heading of that file.
func TestDocLinks(t *testing.T) {
	files, err := filepath.Glob("docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, "README.md")
	for _, file := range files {
		links, _, err := readMarkdown(file)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range links {
			target, frag, _ := strings.Cut(l, "#")
			path := file
			if target != "" {
				path = filepath.Join(filepath.Dir(file), target)
				if _, err := os.Stat(path); err != nil {
					t.Errorf("%s: link %q: %v", file, l, err)
					continue
				}
			}
			if frag == "" {
				continue
			}
			if !strings.HasSuffix(path, ".md") {
				t.Errorf("%s: link %q: a fragment into a file that is not Markdown", file, l)
				continue
			}
			_, anchors, err := readMarkdown(path)
			if err != nil {
				t.Fatal(err)
			}
			if !anchors[frag] {
				t.Errorf("%s: link %q: %s has no heading #%s", file, l, path, frag)
			}
		}
	}
}

var linkRE = regexp.MustCompile(`\]\(([^)\s]+)\)`)

// readMarkdown returns a Markdown file's relative links and its headings' anchors, as
// GitHub makes them, ignoring fenced code blocks.
func readMarkdown(path string) (links []string, anchors map[string]bool, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	anchors = map[string]bool{}
	seen := map[string]int{}
	inCode := false
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			inCode = !inCode
			continue
		}
		if inCode {
			continue
		}
		if h := strings.TrimLeft(line, "#"); h != line && strings.HasPrefix(h, " ") {
			a := slug(h)
			if n := seen[a]; n > 0 {
				anchors[a+"-"+strconv.Itoa(n)] = true
			} else {
				anchors[a] = true
			}
			seen[a]++
		}
		for _, m := range linkRE.FindAllStringSubmatch(stripCode(line), -1) {
			l := m[1]
			if strings.Contains(l, "://") || strings.HasPrefix(l, "mailto:") {
				continue
			}
			links = append(links, l)
		}
	}
	return links, anchors, sc.Err()
}

// stripCode removes inline code spans, whose brackets are not links.
func stripCode(line string) string {
	parts := strings.Split(line, "`")
	var b strings.Builder
	for i, p := range parts {
		if i%2 == 0 {
			b.WriteString(p)
		}
	}
	return b.String()
}

// slug is GitHub's anchor for a heading: lower case, punctuation dropped, spaces as '-'.
func slug(h string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(h)) {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
			b.WriteRune(r)
		}
	}
	return b.String()
}
