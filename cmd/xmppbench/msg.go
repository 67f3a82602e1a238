package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// bodyMarker starts every benchmark body: "xbts=<send ns>:<seq>:xxxx...".
// The send time is nanoseconds on this process's monotonic clock since
// the run's epoch, so latency needs no clock synchronisation.
const bodyMarker = "xbts="

var bodyMarkerBytes = []byte(bodyMarker)

// msgReport is the result of -mode msg.
type msgReport struct {
	header
	Pairs       int            `json:"pairs"`
	Inflight    int            `json:"inflight"`
	Size        int            `json:"size"`
	Duration    float64        `json:"duration_s"`
	Warmup      float64        `json:"warmup_s"`
	Sent        int64          `json:"sent"`
	Delivered   int64          `json:"delivered"`
	Measured    int64          `json:"measured"`
	Rate        float64        `json:"msgs_per_s"`
	Latency     LatencySummary `json:"latency"`
	Lost        int64          `json:"lost"`
	OutOfOrder  int64          `json:"out_of_order"`
	ServerCPU   float64        `json:"server_cpu_s,omitempty"`
	ServerPct   float64        `json:"server_cpu_pct,omitempty"`
	ServerRSS   int64          `json:"server_rss_kib,omitempty"`
	ServerCore  int            `json:"server_core"`
	ServerOther *float64       `json:"server_core_others_pct,omitempty"`
	PerCPU      float64        `json:"msgs_per_server_cpu_s,omitempty"`
	ClientPct   float64        `json:"client_cpu_pct"`
}

func (r *msgReport) head() *header { return &r.header }

func (r *msgReport) text(w io.Writer) {
	fmt.Fprintf(w, "  pairs:        %d, %d in flight each, %d-byte bodies, %.1fs measured after %.1fs warm-up\n",
		r.Pairs, r.Inflight, r.Size, r.Duration, r.Warmup)
	fmt.Fprintf(w, "  messages:     %d sent, %d delivered, %d lost, %d out of order\n", r.Sent, r.Delivered, r.Lost, r.OutOfOrder)
	fmt.Fprintf(w, "  throughput:   %.1f msgs/s delivered (xmppbench used %.0f%% of a core)\n", r.Rate, r.ClientPct)
	l := r.Latency
	fmt.Fprintf(w, "  latency ms:   p50 %.3f  p90 %.3f  p99 %.3f  max %.3f  (mean %.3f)\n", l.P50, l.P90, l.P99, l.Max, l.Mean)
	if r.ServerCPU > 0 {
		fmt.Fprintf(w, "  server:       %.2f CPU s in the window (%.0f%% of a core, %.0f msgs per CPU s), VmRSS %d KiB%s\n",
			r.ServerCPU, r.ServerPct, r.PerCPU, r.ServerRSS, othersText(r.ServerCore, r.ServerOther))
	}
}

// pair is one sender and its receiver. The sender may have at most
// inflight messages not yet seen by the receiver: credits holds the free
// slots, taken by the sender and given back by the receiver.
type pair struct {
	tx, rx  *session
	credits chan struct{}
	prefix  []byte // <message to='rx' type='chat'><body>xbts=

	sent atomic.Int64 // written by the sender goroutine
	recv atomic.Int64 // written by the receiver goroutine

	// Owned by the receiver goroutine; read after it has exited.
	hist     Histogram
	measured int64
	ooo      int64
	nextSeq  uint64
}

// window is the part of the run, in epoch nanoseconds, whose messages are
// measured.
type window struct {
	epoch      time.Time
	start, end time.Duration
}

