// Package ids makes random identifiers: job names, engine owners, pipeline run names.
// They come from crypto/rand, so that two processes never pick the same one by chance.
package ids

import (
	"crypto/rand"
	"encoding/hex"
)

// Hex returns n random bytes from crypto/rand as 2n lower-case hexadecimal digits.
// It is safe for concurrent use. crypto/rand.Read never fails on the platforms Go
// supports (it crashes the program rather than return an error), so neither does Hex.
func Hex(n int) string {
	b := make([]byte, max(n, 0))
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
