package xmppd

import (
	"crypto/rand"
	"sync"
	"time"
)

var randRead = rand.Read

// tokenBucket is a plain token bucket; it is used by one goroutine only.
type tokenBucket struct {
	rate, burst float64
	tokens      float64
	last        time.Time
}

func (b *tokenBucket) refill(now time.Time) {
	if b.last.IsZero() {
		b.tokens = b.burst
	} else {
		b.tokens += now.Sub(b.last).Seconds() * b.rate
		if b.tokens > b.burst {
			b.tokens = b.burst
		}
	}
	b.last = now
}

// take removes n tokens and reports whether they were available; the debt
// is kept, so a flood is slowed to the rate and not merely delayed once.
func (b *tokenBucket) take(n float64) bool {
	b.refill(time.Now())
	b.tokens -= n
	return b.tokens >= 0
}

// wait is how long until the bucket is out of debt.
func (b *tokenBucket) wait(n float64) time.Duration {
	if b.tokens >= 0 || b.rate <= 0 {
		return 0
	}
	return time.Duration(-b.tokens / b.rate * float64(time.Second))
}

// ipLimiter bounds connections per IP address, new connections per second
// per IP, and slows authentication guessing per IP.
type ipLimiter struct {
	mu        sync.Mutex
	ips       map[string]*ipState
	lastSweep time.Time
}

type ipState struct {
	conns    int
	bucket   tokenBucket
	failures int
	lastFail time.Time
}

func (l *ipLimiter) init() { l.ips = make(map[string]*ipState) }

func (l *ipLimiter) admit(ip string, maxConns int, rate float64) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now := time.Now(); now.Sub(l.lastSweep) > time.Minute {
		// Forget idle addresses so a scan from many IPs cannot grow the map
		// without bound.
		l.lastSweep = now
		for k, st := range l.ips {
			l.gcLocked(k, st)
		}
	}
	st := l.ips[ip]
	if st == nil {
		st = &ipState{bucket: tokenBucket{rate: rate, burst: 2 * rate}}
		l.ips[ip] = st
	}
	if st.conns >= maxConns {
		return false
	}
	if !st.bucket.take(1) {
		st.bucket.tokens++ // a refused connection costs nothing
		return false
	}
	st.conns++
	return true
}

func (l *ipLimiter) release(ip string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	st := l.ips[ip]
	if st == nil {
		return
	}
	st.conns--
	l.gcLocked(ip, st)
}

func (l *ipLimiter) gcLocked(ip string, st *ipState) {
	if st.conns <= 0 && time.Since(st.bucket.last) > time.Minute && time.Since(st.lastFail) > 10*time.Minute {
		delete(l.ips, ip)
	}
}

// authFailed records a failure and returns the delay before answering:
// base, 2*base, 4*base ... capped at 30s; failures are forgotten after 10
// quiet minutes.
func (l *ipLimiter) authFailed(ip string, base time.Duration) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	st := l.ips[ip]
	if st == nil {
		return base
	}
	if time.Since(st.lastFail) > 10*time.Minute {
		st.failures = 0
	}
	st.failures++
	st.lastFail = time.Now()
	d := base
	for i := 1; i < st.failures && d < 30*time.Second; i++ {
		d *= 2
	}
	if d > 30*time.Second {
		d = 30 * time.Second
	}
	return d
}

func (l *ipLimiter) authOK(ip string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if st := l.ips[ip]; st != nil {
		st.failures = 0
	}
}
