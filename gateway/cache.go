package gateway

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"net/http"
	"strconv"
	"time"
)

// cachePrefix namespaces the gateway's entries in the store's cache, which pipelines
// share: "gw1:" and the hex SHA-256 of the scope, the endpoint and the body.
const cachePrefix = "gw1:"

// cacheKey is the cache address of a request of key k: per key unless the cache is
// shared.
func (g *Gateway) cacheKey(k *clientKey, path string, body []byte) string {
	h := sha256.New()
	if !g.cfg.CacheShared {
		h.Write([]byte(k.Hash))
	}
	h.Write([]byte{0})
	h.Write([]byte(path))
	h.Write([]byte{0})
	h.Write(body)
	return cachePrefix + hex.EncodeToString(h.Sum(nil))
}

// cached returns the cached answer's body at key, if there is one within its TTL. An
// entry is its expiry (Unix nanoseconds, 8 bytes big-endian) and the answer's body.
func (g *Gateway) cached(ctx context.Context, key string) ([]byte, bool) {
	got, err := g.cfg.Cache.GetCached(ctx, []string{key})
	if err != nil {
		g.cfg.Logger.Warn("gateway: read cache", "err", err)
		return nil, false
	}
	entry, ok := got[key]
	if !ok || len(entry) < 8 || time.Unix(0, int64(binary.BigEndian.Uint64(entry))).Before(g.cfg.Now()) {
		return nil, false
	}
	return entry[8:], true
}

// writeCached answers with a cached body.
func writeCached(w http.ResponseWriter, body []byte) {
	h := w.Header()
	h["Content-Type"] = jsonType
	h["Content-Length"] = []string{strconv.Itoa(len(body))}
	h["X-Sluice-Cache"] = []string{"hit"}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

// putCached keeps an answer for CacheTTL. A failure is only logged: the answer was
// served.
func (g *Gateway) putCached(key string, body []byte) {
	entry := make([]byte, 8+len(body))
	binary.BigEndian.PutUint64(entry, uint64(g.cfg.Now().Add(g.cfg.CacheTTL).UnixNano()))
	copy(entry[8:], body)
	if err := g.cfg.Cache.PutCached(context.Background(), map[string][]byte{key: entry}); err != nil {
		g.cfg.Logger.Warn("gateway: write cache", "err", err)
	}
}
