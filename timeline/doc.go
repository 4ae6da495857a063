// Package timeline records what an Engine's runs do over time, for the dashboard (package
// ui) and the HTML report: a Recorder is a sluice.Observer that sums every finished
// attempt into per-job buckets of a fixed width (counts by how attempts ended, errors by
// code, tokens, cost, latency and time-to-first-token histograms), samples the watched
// runs' limiter and breaker, and writes each bucket once it closes to a
// sluice.TimelineStore. Memory is bounded by the jobs and the bucket width, never by the
// requests: a bucket holds counters and two histograms, not samples.
//
// FromLedger builds the same buckets after the fact from a finished job's ledger, for jobs
// run before timelines existed.
package timeline
