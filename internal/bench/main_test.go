package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"testing"

	"go.uber.org/goleak"

	"github.com/sluice-llm/sluice/sim"
)

// TestMain makes the test binary serve the simulator when run as "… sim --listen
// 127.0.0.1:0", as the sluice binary does, so that the scenarios that run the simulator
// in a process of its own can be tested with Options.Exe = os.Args[0].
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "sim" { // never run the tests from here
		if len(os.Args) != 4 || os.Args[2] != "--listen" {
			fmt.Fprintln(os.Stderr, "usage: sim --listen ADDR")
			os.Exit(2)
		}
		os.Exit(serveSim(os.Args[3]))
	}
	goleak.VerifyTestMain(m)
}

func serveSim(addr string) int {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	s := sim.New(sim.Config{Seed: 1})
	defer s.Close()
	srv := &http.Server{Handler: s}
	fmt.Fprintf(os.Stderr, "%shttp://%s/v1 (Ctrl-C stops it)\n", simListening, ln.Addr())
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	go func() {
		<-ctx.Done()
		_ = srv.Shutdown(context.Background())
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}
