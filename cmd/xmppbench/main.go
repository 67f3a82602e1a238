// Command xmppbench is a load generator for XMPP client-to-server
// listeners. It speaks just enough XMPP over a raw socket (RFC 6120 stream,
// STARTTLS, SASL PLAIN, resource binding, RFC 6121 initial presence) to
// measure a server from the outside, so that ownChat's xmppd and other
// servers (ejabberd, Prosody) are measured by the same client. No XMPP
// library is used: the client must cost far less CPU than the server it
// measures, and it must not share code, and so bugs, with ours.
//
// Modes:
//
//	-mode login  full logins per second and their latency
//	-mode msg    one-to-one message throughput and delivery latency
//	-mode idle   server memory per open session
//
// -sm enables XEP-0198 stream management (msg and idle): throughput and
// memory with acknowledgements; -park (idle) then drops every connection
// without closing its stream and measures the sessions the server keeps
// for resumption.
//
// Every mode prints a human-readable summary; -json adds one JSON line
// with all figures for scripts (bench/compare.sh).
package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// options are the command-line flags.
type options struct {
	Addr     string
	Domain   string
	UserFmt  string
	Password string
	Resource string
	TLS      bool
	Insecure bool
	Curves   string
	First    int
	Mode     string
	Timeout  time.Duration
	Presence string
	Src      string
	JSON     bool
	PID      int
	Profile  string
	SM       bool

	// login and idle
	N           int
	Users       int
	Concurrency int
	Ramp        float64

	// msg
	Pairs    int
	Inflight int
	Duration time.Duration
	Warmup   time.Duration
	Drain    time.Duration
	Size     int

	// idle
	Hold   time.Duration
	Settle time.Duration
	Park   bool
	// ParkEach drops each connection right after its first ack instead
	// of all of them after the hold.
	ParkEach bool
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "archive-fill" {
		os.Exit(archiveFill(os.Args[2:], os.Stdout, os.Stderr)) // archivefill.go
	}
	o, err := parseFlags(os.Args[1:], os.Stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func parseFlags(args []string, errOut io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("xmppbench", flag.ContinueOnError)
	fs.SetOutput(errOut)
	fs.StringVar(&o.Addr, "addr", "127.0.0.1:5222", "server c2s `host:port`")
	fs.StringVar(&o.Domain, "domain", "example.com", "XMPP domain (stream 'to', TLS server name)")
	fs.StringVar(&o.UserFmt, "user", "user%d", "localpart `format`; %d is replaced by the user number")
	fs.StringVar(&o.Password, "password", "secret", "password of every user")
	fs.StringVar(&o.Resource, "resource", "bench", "resource requested at bind (the server may choose another)")
	fs.BoolVar(&o.TLS, "tls", true, "negotiate STARTTLS; false needs a server that allows plaintext auth")
	fs.BoolVar(&o.Insecure, "insecure", true, "do not verify the server certificate")
	fs.StringVar(&o.Curves, "curves", "X25519", "TLS key exchange: X25519, P256, or go (Go's default list, with the post-quantum X25519MLKEM768 hybrid)")
	fs.IntVar(&o.First, "first", 1, "number of the first user")
	fs.StringVar(&o.Mode, "mode", "login", "login, msg or idle")
	fs.DurationVar(&o.Timeout, "timeout", 30*time.Second, "limit for one login (dial to bind)")
	fs.StringVar(&o.Presence, "presence", "auto", "send initial presence after bind: true, false, or auto (login: false, msg and idle: true)")
	fs.StringVar(&o.Src, "src", "", "comma-separated local `IPs` to dial from, round robin (more ephemeral ports)")
	fs.BoolVar(&o.JSON, "json", false, "also print one JSON line with all figures")
	fs.StringVar(&o.Profile, "cpuprofile", "", "write a CPU profile of xmppbench itself to `file`")
	fs.BoolVar(&o.SM, "sm", false, "msg, idle: enable XEP-0198 stream management with resumption after bind, count stanzas and answer the server's ack requests")
	fs.IntVar(&o.PID, "pid", 0, "server process id: report its CPU time and VmRSS (required for idle)")
	fs.IntVar(&o.N, "n", 2000, "login: logins to perform; idle: sessions to open")
	fs.IntVar(&o.Users, "users", 0, "login: distinct users cycled through (0: n)")
	fs.IntVar(&o.Concurrency, "concurrency", 50, "login, idle: logins in progress at once")
	rampFlag := fs.String("ramp", "0", "idle, login: at most this many new logins per second, as `N` or N/s (0: no limit)")
	fs.IntVar(&o.Pairs, "pairs", 100, "msg: sender/receiver pairs")
	fs.IntVar(&o.Inflight, "inflight", 10, "msg: messages each sender may have unacknowledged by its receiver")
	fs.DurationVar(&o.Duration, "duration", 30*time.Second, "msg: measured sending time")
	fs.DurationVar(&o.Warmup, "warmup", 0, "msg: sending time before measuring starts")
	fs.DurationVar(&o.Drain, "drain", 5*time.Second, "msg: how long to wait for messages in flight at the end")
	fs.IntVar(&o.Size, "size", 100, "msg: body size in bytes")
	fs.DurationVar(&o.Hold, "hold", 10*time.Second, "idle: keep the sessions open this long after measuring")
	fs.DurationVar(&o.Settle, "settle", 30*time.Second, "idle: longest wait for the server to become quiet")
	fs.BoolVar(&o.Park, "park", false, "idle (needs -sm): after measuring, drop every connection without closing its stream and measure the server with the sessions parked for resumption")
	fs.BoolVar(&o.ParkEach, "park-each", false, "idle (needs -sm): like -park, but drop each connection as soon as it has answered the server's first ack request, so that only parked sessions remain and their own cost is measured")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("xmppbench: unexpected arguments %q", fs.Args())
	}
	r, err := parseRate(*rampFlag)
	if err != nil {
		return nil, err
	}
	o.Ramp = r
	switch o.Presence {
	case "auto", "true", "false":
	default:
		return nil, fmt.Errorf("xmppbench: -presence must be auto, true or false")
	}
	if strings.Count(o.UserFmt, "%d") != 1 || strings.Count(o.UserFmt, "%") != 1 {
		return nil, fmt.Errorf("xmppbench: -user must contain exactly one %%d")
	}
	switch o.Mode {
	case "login":
		if o.N < 1 || o.Concurrency < 1 {
			return nil, fmt.Errorf("xmppbench: -n and -concurrency must be positive")
		}
	case "msg":
		if o.Pairs < 1 || o.Inflight < 1 || o.Duration <= 0 {
			return nil, fmt.Errorf("xmppbench: -pairs, -inflight and -duration must be positive")
		}
		if o.Size < len(bodyMarker)+24 {
			o.Size = len(bodyMarker) + 24
		}
	case "idle":
		if o.N < 1 || o.Concurrency < 1 {
			return nil, fmt.Errorf("xmppbench: -n and -concurrency must be positive")
		}
		if o.PID <= 0 {
			return nil, fmt.Errorf("xmppbench: idle mode needs -pid of the server")
		}
	default:
		return nil, fmt.Errorf("xmppbench: unknown -mode %q (login, msg, idle)", o.Mode)
	}
	if o.SM && o.Mode == "login" {
		return nil, fmt.Errorf("xmppbench: -sm is for the msg and idle modes")
	}
	if (o.Park || o.ParkEach) && (o.Mode != "idle" || !o.SM) {
		return nil, fmt.Errorf("xmppbench: -park and -park-each need -mode idle and -sm")
	}
	if o.ParkEach {
		o.Park = true
	}
	return o, nil
}

// parseRate accepts "500", "500/s" or "0".
func parseRate(s string) (float64, error) {
	v, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(s), "/s"), 64)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("xmppbench: bad rate %q (want N or N/s)", s)
	}
	return v, nil
}

