package sluice

import (
	"cmp"
	"container/heap"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// paceUpstream is a deterministic upstream for the limiter's tests, driven in simulated
// time: a latency, a hidden request limit kept as a token bucket (like sim's, it may start
// with a minute's worth), and a share of requests refused at random whatever the load.
// A 429 comes back after latency429.
type paceUpstream struct {
	latency, latency429 time.Duration
	limit               float64 // requests per second; 0: none
	burst               float64 // the bucket's size (and its content at the start)
	noise               float64 // share of requests answered 429 at random
	// outage answers every request 429 during [outageFrom, outageTo) after the start.
	outageFrom, outageTo time.Duration
	// sendCost is the time a send takes the dispatcher: a real one sends a window's
	// requests microseconds apart, not at one instant.
	sendCost time.Duration
	// jitter varies each answer's latency by up to ± this fraction, as sim's Jitter.
	jitter float64
	// tokLimit is a hidden token limit per second (0: none), kept as a second bucket of
	// tokBurst (its content at the start); the i-th request sent takes sizes[i mod
	// len(sizes)] tokens from it (prompt and output bound, as sim counts them), so a
	// bucket short of a long request may still admit a short one.
	tokLimit, tokBurst float64
	sizes              []float64
	// retryAfter answers a 429 of the limits with the time until they admit the request,
	// as sim does unless NoRetryAfter.
	retryAfter bool
}

// paceStats is what a simulated run measured.
type paceStats struct {
	sent, ok, throttled int
	okAfter             int           // answers after the warm-up
	maxGap              time.Duration // longest time between two sends
	maxGapAt            time.Duration
	gaps                int // gaps longer than a second
}

type flight struct {
	done, sent time.Time
	ok         bool
	retryAfter time.Duration
}

type flights []flight

func (f flights) Len() int           { return len(f) }
func (f flights) Less(i, j int) bool { return f[i].done.Before(f[j].done) }
func (f flights) Swap(i, j int)      { f[i], f[j] = f[j], f[i] }
func (f *flights) Push(x any)        { *f = append(*f, x.(flight)) }
func (f *flights) Pop() any {
	old := *f
	x := old[len(old)-1]
	*f = old[:len(old)-1]
	return x
}

// paceRun runs a dispatcher as dispatch.go does (a slot within the limiter's window, the
// limiter's wait, then the send) with concurrency slots and an endless backlog against up
// for d of simulated time, and counts what happened. Answers after warmup count in okAfter.
func paceRun(l *limiter, up paceUpstream, concurrency int, d, warmup time.Duration, seed uint64) paceStats {
	rnd := rand.New(rand.NewPCG(seed, 7))
	var st paceStats
	var fl flights
	now, end := t0, t0.Add(d)
	tokens, toks, refilled := up.burst, up.tokBurst, t0
	var lastSend time.Time
	deliver := func(until time.Time) {
		for len(fl) > 0 && !fl[0].done.After(until) {
			f := heap.Pop(&fl).(flight)
			if f.ok {
				l.Answered(f.done, f.sent)
				st.ok++
				if f.done.Sub(t0) >= warmup {
					st.okAfter++
				}
			} else {
				l.Throttled(f.done, f.sent, f.retryAfter)
				st.throttled++
			}
		}
	}
	for now.Before(end) {
		if len(fl) >= min(concurrency, l.Window()) {
			now = fl[0].done
			deliver(now)
			continue
		}
		wait, _ := l.Reserve(now, Estimate{})
		deliver(now.Add(wait))
		now = now.Add(wait)
		if !lastSend.IsZero() {
			if gap := now.Sub(lastSend); gap > st.maxGap {
				st.maxGap, st.maxGapAt = gap, lastSend.Sub(t0)
			}
			if now.Sub(lastSend) > time.Second {
				st.gaps++
			}
		}
		lastSend = now
		size := 0.0
		if up.tokLimit > 0 {
			size = up.sizes[st.sent%len(up.sizes)]
		}
		st.sent++
		tokens = min(up.burst, tokens+now.Sub(refilled).Seconds()*up.limit)
		toks = min(up.tokBurst, toks+now.Sub(refilled).Seconds()*up.tokLimit)
		refilled = now
		at := now.Sub(t0)
		f := flight{sent: now, done: now.Add(up.latency429)}
		limited := up.limit > 0 && tokens < 1 || up.tokLimit > 0 && toks < size
		switch {
		case at >= up.outageFrom && at < up.outageTo:
		case rnd.Float64() < up.noise:
		case limited:
			if up.retryAfter {
				f.retryAfter = time.Duration(max(bucketWait(tokens, 1, up.limit), bucketWait(toks, size, up.tokLimit)) * float64(time.Second))
			}
		default:
			tokens--
			toks -= size
			lat := up.latency
			if up.jitter > 0 {
				lat = time.Duration(float64(lat) * (1 + up.jitter*(2*rnd.Float64()-1)))
			}
			f.ok, f.done = true, now.Add(lat)
		}
		heap.Push(&fl, f)
		now = now.Add(up.sendCost)
	}
	return st
}

// bucketWait is the seconds until a bucket holding tokens that refills at rate holds n.
func bucketWait(tokens, n, rate float64) float64 {
	if rate <= 0 || tokens >= n {
		return 0
	}
	return (n - tokens) / rate
}

// TestPaceRandom429s: an upstream that refuses a share of requests at random (2%, 10%
// or 30%), whatever the rate, is noise, not a limit: the run keeps near the Little's-law bound C/L at every
// scale. On main the 429s paused the dispatcher and cut the rate until it fell to a few
// dozen requests a second.
func TestPaceRandom429s(t *testing.T) {
	for _, tt := range []struct {
		name        string
		concurrency int
		latency     time.Duration
		noise       float64
		min         float64 // of C/L after the warm-up; 0: 0.9
	}{
		{"C/L 3,200", 64, 20 * time.Millisecond, 0.02, 0},
		{"C/L 80", 8, 100 * time.Millisecond, 0.02, 0},
		{"C/L 5,120", 256, 50 * time.Millisecond, 0.02, 0},
		{"C/L 12,800", 256, 20 * time.Millisecond, 0.02, 0},
		// An overloaded relay refuses far more. At 10%, main took a run of 8 429s (which
		// comes by the hundred in a long run) for a storm, and kept half the rate.
		{"C/L 3,200, 10% noise", 64, 20 * time.Millisecond, 0.1, 0},
		{"C/L 5,120, 10% noise", 256, 50 * time.Millisecond, 0.1, 0},
		// At 30%, main took every window for a limit (a share over a quarter was never
		// noise), and the cuts compounded down to 3 answers a second. The floor is known
		// less well (the share's sampling noise is 2.3 times that at 2%), so a window
		// now and then passes for an excess and is cut: 85% (the bench's target is 80%).
		{"C/L 3,200, 30% noise", 64, 20 * time.Millisecond, 0.3, 0.85},
		{"C/L 5,120, 30% noise", 256, 50 * time.Millisecond, 0.3, 0.85},
	} {
		t.Run(tt.name, func(t *testing.T) {
			bound := float64(tt.concurrency) / tt.latency.Seconds()
			l := newLimiter(t0, tt.concurrency, 0, 0)
			const d, warmup = 20 * time.Second, 5 * time.Second
			st := paceRun(l, paceUpstream{latency: tt.latency, latency429: time.Millisecond, noise: tt.noise}, tt.concurrency, d, warmup, 1)
			rate := float64(st.okAfter) / (d - warmup).Seconds()
			want := cmp.Or(tt.min, 0.9)
			if rate < want*bound {
				t.Errorf("%.0f answers/s = %.0f%% of C/L %.0f, want ≥ %.0f%% (sent %d, %d 429s, longest gap %v at %v)",
					rate, 100*rate/bound, bound, 100*want, st.sent, st.throttled, st.maxGap, st.maxGapAt)
			}
			if st.maxGap > time.Second {
				t.Errorf("nothing sent for %v at %v", st.maxGap, st.maxGapAt)
			}
		})
	}
}

// TestPaceRandom429sSeeds: a relay that refuses 2% or 10% of requests at random, over
// many seeds, with answer latency ±20% and sends microseconds apart (bench random429 and
// random429-10): every seed keeps 90% of C/L or more. A window picked for being high
// among the random 429s, cut, ends as a limit when the next is back at the floor; when
// the rate then grew 1% a second from the cut up to 10% above the limit that found, 5
// seeds in 40 fell under 90%, to 78% at 2% and 82% at 10% (97% and 94% at worst on main).
func TestPaceRandom429sSeeds(t *testing.T) {
	const concurrency, latency = 64, 20 * time.Millisecond
	bound := concurrency / latency.Seconds()
	for _, noise := range []float64{0.02, 0.1} {
		t.Run(fmt.Sprintf("%.0f%% noise", 100*noise), func(t *testing.T) {
			t.Parallel()
			const d, warmup = 20 * time.Second, 5 * time.Second
			up := paceUpstream{latency: latency, latency429: time.Millisecond, noise: noise, jitter: 0.2, sendCost: 10 * time.Microsecond}
			for seed := uint64(1); seed <= 8; seed++ { // 3 of them fell under 90% on the old code
				st := paceRun(newLimiter(t0, concurrency, 0, 0), up, concurrency, d, warmup, seed)
				if r := float64(st.okAfter) / (d - warmup).Seconds() / bound; r < 0.9 {
					t.Errorf("seed %d: %.0f%% of C/L %.0f, want ≥ 90%% (sent %d, %d 429s)", seed, 100*r, bound, st.sent, st.throttled)
				}
			}
		})
	}
}

// TestPaceHiddenLimit: a real hidden limit still converges, with few 429s and no stall,
// whether its bucket starts with a minute's worth (the simulator's, OpenAI's) or a second's
// (where main, at 30 ms and concurrency 128, once sent 134 requests and then nothing for
// 54 s), and with 2% random 429s on top.
func TestPaceHiddenLimit(t *testing.T) {
	for _, tt := range []struct {
		name         string
		limit, burst float64
		noise        float64
		maxShare     float64
	}{
		{"6,000 RPM, a minute's burst", 100, 6000, 0, 0.05},
		{"6,000 RPM, a second's burst", 100, 100, 0, 0.05},
		// At 10 req/s, concurrency 128 and 429s that come back in a millisecond, the
		// windows are small and a cut after a pause meets a refilled bucket: more 429s.
		{"600 RPM, a second's burst", 10, 10, 0, 0.08},
		{"6,000 RPM and 2% random 429s", 100, 100, 0.02, 0.07},
	} {
		t.Run(tt.name, func(t *testing.T) {
			const d, warmup = 120 * time.Second, 10 * time.Second
			l := newLimiter(t0, 128, 0, 0)
			up := paceUpstream{latency: 30 * time.Millisecond, latency429: time.Millisecond, limit: tt.limit, burst: tt.burst, noise: tt.noise}
			st := paceRun(l, up, 128, d, warmup, 2)
			allowed := (tt.burst + tt.limit*d.Seconds()) * (1 - tt.noise)
			share := float64(st.throttled) / float64(st.sent)
			if got := float64(st.ok) / allowed; got < 0.9 {
				t.Errorf("%d answers = %.1f%% of the %.0f allowed, want ≥ 90%% (longest gap %v at %v)", st.ok, 100*got, allowed, st.maxGap, st.maxGapAt)
			}
			if share > tt.maxShare {
				t.Errorf("%.2f%% of %d requests answered 429, want ≤ %.0f%%", 100*share, st.sent, 100*tt.maxShare)
			}
			if st.maxGap > 2*time.Second {
				t.Errorf("nothing sent for %v at %v", st.maxGap, st.maxGapAt)
			}
			t.Logf("%d sent, %d ok (%.1f%% of allowed), %.2f%% 429s, longest gap %v, final %.1f req/s",
				st.sent, st.ok, 100*float64(st.ok)/allowed, 100*share, st.maxGap, l.Limits().RPM/60)
		})
	}
}

// TestPaceNoStallAfter429Burst: an upstream that answers everything 429 for two seconds
// (an outage, a burst of 429s) and then recovers: sending never stops for more than a
// second or two, and the rate is back near C/L soon after.
func TestPaceNoStallAfter429Burst(t *testing.T) {
	const concurrency, latency = 128, 30 * time.Millisecond
	bound := float64(concurrency) / latency.Seconds()
	l := newLimiter(t0, concurrency, 0, 0)
	up := paceUpstream{latency: latency, latency429: time.Millisecond, outageFrom: 5 * time.Second, outageTo: 7 * time.Second}
	const d, warmup = 40 * time.Second, 20 * time.Second
	st := paceRun(l, up, concurrency, d, warmup, 3)
	if st.maxGap > 2*time.Second {
		t.Errorf("nothing sent for %v at %v", st.maxGap, st.maxGapAt)
	}
	if rate := float64(st.okAfter) / (d - warmup).Seconds(); rate < 0.8*bound {
		t.Errorf("%.0f answers/s from 13 s after the outage = %.0f%% of C/L %.0f, want ≥ 80%%", rate, 100*rate/bound, bound)
	}
}

// TestPaceHalfRefused: a relay that refuses half of the requests at random, or 60%, over
// many seeds. On main an episode that started on the first window (8 answers) could only
// be judged noise against a window before it of 50 answers or more; each cut shrank the
// windows after it, so no verdict came and the cuts compounded down to 1 request a second
// (3 to 13 seeds of 20 fell under half of C/L; 3 of the first 8 at C/L 3,200). Now a share that stays the same when the
// rate halves is taken for the floor (flat), a cut for such a share halves the rate at
// most, and a window that stays unclear but far above what a limit would refuse is
// noise: every seed keeps 80% of C/L or more.
func TestPaceHalfRefused(t *testing.T) {
	const concurrency = 64
	for _, noise := range []float64{0.5, 0.6} {
		for _, latency := range []time.Duration{20 * time.Millisecond, 50 * time.Millisecond} {
			bound := concurrency / latency.Seconds()
			t.Run(fmt.Sprintf("C/L %.0f, %.0f%% noise", bound, 100*noise), func(t *testing.T) {
				t.Parallel()
				const d, warmup = 20 * time.Second, 5 * time.Second
				seeds := 20
				if bound > 2000 {
					seeds = 8 // a run at C/L 3,200 costs 2.5 of one at 1,280
				}
				var ratios []float64
				for seed := uint64(1); seed <= uint64(seeds); seed++ {
					l := newLimiter(t0, concurrency, 0, 0)
					st := paceRun(l, paceUpstream{latency: latency, latency429: time.Millisecond, noise: noise}, concurrency, d, warmup, seed)
					r := float64(st.okAfter) / (d - warmup).Seconds() / bound
					ratios = append(ratios, r)
					if r < 0.8 {
						t.Errorf("seed %d: %.0f%% of C/L %.0f, want ≥ 80%% (sent %d, %d 429s, longest gap %v at %v)",
							seed, 100*r, bound, st.sent, st.throttled, st.maxGap, st.maxGapAt)
					}
				}
				slices.Sort(ratios)
				if median := ratios[seeds/2]; median < 0.9 {
					t.Errorf("median %.0f%% of C/L, want ≥ 90%% (of C/L: %.2f)", 100*median, ratios)
				}
			})
		}
	}
}

// TestPaceLimitUnderNoise: a real hidden limit behind a relay that also refuses 30% or
// 50% of requests at random: the run neither collapses (on main, 7 seeds in 20 at 50%
// got 1 to 2% of what the limit allows) nor storms the limit (429s at most 15 points
// above the noise; 36–45% and 56–63% now).
func TestPaceLimitUnderNoise(t *testing.T) {
	for _, noise := range []float64{0.3, 0.5} {
		t.Run(fmt.Sprintf("6,000 RPM, %.0f%% noise", 100*noise), func(t *testing.T) {
			t.Parallel()
			const seeds, d, warmup = 20, 120 * time.Second, 10 * time.Second
			const limit, burst = 100, 100
			for seed := uint64(1); seed <= seeds; seed++ {
				l := newLimiter(t0, 128, 0, 0)
				up := paceUpstream{latency: 30 * time.Millisecond, latency429: time.Millisecond, limit: limit, burst: burst, noise: noise}
				st := paceRun(l, up, 128, d, warmup, seed)
				// A random 429 takes no token: the limit lets its whole allowance through.
				allowed := burst + limit*d.Seconds()
				share := float64(st.throttled) / float64(st.sent)
				if got := float64(st.ok) / allowed; got < 0.9 {
					t.Errorf("seed %d: %d answers = %.1f%% of the %.0f allowed, want ≥ 90%%", seed, st.ok, 100*got, allowed)
				}
				if share > noise+0.15 {
					t.Errorf("seed %d: %.1f%% of %d requests answered 429, want ≤ %.0f%%", seed, 100*share, st.sent, 100*(noise+0.15))
				}
			}
		})
	}
}

// TestPaceLowLimitUnderNoise: a hidden limit of 2 requests a second behind a relay that
// also refuses 30% at random. The limit's share of 429s at the rates slow start reaches
// is near 1 and stays near 1 when the rate halves: the judgement that takes a share that
// does not fall for the noise floor must not take it for noise (68–84% of requests were
// answered 429 when it did). The run still sends too many: 57–68%, as on main.
func TestPaceLowLimitUnderNoise(t *testing.T) {
	const seeds, d = 20, 120 * time.Second
	for seed := uint64(1); seed <= seeds; seed++ {
		l := newLimiter(t0, 128, 0, 0)
		up := paceUpstream{latency: 30 * time.Millisecond, latency429: time.Millisecond, limit: 2, burst: 2, noise: 0.3}
		st := paceRun(l, up, 128, d, 10*time.Second, seed)
		if share := float64(st.throttled) / float64(st.sent); share > 0.7 {
			t.Errorf("seed %d: %.1f%% of %d requests answered 429, want ≤ 70%%", seed, 100*share, st.sent)
		}
	}
}

// TestPaceLimitAfterBurst: a hidden 100 req/s limit whose bucket holds a minute's worth,
// latency 30 ms ± 20%, sends microseconds apart (bench limit-30ms-no-headers). A cut
// refills the bucket, so the window after it gets through above the limit and its share
// can look flat as the rate falls: the limit was taken for noise, at a floor of about 27%,
// and the windows after it, at 14%, did not prove the floor wrong, so the run kept 14–16%
// 429s (2 seeds in 20 over the bound at 0 µs a send, 1 at 10 µs; the bench failed 1 run
// in 3). Every seed must stay within 5 points of the noise, the bench's bound.
func TestPaceLimitAfterBurst(t *testing.T) {
	const seeds = 20
	for _, noise := range []float64{0, 0.02} {
		for _, cost := range []time.Duration{0, 10 * time.Microsecond} {
			t.Run(fmt.Sprintf("%.0f%% noise, %v a send", 100*noise, cost), func(t *testing.T) {
				up := paceUpstream{latency: 30 * time.Millisecond, latency429: time.Millisecond, limit: 100, burst: 6000,
					sendCost: cost, jitter: 0.2, noise: noise}
				for seed := uint64(1); seed <= seeds; seed++ {
					st := paceRun(newLimiter(t0, 128, 0, 0), up, 128, time.Minute, 0, seed)
					if share := float64(st.throttled) / float64(st.sent); share > noise+0.05 {
						t.Errorf("seed %d: %.1f%% of %d requests answered 429, want ≤ %.0f%%", seed, 100*share, st.sent, 100*(noise+0.05))
					}
				}
			})
		}
	}
}

// TestPaceLimitsNoHeaders: bench limits-no-headers in simulated time: hidden limits of
// 6,000 RPM and 1,000,000 TPM (about 99.8 requests a second of the bench's sizes, the
// binding one), each bucket starting with a minute's worth, no limit headers, a
// retry-after on each 429, latency 200 ms ± 30%, concurrency 256, 2 minutes. After the
// minute's allowance ran out, each episode's cut stood at a rate under the limit, and the
// rate then grew back by 5% a second, past the limit and on while the bucket the cut let
// refill ran out, to meet the limit with a large excess (and the first episode's rate to
// recover to, measured while the allowance ran out, was 5 times the limit): 429s came in
// bursts every 10 to 30 s, 2.2-4.1% of the requests (mean 3.1% over 20 seeds; the bench
// gave 2.7-5.9%, at its 5% bound). Now an episode that found a limit recovers to the rate
// that stood, and the rate grows by 1% a second up to 10% above the limit it found.
func TestPaceLimitsNoHeaders(t *testing.T) {
	const seeds, d = 20, 2 * time.Minute
	up := paceUpstream{latency: 200 * time.Millisecond, latency429: time.Millisecond, jitter: 0.3, sendCost: 10 * time.Microsecond,
		limit: 100, burst: 6000, tokLimit: 1e6 / 60, tokBurst: 1e6, sizes: []float64{160, 164, 177}, retryAfter: true}
	allowed := (up.tokBurst + up.tokLimit*d.Seconds()) / ((160 + 164 + 177) / 3.0)
	var total float64
	for seed := uint64(1); seed <= seeds; seed++ {
		st := paceRun(newLimiter(t0, 256, 0, 0), up, 256, d, 0, seed)
		share := float64(st.throttled) / float64(st.sent)
		total += share
		if share > 0.05 {
			t.Errorf("seed %d: %.2f%% of %d requests answered 429, want ≤ 5%%", seed, 100*share, st.sent)
		}
		if got := float64(st.ok) / allowed; got < 0.85 {
			t.Errorf("seed %d: %d answers = %.1f%% of the %.0f allowed, want ≥ 85%%", seed, st.ok, 100*got, allowed)
		}
	}
	mean := total / seeds
	t.Logf("%.2f%% of requests answered 429 on average over %d seeds", 100*mean, seeds)
	if mean > 0.025 {
		t.Errorf("%.2f%% of requests answered 429 on average over %d seeds, want ≤ 2.5%%", 100*mean, seeds)
	}
}

// TestPaceAllowanceStorm: the first minute of bench limits-no-headers in simulated time
// (TestPaceLimitsNoHeaders' upstream). The buckets start with a minute's allowance,
// which sluice runs through at C/L, 13 times the limit, in 5 s; then most requests are
// answered 429 at once. The first storm's window mixed the requests the allowance let
// through with those after it, so the first cut kept three quarters of the burst rate
// and the next ones came a second or more apart: 244 to 575 429s in the first 20 s
// (mean 297 over 20 seeds); on one seed in 20 the cut was then taken for noise and the
// restored rate ran into the limit again. Now a cut keeps at most what got through from
// the window's first 429 to its last, when its 429s crowd together (a bucket run out).
func TestPaceAllowanceStorm(t *testing.T) {
	const seeds, d = 20, 20 * time.Second
	up := paceUpstream{latency: 200 * time.Millisecond, latency429: time.Millisecond, jitter: 0.3, sendCost: 10 * time.Microsecond,
		limit: 100, burst: 6000, tokLimit: 1e6 / 60, tokBurst: 1e6, sizes: []float64{160, 164, 177}, retryAfter: true}
	var total int
	for seed := uint64(1); seed <= seeds; seed++ {
		st := paceRun(newLimiter(t0, 256, 0, 0), up, 256, d, 0, seed)
		total += st.throttled
		if st.throttled > 250 {
			t.Errorf("seed %d: %d 429s in the first %v, want ≤ 250", seed, st.throttled, d)
		}
	}
	t.Logf("%d 429s in the first %v on average over %d seeds", total/seeds, d, seeds)
	if total > 230*seeds {
		t.Errorf("%d 429s in the first %v on average over %d seeds, want ≤ 230", total/seeds, d, seeds)
	}
}

// TestPaceThroughInFlight: a storm is judged while the requests sent after its 429s are
// still in flight. A relay's random 429s (every third request) among the first half of a
// window's sends, its second half not answered yet, are not crowded together, so they
// give no through; when the window's share counted the sends in flight, they looked
// twice as dense as over the window, and a limit's share after a cut would have been
// judged against through.
func TestPaceThroughInFlight(t *testing.T) {
	var p pace
	for i := range 100 {
		p.sent(t0.Add(time.Duration(i) * time.Millisecond))
	}
	for i := range 50 {
		sent := t0.Add(time.Duration(i) * time.Millisecond)
		p.cur.count(sent.Add(time.Millisecond), sent, i%3 == 0)
	}
	if j := p.measure(&p.cur); j.hasThrough {
		t.Errorf("through %.0f/s of %.0f/s sent for 429s spread evenly over the sends answered", j.through, j.sent)
	}
	// The same 429s from the 25th send on, every request after the bucket ran out: crowded.
	p = pace{}
	for i := range 100 {
		p.sent(t0.Add(time.Duration(i) * time.Millisecond))
	}
	for i := range 50 {
		sent := t0.Add(time.Duration(i) * time.Millisecond)
		p.cur.count(sent.Add(time.Millisecond), sent, i >= 25 && i%8 != 0)
	}
	if j := p.measure(&p.cur); !j.hasThrough || j.through > 200 {
		t.Errorf("through %.0f/s (%v) for a bucket run out from the 25th send, want about 125/s", j.through, j.hasThrough)
	}
}

// TestPaceRandom429sSlowStart: a relay that refuses 30% or 50% of requests at random
// (no headers, no retry-after) at latency 200 ms and concurrency 256 (C/L 1,280, bench
// random429-30 at a longer latency), over 8 seeds. The first storm comes during slow
// start and cuts from the rate measured then (about 60/s); each window after a cut is
// small, so each of 30% 429s counted as a storm again, and the rate halved down to ~1
// req/s before any noise verdict.
func TestPaceRandom429sSlowStart(t *testing.T) {
	const concurrency, latency = 256, 200 * time.Millisecond
	bound := concurrency / latency.Seconds()
	for _, tt := range []struct {
		noise, min float64
	}{{0.3, 0.6}, {0.5, 0.4}} {
		t.Run(fmt.Sprintf("%.0f%% noise", 100*tt.noise), func(t *testing.T) {
			t.Parallel()
			const d = 20 * time.Second
			up := paceUpstream{latency: latency, latency429: time.Millisecond, noise: tt.noise, jitter: 0.2, sendCost: 10 * time.Microsecond}
			for seed := uint64(1); seed <= 8; seed++ {
				st := paceRun(newLimiter(t0, concurrency, 0, 0), up, concurrency, d, 0, seed)
				if r := float64(st.ok) / d.Seconds() / bound; r < tt.min {
					t.Errorf("seed %d: %.1f%% of C/L %.0f over the run, want ≥ %.0f%% (sent %d, %d 429s)", seed, 100*r, bound, 100*tt.min, st.sent, st.throttled)
				}
			}
		})
	}
}
