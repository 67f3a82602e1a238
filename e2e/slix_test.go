package e2e

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// pythonPath is Debian's interpreter: python3-slixmpp is installed for it,
// not for a pyenv or venv python that may come first on PATH.
const pythonPath = "/usr/bin/python3"

const (
	// doTimeout bounds one command; the driver's own IQ timeout is 10 s.
	doTimeout = 15 * time.Second
	// sessionTimeout bounds WaitSession; the driver gives up after 20 s.
	sessionTimeout = 25 * time.Second
	// exitGrace is how long a driver may take to disconnect on cleanup.
	exitGrace = 5 * time.Second
)

var (
	slixOnce sync.Once
	slixErr  error
)

// requireSlixmpp skips (or under OWNCHAT_REQUIRE_E2E=1 fails) t when
// Debian's python3-slixmpp cannot be imported.
func requireSlixmpp(t *testing.T) {
	t.Helper()
	slixOnce.Do(func() {
		out, err := exec.Command(pythonPath, "-c", "import slixmpp").CombinedOutput()
		if err != nil {
			slixErr = fmt.Errorf("%s -c 'import slixmpp': %v %s (apt-get install python3-slixmpp)",
				pythonPath, err, strings.TrimSpace(string(out)))
		}
	})
	if slixErr != nil {
		requireE2E(t, "%v", slixErr)
	}
}

// SlixOptions describes one client. Host defaults to 127.0.0.1.
type SlixOptions struct {
	JID       string // bare or full JID
	Password  string
	Host      string
	Port      int
	Mech      string // "", "PLAIN", "SCRAM-SHA-1" or "SCRAM-SHA-256"; "" lets slixmpp choose
	DirectTLS bool   // XEP-0368 TLS on connect instead of STARTTLS
	NoVerify  bool   // accept any certificate (self-signed test certs)
	CAFile    string // verify the server certificate against this PEM file
	Resource  string
	// Plugins are extra slixmpp plugins loaded before connecting, for
	// features negotiated with the stream ("xep_0198", "xep_0352").
	Plugins []string
}

// Event is one JSON line from the driver; values have encoding/json's
// types (string, float64, bool, nil, []any, map[string]any).
type Event map[string]any

// Name is the event kind: "session_start", "message", "result", ...
func (e Event) Name() string { return e.Str("event") }

// Str returns e[key] if it is a string, else "".
func (e Event) Str(key string) string {
	s, _ := e[key].(string)
	return s
}

// Map returns e[key] if it is an object (a result's "data", an "error").
func (e Event) Map(key string) Event {
	m, _ := e[key].(map[string]any)
	return m
}

