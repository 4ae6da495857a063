package sqlite

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestQueryPlans checks that every statement on a hot path reaches its rows through the
// index it was written for: a full scan of the request table or a sort where none is
// expected would not show in a small test, only in a slow run of a million requests.
func TestQueryPlans(t *testing.T) {
	s, err := Open(t.Context(), filepath.Join(t.TempDir(), "ledger.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const (
		rowRange = "USING INTEGER PRIMARY KEY (rowid>? AND rowid<?)"
		byRowID  = "USING INTEGER PRIMARY KEY (rowid=?)"
	)
	for _, tc := range []struct {
		name, query string
		want        []string // substrings of the plan
		sorts       bool     // the plan may use a temporary b-tree
	}{
		{"insert requests", bulkQuery(bulkRequest, 4), nil, false},
		{"insert inputs", bulkQuery(bulkInput, 4), nil, false},
		{"line exists", sqlLineExists, []string{byRowID}, false},
		{"custom_id line", sqlCustomIDLine, []string{"USING INDEX request_custom_id (job=? AND custom_id=?)"}, false},
		{"claim pending", sqlClaimPending, []string{"r USING INDEX request_pending (job=?)", "i " + byRowID}, false},
		{"claim expired", sqlClaimExpired, []string{"r USING INDEX request_leased (job=? AND lease_until<?)", "i " + byRowID}, false},
		{"claim mark", sqlClaimMark, []string{byRowID}, false},
		{"claim mark range", sqlClaimMarkRange, []string{rowRange}, false},
		{"final rows", bulkQuery(bulkFinal, 4), []string{byRowID}, false},
		{"progress rows", bulkQuery(bulkProgress, 4), []string{byRowID}, false},
		{"release rows", bulkQuery(bulkRelease, 4), []string{byRowID}, false},
		{"answer rows", bulkQuery(bulkOutput, 4), []string{byRowID}, false},
		{"final", sqlFinal, []string{byRowID}, false},
		{"progress", sqlProgress, []string{byRowID}, false},
		{"release one", sqlRelease, []string{byRowID}, false},
		{"renew", sqlRenew, []string{"USING INDEX request_leased (job=?)"}, false},
		{"release all", sqlReleaseAll, []string{"USING INDEX request_leased (job=?)"}, false},
		{"release owner", sqlReleaseOwner, []string{"USING INDEX request_leased (job=?)"}, false},
		{"results page", sqlResultsPage, []string{"r " + rowRange, "o " + byRowID}, false},
		{"stats totals", sqlStatsTotals, []string{rowRange}, false},
		{"stats by model", sqlStatsByModel, []string{rowRange}, true},
		{"stats failures", sqlStatsFailures, []string{rowRange}, true},
		{"stats latency", sqlStatsLatency, []string{rowRange}, true},
		{"unfinished", sqlUnfinished, []string{"USING INDEX request_pending (job=?)", "USING INDEX request_leased (job=?)"}, false},
	} {
		args := make([]any, strings.Count(tc.query, "?"))
		for i := range args {
			args[i] = 1
		}
		rows, err := s.w.QueryContext(t.Context(), "EXPLAIN QUERY PLAN "+tc.query, args...)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, unused int
			var detail string
			if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		if err := rows.Close(); err != nil {
			t.Fatal(err)
		}
		text := strings.Join(plan, "\n")
		for _, w := range tc.want {
			if !strings.Contains(text, w) {
				t.Errorf("%s: plan lacks %q:\n%s", tc.name, w, text)
			}
		}
		if strings.Contains(text, "SCAN request") || strings.Contains(text, "SCAN r\n") || strings.HasSuffix(text, "SCAN r") {
			t.Errorf("%s: plan scans the request table:\n%s", tc.name, text)
		}
		if !tc.sorts && strings.Contains(text, "TEMP B-TREE") {
			t.Errorf("%s: plan sorts:\n%s", tc.name, text)
		}
	}
}

// TestPreparedLimits checks that every statement prepared once and run many times (the
// writer's, and those of items, once a page) takes its LIMIT as preparedLimit: SQLite compiles a statement whose LIMIT is a
// bare parameter again each time the parameter is bound, which made every claim compile
// its two queries again.
func TestPreparedLimits(t *testing.T) {
	queries := []string{sqlPendingItems, sqlPartItems} // prepared for the pages of items
	for _, p := range (&stmts{}).queries() {
		queries = append(queries, p.query)
	}
	for kind := range bulkShapes {
		queries = append(queries, bulkQuery(bulkKind(kind), 2))
	}
	limited := 0
	for _, q := range queries {
		if !strings.Contains(q, "LIMIT") {
			continue
		}
		limited++
		if strings.Count(q, "LIMIT") != strings.Count(q, preparedLimit) {
			t.Errorf("a LIMIT not written %s:\n%s", preparedLimit, q)
		}
	}
	if limited == 0 {
		t.Error("no prepared statement has a LIMIT: the test checks nothing")
	}
}
