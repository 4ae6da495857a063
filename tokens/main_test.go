package tokens_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any leaves a goroutine running (the concurrent
// counting tests start some).
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
