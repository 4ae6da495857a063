package tokens

import (
	"hash/maphash"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/tiktoken-go/tokenizer"

	"github.com/sluice-llm/sluice/internal/modelname"
)

// Names of the encodings a [Codec] can have.
const (
	O200kBase  = "o200k_base"
	Cl100kBase = "cl100k_base"
)

// cacheMinLen is the length in bytes from which Count remembers the counts of whole
// strings.
const cacheMinLen = 256

// Codec counts tokens with one encoding. It is a small value, safe for concurrent use;
// copies share the same encoding. The zero Codec counts with o200k_base.
type Codec struct {
	enc *encoding
}

// Name is the encoding's name, O200kBase or Cl100kBase.
func (c Codec) Name() string { return c.encoding().name }

// Count returns the number of tokens in text.
func (c Codec) Count(text string) int {
	if text == "" {
		return 0
	}
	e := c.encoding()
	if len(text) < cacheMinLen {
		return e.count(text)
	}
	e.codec() // builds the caches
	return e.cache.count(text, e.count)
}

// Truncate returns the prefix of text made of its first n tokens, and the number of
// tokens in that prefix: text itself and its count when it has at most n tokens. The
// prefix never splits a character: when the n-th token ends inside one (some characters
// take several tokens), the character is left out and the prefix may count fewer than n
// tokens.
func (c Codec) Truncate(text string, n int) (string, int) {
	if n <= 0 || text == "" {
		return "", 0
	}
	e := c.encoding()
	if isPlainASCII(text) {
		return e.truncateASCII(text, n)
	}
	// Long text goes to the tokenizer in pieces (see countText), and only the piece in
	// which the cut falls is encoded.
	total := 0
	for start := 0; ; {
		rest := text[start:]
		if len(rest) <= maxTextLen {
			prefix, got := e.truncateText(rest, n-total)
			return text[:start+len(prefix)], total + got
		}
		piece := rest[:cutText(rest, maxTextLen)]
		if m := e.countSlow(piece); total+m <= n {
			total += m
			start += len(piece)
			continue
		}
		prefix, got := e.truncateText(piece, n-total)
		return text[:start+len(prefix)], total + got
	}
}

// truncateText is Truncate for text of at most maxTextLen bytes that is not plain ASCII.
func (e *encoding) truncateText(text string, n int) (string, int) {
	_, pieces, _ := e.codec().Encode(text)
	if len(pieces) <= n {
		return text, len(pieces)
	}
	// For valid UTF-8 the pieces are the bytes of text, in order; the tokenizer reads
	// invalid UTF-8 as U+FFFD, so then the sum is only close and the prefix is recounted.
	end := 0
	for _, p := range pieces[:n] {
		end += len(p)
	}
	exact := utf8.ValidString(text)
	end = min(end, len(text))
	for end > 0 && end < len(text) && !utf8.RuneStart(text[end]) {
		end--
		exact = false
	}
	if !exact {
		return text[:end], e.count(text[:end])
	}
	return text[:end], n
}

// truncateASCII is Truncate for plain ASCII text: whole pre-tokens are counted from the
// cache, and only the pre-token (or, in a pre-token longer than maxRunLen, the piece of
// maxRunLen bytes) in which the cut falls is encoded.
func (e *encoding) truncateASCII(text string, n int) (string, int) {
	e.codec()
	total := 0
	for i := 0; i < len(text); {
		j := nextPreToken(text, i, e.o200k)
		for i < j {
			end := j
			if end-i > maxRunLen {
				end = i + maxRunLen
			}
			k := e.pieces.count(text[i:end], e.countSlow)
			if total+k > n {
				_, pieces, _ := e.c.Encode(text[i:end])
				cut := i
				for _, p := range pieces[:n-total] {
					cut += len(p)
				}
				return text[:cut], n
			}
			total += k
			i = end
		}
	}
	return text, total
}

func (c Codec) encoding() *encoding {
	if c.enc == nil {
		return o200k
	}
	return c.enc
}

// encoding is one tokenizer vocabulary, built on first use.
type encoding struct {
	name   string
	o200k  bool // which regular expression splits pre-tokens
	once   sync.Once
	c      tokenizer.Codec
	cache  countCache // counts of long strings
	pieces pieceCache // counts of ASCII pre-tokens
}

var (
	o200k  = &encoding{name: O200kBase, o200k: true}
	cl100k = &encoding{name: Cl100kBase}
)

func (e *encoding) codec() tokenizer.Codec {
	e.once.Do(func() {
		c, err := tokenizer.Get(tokenizer.Encoding(e.name))
		if err != nil { // both names are compiled into the tokenizer module
			panic("tokens: " + e.name + ": " + err.Error())
		}
		e.c = c
		e.cache.init()
		e.pieces.init()
	})
	return e.c
}

// count counts text: plain ASCII text pre-token by pre-token, other text with the
// tokenizer; very long pre-tokens and texts in pieces (see countRun and countText).
func (e *encoding) count(text string) int {
	e.codec() // builds the piece cache too
	if !isPlainASCII(text) {
		return e.countText(text)
	}
	n := 0
	for i := 0; i < len(text); {
		j := nextPreToken(text, i, e.o200k)
		n += e.countRun(text[i:j])
		i = j
	}
	return n
}

