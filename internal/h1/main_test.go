package h1

import (
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// The test servers' idle keep-alive connections.
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
	)
}
