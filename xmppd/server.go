// Package xmppd is the ownChat XMPP server core: listeners, stream negotiation
// (STARTTLS, SASL, resource binding), the session registry, the router and the
// client-to-server handlers (roster, presence, messages, IQs, offline storage).
//
// A Server is a plain struct whose fields are its limits, in the manner of
// net/http.Server; the zero value of every limit selects a sane default. The
// wiring of configuration into a Server lives in cmd/xmppd so that tests never
// need a configuration file.
package xmppd

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ownchat/ownchat/store"
	"github.com/ownchat/ownchat/xmppd/wire"
)

// ErrServerClosed is returned by Serve after Shutdown.
var ErrServerClosed = errors.New("xmppd: server closed")

// Person is one entry of the directory as the server sees it.
type Person struct {
	Username    string   // normalized JID localpart
	DisplayName string   // shown as the roster item name
	Groups      []string // shared-roster groups
	// PhotoHash is the SHA-1 (hex) of the directory's photo of the person,
	// announced in their presence (XEP-0153); "" when there is none.
	PhotoHash string
}

// Directory is the source of accounts and colleagues. The static directory
// (package staticdir) and the LDAP directory (package ldapsync) implement it;
// cmd/xmppd adapts them.
type Directory interface {
	// Authenticate checks a password. Errors that implement
	// interface{ Temporary() bool } with Temporary() == true mean the
	// directory could not answer; they become <temporary-auth-failure/>.
	Authenticate(ctx context.Context, username, password string) error
	// Person reports whether username exists and may log in.
	Person(username string) (Person, bool)
	// Colleagues lists the people who share a roster group with username,
	// each with the shared group names only.
	Colleagues(username string) []Person
}

// SCRAMSource provides salted passwords for SCRAM-SHA-1/SCRAM-SHA-256.
// SCRAM is offered only when Ready reports that every account has them,
// because mechanisms are advertised before the username is known.
type SCRAMSource interface {
	SaltedPassword(username, mech string) (salt, salted []byte, iter int, ok bool)
	SCRAMReady() bool
}

// Server is an XMPP server for one domain. Set the fields before Serve; do not
// change them afterwards.
type Server struct {
	Domain    string       // the served domain (lowercase); required
	TLSConfig *tls.Config  // certificates for STARTTLS and direct TLS; required unless AllowPlaintext
	Directory Directory    // accounts; required
	SCRAM     SCRAMSource  // optional SCRAM credentials
	Store     *store.Store // durable state; required
	Logger    *slog.Logger // nil: slog.Default()

	// AllowPlaintext permits authentication without TLS. Only for loopback
	// tests and benchmarks; the zero value requires TLS (RFC 6120 §13.8).
	AllowPlaintext bool
	// HideVersion answers XEP-0092 queries with service-unavailable.
	HideVersion bool
	// Version is reported by XEP-0092.
	Version string

	MaxStanzaBytes      int           // default 262144
	AuthTimeout         time.Duration // TLS+SASL+bind must finish within; default 30s
	IdleTimeout         time.Duration // silence before a server ping; default 5m
	PingTimeout         time.Duration // ping answer deadline; default 60s
	MaxSessionsPerUser  int           // default 10
	MaxConnsPerIP       int           // default 100
	ConnRatePerIP       float64       // new connections per second per IP; default 20
	StanzasPerSecond    float64       // per connection, then reading is throttled; default 200
	BytesPerSecond      int           // per connection read rate; default 262144
	OutQueueBytes       int           // slow-consumer limit per session; default 4 MiB
	MaxAuthFailures     int           // per connection; default 5
	AuthFailureDelay    time.Duration // first failure delay, doubling per IP; default 1s
	MaxOfflineMessages  int           // per user; default 1000
	ShutdownGrace       time.Duration // time for clients to read <system-shutdown/>; default 2s
	WriteTimeout        time.Duration // a write blocked this long marks a slow consumer; default 30s
	ReadyAfterStart     bool          // mark ready as soon as Serve runs (no directory sync to wait for)
	DisableServerPings  bool          // tests only
	DisableOfflineStore bool          // tests only

	// ResumeTimeout is how long a XEP-0198 session whose connection was
	// lost may be resumed; then its unacknowledged messages go to offline
	// storage. Default 5m.
	ResumeTimeout time.Duration
	// MaxUnackedStanzas bounds a session's XEP-0198 queue (OutQueueBytes
	// bounds its bytes); over it a connected client gets
	// <resource-constraint/> and a parked session ends. Default 10000.
	MaxUnackedStanzas int

	// VCardFields returns the vCard fields the directory owns for user, as
	// children of a <vCard xmlns='vcard-temp'/> element, or nil. They are
	// merged into every vCard served, never stored, and a vCard set that
	// changes them gets <not-allowed/> (XEP-0054; see vcard.go). It must be
	// safe for concurrent use; the returned element is not modified.
	VCardFields     func(user string) *wire.Element
	MaxVCardBytes   int // one stored vCard (XEP-0054); default 131072
	MaxPrivateBytes int // one private XML document (XEP-0049); default 65536
	MaxBlockedJIDs  int // block list entries per user (XEP-0191); default 1000
	MaxPEPNodes     int // PEP nodes per user (XEP-0163); default 100
	MaxPEPItems     int // items per PEP node, what pubsub#max_items "max" means; default 1000

	// Archive is the message archive (XEP-0313, archive.go).
	Archive ArchiveSettings

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[*conn]struct{}
	closed    bool
	inShut    atomic.Bool
	wg        sync.WaitGroup
	initOnce  sync.Once
	ready     atomic.Bool

	router   router
	ipLimits ipLimiter
	sm       smRegistry // XEP-0198 resumable sessions by SM-ID (sm.go)
	metrics  metrics
	started  time.Time

	// Extension points, filled at init by the core and by the feature files
	// (one file per XEP); never changed after Serve starts.
	serverIQ        map[string]iqHandler // IQs to the domain, by payload namespace
	accountIQ       map[string]iqHandler // IQs to the sender's own bare JID
	contactIQ       map[string]iqHandler // IQs to another user's bare JID
	serverFeatures  []string             // disco#info of the domain
	accountFeatures []string             // disco#info of an account
	discoItems      []DiscoItem          // disco#items of the domain
	extraFeatures   [][]byte             // stream features after auth
	nonzas          map[string]func(c *conn, el *wire.Element) bool
	components      map[string]Component
	feat            featureState // state of the feature files (features.go)
	arch            archiveState // caches of the message archive (archive.go)
	avatars         avatarState  // avatar hashes and directory photo metadata (avatar.go)
	offLocks        offlineLocks // offline store vs. a session becoming available (offline_lock.go)

	adminMu sync.Mutex
	admin   map[string]AdminFunc
	adminSt map[string]AdminStreamFunc // admin.go: streaming commands

	fakeOnce sync.Once
	fakeKey  []byte
}

