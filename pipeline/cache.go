package pipeline

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
)

// Cache keeps upstream answers by the content of their requests, so that a request sent
// before is answered without being sent again. Keys are made by CacheKey. sqlite.Store
// implements it. Implementations must be safe for concurrent use.
type Cache interface {
	// GetCached returns the answer bodies held for the keys it has; keys it lacks are
	// absent from the map.
	GetCached(ctx context.Context, keys []string) (map[string][]byte, error)
	// PutCached stores answer bodies by key, replacing any held.
	PutCached(ctx context.Context, entries map[string][]byte) error
}

// CacheKey is the content address of a request: the SHA-256, in hex, of the upstream's
// base URL, the endpoint and the body, exactly as sent. Two requests with the same key
// get the same answer from the cache.
func CacheKey(baseURL, endpoint string, body []byte) string {
	sum := cacheSum(baseURL, endpoint, body)
	return hex.EncodeToString(sum[:])
}

// cacheSum is CacheKey before hex.
func cacheSum(baseURL, endpoint string, body []byte) (sum [sha256.Size]byte) {
	h := sha256.New()
	h.Write([]byte(baseURL))
	h.Write([]byte{0})
	h.Write([]byte(endpoint))
	h.Write([]byte{0})
	h.Write(body)
	h.Sum(sum[:0])
	return sum
}
