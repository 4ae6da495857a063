package sluice

import (
	"math"
	"time"
)

// pace tells a real rate limit from noise in an upstream's 429s, for an upstream that
// sends no limit headers. A real limit refuses a share of requests that grows with the
// rate sent and falls when the rate falls; an overloaded relay that refuses a fixed share
// at random refuses it whatever the rate. So pace counts answers in windows of requests
// by the time they were sent, and judges each window's 429 share against a noise floor:
//
//   - a share within sampling noise of the floor is normal, and moves the floor a little
//     towards it (floorWeight: a limit approached slowly cannot drag the floor up with it
//     faster than the share rises through the threshold);
//   - a share above it starts an episode: the limiter cuts the rate, and the next window
//     counts only the requests sent after the cut;
//   - if the share at the lower rate fell by more than sampling noise (paceFallZ
//     standard deviations) and is back within noise of the floor, the limit was real
//     and the cut stands; unless the floor is high (paceMildShare or more) and the
//     excess was mild (under paceMildShare above it): among a relay's many random 429s
//     that is a window picked for being high, and the episode ends as noise (a limit
//     shows a larger excess the next time, as the rate grows back);
//   - if the rate sent fell but the share stayed the same (within paceSameZ standard
//     deviations either way), and is above what a limit would refuse at the lower rate
//     (a limit lets the same requests per second through at any rate above it: the
//     window before the cut tells how many), the 429s were noise: the floor becomes
//     the share of both windows (at most maxFloor) and the limiter restores the rate,
//     window and slow start it had before the episode. The same needs enough answers
//     to have told the fall a limit would show, and a window before the cut of
//     paceNoiseAnswers answers or more;
//   - if the share is the same (paceSameZ) as in the windows of the episode sent at
//     twice the rate or more, with answers enough to have told the fall a limit shows
//     when the rate halves (flatShare), it is the floor, and the episode ends as noise:
//     each cut shrinks the windows after it, so an episode that started on small
//     windows must be judged against all of them, not only the window before the cut;
//   - if the share fell but is still above the floor, or rose, or the rate sent did not
//     fall, the limiter cuts again, by half at most when the share neither fell nor rose
//     (flatCut), so that the windows do not shrink faster than they tell;
//   - if it is not clear yet, the window goes on, up to paceVerifyMax (paceMaxSpan for
//     a large excess that did not rise and that a limit would not give); then a mild
//     excess (a share under paceMildShare before the cut) is noise, one back within
//     noise of the floor was a limit, and otherwise the limiter cuts again, so that
//     this window, bigger, judges the next cut; a share back within noise of the
//     floor but far above what a limit would refuse (the floor was too low) is noise.
//
// No share above maxFloor by more than sampling noise is noise (floorLike).
//
// A limit's bucket that runs out (the minute of allowance an upstream starts with, spent
// at many times the limit) turns most requests into 429s at once, in the middle of a
// window: the window's share and its ok rate mix the requests the bucket let through
// before with those after. When a window's 429s crowd together (their share among the
// requests sent from the first to the last of them is above their share of the window's
// sends up to the last of them by more than sampling noise), what got through among those requests (through) is what the limit
// lets through: the limiter cuts to it, and a limit's share at a lower rate is judged
// against it (throughLow, its lower bound). Random 429s spread over the whole window.
// A noise verdict whose restored rate meets such crowded 429s in the next window was
// wrong: the floor goes back to what it was.
//
// A floor can be wrong, a limit taken for noise once: noise refuses the same share at
// any rate, so a window whose share is far under the floor (floorLowZ standard
// deviations) proves it wrong, and the floor drops to that share at once. (A limit's
// bucket, refilled while the rate was cut, lets the first window after a cut through
// above the limit, so its share can look flat as the rate falls: a floor of 27% in front
// of a 100 req/s limit, with windows at 14% after it, 3.2 deviations under it, kept a run
// at 14% 429s when it took 5.)
//
// A window is judged a grace period after its last send (twice the latency of answers,
// plus a little), so that its slow answers are in: 429s often come back much faster
// than answers, and a window cut at its last answer would hold the 429s of its last
// requests and not their answers. A window where 429s are a quarter of the requests sent
// or more, far above the floor, is a storm, judged at once: 429s that come back fast
// cost little to send, so a client that waits sends them by the thousand. Shares are of
// the requests sent, so that a storm's, judged before its slow answers are in, is not
// too high. A storm after a cut is caught at its first 429s, a share picked for being
// high: it cuts again at once only if its share rose from the window before the cut, or
// if that window had too few answers to compare with and the storm has enough;
// otherwise it is judged again when its answers have doubled.
//
// The zero value is ready to use. Not safe for concurrent use: limiter guards it.
type pace struct {
	cur tally // the window being filled
	// sealed is the window waiting out its grace period, when pending.
	sealed  tally
	pending bool
	latency float64 // moving average of the seconds an answer takes
	floor   float64 // the share of 429s that is noise
	// verifying is set during an episode: from a cut until a window's verdict on it.
	verifying bool
	before    judged // the window before the last cut
	cuts      int    // cuts in this episode
	// episode holds the windows of this episode judged after its first cut, for flat.
	episode []judged
	// flatCut reports that the last cut was for a share that neither fell nor rose
	// after the cut before, and that may be a noise floor: the limiter cuts it gently.
	flatCut bool
	saved   saved // the limiter's state before the episode, kept by the limiter
	// restored is set by a noise verdict until the next window is judged, and
	// floorBefore is the floor before it: if the rate restored meets 429s that crowd
	// together (a bucket run out), the verdict was wrong and the floor goes back.
	restored    bool
	floorBefore float64
	// sends is a ring of the send times (Unix nanoseconds) of the last len(sends)
	// requests, and nsends counts every send: a window's 429s are set against the
	// requests sent while they came (through).
	sends  [1024]int64
	nsends int
	// slowStart is set by the limiter while its window grows in slow start (before any
	// cut, or after an episode that began there ended as noise): a storm may wait (waits).
	slowStart bool
}