// DiscoItem is an entry of the domain's disco#items (e.g. the MUC service).
type DiscoItem struct{ JID, Name string }

// Component serves a subdomain such as conference.<domain>. RouteStanza
// receives stanzas addressed to it, with from already stamped.
type Component interface {
	RouteStanza(el *wire.Element)
}

// AddComponent registers a component for domain before Serve.
func (s *Server) AddComponent(domain, name string, c Component) {
	s.init()
	s.components[domain] = c
	s.discoItems = append(s.discoItems, DiscoItem{JID: domain, Name: name})
}

func (s *Server) init() {
	s.initOnce.Do(func() {
		if s.Logger == nil {
			s.Logger = slog.Default()
		}
		def := func(v *int, d int) {
			if *v <= 0 {
				*v = d
			}
		}
		defd := func(v *time.Duration, d time.Duration) {
			if *v <= 0 {
				*v = d
			}
		}
		def(&s.MaxStanzaBytes, 262144)
		defd(&s.AuthTimeout, 30*time.Second)
		defd(&s.IdleTimeout, 5*time.Minute)
		defd(&s.PingTimeout, 60*time.Second)
		def(&s.MaxSessionsPerUser, 10)
		def(&s.MaxConnsPerIP, 100)
		if s.ConnRatePerIP <= 0 {
			s.ConnRatePerIP = 20
		}
		if s.StanzasPerSecond <= 0 {
			s.StanzasPerSecond = 200
		}
		def(&s.BytesPerSecond, 262144)
		def(&s.OutQueueBytes, 4<<20)
		def(&s.MaxAuthFailures, 5)
		defd(&s.AuthFailureDelay, time.Second)
		def(&s.MaxOfflineMessages, 1000)
		defd(&s.ShutdownGrace, 2*time.Second)
		defd(&s.WriteTimeout, 30*time.Second)
		if s.Version == "" {
			s.Version = "dev"
		}
		s.listeners = make(map[net.Listener]struct{})
		s.conns = make(map[*conn]struct{})
		s.router.init()
		s.components = make(map[string]Component)
		s.nonzas = make(map[string]func(c *conn, el *wire.Element) bool)
		s.registerCoreIQ()
		// Before registerFeatures: the XEP-0115 hash covers the domain's
		// features registered up to then.
		s.registerSM()
		s.registerCSI()
		s.registerCarbons()
		s.registerMAM()
		s.registerFeatures()
		s.ipLimits.init()
		s.started = time.Now()
		if s.ReadyAfterStart {
			s.ready.Store(true)
		}
	})
}

func (s *Server) check() error {
	if s.Domain == "" {
		return errors.New("xmppd: Server.Domain is empty")
	}
	if s.Directory == nil {
		return errors.New("xmppd: Server.Directory is nil")
	}
	if s.Store == nil {
		return errors.New("xmppd: Server.Store is nil")
	}
	if s.TLSConfig == nil && !s.AllowPlaintext {
		return errors.New("xmppd: Server.TLSConfig is nil and plaintext is not allowed")
	}
	return nil
}

