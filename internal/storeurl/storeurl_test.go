package storeurl

import (
	"errors"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     Location
		err      error // errors.Is, or errAny for an error of another kind
	}{
		{"relative path", "ledger.db", Location{Kind: SQLite, Path: "ledger.db"}, nil},
		{"absolute path", "/var/lib/sluice/sluice.db", Location{Kind: SQLite, Path: "/var/lib/sluice/sluice.db"}, nil},
		{"path with a colon", "data/a:b.db", Location{Kind: SQLite, Path: "data/a:b.db"}, nil},
		{"windows drive", `C:\sluice\sluice.db`, Location{Kind: SQLite, Path: `C:\sluice\sluice.db`}, nil},
		{"windows drive, slashes", "C://sluice/sluice.db", Location{Kind: SQLite, Path: "C://sluice/sluice.db"}, nil},
		{"sqlite prefix", "sqlite:ledger.db", Location{Kind: SQLite, Path: "ledger.db"}, nil},
		{"sqlite prefix, capitals", "SQLite:ledger.db", Location{Kind: SQLite, Path: "ledger.db"}, nil},
		{"sqlite URL", "sqlite:///tmp/ledger.db", Location{Kind: SQLite, Path: "/tmp/ledger.db"}, nil},
		{"sqlite URL, relative", "sqlite://ledger.db", Location{Kind: SQLite, Path: "ledger.db"}, nil},
		{"postgres", "postgres://u:pw@db:5432/sluice?sslmode=disable",
			Location{Kind: Postgres, URL: "postgres://u:pw@db:5432/sluice?sslmode=disable"}, nil},
		{"postgresql", "postgresql://db/sluice", Location{Kind: Postgres, URL: "postgresql://db/sluice"}, nil},
		{"postgres, capitals", "POSTGRES://db/sluice", Location{Kind: Postgres, URL: "postgres://db/sluice"}, nil},
		{"unknown scheme", "mysql://db/sluice", Location{}, ErrUnknownScheme},
		{"file URL", "file:///tmp/ledger.db", Location{}, ErrUnknownScheme},
		{"scheme with digits", "s3+https://bucket/x", Location{}, ErrUnknownScheme},
		{"empty", "", Location{}, errAny},
		{"sqlite without path", "sqlite:", Location{}, errAny},
		{"sqlite URL without path", "sqlite://", Location{}, errAny},
		{"postgres without slashes", "postgres:db/sluice", Location{}, errAny},
		{"malformed postgres", "postgres://u:pw@%zz/db", Location{}, errAny},
		// A libpq key=value string was taken for a SQLite path: the ledger's file was named
		// after it, password and all.
		{"key=value connection string", "host=db dbname=sluice user=u password=pw@x", Location{}, errAny},
		{"key=value, one word", "password=pw@x", Location{}, errAny},
		{"path with an equals sign", "runs/run=1.db", Location{Kind: SQLite, Path: "runs/run=1.db"}, nil},
		{"path named like a keyword", "host.db", Location{Kind: SQLite, Path: "host.db"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse(tc.in)
			switch {
			case tc.err == nil && err != nil:
				t.Fatalf("Parse(%q): %v", tc.in, err)
			case tc.err != nil && err == nil:
				t.Fatalf("Parse(%q) = %+v, want an error (%v)", tc.in, got, tc.err)
			case errors.Is(tc.err, ErrUnknownScheme) != errors.Is(err, ErrUnknownScheme):
				t.Fatalf("Parse(%q): %v, want %v", tc.in, err, tc.err)
			}
			if got != tc.want {
				t.Errorf("Parse(%q) = %+v, want %+v", tc.in, got, tc.want)
			}
			if err != nil && strings.Contains(err.Error(), "pw@") {
				t.Errorf("Parse(%q): error shows the password: %v", tc.in, err)
			}
		})
	}
}

// errAny stands for an error other than ErrUnknownScheme.
var errAny = errors.New("any error")

func TestStringHidesPassword(t *testing.T) {
	l, err := Parse("postgres://u:s3cret@db/sluice")
	if err != nil {
		t.Fatal(err)
	}
	if s := l.String(); strings.Contains(s, "s3cret") || !strings.Contains(s, "db/sluice") {
		t.Errorf("String() = %q, want the URL without its password", s)
	}
	if s := (Location{Kind: SQLite, Path: "a.db"}).String(); s != "a.db" {
		t.Errorf("String() of a path = %q", s)
	}
}

func TestRedact(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"postgres://u:s3cret@db/sluice", "postgres://u:xxxxx@db/sluice"},
		{"postgres://u@db/sluice?sslmode=disable&password=s3cret&schema=a", "postgres://u@db/sluice?sslmode=disable&password=xxxxx&schema=a"},
		{"postgres://db/sluice?sslpassword=s3cret", "postgres://db/sluice?sslpassword=xxxxx"},
		{"postgres://db/sluice?pass%77ord=s3cret", "postgres://db/sluice?pass%77ord=xxxxx"},
		{"postgres://db/sluice?password", "postgres://db/sluice?password=xxxxx"},
		{"postgres://db/sluice", "postgres://db/sluice"},
		{"postgres://u:s3cret@%zz/db", "postgres://…"},
	} {
		if got := Redact(tc.in); got != tc.want {
			t.Errorf("Redact(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"ledger.db", "sqlite:x.db", "sqlite:///x", "postgres://u:pw@h/db", "postgresql://h",
		"mysql://h", `C:\x`, "C://x", "://", "a://", "ab://", "+a://", "postgres:", "", "é://x", "http://[::1]/x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		l, err := Parse(s)
		if err != nil {
			if l != (Location{}) {
				t.Errorf("Parse(%q) failed with a location %+v", s, l)
			}
			return
		}
		switch l.Kind {
		case SQLite:
			if l.Path == "" || l.URL != "" {
				t.Errorf("Parse(%q) = %+v: a SQLite location needs a path only", s, l)
			}
			// A path is never a URL of another scheme.
			if scheme, _, ok := splitScheme(s); ok && scheme != "sqlite" {
				t.Errorf("Parse(%q) took a %s URL for a path", s, scheme)
			}
		case Postgres:
			if l.URL != s || l.Path != "" {
				t.Errorf("Parse(%q) = %+v: a PostgreSQL location keeps the URL as given", s, l)
			}
			lower := strings.ToLower(s)
			if !strings.HasPrefix(lower, "postgres://") && !strings.HasPrefix(lower, "postgresql://") {
				t.Errorf("Parse(%q) = postgres for a URL of another scheme", s)
			}
			_ = l.String()
		default:
			t.Errorf("Parse(%q): kind %q", s, l.Kind)
		}
	})
}
