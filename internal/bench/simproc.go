package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"
)

// simProcess is a simulator served over loopback TCP by a process of its own: "sluice
// sim", so that the client measured does not share its process (its CPU time, its GC)
// with the server.
type simProcess struct {
	base    string // its /v1 URL
	cmd     *exec.Cmd
	drained chan struct{} // closed when the process's stderr is read to its end
}

// simListening is how "sluice sim" announces its address on stderr.
const simListening = "simulator listening on "

// startSimProcess runs "exe sim" on a free port of 127.0.0.1 with a zero-latency,
// fault-free simulator and waits until it listens.
func startSimProcess(ctx context.Context, exe string, args ...string) (*simProcess, error) {
	if exe == "" {
		return nil, errors.New("start the simulator: no sluice binary to run (Options.Exe)")
	}
	cmd := exec.CommandContext(ctx, exe, append([]string{"sim", "--listen", "127.0.0.1:0"}, args...)...)
	cmd.Stdout = io.Discard
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start the simulator: %w", err)
	}
	p := &simProcess{cmd: cmd, drained: make(chan struct{})}
	sc := bufio.NewScanner(stderr)
	var said []string
	for p.base == "" && sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, simListening); ok {
			p.base, _, _ = strings.Cut(rest, " ")
			break
		}
		said = append(said, line)
	}
	go func() {
		defer close(p.drained)
		_, _ = io.Copy(io.Discard, stderr) // until the process exits
	}()
	if p.base == "" {
		p.stop()
		return nil, fmt.Errorf("the simulator did not start: %s", strings.Join(said, "; "))
	}
	return p, nil
}

// stop interrupts the simulator (it shuts down gracefully) and waits for it to exit,
// killing it if it has not after a few seconds.
func (p *simProcess) stop() {
	if err := p.cmd.Process.Signal(os.Interrupt); err != nil {
		_ = p.cmd.Process.Kill() // no interrupt signal here (Windows)
	}
	select {
	case <-p.drained:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.drained
	}
	_ = p.cmd.Wait() // interrupted or killed: its exit status says nothing
}
