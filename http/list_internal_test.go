package http

import (
	"net/http/httptest"
	"net/url"
	"testing"
)

func FuzzParseListQuery(f *testing.F) {
	for _, s := range []string{"limit=2&purpose=batch", "after=file-x&order=asc", "limit=0", "limit=-1", "order=sideways", "limit=99999999999999999999", "limit=1e3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		r := httptest.NewRequest("GET", "/v1/files", nil)
		r.URL.RawQuery = raw
		q, err := parseListQuery(r, 100)
		if err != nil {
			if _, status := asServiceError(err); status != 400 {
				t.Fatalf("%q: error %v is not a 400", raw, err)
			}
			return
		}
		if q.Limit < 0 || q.Limit > 100 {
			t.Fatalf("%q: limit %d out of 0..100", raw, q.Limit)
		}
		v, _ := url.ParseQuery(raw)
		if q.Asc != (v.Get("order") == "asc") {
			t.Fatalf("%q: asc %v", raw, q.Asc)
		}
	})
}