// saved is the limiter's state that an episode found to be noise gives back.
type saved struct {
	rate, window float64
	cut          bool
}

// tally counts the answers to the requests of one window: those sent from since (zero:
// any time) until end (zero: not sealed yet).
type tally struct {
	since, end time.Time
	start      time.Time // the window's first answer
	// first and last are the earliest and latest send counted; firstThrottled and
	// lastThrottled those of its 429s.
	first, last                   time.Time
	firstThrottled, lastThrottled time.Time
	answers                       int
	throttled                     int
	// sends counts the requests sent in the window, answered or not.
	sends int
	// judged0 is how many answers the window had when a storm was last judged not clear.
	judged0 int
}

func (w *tally) holds(sent time.Time) bool {
	return !sent.Before(w.since) && (w.end.IsZero() || sent.Before(w.end))
}

func (w *tally) count(now, sent time.Time, throttled bool) {
	if w.answers == 0 {
		w.start, w.first, w.last = now, sent, sent
	}
	if sent.Before(w.first) {
		w.first = sent
	}
	if sent.After(w.last) {
		w.last = sent
	}
	w.answers++
	if throttled {
		if w.throttled == 0 || sent.Before(w.firstThrottled) {
			w.firstThrottled = sent
		}
		if w.throttled == 0 || sent.After(w.lastThrottled) {
			w.lastThrottled = sent
		}
		w.throttled++
	}
}

