package bench

import (
	"fmt"
	"time"

	"github.com/sluice-llm/sluice/sim"
)

// Pace scenarios: an upstream that answers 429 at random (noise, not a limit) and hidden
// limits met at the concurrency and latency where a cut used to stall the run.
const (
	paceLatency     = 20 * time.Millisecond // the random-429 relay's latency
	paceConcurrency = 64
	paceLimitRPM    = 6000
	paceLimitTime   = time.Minute
)

// paceScenarios are registered in Scenarios.
func paceScenarios() []Scenario {
	bound := float64(paceConcurrency) / paceLatency.Seconds() // Little's law: C/L
	limit := sim.Config{RPM: paceLimitRPM, TTFT: 30 * time.Millisecond, Jitter: 0.2}
	noHeaders := limit
	noHeaders.NoLimitHeaders, noHeaders.NoRetryAfter = true, true
	random := func(name string, share, target float64) Scenario {
		return Scenario{
			Name: name, What: fmt.Sprintf("an overloaded relay answers %.0f%% of requests 429 at random (no retry-after, no limit headers), latency 20 ms, concurrency 64: ≥ %.0f%% of C/L = %.0f req/s, every request done", 100*share, 100*target, bound),
			Requests: 40_000, Concurrency: paceConcurrency, maxTokens: 16,
			sim: sim.Config{Seed: 5, TTFT: paceLatency, Random429: share},
			check: func(r *Result) (bool, string) {
				ratio := r.Throughput / bound
				throttled := float64(r.Throttled) / float64(max(1, r.Sent))
				return ratio >= target && r.Exact,
					fmt.Sprintf("%.0f req/s = %.1f%% of C/L %.0f (target ≥ %.0f%%), %.2f%% answered 429, every request once with its own answer: %v",
						r.Throughput, 100*ratio, bound, 100*target, 100*throttled, r.Exact)
			},
		}
	}
	return []Scenario{
		random("random429", 0.02, 0.8),
		random("random429-10", 0.10, 0.8),
		random("random429-30", 0.30, 0.8),
		// C/L bounds the answers (req/s counts requests done): a 429 comes back at once
		// and holds its slot for no time, so half the sends refused need not cost half
		// the answers, but they double the sends, and their retries' backoff, per answer.
		// On the 2-core bench machine that work, not the slots, is what binds: 66% twice
		// on a quiet machine, in the runs that did not collapse to 3 req/s; 60% catches
		// a collapse, or cuts that compound, with room for the machine's noise.
		random("random429-50", 0.50, 0.6),
		{
			// With headers sluice paces itself to the limit's rate and leaves the
			// upstream's initial minute of allowance alone: judged against the rate.
			Name: "limit-30ms", What: "hidden 6,000 RPM with limit headers, latency 30 ms, concurrency 128, 1 minute: ≥ 97% of the limit's 100 req/s, ≤ 1% 429s",
			Requests: 30_000, Concurrency: 128, maxTokens: 16, duration: paceLimitTime, sim: limit,
			check: func(r *Result) (bool, string) {
				r.BindingRPS = paceLimitRPM / 60
				return limitsCheck(0.97, 0.01)(r)
			},
		},
		{
			Name: "limit-30ms-no-headers", What: "the same hidden 6,000 RPM without limit headers or retry-after: ≥ 90% of what the upstream allows (no stall), ≤ 5% 429s",
			Requests: 30_000, Concurrency: 128, maxTokens: 16, duration: paceLimitTime, sim: noHeaders,
			check: allowanceCheck(0.90, 0.05),
		},
	}
}

// allowanceCheck judges a hidden-RPM scenario that runs for paceLimitTime: the upstream's
// bucket starts with a minute's worth and refills at the limit, so it lets through
// RPM × (1 + minutes run) requests in all. A stall of a few seconds shows as a share
// below the target.
func allowanceCheck(minShare, maxThrottled float64) func(r *Result) (bool, string) {
	return func(r *Result) (bool, string) {
		r.BindingRPS = paceLimitRPM * (1 + paceLimitTime.Minutes()) / r.Wall
		share := r.Throughput / r.BindingRPS
		throttled := float64(r.Throttled) / float64(max(1, r.Sent))
		return share >= minShare && throttled <= maxThrottled,
			fmt.Sprintf("%.1f req/s = %.1f%% of the %.1f req/s allowed, %.2f%% answered 429 (targets ≥ %.0f%%, ≤ %.0f%%)",
				r.Throughput, 100*share, r.BindingRPS, 100*throttled, 100*minShare, 100*maxThrottled)
	}
}
