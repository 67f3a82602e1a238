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

	// With -sm: sessions the server granted resumption (an SM-ID) and the
	// window it announced.
	Resumable    int64 `json:"sm_resumable,omitempty"`
	ResumeWindow int64 `json:"sm_resume_window_s,omitempty"`

	// With -park: the connections dropped after the hold, the server's
	// VmRSS once quiet again and after another hold, the KiB per parked
	// session, and a sample of parked sessions resumed to check that the
	// server really kept them.
	ParkEach        bool     `json:"park_each,omitempty"`
	Parked          int64    `json:"parked,omitempty"`
	ParkSettleTime  float64  `json:"park_settle_s,omitempty"`
	ParkSettled     bool     `json:"park_settled,omitempty"`
	RSSParked       int64    `json:"server_rss_parked_kib,omitempty"`
	RSSParkedHold   int64    `json:"server_rss_parked_hold_kib,omitempty"`
	PerParked       *float64 `json:"kib_per_parked_session,omitempty"`
	ResumeTried     int      `json:"resume_tried,omitempty"`
	Resumed         int      `json:"resumed,omitempty"`
	ResumeLatencyMs float64  `json:"resume_max_ms,omitempty"`
}

func (r *idleReport) head() *header { return &r.header }

func (r *idleReport) text(w io.Writer) {
	fmt.Fprintf(w, "  sessions:     %d open of %d (concurrency %d), in %.2fs = %.1f/s\n",
		r.Opened, r.N, r.Concurrency, r.OpenElapsed, r.OpenRate)
	l := r.Latency
	fmt.Fprintf(w, "  login ms:     p50 %.3f  p90 %.3f  p99 %.3f  max %.3f\n", l.P50, l.P90, l.P99, l.Max)
	if r.ParkEach {
		fmt.Fprintf(w, "  server CPU:   %.2fs while opening%s\n", r.ServerCPU, othersText(r.ServerCore, r.ServerOther))
	} else {
		fmt.Fprintf(w, "  server CPU:   %.2fs while opening%s; quiet after %.1fs (settled %v)\n",
			r.ServerCPU, othersText(r.ServerCore, r.ServerOther), r.SettleTime, r.Settled)
		fmt.Fprintf(w, "  server VmRSS: %d KiB before, %d KiB with sessions, %d KiB after %.0fs hold\n",
			r.RSSBefore, r.RSSAfter, r.RSSHold, r.Hold)
		fmt.Fprintf(w, "  per session:  %.1f KiB\n", r.PerSession)
	}
	if r.SM {
		fmt.Fprintf(w, "  sm:           %d of %d sessions resumable (window %d s)\n", r.Resumable, r.Opened, r.ResumeWindow)
	}
	fmt.Fprintf(w, "  dropped:      %d sessions closed by the server\n", r.Dropped)
	when := "with the sessions open"
	if r.ParkEach {
		when = "after dropping the connections"
	}
	fmt.Fprintf(w, "  xmppbench:    VmRSS %d KiB %s\n", r.ClientRSS, when)
	if r.PerParked != nil {
		how := "all after the hold"
		if r.ParkEach {
			how = "each after its first ack"
		}
		fmt.Fprintf(w, "  parked:       %d connections dropped without </stream:stream> (%s); quiet after %.1fs (settled %v)\n",
			r.Parked, how, r.ParkSettleTime, r.ParkSettled)
		fmt.Fprintf(w, "  server VmRSS: %d KiB before, %d KiB parked, %d KiB after %.0fs hold\n", r.RSSBefore, r.RSSParked, r.RSSParkedHold, r.Hold)
		fmt.Fprintf(w, "  per parked:   %.1f KiB (VmRSS parked - before, per parked session)\n", *r.PerParked)
		fmt.Fprintf(w, "  resume check: %d of %d sampled parked sessions resumed (slowest %.1f ms)\n",
			r.Resumed, r.ResumeTried, r.ResumeLatencyMs)
	}
}