// Pace window and verdict tuning.
const (
	paceAnswers      = 300 // a window closes after this many answers and paceSpan,
	paceSpan         = 100 * time.Millisecond
	paceVerifySpan   = 500 * time.Millisecond
	paceFew          = 20 // or this many and paceSlowSpan,
	paceSlowSpan     = time.Second
	paceMaxSpan      = 5 * time.Second // or after this long, whatever it holds;
	paceStorm429s    = 8               // a window with this many 429s, stormSends of its sends or more, is a storm
	stormSends       = 0.25
	paceZ            = 3     // standard deviations of sampling noise tolerated above the floor
	paceSlack        = 0.005 // and this share more
	floorLowZ        = 3.5   // standard deviations of sampling noise below the floor that prove it wrong
	paceFallZ        = 2.5   // standard deviations of sampling noise a share must fall by to have fallen
	paceSameZ        = 1     // and may fall by to have stayed the same
	paceSameShare    = 0.03
	paceVerifyMax    = 1500 * time.Millisecond // the longest a window after a cut goes on for a clear verdict
	paceMildShare    = 0.1                     // a share below this that neither fell nor stayed is noise
	paceFlatZ        = 3                       // standard deviations of sampling noise a limit's fall is at least, to judge a share flat
	paceNoiseAnswers = 50                      // the fewest answers in the window before a cut that may tell noise from a limit
	floorWeight      = 0.01                    // of a normal window's share in the floor
	minFloorStdDev   = 0.005
	maxFloor         = 0.6  // the highest noise floor
	stormZ           = 6    // standard deviations above the floor a storm's 429s are at least
	rateFell         = 0.95 // a rate sent that fell to this fraction or less fell
	latencyWeight    = 0.01 // of an answer's latency in the moving average
	paceGrace        = 20 * time.Millisecond
	paceMaxGrace     = 30 * time.Second
)

// verdict is what a closed window says.
type verdict int

const (
	verdictNone  verdict = iota // the window is still open, or its share is normal
	verdictCut                  // too many 429s: cut the rate (again)
	verdictLimit                // the cut brought the share back to the floor: it stands
	verdictNoise                // the share did not fall with the rate: undo the episode
)

// judged is what a judged window measured.
type judged struct {
	answers int
	share   float64 // of its answers that were 429s
	// sent and ok are the requests sent and answered (not 429) per second over the
	// window's sends (0: too few to tell).
	sent, ok float64
	// through is the requests per second not answered 429 among those sent from the
	// window's first 429 to its last, when hasThrough: what a limit lets through once
	// its bucket is empty. ok, over the whole window, counts the requests its bucket let
	// through before.
	through    float64
	hasThrough bool
	// throughLow is through less paceFallZ standard deviations of its count's sampling
	// noise: the most that surely got through, for the share a limit would give.
	throughLow float64
}

func (w *tally) judged() judged {
	// Of the sends, not the answers: a storm is judged before the slow answers are in.
	j := judged{answers: w.answers, share: float64(w.throttled) / float64(max(w.answers, w.sends, 1))}
	if span := w.last.Sub(w.first).Seconds(); span > 0 && w.answers > 1 {
		j.sent = float64(w.answers-1) / span
		j.ok = j.sent * (1 - j.share)
	}
	return j
}

// measure is what w measured, through included.
func (p *pace) measure(w *tally) judged {
	j := w.judged()
	if w.throttled < paceStorm429s {
		return j
	}
	span := w.lastThrottled.Sub(w.firstThrottled).Seconds()
	n, ok := p.sentBetween(w.firstThrottled, w.lastThrottled)
	// Only 429s that crowd together, many more of the sends among them than of the
	// window's sends up to the last of them, are a bucket run out: a relay's random 429s
	// spread over all of it. (Not of all its sends: those after, still in flight when a
	// storm is judged, would make any 429s look crowded.) The first 429 is one by
	// choice: it is not counted.
	upTo, _ := p.sentBetween(w.first, w.lastThrottled)
	if share, all := float64(w.throttled-1)/float64(max(n-1, 1)), float64(w.throttled)/float64(max(upTo, 1)); span > 0 && ok &&
		share-all > paceFallZ*math.Sqrt(math.Max(all*(1-all), minFloorStdDev)/float64(max(n-1, 1))) {
		passed := float64(max(0, n-w.throttled))
		j.through, j.hasThrough = passed/span, true
		j.throughLow = math.Max(0, passed-paceFallZ*math.Sqrt(passed)) / span
	}
	return j
}

