package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/sluice-llm/sluice/sim"
)

// registerSimFlags adds the simulator's knobs to fs.
func registerSimFlags(fs *pflag.FlagSet, c *sim.Config) {
	fs.Int64Var(&c.Seed, "seed", c.Seed, "seed for faults and jitter")
	fs.DurationVar(&c.TTFT, "ttft", c.TTFT, "time to first token")
	fs.DurationVar(&c.PerToken, "per-token", c.PerToken, "time per output token")
	fs.Float64Var(&c.Jitter, "jitter", c.Jitter, "latency jitter, a fraction (0.2 = ±20%)")
	fs.Int64Var(&c.RPM, "sim-rpm", c.RPM, "hidden requests-per-minute limit (0: none)")
	fs.Int64Var(&c.TPM, "sim-tpm", c.TPM, "hidden tokens-per-minute limit (0: none)")
	fs.BoolVar(&c.NoLimitHeaders, "no-limit-headers", c.NoLimitHeaders, "send no x-ratelimit-* headers")
	fs.BoolVar(&c.NoRetryAfter, "no-retry-after", c.NoRetryAfter, "send no retry-after on 429")
	fs.Float64Var(&c.Error5xx, "error-rate", c.Error5xx, "fraction of requests answered 5xx")
	fs.Float64Var(&c.Reset, "reset-rate", c.Reset, "fraction of connections reset")
	fs.Float64Var(&c.Hang, "hang-rate", c.Hang, "fraction of requests that hang")
	fs.Float64Var(&c.Truncate, "truncate-rate", c.Truncate, "fraction of 200s with a truncated body")
	fs.Float64Var(&c.Stall, "stall-rate", c.Stall, "fraction of streams that stop halfway, the connection left open")
	fs.Float64Var(&c.Random429, "random-429-rate", c.Random429, "fraction of requests answered 429 at random, without retry-after or limit headers")
	fs.Float64Var(&c.Drop, "drop-rate", c.Drop, "fraction of 200s whose connection drops midway")
	fs.Int64Var(&c.TransientNotFound, "transient-404s", c.TransientNotFound, "answer this many requests 404 model_not_found after --404-after 200s")
	fs.Int64Var(&c.NotFoundAfter, "404-after", c.NotFoundAfter, "200s before the transient 404s")
	fs.BoolVar(&c.NoStreamUsage, "no-stream-usage", c.NoStreamUsage, "never send usage in streams, even when asked")
	fs.Float64Var(&c.ErrorIn200, "error-in-200-rate", c.ErrorIn200, "fraction of requests answered 200 with an error object as the body, as some gateways do")
	fs.Float64Var(&c.StreamErrorAfterRole, "stream-error-rate", c.StreamErrorAfterRole, "fraction of streamed chat requests answered with the role chunk, then an error event, as relays pass on a provider's failure")
	fs.Float64Var(&c.CloseAfterAnswer, "close-after-answer-rate", c.CloseAfterAnswer, "fraction of answers after which the keep-alive connection is closed at once, without Connection: close")
	fs.BoolVar(&c.RejectStreamOptions, "reject-stream-options", c.RejectStreamOptions, "answer 400 to requests with stream_options")
}

func newSimCmd(e *env) *cobra.Command {
	cfg := sim.Config{Seed: 1}
	var listen, keyEnv string
	cmd := &cobra.Command{
		Use:   "sim",
		Short: "Serve the built-in OpenAI-compatible simulator",
		Long: `Sim serves an OpenAI-compatible API (chat completions, also streamed, completions,
embeddings, responses, models) with a latency model, hidden rate limits answered with
OpenAI-style headers and 429s, and seeded fault injection: for trying sluice, or anything
else, without a provider.`,
		Example: `  sluice sim --listen 127.0.0.1:8080 --sim-rpm 6000 --sim-tpm 1000000 --ttft 200ms
  sluice run requests.jsonl --base-url http://127.0.0.1:8080/v1`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if keyEnv != "" {
				cfg.APIKey = e.getenv(keyEnv)
				if cfg.APIKey == "" {
					return usageError("--require-key-env %s: the variable is empty", keyEnv)
				}
			}
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return usageError("listen on %s: %v", listen, err)
			}
			s := sim.New(cfg)
			defer s.Close()
			srv := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
			fmt.Fprintf(e.stderr, "simulator listening on http://%s/v1 (Ctrl-C stops it)\n", ln.Addr())
			errc := make(chan error, 1)
			go func() { errc <- srv.Serve(ln) }()
			in := newInterrupt(cmd.Context(), e, 5*time.Second, drainSelf, "")
			defer in.stop()
			select {
			case err := <-errc:
				return err
			case <-in.draining:
			case <-cmd.Context().Done():
			}
			s.Close() // release hung requests so that shutdown does not wait for them
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := srv.Shutdown(ctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
				return err
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:8080", "address to listen on")
	cmd.Flags().StringVar(&keyEnv, "require-key-env", "", "require clients to send the key held in this environment variable")
	registerSimFlags(cmd.Flags(), &cfg)
	return cmd
}
