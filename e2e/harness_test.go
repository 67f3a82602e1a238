// Package e2e proves ownChat with real XMPP clients: each client is a
// slixmpp process (testdata/slixdriver.py) driven over JSON lines, and the
// server is the xmppd binary built from ../cmd/xmppd and started from an
// inline TOML config.
//
// Tests skip when a dependency (python3-slixmpp, a peer server) is missing,
// unless OWNCHAT_REQUIRE_E2E=1 (set by ./test.sh under CI), in which case
// they fail: CI must never pass by skipping.
package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
)

// HealthzAddrKey is the dotted TOML key holding the address of the HTTP
// listener that serves /healthz (conf.Listen.HTTP). StartXmppd reads it from
// the config file so that a test states the address once, in the config.
var HealthzAddrKey = "listen.http"

const (
	healthzPoll    = 50 * time.Millisecond
	healthzTimeout = 20 * time.Second
	stopTimeout    = 15 * time.Second
)

// buildDir holds the xmppd binary built once per test binary; TestMain
// removes it.
var (
	buildOnce sync.Once
	buildDir  string
	buildBin  string
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// requireE2E skips the test because a dependency is missing, or fails it
// when OWNCHAT_REQUIRE_E2E=1 so that CI cannot pass by skipping.
func requireE2E(t *testing.T, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("OWNCHAT_REQUIRE_E2E") == "1" {
		t.Fatalf("e2e dependency missing (OWNCHAT_REQUIRE_E2E=1): %s", msg)
	}
	t.Skipf("e2e dependency missing: %s", msg)
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
// Another process may take it before the test binds it; on this loopback-only
// test machine that race is rare enough to accept.
func FreePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(fmt.Sprintf("e2e: free port: %v", err))
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// WriteConfig writes tomlText to xmppd.toml in a fresh temporary directory
// and returns its path.
func WriteConfig(t *testing.T, tomlText string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "xmppd.toml")
	if err := os.WriteFile(path, []byte(tomlText), 0o600); err != nil {
		t.Fatalf("e2e: write config: %v", err)
	}
	return path
}

// Xmppd is a running xmppd process started by StartXmppd.
type Xmppd struct {
	ConfigPath string
	HTTPAddr   string // host:port serving /healthz

	cmd     *exec.Cmd
	out     *syncBuffer // stdout and stderr
	exited  chan struct{}
	err     error // cmd.Wait result, valid after exited is closed
	stopped bool  // Stop or Kill was called: the exit is expected
}

// Output returns what xmppd has written to stdout and stderr so far.
func (x *Xmppd) Output() string { return x.out.String() }

// StartXmppd runs `xmppd serve -config configPath` and returns once
// /healthz answers 200. On cleanup the server gets SIGTERM and must exit 0
// within stopTimeout; its output is logged if the test failed.
func StartXmppd(t *testing.T, configPath string) *Xmppd {
	t.Helper()
	addr, err := healthzAddr(configPath)
	if err != nil {
		t.Fatalf("e2e: %v", err)
	}
	bin := xmppdBinary(t)

	x := &Xmppd{
		ConfigPath: configPath,
		HTTPAddr:   addr,
		out:        &syncBuffer{},
		exited:     make(chan struct{}),
	}
	x.cmd = exec.Command(bin, "serve", "-config", configPath)
	x.cmd.Stdout = x.out
	x.cmd.Stderr = x.out
	if err := x.cmd.Start(); err != nil {
		t.Fatalf("e2e: start xmppd: %v", err)
	}
	go func() {
		x.err = x.cmd.Wait()
		close(x.exited)
	}()
	t.Cleanup(func() { x.stop(t) })

	if err := x.waitHealthy(); err != nil {
		t.Fatalf("e2e: xmppd not healthy: %v\n--- xmppd output ---\n%s", err, x.Output())
	}
	return x
}

// waitHealthy polls /healthz until it answers 200, the process exits or
// healthzTimeout passes.
func (x *Xmppd) waitHealthy() error {
	url := "http://" + x.HTTPAddr + "/healthz"
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(healthzTimeout)
	var last error
	for time.Now().Before(deadline) {
		select {
		case <-x.exited:
			return fmt.Errorf("xmppd exited before it was healthy: %v", x.err)
		default:
		}
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("GET %s: %s", url, resp.Status)
		}
		last = err
		time.Sleep(healthzPoll)
	}
	return fmt.Errorf("no 200 from %s within %v: %v", url, healthzTimeout, last)
}