// sentBetween counts the requests sent from a to b, both included, if the send times
// kept reach back to a.
func (p *pace) sentBetween(a, b time.Time) (int, bool) {
	from, to := a.UnixNano(), b.UnixNano()
	reached := p.nsends <= len(p.sends)
	n := 0
	for _, t := range p.sends[:min(p.nsends, len(p.sends))] {
		if t < from {
			reached = true
		} else if t <= to {
			n++
		}
	}
	return n, reached
}

// add counts an answer to a request sent at sent that came at now, a 429 when throttled,
// and returns the verdict of the window it closes, if it closes one, with what the
// window measured.
func (p *pace) add(now, sent time.Time, throttled bool) (verdict, judged) {
	if !throttled {
		p.latency += latencyWeight * (now.Sub(sent).Seconds() - p.latency)
	}
	switch {
	case p.pending && p.sealed.holds(sent):
		p.sealed.count(now, sent, throttled)
	case p.cur.holds(sent):
		p.cur.count(now, sent, throttled)
	}
	if p.storm(&p.cur) && !p.waits(&p.cur) {
		return p.stormed(now)
	}
	if p.pending {
		if now.Sub(p.sealed.end) < p.grace() {
			return verdictNone, judged{}
		}
		p.pending = false
		return p.judge(now, &p.sealed)
	}
	if p.cur.full(now, p.verifying) {
		p.sealed, p.pending = p.cur, true
		p.sealed.end = now
		p.cur = tally{since: now}
	}
	return verdictNone, judged{}
}

// stormed gives the verdict of the window being filled, a storm: no need to wait for
// the slow answers, the 429s alone are too many.
func (p *pace) stormed(now time.Time) (verdict, judged) {
	w := p.cur
	if p.pending && p.verifying {
		w.merge(&p.sealed) // the same rate: the verdict on the cut needs all of it
	}
	p.pending, p.cur = false, tally{since: now}
	if p.verifying {
		// A storm is caught at its first 429s, a share picked for being high: after a
		// cut, only a share that rose from the window before tells at once. A window
		// before with too few answers to compare with is replaced by this one as soon
		// as it has enough.
		j := p.measure(&w)
		_, _, rose, _ := p.compare(j)
		switch {
		case !rose && p.before.answers < paceNoiseAnswers && w.answers >= min(paceNoiseAnswers, max(paceFew, 2*p.before.answers)):
			return p.cut(now, j), j
		case !rose && now.Sub(w.start) < paceVerifyMax:
			p.cur = w
			p.cur.judged0 = w.answers // judged again when its answers have doubled
			return verdictNone, judged{}
		}
	}
	return p.judge(now, &w)
}

// waits reports that a storm in w, in slow start outside an episode, waits for more
// answers, up to paceNoiseAnswers (429s included): its share may be a relay's noise floor
// (floorLike), its 429s do not crowd (a limit's bucket run out), and what got through is
// too little for a window after a cut to hold paceNoiseAnswers answers in paceVerifySpan.
// At a latency of 200 ms, 429s that come back in a millisecond make a storm of the first
// windows of slow start, a dozen answers that got ~40/s through: cut then, to ~30/s, no
// window after it held enough answers to tell noise from a limit against it, so each
// cut again, down to 1/s. With paceNoiseAnswers before the cut, a window after it can
// (limitShare). A limit that slow start meets at that rate crowds its 429s, or refuses
// more than a floor can be, and is cut at once; at a short latency, slow start gets
// enough through before the first storm, and nothing changes.
func (p *pace) waits(w *tally) bool {
	if !p.slowStart || p.verifying || w.answers >= paceNoiseAnswers {
		return false
	}
	j := p.measure(w)
	return floorLike(j.share, max(w.answers, w.sends)) && !j.hasThrough && j.ok*paceVerifySpan.Seconds() < paceNoiseAnswers
}

// grace is how long after a window's last send its answers are waited for.
func (p *pace) grace() time.Duration {
	return min(time.Duration(2*p.latency*float64(time.Second))+paceGrace, paceMaxGrace)
}

