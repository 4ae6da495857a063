// Package metrics exposes what sluice does as Prometheus metrics.
//
// A [Metrics] is a [sluice.RunObserver]: set it as the Config.Observer of one or more
// Engines and it counts every attempt, and reads the progress of every run going on when
// it is scraped. Serve [Metrics.Handler] on a server of your own, or start one with
// [Start] or [Serve].
//
// # Counters and histograms (labels job and model)
//
//   - sluice_requests_total{status}: attempts, by how they ended: ok, throttled (a 429),
//     retry (a fault that will be retried), failed (the request failed for good),
//     interrupted (cut off by a stop; the request stays pending);
//   - sluice_request_errors_total{code}: attempts that did not succeed, by error code
//     (the upstream's, sluice's such as timeout or connection_error, else the HTTP
//     status); at most 64 distinct codes, the rest counted as "other";
//   - sluice_request_duration_seconds, sluice_time_to_first_token_seconds (streamed
//     answers only) and sluice_output_tokens_per_second (completion tokens over the
//     duration): histograms of the answered attempts;
//   - sluice_tokens_total{kind}: usage, kind prompt, completion or cached (the part of
//     prompt served from the provider's cache);
//   - sluice_cost_usd_total: what the answers cost at the prices sluice knows.
//
// The request's custom_id is never a label: series grow with jobs and models, not with
// requests. A job's series are deleted [DefaultRetention] after its run ends, and past
// [DefaultMaxFinished] ended jobs the oldest go first, so a long-lived serve keeps a
// bounded number of series; [NewWithOptions] sets both.
//
// # Gauges read at scrape time (label job)
//
// sluice_requests_in_flight, sluice_requests_pending, sluice_requests_ingested,
// sluice_limiter_requests_per_minute, sluice_limiter_tokens_per_minute,
// sluice_limiter_learned, sluice_limiter_window, sluice_limiter_paused,
// sluice_limiter_pause_remaining_seconds, sluice_breaker_open and the counters
// sluice_breaker_trips_total, sluice_limiter_waits_total and
// sluice_limiter_wait_seconds_total. A job's gauges disappear when its run ends.
//
// ObserveAttempt does not allocate once a (job, model, status) has been seen: the
// label children are resolved once and cached.
package metrics
