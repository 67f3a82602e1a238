package xmppd

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestMain fails the package when goroutines outlive the tests, as
// net/http's main_test.go does: every test shuts its server down, so a
// connection reader, flusher or accept loop still running afterwards is a
// leak.
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		if leaked := goroutineLeaks(); leaked != "" {
			fmt.Fprintf(os.Stderr, "xmppd: goroutines leaked by the tests:\n%s\n", leaked)
			code = 1
		}
	}
	os.Exit(code)
}

// goroutineLeaks waits up to 5s for the goroutines started by this
// module's code to end and otherwise returns their stacks.
func goroutineLeaks() string {
	var stacks []string
	for deadline := time.Now().Add(5 * time.Second); ; {
		if stacks = interestingGoroutines(); len(stacks) == 0 {
			return ""
		}
		if time.Now().After(deadline) {
			return strings.Join(stacks, "\n\n")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// interestingGoroutines returns the stacks that mention this module (our
// code running, or "created by" our code), except the one running TestMain.
func interestingGoroutines() []string {
	buf := make([]byte, 4<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if !strings.Contains(g, "github.com/ownchat/ownchat") || strings.Contains(g, "xmppd.TestMain(") {
			continue
		}
		out = append(out, g)
	}
	return out
}