// judge gives a sealed window's verdict.
func (p *pace) judge(now time.Time, w *tally) (verdict, judged) {
	j := p.measure(w)
	if w.answers == 0 {
		return verdictNone, j
	}
	if p.restored && !p.verifying && j.hasThrough {
		p.floor = math.Min(p.floor, p.floorBefore) // the rate restored ran a bucket out
	}
	p.restored = false
	if j.share < p.lowest(w.answers) {
		p.floor = j.share // noise does not fall with the rate: the floor was wrong
	}
	normal := j.share <= p.threshold(w.answers)
	if !p.verifying {
		if normal {
			p.floor = math.Min(maxFloor, p.floor+floorWeight*(j.share-p.floor))
			return verdictNone, j
		}
		p.verifying, p.cuts, p.episode = true, 0, p.episode[:0]
		return p.cut(now, j), j
	}
	return p.verify(now, w, j, normal), j
}

// verify gives the verdict on the last cut of a window sent after it, that measured j,
// normal when its share is within noise of the floor.
func (p *pace) verify(now time.Time, w *tally, j judged, normal bool) verdict {
	fell, same, rose, up := p.compare(j)
	switch {
	case normal && fell && p.floor >= paceMildShare && p.before.share-p.floor < paceMildShare:
		// Back to a high floor from a mild excess: a window picked for being high among
		// a relay's many random 429s, not a limit (a limit crept up to shows a larger
		// excess the next time, as the rate grows back).
		return p.noise(j)
	case normal && fell:
		p.verifying = false
		return verdictLimit
	case same && j.sent > 0 && j.sent <= rateFell*p.before.sent && p.notLimit(j) && floorLike(j.share, j.answers):
		return p.noise(j) // the rate fell, the share did not
	case p.flatShare(j):
		return verdictNoise
	case !fell && !same && !rose:
		if wait := now.Sub(w.start); wait < paceVerifyMax || wait < paceMaxSpan && !normal && !up && p.before.share >= paceMildShare && p.notLimit(j) && j.answers < 2*p.before.answers {
			// Neither fallen nor the same yet: keep counting. A large excess that did not
			// rise and that a limit would not give at this rate may count for longer,
			// while more answers here still tell more (not when the window before the
			// cut, smaller, is what leaves it unclear).
			p.cur.merge(w)
			p.cur.judged0 = w.answers // a storm in it is judged again when they have doubled
			return verdictNone
		}
		// Still not clear: the window that started the episode was picked for being
		// high, so a mild excess that does not clearly fall is taken for noise; a large
		// one still above the floor is cut again, so that this window, bigger, judges
		// the next; one back within noise of a floor that is too low (a share far above
		// what a limit would refuse at this rate, and that may be a floor) is noise; and
		// one back within noise of the floor otherwise was a limit.
		switch {
		case p.before.share < paceMildShare:
			return p.noise(j)
		case !normal:
			return p.cut(now, j)
		case p.notLimit(j) && floorLike(j.share, j.answers):
			return p.noise(j)
		}
		p.verifying = false
		return verdictLimit
	default: // fallen but still above the floor, risen, or a cut that did not lower the rate
		return p.cut(now, j)
	}
}

// noise ends an episode as noise: the floor becomes the share of the two windows.
func (p *pace) noise(j judged) verdict {
	pooled := (p.before.share*float64(p.before.answers) + j.share*float64(j.answers)) / float64(p.before.answers+j.answers)
	p.setNoiseFloor(pooled)
	return verdictNoise
}

// setNoiseFloor ends an episode as noise with the floor at share (at most maxFloor).
func (p *pace) setNoiseFloor(share float64) {
	p.verifying, p.restored, p.floorBefore = false, true, p.floor
	p.floor = math.Min(maxFloor, share)
}

