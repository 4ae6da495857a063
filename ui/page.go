package ui

import (
	"encoding/json"
	"fmt"
	"html/template"
	"math"

	"github.com/sluice-llm/sluice"
	"strings"
	"time"
)

// page is the dashboard page: the job list, or one job.
type page struct {
	Title    string
	Refresh  int64 // ms
	Assets   assets
	LoggedIn bool

	Jobs     []*jobView
	Job      *jobView
	Failures *failureList

	// Static is set for a report: no polling, the chart data inline.
	Static    bool
	ChartJSON template.JS
	Generated time.Time
}

// assets are the page's scripts and styles: linked from /ui/assets, or inline (a report).
type assets struct {
	Inline            bool
	UPlotJS, HTMX, JS template.JS
	UPlotCSS, CSS     template.CSS
}

func linkedAssets() assets { return assets{} }

func inlineAssets() assets {
	return assets{Inline: true,
		UPlotJS: template.JS(asset(assetUPlotJS)), JS: template.JS(asset(assetDashJS)), //nolint:gosec // our own embedded files
		UPlotCSS: template.CSS(asset(assetUPlotCSS)), CSS: template.CSS(asset(assetDashCSS))} //nolint:gosec // our own embedded files
}

var funcs = template.FuncMap{
	"count":    fmtCount,
	"cost":     fmtCost,
	"dur":      fmtLatency,
	"pct":      func(v float64) string { return fmt.Sprintf("%.1f%%", v) },
	"width":    func(v float64) string { return fmt.Sprintf("%.2f%%", math.Min(100, math.Max(0, v))) },
	"rate":     func(v float64) string { return fmt.Sprintf("%.1f/s", v) },
	"perMin":   fmtPerMin,
	"when":     func(t time.Time) string { return t.Local().Format("2006-01-02 15:04:05") },
	"stateCls": stateClass,
	"asset": func(name string) string {
		return "/ui/assets/" + map[string]string{"uplot.js": assetUPlotJS, "uplot.css": assetUPlotCSS,
			"htmx.js": assetHTMX, "dash.js": assetDashJS, "dash.css": assetDashCSS}[name]
	},
	"add":  func(a, b int64) int64 { return a + b },
	"slow": func(ms int64) int64 { return 3 * ms }, // failures are polled less often
	"doneShare": func(v *jobView) float64 {
		if v.Total == 0 {
			return 0
		}
		return 100 * float64(v.Done) / float64(v.Total)
	},
	"failShare": func(v *jobView) float64 {
		if v.Total == 0 {
			return 0
		}
		return 100 * float64(v.Failed) / float64(v.Total)
	},
	"message": func(r *sluice.Result) string {
		if r.ErrorMessage != "" {
			return r.ErrorMessage
		}
		return errorMessage(r.Body)
	},
	"linked": linkedAssets,
	"sub":    func(a, b int64) int64 { return a - b },
	"trunc": func(s string, n int) string {
		if len(s) <= n {
			return s
		}
		return s[:n] + "…"
	},
}

func parseTemplates() (*template.Template, error) {
	t, err := template.New("ui").Funcs(funcs).ParseFS(files, "templates/*.html")
	if err != nil {
		return nil, fmt.Errorf("ui: templates: %w", err)
	}
	return t, nil
}

// fmtCount writes n with thin separators: 1 234 567.
func fmtCount(n int64) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteString("\u202f")
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

func fmtCost(v float64) string {
	switch {
	case v == 0:
		return "$0"
	case v < 0.01:
		return fmt.Sprintf("$%.4f", v)
	case v < 100:
		return fmt.Sprintf("$%.2f", v)
	}
	return "$" + fmtCount(int64(math.Round(v)))
}

func fmtLatency(d time.Duration) string {
	switch {
	case d <= 0:
		return "—"
	case d < time.Second:
		return fmt.Sprintf("%d ms", d.Milliseconds())
	}
	return fmt.Sprintf("%.2f s", d.Seconds())
}

func fmtPerMin(v float64) string {
	switch {
	case v <= 0:
		return "—"
	case v >= 1e6:
		return fmt.Sprintf("%.1fM/min", v/1e6)
	case v >= 1e4:
		return fmt.Sprintf("%.0fk/min", v/1e3)
	}
	return fmt.Sprintf("%.0f/min", v)
}

func stateClass(s string) string {
	switch s {
	case "running", "in_progress", "validating", "finalizing":
		return "run"
	case "completed":
		return "ok"
	case "interrupted", "budget_exhausted", "cancelling", "cancelled":
		return "warn"
	}
	return "bad"
}

// errorMessage is the message of an OpenAI error body ({"error":{"message":…}}), or the
// body itself.
func errorMessage(body []byte) string {
	var e struct {
		Error struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &e) == nil && e.Error.Message != "" {
		return e.Error.Message
	}
	return string(body)
}
