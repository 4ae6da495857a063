package sim

import "time"

// fault is what fault injection decided for one request.
type fault int

const (
	faultNone fault = iota
	faultReset
	faultHang
	faultError5xx
	faultTruncate
	faultStall
)

// Purposes of the random draws made for one request; each draw is independent.
const (
	drawFault uint64 = iota + 1
	drawStatus
	drawJitter
)

// draw returns the uniform number in [0, 1) drawn for purpose by the n-th request. It is
// a hash of the seed, n and purpose, so the draws need no lock and the n-th request gets
// the same draws whatever the order in which concurrent requests arrived.
func (s *Server) draw(n, purpose uint64) float64 {
	h := mix(uint64(s.cfg.Seed) ^ mix(n^purpose<<56))
	return float64(h>>11) / (1 << 53)
}

// mix is SplitMix64's finalizer: a bijection of 64-bit words that spreads every input bit
// over every output bit.
func mix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

// fault decides the fault of the n-th request with one draw: the fractions are laid end to
// end in the order reset, hang, 5xx, truncate, stall, so they are exclusive and exact.
func (s *Server) fault(n uint64) fault {
	u := s.draw(n, drawFault)
	for _, f := range [...]struct {
		frac float64
		f    fault
	}{{s.cfg.Reset, faultReset}, {s.cfg.Hang, faultHang}, {s.cfg.Error5xx, faultError5xx}, {s.cfg.Truncate, faultTruncate}, {s.cfg.Stall, faultStall}} {
		if u < f.frac {
			return f.f
		}
		u -= f.frac
	}
	return faultNone
}

// errorStatus is the status of an injected 5xx: 500, 502 or 503.
func (s *Server) errorStatus(n uint64) int {
	return [...]int{500, 502, 503}[int(s.draw(n, drawStatus)*3)]
}

// latency is the time the n-th request takes to answer with tokens output tokens.
func (s *Server) latency(n uint64, tokens int64) time.Duration {
	d := s.cfg.TTFT + time.Duration(tokens)*s.cfg.PerToken
	return s.jitter(n, d)
}

// jitter varies d by the request's jitter draw.
func (s *Server) jitter(n uint64, d time.Duration) time.Duration {
	if s.cfg.Jitter == 0 || d == 0 {
		return d
	}
	f := 1 + s.cfg.Jitter*(2*s.draw(n, drawJitter)-1)
	return time.Duration(float64(d) * f)
}

// hashString is FNV-1a over s: the deterministic hash that derives answer lengths and
// embedding vectors from what a request says.
func hashString(seed uint64, s string) uint64 {
	h := uint64(14695981039346656037) ^ seed
	for i := range len(s) {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}