// userName returns the localpart of user number i.
func (o *options) userName(i int) string {
	return strings.Replace(o.UserFmt, "%d", strconv.Itoa(i), 1)
}

// sockets is the number of connections open at once in this mode.
func (o *options) sockets() int {
	switch o.Mode {
	case "msg":
		return 2 * o.Pairs
	case "idle":
		return o.N
	}
	return o.Concurrency
}

// presence resolves -presence for the current mode.
func (o *options) presence() bool {
	if o.Presence == "auto" {
		return o.Mode != "login"
	}
	return o.Presence == "true"
}

func (o *options) client() (*clientConfig, error) {
	c := &clientConfig{
		Addr:     o.Addr,
		Domain:   o.Domain,
		Password: o.Password,
		Resource: o.Resource,
		STARTTLS: o.TLS,
		SM:       o.SM,
		Timeout:  o.Timeout,
		TLS: &tls.Config{
			ServerName:         o.Domain,
			InsecureSkipVerify: o.Insecure,
			// No ClientSessionCache: every login pays a full handshake,
			// as a fresh client would.
		},
	}
	// One classical key exchange by default, so that every server does
	// the same work whatever its TLS library supports (OpenSSL 3.0 in
	// Debian 12 has no ML-KEM; Go would otherwise negotiate it with our
	// server), and the client does not pay for an unused ML-KEM key.
	switch strings.ToLower(o.Curves) {
	case "x25519":
		c.TLS.CurvePreferences = []tls.CurveID{tls.X25519}
	case "p256":
		c.TLS.CurvePreferences = []tls.CurveID{tls.CurveP256}
	case "go":
	default:
		return nil, fmt.Errorf("xmppbench: -curves must be X25519, P256 or go")
	}
	if o.Src != "" {
		for _, s := range strings.Split(o.Src, ",") {
			ip := net.ParseIP(strings.TrimSpace(s))
			if ip == nil {
				return nil, fmt.Errorf("xmppbench: -src: bad IP %q", s)
			}
			c.Sources = append(c.Sources, &net.TCPAddr{IP: ip})
		}
	}
	return c, nil
}

