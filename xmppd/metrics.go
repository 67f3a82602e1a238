package xmppd

import (
	"fmt"
	"io"
	"net/http"
	"runtime"
	"sync/atomic"
	"time"
)

// metrics are plain atomic counters rendered in the Prometheus text format;
// a client library would cost more than it earns here.
type metrics struct {
	connections      atomic.Int64
	sessions         atomic.Int64
	logins           atomic.Int64
	connRejected     atomic.Int64
	authFailures     atomic.Int64
	authTemporary    atomic.Int64
	stanzasIn        atomic.Int64
	stanzasOut       atomic.Int64
	bytesOut         atomic.Int64
	offlineStored    atomic.Int64
	offlineDelivered atomic.Int64
	slowConsumers    atomic.Int64
	streamErrors     atomic.Int64
	throttled        atomic.Int64
	panics           atomic.Int64
}

// Gauge is an extra metric another part (the directory sync) exposes.
type Gauge struct {
	Name, Help, Type string // Type: "gauge" or "counter"
	Value            func() float64
}

// HTTPHandler serves /healthz (503 until ready) and /metrics.
func (s *Server) HTTPHandler(extra ...Gauge) http.Handler {
	s.init()
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if !s.Ready() || s.inShut.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, "not ready\n")
			return
		}
		io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		s.writeMetrics(w, extra)
	})
	return mux
}

func (s *Server) writeMetrics(w io.Writer, extra []Gauge) {
	m := &s.metrics
	row := func(name, typ, help string, v float64) {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n%s %g\n", name, help, name, typ, name, v)
	}
	row("xmppd_connections", "gauge", "Open client connections.", float64(m.connections.Load()))
	row("xmppd_sessions", "gauge", "Bound client sessions.", float64(m.sessions.Load()))
	row("xmppd_logins_total", "counter", "Successful logins (resource bound).", float64(m.logins.Load()))
	row("xmppd_connections_rejected_total", "counter", "Connections refused by per-IP limits.", float64(m.connRejected.Load()))
	row("xmppd_auth_failures_total", "counter", "Failed SASL attempts.", float64(m.authFailures.Load()))
	row("xmppd_auth_directory_unavailable_total", "counter", "Logins refused because the directory did not answer.", float64(m.authTemporary.Load()))
	row("xmppd_stanzas_in_total", "counter", "Stanzas received from clients.", float64(m.stanzasIn.Load()))
	row("xmppd_stanzas_out_total", "counter", "Stanzas queued to clients.", float64(m.stanzasOut.Load()))
	row("xmppd_bytes_out_total", "counter", "Bytes written to clients.", float64(m.bytesOut.Load()))
	row("xmppd_offline_stored_total", "counter", "Messages stored for offline users.", float64(m.offlineStored.Load()))
	row("xmppd_offline_delivered_total", "counter", "Offline messages delivered.", float64(m.offlineDelivered.Load()))
	row("xmppd_slow_consumers_total", "counter", "Sessions closed because they did not read.", float64(m.slowConsumers.Load()))
	row("xmppd_stream_errors_total", "counter", "Streams closed for malformed or hostile input.", float64(m.streamErrors.Load()))
	row("xmppd_throttled_total", "counter", "Times a connection was slowed by rate limits.", float64(m.throttled.Load()))
	row("xmppd_panics_total", "counter", "Recovered panics in connection handlers.", float64(m.panics.Load()))
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	row("xmppd_goroutines", "gauge", "Goroutines.", float64(runtime.NumGoroutine()))
	row("xmppd_heap_inuse_bytes", "gauge", "Go heap in use.", float64(ms.HeapInuse))
	row("xmppd_uptime_seconds", "gauge", "Seconds since start.", time.Since(s.started).Seconds())
	ready := 0.0
	if s.Ready() {
		ready = 1
	}
	row("xmppd_ready", "gauge", "1 when the server accepts logins.", ready)
	for _, g := range extra {
		row(g.Name, g.Type, g.Help, g.Value())
	}
}