// SetReady marks the server ready (for /healthz); the directory sync calls it
// once its first snapshot is in place.
func (s *Server) SetReady(v bool) { s.init(); s.ready.Store(v) }

// Ready reports whether the server is accepting logins.
func (s *Server) Ready() bool { return s.ready.Load() }

// Serve accepts STARTTLS client connections (port 5222 style) on l.
func (s *Server) Serve(l net.Listener) error { return s.serve(l, false) }

// ServeDirectTLS accepts XEP-0368 direct-TLS client connections on l; the
// TLS handshake offers ALPN "xmpp-client".
func (s *Server) ServeDirectTLS(l net.Listener) error { return s.serve(l, true) }

func (s *Server) serve(l net.Listener, directTLS bool) error {
	s.init()
	if err := s.check(); err != nil {
		return err
	}
	if directTLS && s.TLSConfig == nil {
		return errors.New("xmppd: direct TLS needs Server.TLSConfig")
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrServerClosed
	}
	s.listeners[l] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, l)
		s.mu.Unlock()
	}()

	var delay time.Duration
	for {
		nc, err := l.Accept()
		if err != nil {
			if s.inShut.Load() {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, errTooManyFiles) {
				// Back off like net/http: a full file table must not spin the CPU.
				if delay == 0 {
					delay = 5 * time.Millisecond
				} else if delay *= 2; delay > time.Second {
					delay = time.Second
				}
				s.Logger.Warn("accept failed; retrying", "err", err, "delay", delay)
				time.Sleep(delay)
				continue
			}
			return fmt.Errorf("xmppd: accept: %w", err)
		}
		delay = 0
		ip := remoteIP(nc.RemoteAddr())
		if !s.ipLimits.admit(ip, s.MaxConnsPerIP, s.ConnRatePerIP) {
			s.metrics.connRejected.Add(1)
			go rejectConn(nc)
			continue
		}
		c := newConn(s, nc, ip, directTLS)
		if !s.trackConn(c, true) {
			s.ipLimits.release(ip)
			nc.Close()
			return ErrServerClosed
		}
		s.wg.Add(1)
		go c.serve()
	}
}

func (s *Server) trackConn(c *conn, add bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if add {
		if s.closed {
			return false
		}
		s.conns[c] = struct{}{}
		s.metrics.connections.Add(1)
	} else if _, ok := s.conns[c]; ok {
		delete(s.conns, c)
		s.metrics.connections.Add(-1)
	}
	return true
}

// Shutdown stops accepting, sends <system-shutdown/> to every stream
// (RFC 6120 §4.9.3.19), gives clients ShutdownGrace to read it, and waits for
// all connections to end or ctx to expire.
func (s *Server) Shutdown(ctx context.Context) error {
	s.init()
	s.inShut.Store(true)
	s.mu.Lock()
	s.closed = true
	for l := range s.listeners {
		l.Close()
	}
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	s.ready.Store(false)
	for _, c := range conns {
		c.streamError(errSystemShutdown, "")
	}
	// Parked XEP-0198 sessions have no connection: end them now, which
	// stores their unacknowledged messages before the store closes.
	s.smShutdown()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	grace := time.NewTimer(s.ShutdownGrace)
	defer grace.Stop()
	select {
	case <-done:
		return nil
	case <-grace.C:
	case <-ctx.Done():
	}
	s.mu.Lock()
	for c := range s.conns {
		c.nc.Close()
	}
	s.mu.Unlock()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("xmppd: shutdown: %w", ctx.Err())
	}
}

// SessionInfo describes one bound session for the admin interface.
type SessionInfo struct {
	JID       string    `json:"jid"`
	Remote    string    `json:"remote"`
	Secure    bool      `json:"tls"`
	Since     time.Time `json:"since"`
	Available bool      `json:"available"`
	Priority  int       `json:"priority"`
	Mechanism string    `json:"mechanism"`
}

// Sessions lists the bound sessions, sorted by JID.
func (s *Server) Sessions() []SessionInfo {
	s.init()
	return s.router.list()
}

// CloseUserSessions ends every session of username with the given stream
// error condition (for example "not-authorized" when the directory disabled
// the account) and reports how many were closed. A session parked for
// XEP-0198 resumption has no stream to write to: it ends before
// CloseUserSessions returns, as if its resumption window had passed, and
// can no longer be resumed.
func (s *Server) CloseUserSessions(username, condition, text string) int {
	s.init()
	cs := s.router.sessionsOf(username)
	for _, c := range cs {
		c.smRevoke()
		c.streamError(streamCondition(condition), text)
	}
	return len(cs)
}

func remoteIP(a net.Addr) string {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.IP.String()
	}
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return host
}