// countSlow counts text with the tokenizer.
func (e *encoding) countSlow(text string) int {
	// The tokenizer only fails in its strict UTF-8 mode, which is never set here: invalid
	// UTF-8 is counted as the bytes it is.
	n, _ := e.codec().Count(text)
	return n
}

// ForModel returns the codec for a model name. It understands dated snapshots
// ("gpt-4o-mini-2024-07-18"), fine-tuned names ("ft:gpt-3.5-turbo-0125:org::id"), provider
// prefixes ("openai/gpt-4o", "azure/gpt-4o"), surrounding spaces and any letter case. cl100k_base is used for gpt-4 (but not
// gpt-4o, gpt-4.1 or gpt-4.5), gpt-3.5, text-embedding-3-*, text-embedding-ada-002,
// davinci-002 and babbage-002; o200k_base for everything else: OpenAI's current models and
// every model it does not know, including other providers' (an approximation for them).
func ForModel(model string) Codec {
	if isCl100k(model) {
		return Codec{cl100k}
	}
	return Codec{o200k}
}

// cl100kPrefixes are the model families counted with cl100k_base. A prefix ending in a
// letter or digit matches the name itself or the name followed by "-" (a variant or a
// snapshot), so that "gpt-4" does not match "gpt-4o" or "gpt-4.1".
var cl100kPrefixes = []string{
	"gpt-4", "gpt-3.5", "gpt-35", "text-embedding-3", "text-embedding-ada-002",
	"davinci-002", "babbage-002",
}

func isCl100k(model string) bool { return modelname.InFamily(model, cl100kPrefixes) }

// openAIFamilies are the families of OpenAI's models, whose tokenizers sluice has.
var openAIFamilies = []string{"gpt-", "chatgpt-", "o1", "o3", "o4", "text-embedding-", "davinci-", "babbage-", "codex-", "computer-use-"}

// Exact reports whether ForModel(model) is the model's own tokenizer, so that its counts
// are exact rather than an approximation: true for OpenAI's models (a dated snapshot, a
// fine-tune, or behind a provider prefix such as "openai/" or "azure/"), false for other
// providers' and for names that hide the model (an Azure deployment name without the
// model's). Model names are read as package pricing reads them (internal/modelname).
func Exact(model string) bool { return modelname.InFamily(model, openAIFamilies) }

// countCache remembers the token counts of long strings, keyed by a 64-bit hash and the
// string's length. It has a fixed number of entries per shard; a full shard is emptied.
type countCache struct {
	seed   maphash.Seed
	shards [cacheShards]cacheShard
}

const (
	cacheShards   = 16
	cacheShardLen = 256
)

type cacheShard struct {
	mu sync.Mutex
	m  map[uint64]cacheEntry
}

type cacheEntry struct {
	len, count int
}

func (c *countCache) init() {
	c.seed = maphash.MakeSeed()
	for i := range c.shards {
		c.shards[i].m = make(map[uint64]cacheEntry, cacheShardLen)
	}
}

func (c *countCache) count(text string, count func(string) int) int {
	h := maphash.String(c.seed, text)
	sh := &c.shards[h%cacheShards]
	sh.mu.Lock()
	e, ok := sh.m[h]
	sh.mu.Unlock()
	if ok && e.len == len(text) {
		return e.count
	}
	n := count(text)
	sh.mu.Lock()
	if len(sh.m) >= cacheShardLen {
		clear(sh.m)
	}
	sh.m[h] = cacheEntry{len: len(text), count: n}
	sh.mu.Unlock()
	return n
}

// pieceCache remembers the counts of pre-tokens of up to maxPieceLen bytes. Each shard
// holds up to pieceShardLen, so the cache never holds more than about 6 MB; a full shard
// is emptied.
type pieceCache struct {
	seed   maphash.Seed
	shards [pieceShards]pieceShard
}

const (
	pieceShards   = 16
	pieceShardLen = 4096
	maxPieceLen   = 48
)

type pieceShard struct {
	mu sync.RWMutex
	m  map[string]int32
}

func (c *pieceCache) init() {
	c.seed = maphash.MakeSeed()
	for i := range c.shards {
		c.shards[i].m = make(map[string]int32, pieceShardLen)
	}
}

func (c *pieceCache) count(piece string, count func(string) int) int {
	if len(piece) > maxPieceLen {
		return count(piece)
	}
	sh := &c.shards[maphash.String(c.seed, piece)%pieceShards]
	sh.mu.RLock()
	n, ok := sh.m[piece]
	sh.mu.RUnlock()
	if ok {
		return int(n)
	}
	k := count(piece)
	sh.mu.Lock()
	if len(sh.m) >= pieceShardLen {
		clear(sh.m)
	}
	sh.m[strings.Clone(piece)] = int32(k) // a piece of a text must not keep the text
	sh.mu.Unlock()
	return k
}