// runIdle opens -n sessions (login, bind, stream management with -sm,
// initial presence), waits until the server is quiet, reads its VmRSS
// before and after to work out the memory cost of one session, then keeps
// the sessions open for -hold and reports any the server closed. With
// -park it then drops every connection and measures again (parkAll); with
// -park-each every connection is dropped as soon as it has acknowledged
// what the server sent, so only parked sessions are measured.
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
				if o.ParkEach {
					go func() {
						defer readers.Done()
						if err := s.ackThenDrop(func([]byte) { traffic.Add(1) }); err != nil {
							s.gone = true
							errs.add("park", err)
						}
					}()
					continue
				}
				go func() {
					defer readers.Done()
					err := s.readLoop(func([]byte) { traffic.Add(1) })
					if !closing.Load() {
						s.gone = true // read after readers.Wait
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
	r.ParkEach = o.ParkEach
	if o.ParkEach {
		// Every connection is gone once its reader is; what is left on the
		// server is parked sessions only.
		readers.Wait()
		for _, s := range sessions {
			if s.sm.id != "" {
				r.Resumable++
				r.ResumeWindow = s.sm.max
			}
		}
		r.ClientRSS, _ = procRSS(os.Getpid())
		parkAll(ctx, o, c, srv, sessions, &traffic, r, errs)
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("xmppbench: idle: %w", err)
		}
		return r, nil
	}

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
	for _, s := range sessions {
		if s.sm.id != "" {
			r.Resumable++
			r.ResumeWindow = s.sm.max
		}
	}
	sleepCtx(ctx, o.Hold)
	r.RSSHold = srv.rss()
	r.Dropped = dropped.Load()

	closing.Store(true)
	if o.Park && ctx.Err() == nil {
		for _, s := range sessions {
			s.drop()
		}
		readers.Wait()
		parkAll(ctx, o, c, srv, sessions, &traffic, r, errs)
	} else {
		closeAll(sessions, o.Concurrency)
		readers.Wait()
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("xmppbench: idle: %w", err)
	}
	return r, nil
}

// resumeSample is how many parked sessions -park resumes to check that
// the server kept them; few enough not to disturb the figure.
const resumeSample = 10

// parkAll measures the server once the connections of sessions have been
// dropped (and their readers have finished): VmRSS once it is quiet again
// and after -hold, per parked session. Then it resumes a sample of them
// (XEP-0198 §5) from new connections and closes those cleanly; the rest
// stay parked until the server's resumption window ends.
func parkAll(ctx context.Context, o *options, c *clientConfig, srv serverStats, sessions []*session,
	traffic *atomic.Int64, r *idleReport, errs *errorLog) {
	var parked []*session
	for _, s := range sessions {
		if s.sm.id != "" && !s.gone {
			parked = append(parked, s)
		}
	}
	r.Parked = int64(len(parked))
	t0 := time.Now()
	r.ParkSettled = settle(ctx, srv, traffic, o.Settle)
	r.ParkSettleTime = round1(time.Since(t0).Seconds())
	r.RSSParked = srv.rss()
	if r.Parked > 0 && r.RSSParked > 0 {
		v := round1(float64(r.RSSParked-r.RSSBefore) / float64(r.Parked))
		r.PerParked = &v
	}
	sleepCtx(ctx, o.Hold)
	r.RSSParkedHold = srv.rss()
	if len(parked) == 0 {
		return
	}
	n := min(resumeSample, len(parked))
	for k := 0; k < n && ctx.Err() == nil; k++ {
		p := parked[k*len(parked)/n] // spread over the opening order
		r.ResumeTried++
		t := time.Now()
		s, err := c.resume(ctx, p.user, p.sm.id, p.sm.h)
		if err != nil {
			errs.add("resume", err)
			continue
		}
		r.ResumeLatencyMs = max(r.ResumeLatencyMs, round3(float64(time.Since(t))/float64(time.Millisecond)))
		r.Resumed++
		s.close()
	}
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