// compare tells whether the share of 429s in j fell from the window before the last cut
// by more than sampling noise (paceFallZ standard deviations of the difference), or
// stayed the same (within paceSameZ of them); it may be neither yet.
func (p *pace) compare(j judged) (fell, same, rose, up bool) {
	b := p.before
	n1, n2 := float64(b.answers), float64(j.answers)
	pooled := (b.share*n1 + j.share*n2) / (n1 + n2)
	sd := math.Sqrt(math.Max(pooled*(1-pooled), minFloorStdDev) * (1/n1 + 1/n2))
	// The same needs enough answers to have told a halving, or a fall of paceSameShare,
	// or the fall to what a limit would refuse at this rate.
	fall := max(b.share/2, paceSameShare)
	if limit, ok := p.limitShare(j); ok {
		fall = max(fall, b.share-limit)
	}
	fell, rose = b.share-j.share > paceFallZ*sd, j.share-b.share > paceFallZ*sd
	same = math.Abs(b.share-j.share) <= paceSameZ*sd && paceFallZ*sd <= fall
	return fell, same, rose, j.share-b.share > paceSameZ*sd
}

// notLimit tells whether the share of 429s in j, sent at a lower rate than the window
// before the last cut, is above what a limit would refuse by more than sampling noise
// (paceFallZ standard deviations). A limit lets the same requests per second through at
// any rate above it, so at the lower rate it refuses 1 - ok/sent of them, none under it.
func (p *pace) notLimit(j judged) bool {
	limit, ok := p.limitShare(j)
	if !ok {
		return false
	}
	sd := math.Sqrt(math.Max(limit*(1-limit), minFloorStdDev) / float64(j.answers))
	return j.share-limit > paceFallZ*sd
}

// limitShare is the share of 429s a limit would give j: 1 - ok/sent for the requests
// per second that got through in the window before the last cut, if that window has
// enough answers to tell.
func (p *pace) limitShare(j judged) (float64, bool) {
	if p.before.answers < paceNoiseAnswers || j.sent <= 0 {
		return 0, false
	}
	return math.Max(0, 1-p.before.passed()/j.sent), true
}

// passed is the requests per second j measured getting through, at most: throughLow
// when it has it, since ok counts what a bucket let through before its 429s began.
func (j judged) passed() float64 {
	if j.hasThrough {
		return math.Min(j.ok, j.throughLow)
	}
	return j.ok
}

// flatShare ends the episode as noise if the share of 429s in j, sent at half the rate
// or less of windows judged earlier in the episode (after its first cut, which was
// picked for being high), is the same as theirs (within paceSameZ standard deviations),
// with answers enough to have told the fall a limit would show (paceFlatZ standard
// deviations of it). A limit's share falls as the rate does: from s at a rate to 1 - 2(1
// - s) at half of it, or to the floor f, a fall of min(s - f, 1 - s). A share that does
// not fall when the rate halves is the floor, whether it is a relay's noise or the noise
// under a limit that both rates are below, so the floor becomes the share of j, or of the
// windows compared if lower. This is what keeps an episode whose first windows were too
// small to compare with from cutting the rate again and again: each cut shrinks the
// windows after it.
func (p *pace) flatShare(j judged) bool {
	if j.sent <= 0 || j.answers == 0 {
		return false
	}
	var a, b group
	b.add(j)
	for _, w := range p.episode {
		if w.sent >= 2*j.sent {
			a.add(w)
		}
	}
	share, flat := p.flat(a, b)
	if flat {
		p.setNoiseFloor(share)
	}
	return flat
}

// group pools the answers of windows.
type group struct{ answers, throttled float64 }

func (g *group) add(j judged) {
	g.answers += float64(j.answers)
	g.throttled += j.share * float64(j.answers)
}

// flat tells whether b, sent at half the rate of a or less, has the same share of 429s,
// with answers enough to have told a limit's fall, and if so what the floor is.
func (p *pace) flat(a, b group) (float64, bool) {
	if a.answers == 0 || b.answers == 0 {
		return 0, false
	}
	sa, sb := a.throttled/a.answers, b.throttled/b.answers
	pooled := (a.throttled + b.throttled) / (a.answers + b.answers)
	sd := math.Sqrt(math.Max(pooled*(1-pooled), minFloorStdDev) * (1/a.answers + 1/b.answers))
	fall := math.Min(sa-p.floor, 1-sa)
	if math.Abs(sa-sb) > paceSameZ*sd || paceFlatZ*sd > fall || !floorLike(sb, int(b.answers)) {
		return 0, false
	}
	// The floor errs low: too high, it would hide a limit under it.
	return math.Min(sb, pooled), true
}