// Strings returns e[key] as a []string, skipping non-string elements.
func (e Event) Strings(key string) []string {
	l, _ := e[key].([]any)
	out := make([]string, 0, len(l))
	for _, v := range l {
		if s, ok := v.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// CommandError is a result with ok:false: an XMPP stanza error (RFC 6120
// §8.3) or, with Type "driver", a failure of the driver itself
// (timeout, not-connected, bad-request, unknown-command, internal-error).
type CommandError struct {
	Cmd       string
	Type      string
	Condition string
	Text      string
}

func (e *CommandError) Error() string {
	s := fmt.Sprintf("e2e: %s: %s/%s", e.Cmd, e.Type, e.Condition)
	if e.Text != "" {
		s += ": " + e.Text
	}
	return s
}

// Slix is one running slixmpp client process.
type Slix struct {
	Opts SlixOptions
	JID  string // bound full JID, set by WaitSession

	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stderr *syncBuffer
	nextID atomic.Int64
	done   chan struct{} // closed when stdout has ended and the process exited

	writeMu sync.Mutex

	mu         sync.Mutex
	queue      []Event               // asynchronous events not yet taken by Expect
	wake       chan struct{}         // closed and replaced when queue grows
	pending    map[string]chan Event // results awaited by Do, by command id
	transcript strings.Builder       // commands and events, logged on failure
}

// StartSlix spawns testdata/slixdriver.py for opts. The client connects at
// once; call WaitSession before relying on the session. On cleanup stdin is
// closed (the driver disconnects), the process is killed after a grace
// period, and if the test failed the transcript and the driver's stderr
// (slixmpp's debug log with the XML traffic) are logged.
func StartSlix(t *testing.T, opts SlixOptions) *Slix {
	t.Helper()
	requireSlixmpp(t)
	driver, err := filepath.Abs(filepath.Join("testdata", "slixdriver.py"))
	if err != nil {
		t.Fatalf("e2e: %v", err)
	}
	if opts.Host == "" {
		opts.Host = "127.0.0.1"
	}
	args := []string{"-u", driver, "--debug",
		"--jid", opts.JID, "--password", opts.Password,
		"--host", opts.Host, "--port", strconv.Itoa(opts.Port)}
	if opts.Mech != "" {
		args = append(args, "--mech", opts.Mech)
	}
	if opts.DirectTLS {
		args = append(args, "--direct-tls")
	}
	if opts.NoVerify {
		args = append(args, "--no-verify")
	}
	if opts.CAFile != "" {
		args = append(args, "--ca", opts.CAFile)
	}
	for _, p := range opts.Plugins {
		args = append(args, "--plugin", p)
	}
	if opts.Resource != "" {
		args = append(args, "--resource", opts.Resource)
	}

	s := &Slix{
		Opts:    opts,
		stderr:  &syncBuffer{},
		done:    make(chan struct{}),
		wake:    make(chan struct{}),
		pending: make(map[string]chan Event),
	}
	s.cmd = exec.Command(pythonPath, args...)
	s.cmd.Stderr = s.stderr
	if s.stdin, err = s.cmd.StdinPipe(); err != nil {
		t.Fatalf("e2e: %v", err)
	}
	stdout, err := s.cmd.StdoutPipe()
	if err != nil {
		t.Fatalf("e2e: %v", err)
	}
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("e2e: start slixmpp driver: %v", err)
	}
	go s.read(stdout)
	t.Cleanup(func() { s.close(t) })
	return s
}

// read routes each stdout line: results to the waiting Do, all else to
// the queue for Expect.
func (s *Slix) read(stdout io.Reader) {
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 64*1024), 16<<20) // a raw stanza may be large
	for sc.Scan() {
		line := sc.Bytes()
		var ev Event
		if err := json.Unmarshal(line, &ev); err != nil {
			ev = Event{"event": "bad_line", "line": string(line)}
		}
		s.mu.Lock()
		fmt.Fprintf(&s.transcript, "< %s\n", line)
		if ev.Name() == "result" {
			if ch, ok := s.pending[ev.Str("id")]; ok {
				ch <- ev // buffered; one result per id
				delete(s.pending, ev.Str("id"))
				s.mu.Unlock()
				continue
			}
		}
		s.queue = append(s.queue, ev)
		close(s.wake)
		s.wake = make(chan struct{})
		s.mu.Unlock()
	}
	s.cmd.Wait() // after all reads, as os/exec requires
	close(s.done)
}

func (s *Slix) close(t *testing.T) {
	s.stdin.Close() // the driver disconnects and exits on EOF
	select {
	case <-s.done:
	case <-time.After(exitGrace):
		s.cmd.Process.Kill()
		<-s.done
	}
	if t.Failed() {
		s.mu.Lock()
		tr := s.transcript.String()
		s.mu.Unlock()
		t.Logf("--- slixmpp %s transcript ---\n%s--- slixmpp %s stderr ---\n%s",
			s.Opts.JID, tr, s.Opts.JID, s.stderr.String())
	}
}

// Do sends cmd (which names the command under "cmd"; Do sets "id") and
// waits for its result. It returns the result event and, when the result
// has ok:false, a *CommandError; other errors mean no result came
// (errExited when the driver ended first).
func (s *Slix) Do(cmd map[string]any) (Event, error) {
	id := "c" + strconv.FormatInt(s.nextID.Add(1), 10)
	c := maps.Clone(cmd)
	c["id"] = id
	line, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("e2e: encode command: %w", err)
	}
	ch := make(chan Event, 1)
	s.mu.Lock()
	s.pending[id] = ch
	fmt.Fprintf(&s.transcript, "> %s\n", line)
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.pending, id)
		s.mu.Unlock()
	}()

	select {
	case <-s.done:
		return nil, errExited
	default:
	}
	s.writeMu.Lock()
	_, err = s.stdin.Write(append(line, '\n'))
	s.writeMu.Unlock()
	if err != nil {
		select {
		case <-s.done:
			return nil, errExited
		case <-time.After(time.Second): // the exit may not be seen yet
			return nil, fmt.Errorf("e2e: write command %s: %w", line, err)
		}
	}

	timeout := doTimeout
	if secs, ok := cmd["seconds"].(float64); ok && cmd["cmd"] == "wait" {
		timeout += time.Duration(secs * float64(time.Second))
	} else if secs, ok := cmd["seconds"].(int); ok && cmd["cmd"] == "wait" {
		timeout += time.Duration(secs) * time.Second
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case ev := <-ch:
		if ok, _ := ev["ok"].(bool); !ok {
			e := ev.Map("error")
			return ev, &CommandError{Cmd: fmt.Sprint(cmd["cmd"]), Type: e.Str("type"),
				Condition: e.Str("condition"), Text: e.Str("text")}
		}
		return ev, nil
	case <-s.done:
		return nil, errExited
	case <-timer.C:
		return nil, fmt.Errorf("e2e: %v: no result within %v", cmd["cmd"], timeout)
	}
}

