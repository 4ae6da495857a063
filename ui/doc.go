// Package ui is sluice's dashboard: an http.Handler serving one page that lists jobs (and
// sluice serve's batches) with their live progress, ETA and cost, and, per job, charts over
// time (throughput, latency percentiles and time to first token, tokens and $, 429s and
// errors by code, the limiter's learned RPM/TPM, its waits and the breaker) and the failed
// requests, filterable, each linking to its input line. WriteReport renders the same page
// as one self-contained HTML file.
//
// The page reads jobs' timelines (sluice.TimelineStore, written by timeline.Recorder) and
// their counts without scanning their ledgers: a refresh of a running job reads the job's
// row, its timeline totals and the buckets written since the last refresh. A job without
// a timeline (run before timelines existed, or by a process without a Recorder) is shown
// from its ledger, read once per change of the job.
//
// Its assets (uPlot 1.6.32, htmx 2.0.11, MIT and 0BSD licensed, see assets/LICENSE.*) are
// embedded: nothing is fetched at run time and nothing is built with Node.
package ui