// header is the part of the JSON report common to all modes.
type header struct {
	Mode        string           `json:"mode"`
	Addr        string           `json:"addr"`
	TLS         bool             `json:"tls"`
	SM          bool             `json:"sm"`
	TLSInfo     string           `json:"tls_info,omitempty"`
	Start       string           `json:"start"`
	NoFile      uint64           `json:"nofile"`
	GOMAXPROCS  int              `json:"gomaxprocs"`
	ClientCPU   float64          `json:"client_cpu_s"`
	ClientCore  int              `json:"client_core"`
	ClientOther *float64         `json:"client_core_others_pct,omitempty"`
	Errors      int64            `json:"errors"`
	ErrorKinds  map[string]int64 `json:"error_kinds,omitempty"`
	FirstErrors []string         `json:"first_errors,omitempty"`
}

// report is what a mode returns: its JSON object and its summary text.
type report interface {
	head() *header
	text(w io.Writer)
}

func run(ctx context.Context, o *options, out io.Writer) error {
	nofile := raiseNoFile()
	if need := o.sockets() + 32; nofile < uint64(need) {
		fmt.Fprintf(os.Stderr, "xmppbench: warning: RLIMIT_NOFILE is %d but this run needs about %d descriptors\n", nofile, need)
	}
	c, err := o.client()
	if err != nil {
		return err
	}
	h := header{
		Mode:       o.Mode,
		Addr:       o.Addr,
		TLS:        o.TLS,
		SM:         o.SM,
		Start:      time.Now().UTC().Format(time.RFC3339),
		NoFile:     nofile,
		GOMAXPROCS: runtime.GOMAXPROCS(0),
	}
	if o.Profile != "" {
		f, err := os.Create(o.Profile)
		if err != nil {
			return fmt.Errorf("xmppbench: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("xmppbench: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	errs := newErrorLog()
	cpu0 := selfCPU()
	self := coreWatch{core: pinnedCPU(os.Getpid()), self: selfCPU}
	core0 := self.sample()
	var r report
	switch o.Mode {
	case "login":
		r, err = runLogin(ctx, o, c, errs)
	case "msg":
		r, err = runMsg(ctx, o, c, errs)
	case "idle":
		r, err = runIdle(ctx, o, c, errs)
	}
	if err != nil {
		return err
	}
	h.ClientCPU = round3((selfCPU() - cpu0).Seconds())
	h.ClientCore = self.core
	h.ClientOther = self.othersPct(core0, self.sample())
	if p := c.tlsInfo.Load(); p != nil {
		h.TLSInfo = *p
	}
	h.Errors, h.ErrorKinds, h.FirstErrors = errs.snapshot()
	*r.head() = h

	fmt.Fprintf(out, "xmppbench %s against %s (tls=%v, sm=%v)\n", o.Mode, o.Addr, o.TLS, o.SM)
	if h.TLSInfo != "" {
		fmt.Fprintf(out, "  tls:          %s\n", h.TLSInfo)
	}
	r.text(out)
	fmt.Fprintf(out, "  errors:       %d\n", h.Errors)
	kinds := make([]string, 0, len(h.ErrorKinds))
	for k := range h.ErrorKinds {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	for _, k := range kinds {
		fmt.Fprintf(out, "    %-20s %d\n", k, h.ErrorKinds[k])
	}
	for _, e := range h.FirstErrors {
		fmt.Fprintf(out, "    e.g. %s\n", e)
	}
	fmt.Fprintf(out, "  client:       %.2f CPU s%s (GOMAXPROCS %d, nofile %d)\n",
		h.ClientCPU, othersText(h.ClientCore, h.ClientOther), h.GOMAXPROCS, h.NoFile)
	if o.JSON {
		b, err := json.Marshal(r)
		if err != nil {
			return fmt.Errorf("xmppbench: json: %w", err)
		}
		fmt.Fprintf(out, "%s\n", b)
	}
	return nil
}

// errorLog counts errors by kind and keeps the first few messages, so a
// run with thousands of identical failures still says what went wrong.
type errorLog struct {
	mu    sync.Mutex
	total int64
	kinds map[string]int64
	first []string
}

const keepErrors = 5

func newErrorLog() *errorLog { return &errorLog{kinds: map[string]int64{}} }

// add records err under kind; a login failure is filed under its step.
func (e *errorLog) add(kind string, err error) {
	var le *loginError
	if errors.As(err, &le) {
		kind = kind + "/" + le.Step
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.total++
	e.kinds[kind]++
	if len(e.first) < keepErrors {
		e.first = append(e.first, kind+": "+err.Error())
	}
}

// count adds n errors of kind without keeping a message, for errors that
// are frequent and explain themselves (bounced messages).
func (e *errorLog) count(kind string, n int64) {
	if n == 0 {
		return
	}
	e.mu.Lock()
	e.total += n
	e.kinds[kind] += n
	e.mu.Unlock()
}

func (e *errorLog) snapshot() (int64, map[string]int64, []string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	k := make(map[string]int64, len(e.kinds))
	for n, v := range e.kinds {
		k[n] = v
	}
	return e.total, k, append([]string(nil), e.first...)
}

func round3(v float64) float64 {
	return float64(int64(v*1000+0.5)) / 1000
}

func round1(v float64) float64 {
	return float64(int64(v*10+0.5)) / 10
}

// pacer spaces starts at a fixed rate: start i may begin at t0 + i/rate.
// A zero rate never waits.
type pacer struct {
	t0   time.Time
	rate float64
}

func (p pacer) wait(ctx context.Context, i int) error {
	if p.rate <= 0 {
		return ctx.Err()
	}
	at := p.t0.Add(time.Duration(float64(i) / p.rate * float64(time.Second)))
	d := time.Until(at)
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// serverStats samples a server process's CPU time and memory; a zero pid
// samples nothing.
type serverStats struct {
	pid  int
	errs *errorLog
}

func (s serverStats) cpu() time.Duration {
	if s.pid <= 0 {
		return 0
	}
	d, _ := procCPU(s.pid)
	return d
}

// rss returns VmRSS in KiB, or 0 when there is no pid or the process has
// gone, which is then logged as a "server-gone" error.
func (s serverStats) rss() int64 {
	if s.pid <= 0 {
		return 0
	}
	v, err := procRSS(s.pid)
	if err != nil && s.errs != nil {
		s.errs.add("server-gone", err)
	}
	return v
}

// core returns a watch on the core the server is pinned to.
func (s serverStats) core() coreWatch {
	if s.pid <= 0 {
		return coreWatch{core: -1}
	}
	return coreWatch{core: pinnedCPU(s.pid), self: s.cpu}
}

// othersText describes the other work on a core for the summary.
func othersText(core int, pct *float64) string {
	if pct == nil {
		return ""
	}
	return fmt.Sprintf(", other processes took %.0f%% of its core %d", *pct, core)
}
