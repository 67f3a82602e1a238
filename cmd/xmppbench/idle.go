package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// idleReport is the result of -mode idle.
type idleReport struct {
	header
	N           int            `json:"n"`
	Opened      int64          `json:"opened"`
	Concurrency int            `json:"concurrency"`
	Ramp        float64        `json:"ramp_per_s,omitempty"`
	OpenElapsed float64        `json:"open_s"`
	OpenRate    float64        `json:"open_per_s"`
	Latency     LatencySummary `json:"login_latency"`
	SettleTime  float64        `json:"settle_s"`
	Settled     bool           `json:"settled"`
	RSSBefore   int64          `json:"server_rss_before_kib"`
	RSSAfter    int64          `json:"server_rss_after_kib"`
	RSSHold     int64          `json:"server_rss_hold_kib"`
	PerSession  float64        `json:"kib_per_session"`
	Hold        float64        `json:"hold_s"`
	Dropped     int64          `json:"dropped"`
	ServerCPU   float64        `json:"server_cpu_open_s"`
	ServerCore  int            `json:"server_core"`
	ServerOther *float64       `json:"server_core_others_pct,omitempty"`
	ClientRSS   int64          `json:"client_rss_kib"`
}

func (r *idleReport) head() *header { return &r.header }

func (r *idleReport) text(w io.Writer) {
	fmt.Fprintf(w, "  sessions:     %d open of %d (concurrency %d), in %.2fs = %.1f/s\n",
		r.Opened, r.N, r.Concurrency, r.OpenElapsed, r.OpenRate)
	l := r.Latency
	fmt.Fprintf(w, "  login ms:     p50 %.3f  p90 %.3f  p99 %.3f  max %.3f\n", l.P50, l.P90, l.P99, l.Max)
	fmt.Fprintf(w, "  server CPU:   %.2fs while opening%s; quiet after %.1fs (settled %v)\n",
		r.ServerCPU, othersText(r.ServerCore, r.ServerOther), r.SettleTime, r.Settled)
	fmt.Fprintf(w, "  server VmRSS: %d KiB before, %d KiB with sessions, %d KiB after %.0fs hold\n",
		r.RSSBefore, r.RSSAfter, r.RSSHold, r.Hold)
	fmt.Fprintf(w, "  per session:  %.1f KiB\n", r.PerSession)
	fmt.Fprintf(w, "  dropped:      %d sessions closed by the server\n", r.Dropped)
	fmt.Fprintf(w, "  xmppbench:    VmRSS %d KiB with the sessions open\n", r.ClientRSS)
}

// runIdle opens -n sessions (login, bind, initial presence), waits until
// the server is quiet, reads its VmRSS before and after to work out the
// memory cost of one session, then keeps the sessions open for -hold and
// reports any the server closed.
func runIdle(ctx context.Context, o *options, c *clientConfig, errs *errorLog) (report, error) {
	srv := serverStats{pid: o.PID, errs: errs}
	rss0, err := procRSS(o.PID)
	if err != nil {
		return nil, err
	}
	cpu0 := srv.cpu()
	core := srv.core()
	core0 := core.sample()

	var (
		mu       sync.Mutex
		sessions = make([]*session, 0, o.N)
		next     atomic.Int64
		wg       sync.WaitGroup
		readers  sync.WaitGroup
		closing  atomic.Bool
		dropped  atomic.Int64
		traffic  atomic.Int64 // stanzas received, to detect quiescence
		hists    = make([]Histogram, o.Concurrency)
	)
	start := time.Now()
	p := pacer{t0: start, rate: o.Ramp}
	for w := 0; w < o.Concurrency; w++ {
		wg.Add(1)
		go func(h *Histogram) {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= o.N || p.wait(ctx, i) != nil {
					return
				}
				t0 := time.Now()
				s, err := c.login(ctx, o.userName(o.First+i), true)
				if err != nil {
					if ctx.Err() == nil {
						errs.add("login", err)
					}
					continue
				}
				h.Record(time.Since(t0))
				mu.Lock()
				sessions = append(sessions, s)
				mu.Unlock()
				readers.Add(1)
				go func() {
					defer readers.Done()
					err := s.readLoop(func([]byte) { traffic.Add(1) })
					if !closing.Load() {
						dropped.Add(1)
						errs.add("dropped", err)
					}
				}()
			}
		}(&hists[w])
	}
	wg.Wait()
	openElapsed := time.Since(start)
	cpuOpen := srv.cpu() - cpu0

	r := &idleReport{
		N:           o.N,
		Opened:      int64(len(sessions)),
		Concurrency: o.Concurrency,
		Ramp:        o.Ramp,
		OpenElapsed: round3(openElapsed.Seconds()),
		OpenRate:    round1(float64(len(sessions)) / openElapsed.Seconds()),
		RSSBefore:   rss0,
		Hold:        round3(o.Hold.Seconds()),
		ServerCPU:   round3(cpuOpen.Seconds()),
		ServerCore:  core.core,
		ServerOther: core.othersPct(core0, core.sample()),
	}
	var all Histogram
	for i := range hists {
		all.Merge(&hists[i])
	}
	r.Latency = all.Summary()

	if ctx.Err() == nil {
		t0 := time.Now()
		r.Settled = settle(ctx, srv, &traffic, o.Settle)
		r.SettleTime = round1(time.Since(t0).Seconds())
	}
	r.RSSAfter = srv.rss()
	r.ClientRSS, _ = procRSS(os.Getpid())
	if r.Opened > 0 && r.RSSAfter > 0 {
		r.PerSession = round1(float64(r.RSSAfter-r.RSSBefore) / float64(r.Opened))
	}
	sleepCtx(ctx, o.Hold)
	r.RSSHold = srv.rss()
	r.Dropped = dropped.Load()

	closing.Store(true)
	closeAll(sessions, o.Concurrency)
	readers.Wait()
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("xmppbench: idle: %w", err)
	}
	return r, nil
}

// settle waits until the server has used under 2% of a core and sent the
// clients nothing for a whole second (presence broadcasts, roster loads
// and garbage collection after the logins are over), or until max. It
// reports whether the server became quiet.
func settle(ctx context.Context, srv serverStats, traffic *atomic.Int64, max time.Duration) bool {
	const (
		step  = 250 * time.Millisecond
		quiet = time.Second
		busy  = quiet / 50
	)
	deadline := time.Now().Add(max)
	lastCPU, lastRx := srv.cpu(), traffic.Load()
	since := time.Now()
	for time.Now().Before(deadline) {
		sleepCtx(ctx, step)
		if ctx.Err() != nil {
			return false
		}
		cpu, rx := srv.cpu(), traffic.Load()
		if rx != lastRx || time.Since(since) >= quiet && cpu-lastCPU > busy {
			lastCPU, lastRx, since = cpu, rx, time.Now()
			continue
		}
		if time.Since(since) >= quiet {
			return true
		}
	}
	return false
}

// closeAll closes sessions with a few goroutines: closing tens of
// thousands of TLS sessions one by one takes long enough to matter.
func closeAll(sessions []*session, workers int) {
	var wg sync.WaitGroup
	var next atomic.Int64
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(sessions) {
					return
				}
				sessions[i].close()
			}
		}()
	}
	wg.Wait()
}