// Stop sends SIGTERM and waits for the exit, as an operator's restart
// would; it returns the exit error (nil for status 0). Use it, or Kill, to
// restart a server on the same config within one test: a later
// StartXmppd(t, x.ConfigPath) starts the next one.
func (x *Xmppd) Stop() error {
	x.stopped = true
	x.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-x.exited:
		return x.err
	case <-time.After(stopTimeout):
		x.cmd.Process.Kill()
		<-x.exited
		return fmt.Errorf("e2e: xmppd did not stop within %v of SIGTERM", stopTimeout)
	}
}

// Kill ends xmppd with SIGKILL, like a crash or power loss, and waits.
func (x *Xmppd) Kill() {
	x.stopped = true
	x.cmd.Process.Kill()
	<-x.exited
}

func (x *Xmppd) stop(t *testing.T) {
	select {
	case <-x.exited:
		if !x.stopped {
			t.Errorf("e2e: xmppd exited during the test: %v", x.err)
		}
	default:
		if err := x.Stop(); err != nil {
			t.Errorf("e2e: xmppd did not exit cleanly on SIGTERM: %v", err)
		}
	}
	out := x.Output()
	// A race-built server reports races on stderr and may still exit 0.
	if strings.Contains(out, "WARNING: DATA RACE") {
		t.Errorf("e2e: xmppd reported a data race")
	}
	if t.Failed() {
		t.Logf("--- xmppd output (%s) ---\n%s", x.ConfigPath, out)
	}
}

// xmppdBinary builds ../cmd/xmppd once per test binary, with -race when the
// tests themselves run with -race, so races in the server fail e2e tests.
func xmppdBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "ownchat-e2e-")
		if buildErr != nil {
			return
		}
		buildBin = filepath.Join(buildDir, "xmppd")
		args := []string{"build", "-o", buildBin}
		if raceEnabled() {
			args = append(args, "-race")
		}
		args = append(args, "../cmd/xmppd")
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		// go test puts its own go command first on PATH.
		out, err := exec.CommandContext(ctx, "go", args...).CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	})
	if buildErr != nil {
		t.Fatalf("e2e: build xmppd: %v", buildErr)
	}
	return buildBin
}

func raceEnabled() bool {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range bi.Settings {
		if s.Key == "-race" {
			return s.Value == "true"
		}
	}
	return false
}

// healthzAddr reads HealthzAddrKey from the TOML file. A bare ":port"
// means loopback.
func healthzAddr(configPath string) (string, error) {
	var doc map[string]any
	if _, err := toml.DecodeFile(configPath, &doc); err != nil {
		return "", fmt.Errorf("read config %s: %w", configPath, err)
	}
	var v any = doc
	for _, k := range strings.Split(HealthzAddrKey, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			v = nil
			break
		}
		v = m[k]
	}
	addr, ok := v.(string)
	if !ok || addr == "" {
		return "", fmt.Errorf("config %s: no string %q (the /healthz listener; see HealthzAddrKey)", configPath, HealthzAddrKey)
	}
	addr = strings.TrimPrefix(strings.TrimPrefix(addr, "http://"), "https://")
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("config %s: %s = %q: %w", configPath, HealthzAddrKey, addr, err)
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port), nil
}

// syncBuffer is a bytes.Buffer safe for a writer goroutine and a reader.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestHealthzAddr(t *testing.T) {
	tests := []struct {
		toml, want string
	}{
		{"[listen]\nhttp = \"127.0.0.1:8080\"\n", "127.0.0.1:8080"},
		{"[listen]\nhttp = \":8080\"\n", "127.0.0.1:8080"},
		{"[listen]\nhttp = \"0.0.0.0:8080\"\n", "127.0.0.1:8080"},
		{"[listen]\nhttp = \"http://[::1]:8080\"\n", "[::1]:8080"},
		{"[listen]\nc2s = \":5222\"\n", ""},
		{"listen = 3\n", ""},
		{"[listen]\nhttp = \"no-port\"\n", ""},
	}
	for _, tt := range tests {
		got, err := healthzAddr(WriteConfig(t, tt.toml))
		if tt.want == "" {
			if err == nil {
				t.Errorf("%q: got %q, want an error", tt.toml, got)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("%q: got %q, %v; want %q", tt.toml, got, err, tt.want)
		}
	}
}
