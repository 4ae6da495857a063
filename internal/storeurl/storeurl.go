// Package storeurl reads the --store argument of sluice's commands: a SQLite file's path
// (plain, or as sqlite:PATH) or a PostgreSQL URL (postgres:// or postgresql://). Any other
// URL scheme is refused, rather than taken for a file's path.
package storeurl

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
)

// Kind is the kind of store a location names.
type Kind string

// Kinds of store.
const (
	SQLite   Kind = "sqlite"
	Postgres Kind = "postgres"
)

// ErrUnknownScheme is the error, wrapped, for a location with a URL scheme that names no
// kind of store.
var ErrUnknownScheme = errors.New("unknown store scheme")

// Location is where a store lives.
type Location struct {
	Kind Kind
	// Path is a SQLite store's file, as given (relative paths stay relative).
	Path string
	// URL is a PostgreSQL store's connection URL, as given but for its scheme, in lower
	// case (it may hold a password).
	URL string
}

// Parse reads a store argument. A string with a URL scheme (letters, digits, "+", "-" and
// "." after a first letter, then "://") must be postgres:// or postgresql:// (any
// case), or sqlite:// with a path after it; sqlite:PATH names a SQLite file too; anything
// else is a SQLite file's path. A Windows drive letter ("C:\x", "C:/x") is a path.
func Parse(s string) (Location, error) {
	if s == "" {
		return Location{}, errors.New("parse store: empty location")
	}
	scheme, rest, isURL := splitScheme(s)
	switch {
	case isURL && (scheme == "postgres" || scheme == "postgresql"):
		if _, err := url.Parse(s); err != nil {
			// url's error quotes the URL, password and all.
			return Location{}, fmt.Errorf("parse store: malformed %s URL", scheme)
		}
		// The scheme in lower case: pgx takes a URL only as postgres:// or postgresql://.
		return Location{Kind: Postgres, URL: scheme + s[len(scheme):]}, nil
	case isURL && scheme == "sqlite":
		return sqlitePath(strings.TrimPrefix(rest, "//"))
	case isURL:
		return Location{}, fmt.Errorf("parse store: %w %q: want a file's path, sqlite:PATH or postgres://", ErrUnknownScheme, scheme)
	}
	if len(s) >= len("sqlite:") && strings.EqualFold(s[:len("sqlite:")], "sqlite:") {
		return sqlitePath(s[len("sqlite:"):])
	}
	if lower := strings.ToLower(s); strings.HasPrefix(lower, "postgres:") || strings.HasPrefix(lower, "postgresql:") {
		return Location{}, errors.New("parse store: a PostgreSQL store is a URL: postgres://[user@]host[:port]/database")
	}
	if isKeywordDSN(s) {
		// Taken for a path, it would name a SQLite file after the connection string,
		// password and all. The error quotes none of it.
		return Location{}, errors.New("parse store: a PostgreSQL store is a URL (postgres://[user[:password]@]host[:port]/database), not a key=value connection string")
	}
	return Location{Kind: SQLite, Path: s}, nil
}

// dsnKeywords are the keywords of libpq's key=value connection strings that a store
// argument may start with.
var dsnKeywords = []string{
	"host", "hostaddr", "port", "dbname", "user", "password", "passfile", "sslmode",
	"sslpassword", "sslrootcert", "sslcert", "sslkey", "connect_timeout", "application_name",
	"options", "service", "target_session_attrs",
}

// isKeywordDSN reports whether s is a libpq key=value connection string ("host=db
// dbname=sluice password=…"): every space-separated word is a known keyword, "=" and a
// value. A file's path such as "run=1.db" is not one.
func isKeywordDSN(s string) bool {
	words := strings.Fields(s)
	if len(words) == 0 {
		return false
	}
	for _, w := range words {
		key, _, ok := strings.Cut(w, "=")
		if !ok || !slices.Contains(dsnKeywords, strings.ToLower(key)) {
			return false
		}
	}
	return true
}

// sqlitePath is the location of the SQLite file at path.
func sqlitePath(path string) (Location, error) {
	if path == "" {
		return Location{}, errors.New("parse store: sqlite: with no path")
	}
	return Location{Kind: SQLite, Path: path}, nil
}

// splitScheme splits s at "://" when what comes before is a URL scheme (RFC 3986, and
// more than one character, so that a drive letter is never one). The scheme is lower-case.
func splitScheme(s string) (scheme, rest string, ok bool) {
	i := strings.Index(s, "://")
	if i < 2 {
		return "", "", false
	}
	for j, c := range s[:i] {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z':
		case j > 0 && ('0' <= c && c <= '9' || c == '+' || c == '-' || c == '.'):
		default:
			return "", "", false
		}
	}
	return strings.ToLower(s[:i]), s[i+1:], true
}

// String is the location for messages: a PostgreSQL URL without its password.
func (l Location) String() string {
	if l.Kind != Postgres {
		return l.Path
	}
	return Redact(l.URL)
}

// secretParams are the parameters of a PostgreSQL URL that hold a secret.
var secretParams = []string{"password", "sslpassword"}

// Redact is a PostgreSQL connection URL for messages: its password, in the user
// information or as a password or sslpassword parameter, replaced by "xxxxx", the rest
// as given. A string that is not a URL is "postgres://…".
func Redact(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "postgres://…" // url's error quotes the URL, password and all
	}
	params := strings.Split(u.RawQuery, "&")
	for i, p := range params {
		key, _, _ := strings.Cut(p, "=")
		if k, err := url.QueryUnescape(key); err == nil && slices.Contains(secretParams, k) {
			params[i] = key + "=xxxxx"
		}
	}
	u.RawQuery = strings.Join(params, "&")
	return u.Redacted()
}