// runMsg logs in -pairs senders and receivers, then each sender sends
// chat messages to its receiver's full JID, keeping -inflight of them
// unanswered, for -warmup plus -duration. Receivers timestamp arrival;
// nothing is echoed.
func runMsg(ctx context.Context, o *options, c *clientConfig, errs *errorLog) (report, error) {
	srv := serverStats{pid: o.PID, errs: errs}
	n := 2 * o.Pairs
	sessions := make([]*session, n)
	var (
		wg   sync.WaitGroup
		next atomic.Int64
	)
	p := pacer{t0: time.Now(), rate: o.Ramp}
	for w := 0; w < o.Concurrency && w < n; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n || p.wait(ctx, i) != nil {
					return
				}
				s, err := c.login(ctx, o.userName(o.First+i), o.presence())
				if err != nil {
					errs.add("login", err)
					continue
				}
				sessions[i] = s
			}
		}()
	}
	wg.Wait()

	var pairs []*pair
	for i := 0; i < o.Pairs; i++ {
		tx, rx := sessions[2*i], sessions[2*i+1]
		if tx == nil || rx == nil {
			for _, s := range []*session{tx, rx} {
				if s != nil {
					s.close()
				}
			}
			continue
		}
		pr := &pair{tx: tx, rx: rx, credits: make(chan struct{}, o.Inflight)}
		for j := 0; j < o.Inflight; j++ {
			pr.credits <- struct{}{}
		}
		q := "'"
		if bytes.IndexByte([]byte(rx.jid), '\'') >= 0 {
			q = `"`
		}
		pr.prefix = []byte("<message to=" + q + rx.jid + q + " type='chat'><body>" + bodyMarker)
		pairs = append(pairs, pr)
	}
	if len(pairs) == 0 {
		return nil, fmt.Errorf("xmppbench: msg: no pair could log in (%d errors)", n)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("xmppbench: msg: %w", err)
	}

	win := window{epoch: time.Now(), start: o.Warmup, end: o.Warmup + o.Duration}
	var closing atomic.Bool
	var readers sync.WaitGroup
	for _, pr := range pairs {
		readers.Add(2)
		go func() {
			defer readers.Done()
			err := pr.rx.readLoop(func(tok []byte) { pr.receive(tok, win, errs) })
			if !closing.Load() {
				errs.add("stream", err)
			}
		}()
		go func() {
			defer readers.Done()
			err := pr.tx.readLoop(func(tok []byte) { countMessageError(tok, errs) })
			if !closing.Load() {
				errs.add("stream", err)
			}
		}()
	}

	stop := make(chan struct{})
	var senders sync.WaitGroup
	for _, pr := range pairs {
		senders.Add(1)
		go func() {
			defer senders.Done()
			if err := pr.send(stop, win, o.Size); err != nil && !closing.Load() {
				errs.add("send", err)
			}
		}()
	}
	// Measure the server's CPU over the measured window only.
	sleepCtx(ctx, o.Warmup)
	core := srv.core()
	cpu0, core0, self0 := srv.cpu(), core.sample(), selfCPU()
	sleepCtx(ctx, o.Duration)
	cpu1, core1, self1 := srv.cpu(), core.sample(), selfCPU()
	close(stop)
	senders.Wait()

	// Let messages in flight arrive before counting losses.
	deadline := time.Now().Add(o.Drain)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		var sent, recv int64
		for _, pr := range pairs {
			sent += pr.sent.Load()
			recv += pr.recv.Load()
		}
		if recv >= sent {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	closing.Store(true)
	for _, pr := range pairs {
		pr.tx.close()
		pr.rx.close()
	}
	readers.Wait()

	r := &msgReport{
		Pairs:      len(pairs),
		Inflight:   o.Inflight,
		Size:       o.Size,
		Duration:   round3(o.Duration.Seconds()),
		Warmup:     round3(o.Warmup.Seconds()),
		ServerCore: -1,
	}
	var all Histogram
	for _, pr := range pairs {
		r.Sent += pr.sent.Load()
		r.Delivered += pr.recv.Load()
		r.Measured += pr.measured
		r.OutOfOrder += pr.ooo
		all.Merge(&pr.hist)
	}
	if r.Sent > r.Delivered {
		r.Lost = r.Sent - r.Delivered
	}
	r.Rate = round1(float64(r.Measured) / o.Duration.Seconds())
	r.ClientPct = round1(100 * (self1 - self0).Seconds() / o.Duration.Seconds())
	r.Latency = all.Summary()
	if o.PID > 0 {
		r.ServerCPU = round3((cpu1 - cpu0).Seconds())
		r.ServerPct = round1(100 * r.ServerCPU / o.Duration.Seconds())
		r.ServerCore, r.ServerOther = core.core, core.othersPct(core0, core1)
		r.ServerRSS = srv.rss()
		if r.ServerCPU > 0 {
			r.PerCPU = round1(float64(r.Measured) / r.ServerCPU)
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("xmppbench: msg: %w", err)
	}
	return r, nil
}

// send writes messages until stop is closed. Messages are collected in
// the session's buffer while credits last and flushed when the window is
// full, so a sender costs one write per batch rather than per message.
func (p *pair) send(stop <-chan struct{}, win window, size int) error {
	tx := p.tx
	buf := make([]byte, 0, len(p.prefix)+size+32)
	var seq uint64
	flush := func() error {
		tx.wmu.Lock()
		defer tx.wmu.Unlock()
		return tx.w.Flush()
	}
	for {
		select {
		case <-p.credits:
		default:
			if err := flush(); err != nil {
				return err
			}
			select {
			case <-p.credits:
			case <-stop:
				return nil
			}
		}
		select {
		case <-stop:
			return flush()
		default:
		}
		buf = p.appendMessage(buf[:0], time.Since(win.epoch), seq, size)
		tx.wmu.Lock()
		_, err := tx.w.Write(buf)
		tx.wmu.Unlock()
		if err != nil {
			return err
		}
		seq++
		p.sent.Add(1)
	}
}

// appendMessage appends one benchmark message whose body is size bytes:
// the marker, the send time, the sequence number and 'x' padding.
func (p *pair) appendMessage(b []byte, ts time.Duration, seq uint64, size int) []byte {
	b = append(b, p.prefix...)
	body := len(b) - len(bodyMarker)
	b = strconv.AppendInt(b, int64(ts), 10)
	b = append(b, ':')
	b = strconv.AppendUint(b, seq, 10)
	b = append(b, ':')
	for len(b)-body < size {
		b = append(b, 'x')
	}
	return append(b, "</body></message>"...)
}

// receive handles one stanza arriving at the receiver: a benchmark
// message is timed, counted and gives its sender a credit back.
func (p *pair) receive(tok []byte, win window, errs *errorLog) {
	if len(tok) < 2 || tok[1] != 'm' {
		return // presence and the like
	}
	ts, seq, ok := parseStamp(tok)
	if !ok {
		countMessageError(tok, errs)
		return
	}
	lat := time.Since(win.epoch) - ts
	if ts >= win.start && ts < win.end {
		p.hist.Record(lat)
		p.measured++
	}
	if seq != p.nextSeq {
		p.ooo++
	}
	p.nextSeq = seq + 1
	p.recv.Add(1)
	select {
	case p.credits <- struct{}{}:
	default:
	}
}

// parseStamp finds the send time and sequence number in a benchmark
// message with bytes.Index; it never allocates.
func parseStamp(tok []byte) (ts time.Duration, seq uint64, ok bool) {
	i := bytes.Index(tok, bodyMarkerBytes)
	if i < 0 {
		return 0, 0, false
	}
	rest := tok[i+len(bodyMarker):]
	t, n := parseDigits(rest)
	if n == 0 || n >= len(rest) || rest[n] != ':' {
		return 0, 0, false
	}
	rest = rest[n+1:]
	s, m := parseDigits(rest)
	if m == 0 {
		return 0, 0, false
	}
	return time.Duration(t), s, true
}

// parseDigits reads a decimal number at the start of b and returns it and
// the number of digits read.
func parseDigits(b []byte) (uint64, int) {
	var v uint64
	i := 0
	for ; i < len(b) && i < 20 && b[i] >= '0' && b[i] <= '9'; i++ {
		v = v*10 + uint64(b[i]-'0')
	}
	return v, i
}

// countMessageError records a message of type error (RFC 6120 §8.3),
// e.g. a bounce because the recipient is gone.
func countMessageError(tok []byte, errs *errorLog) {
	if len(tok) < 2 || tok[1] != 'm' {
		return
	}
	if t, _, _ := attr(tok, "type"); bytes.Equal(t, []byte("error")) {
		errs.count("message-error", 1)
	}
}

// sleepCtx sleeps for d or until ctx is done.
func sleepCtx(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
