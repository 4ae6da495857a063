package sim

import "net/http"

// drawRandom429 is the purpose of the draw that decides a random 429. It is far from the
// small purposes of faults.go, so that new purposes added there never collide with it.
const drawRandom429 uint64 = 0x429

// random429 reports whether the n-th request is one of the Config.Random429 share that an
// overloaded relay refuses at random. The draw is its own, independent of the fault draw
// and of the load: the share is the same at any rate.
func (s *Server) random429(n uint64) bool {
	return s.cfg.Random429 > 0 && s.draw(n, drawRandom429) < s.cfg.Random429
}

// overloaded is the 429 of an overloaded relay: no retry-after, no x-ratelimit-* headers,
// nothing taken from the hidden limits.
func (s *Server) overloaded(n uint64) reply {
	s.stats.throttled.Add(1)
	return s.errorReply(n, &apiError{
		status:  http.StatusTooManyRequests,
		message: "The server is overloaded. Please retry your request later.",
		typ:     "rate_limit_error",
		code:    "rate_limit_exceeded",
	})
}