// errExited is returned by Do when the driver process has ended.
var errExited = errors.New("e2e: slixmpp driver exited")

// MustDo is Do that fails the test on any error, returning the result's data.
func (s *Slix) MustDo(t *testing.T, cmd map[string]any) Event {
	t.Helper()
	ev, err := s.Do(cmd)
	if err != nil {
		t.Fatalf("%s: %v", s.Opts.JID, err)
	}
	return ev.Map("data")
}

// Expect waits up to timeout for the first queued or future event matching
// pred, removes it from the queue and returns it. Events that do not match
// stay queued, in order, for later Expects. It fails the test on timeout
// or when the driver exits without a match.
func (s *Slix) Expect(t *testing.T, pred func(Event) bool, timeout time.Duration) Event {
	t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	exited := false
	for {
		s.mu.Lock()
		for i, ev := range s.queue {
			if pred(ev) {
				s.queue = append(s.queue[:i], s.queue[i+1:]...)
				s.mu.Unlock()
				return ev
			}
		}
		wake := s.wake
		queued := len(s.queue)
		s.mu.Unlock()
		if exited {
			t.Fatalf("%s: driver exited without the expected event (%d unmatched queued)", s.Opts.JID, queued)
		}
		select {
		case <-wake:
		case <-s.done:
			exited = true // scan once more: the last events precede done
		case <-timer.C:
			t.Fatalf("%s: no expected event within %v (%d unmatched queued)", s.Opts.JID, timeout, queued)
		}
	}
}

// Never fails the test if an event matching pred is queued or arrives
// within d. Use it for "must not be delivered" checks.
func (s *Slix) Never(t *testing.T, pred func(Event) bool, d time.Duration) {
	t.Helper()
	deadline := time.After(d)
	for {
		s.mu.Lock()
		for _, ev := range s.queue {
			if pred(ev) {
				s.mu.Unlock()
				t.Fatalf("%s: unexpected event %v", s.Opts.JID, ev)
			}
		}
		wake := s.wake
		s.mu.Unlock()
		select {
		case <-wake:
		case <-s.done:
			return
		case <-deadline:
			return
		}
	}
}

// WaitSession waits for the session to start and returns the session_start
// event; an auth failure or disconnection fails the test. It sets s.JID.
func (s *Slix) WaitSession(t *testing.T) Event {
	t.Helper()
	ev := s.Expect(t, func(e Event) bool {
		switch e.Name() {
		case "session_start", "auth_failed", "connection_failed", "tls_failed", "stream_error", "disconnected":
			return true
		}
		return false
	}, sessionTimeout)
	if ev.Name() != "session_start" {
		t.Fatalf("%s: no session: %v", s.Opts.JID, ev)
	}
	s.JID = ev.Str("jid")
	return ev
}

// Is returns a predicate matching events named name whose string fields
// equal the given key/value pairs, e.g. Is("message", "from", jid, "body", "hi").
func Is(name string, kv ...string) func(Event) bool {
	if len(kv)%2 != 0 {
		panic("e2e: Is needs key/value pairs")
	}
	return func(e Event) bool {
		if e.Name() != name {
			return false
		}
		for i := 0; i < len(kv); i += 2 {
			if e.Str(kv[i]) != kv[i+1] {
				return false
			}
		}
		return true
	}
}

// TestSlixDriverConnectionRefused runs the driver against a closed port:
// it must report the failure, fail commands held for the session, and exit
// by itself. This needs no server, so CI always exercises the harness.
func TestSlixDriverConnectionRefused(t *testing.T) {
	s := StartSlix(t, SlixOptions{JID: "nobody@e2e.test", Password: "x", Port: FreePort(), NoVerify: true})
	// The ping is held for the session and fails with it, unless the
	// driver has already ended before reading it: then no result comes.
	_, err := s.Do(map[string]any{"cmd": "ping", "jid": "e2e.test"})
	var ce *CommandError
	if !errors.Is(err, errExited) && (!errors.As(err, &ce) || ce.Type != "driver" || ce.Condition != "not-connected") {
		t.Fatalf("ping before session: got %v, want driver/not-connected or errExited", err)
	}
	s.Expect(t, Is("connection_failed"), 10*time.Second)
	ev := s.Expect(t, Is("disconnected"), 10*time.Second)
	if !strings.Contains(ev.Str("reason"), "connection failed") {
		t.Errorf("disconnected reason = %q, want a connection failure", ev.Str("reason"))
	}
	select {
	case <-s.done:
	case <-time.After(exitGrace):
		t.Fatal("driver did not exit after disconnected")
	}
	if _, err := s.Do(map[string]any{"cmd": "wait", "seconds": 0}); !errors.Is(err, errExited) {
		t.Errorf("Do after exit: %v, want errExited", err)
	}
}