// floorLike tells whether a share of 429s among n answers may be a noise floor: it is not
// above maxFloor by more than sampling noise (paceFallZ standard deviations). A share
// above it is a limit's: a limit's bucket, refilled while the rate was cut, lets a
// short window at any rate through a little more than the limit, which makes its share
// look flat as the rate falls.
func floorLike(share float64, n int) bool {
	return share-maxFloor <= paceFallZ*math.Sqrt(maxFloor*(1-maxFloor)/float64(max(n, 1)))
}

// merge adds the counts of w, an earlier window of the same rate, to w's.
func (w *tally) merge(o *tally) {
	if w.answers == 0 {
		w.start, w.first, w.last = o.start, o.first, o.last
	}
	w.since = o.since
	w.start = minTime(w.start, o.start)
	w.first = minTime(w.first, o.first)
	w.last = maxTime(w.last, o.last)
	switch {
	case o.throttled == 0:
	case w.throttled == 0:
		w.firstThrottled, w.lastThrottled = o.firstThrottled, o.lastThrottled
	default:
		w.firstThrottled = minTime(w.firstThrottled, o.firstThrottled)
		w.lastThrottled = maxTime(w.lastThrottled, o.lastThrottled)
	}
	w.answers += o.answers
	w.throttled += o.throttled
	w.sends += o.sends
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// A window after a cut spans at least paceVerifySpan: an upstream's bucket refills while
// the rate is cut and the dispatcher paused, and lets the first requests after through.
func (w *tally) full(now time.Time, verifying bool) bool {
	span := now.Sub(w.start)
	switch {
	case w.answers == 0:
		return false
	case verifying && span < paceVerifySpan:
		return false
	}
	return w.answers >= paceAnswers && span >= paceSpan ||
		w.answers >= paceFew && span >= paceSlowSpan ||
		span >= paceMaxSpan
}

// storm reports whether the 429s alone are paceStorm429s and stormSends of the requests
// sent or more, and stormZ standard deviations above the noise floor: far above any
// noise. Sends, not answers: 429s often come back at once and answers only after the
// latency, so among the first answers of a window 429s are over-represented. The test
// against the floor is what keeps a relay that refuses 10% at random from passing for a
// storm: 8 429s among the first 30 sends of a window come by the dozen in a long run.
func (p *pace) storm(w *tally) bool {
	n := float64(max(w.sends, w.answers))
	k := float64(w.throttled)
	f := p.floor
	return w.throttled >= paceStorm429s && k >= stormSends*n && w.answers >= 2*w.judged0 &&
		k-n*f > stormZ*math.Sqrt(n*math.Max(f, minFloorStdDev)*(1-f))
}

// sent counts a request sent at sent.
func (p *pace) sent(sent time.Time) {
	p.sends[p.nsends%len(p.sends)] = sent.UnixNano()
	p.nsends++
	if p.cur.holds(sent) {
		p.cur.sends++
	}
}

// threshold is the highest 429 share of a window of n answers that is within sampling
// noise of the floor.
func (p *pace) threshold(n int) float64 {
	f := p.floor
	return f + paceZ*math.Sqrt(math.Max(f, minFloorStdDev)*(1-f)/float64(n)) + paceSlack
}

// lowest is the lowest 429 share of a window of n answers that is within sampling noise
// of the floor.
func (p *pace) lowest(n int) float64 {
	f := p.floor
	return f - floorLowZ*math.Sqrt(math.Max(f, minFloorStdDev)*(1-f)/float64(n))
}

// cut records a cut at now for a window that measured j: the next window counts only
// requests sent from now.
func (p *pace) cut(now time.Time, j judged) verdict {
	p.flatCut = false
	if p.cuts > 0 {
		p.episode = append(p.episode, j)
		fell, _, rose, _ := p.compare(j)
		p.flatCut = !fell && !rose && floorLike(j.share, j.answers)
	}
	p.before = j
	p.cuts++
	p.cur = tally{since: now}
	return verdictCut
}
