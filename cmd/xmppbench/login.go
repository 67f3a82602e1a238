package main

import (
	"context"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// loginReport is the result of -mode login.
type loginReport struct {
	header
	N           int            `json:"n"`
	Concurrency int            `json:"concurrency"`
	Presence    bool           `json:"presence"`
	OK          int64          `json:"ok"`
	Elapsed     float64        `json:"elapsed_s"`
	Rate        float64        `json:"logins_per_s"`
	Latency     LatencySummary `json:"latency"`
	ServerCPU   float64        `json:"server_cpu_s,omitempty"`
	ServerRSS   int64          `json:"server_rss_kib,omitempty"`
	ServerCore  int            `json:"server_core"`
	ServerOther *float64       `json:"server_core_others_pct,omitempty"`
	PerCPU      float64        `json:"logins_per_server_cpu_s,omitempty"`
}

func (r *loginReport) head() *header { return &r.header }

func (r *loginReport) text(w io.Writer) {
	fmt.Fprintf(w, "  logins:       %d ok of %d, concurrency %d, presence %v\n", r.OK, r.N, r.Concurrency, r.Presence)
	fmt.Fprintf(w, "  elapsed:      %.3fs\n", r.Elapsed)
	fmt.Fprintf(w, "  rate:         %.1f logins/s\n", r.Rate)
	l := r.Latency
	fmt.Fprintf(w, "  latency ms:   p50 %.3f  p90 %.3f  p99 %.3f  max %.3f  (mean %.3f)\n", l.P50, l.P90, l.P99, l.Max, l.Mean)
	if r.ServerCPU > 0 {
		fmt.Fprintf(w, "  server:       %.2f CPU s (%.0f logins per CPU s), VmRSS %d KiB after%s\n",
			r.ServerCPU, r.PerCPU, r.ServerRSS, othersText(r.ServerCore, r.ServerOther))
	}
}

// runLogin performs -n complete logins (TCP, STARTTLS, SASL PLAIN, bind)
// with -concurrency of them in progress at a time and closes each session
// as soon as it is bound. Latency is measured from the dial to the bind
// result (to the initial presence being written, with -presence).
func runLogin(ctx context.Context, o *options, c *clientConfig, errs *errorLog) (report, error) {
	users := o.Users
	if users <= 0 {
		users = o.N
	}
	presence := o.presence()
	srv := serverStats{pid: o.PID, errs: errs}
	cpu0 := srv.cpu()
	core := srv.core()
	core0 := core.sample()

	var (
		next  atomic.Int64
		ok    atomic.Int64
		wg    sync.WaitGroup
		hists = make([]Histogram, o.Concurrency)
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
				s, err := c.login(ctx, o.userName(o.First+i%users), presence)
				if err != nil {
					if ctx.Err() == nil {
						errs.add("login", err)
					}
					continue
				}
				h.Record(time.Since(t0))
				ok.Add(1)
				s.close()
			}
		}(&hists[w])
	}
	wg.Wait()
	elapsed := time.Since(start)
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("xmppbench: login: %w", err)
	}

	var all Histogram
	for i := range hists {
		all.Merge(&hists[i])
	}
	r := &loginReport{
		N:           o.N,
		Concurrency: o.Concurrency,
		Presence:    presence,
		OK:          ok.Load(),
		Elapsed:     round3(elapsed.Seconds()),
		Rate:        round1(float64(ok.Load()) / elapsed.Seconds()),
		Latency:     all.Summary(),
		ServerCore:  -1,
	}
	if o.PID > 0 {
		r.ServerCPU = round3((srv.cpu() - cpu0).Seconds())
		r.ServerCore, r.ServerOther = core.core, core.othersPct(core0, core.sample())
		r.ServerRSS = srv.rss()
		if r.ServerCPU > 0 {
			r.PerCPU = round1(float64(r.OK) / r.ServerCPU)
		}
	}
	return r, nil
}
