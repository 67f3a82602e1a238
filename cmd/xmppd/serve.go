package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/ownchat/ownchat/conf"
	"github.com/ownchat/ownchat/staticdir"
	"github.com/ownchat/ownchat/store"
	"github.com/ownchat/ownchat/xmppd"
)

func configFlag(fs *flag.FlagSet) *string {
	return fs.String("config", defaultConfig, "configuration file")
}

func cmdServe(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := configFlag(fs)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg, err := conf.Load(*path)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	level := new(slog.LevelVar)
	level.Set(cfg.LogLevel)
	log := newLogger(cfg.LogFormat, level, stderr)
	slog.SetDefault(log)
	for _, w := range cfg.Warnings() {
		log.Warn("CONFIGURATION WARNING: " + w)
	}
	if err := serve(cfg, *path, level, log); err != nil {
		log.Error("xmppd stopped", "err", err)
		return 1
	}
	return 0
}

func newLogger(format string, level *slog.LevelVar, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// parts are the pieces serve wires together; built by build so that check
// can construct the same things without listening.
type parts struct {
	store *store.Store
	cert  *xmppd.Certificate
	srv   *xmppd.Server
}

func build(cfg *conf.Config, log *slog.Logger) (*parts, error) {
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data_dir: %w", err)
	}
	st, err := store.Open(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	// The static directory is complete at start. The LDAP directory is
	// attached by startLDAP once the server exists; the server reports
	// ready only when its snapshot is in place.
	var (
		dir   xmppd.Directory
		scram xmppd.SCRAMSource
	)
	if cfg.Directory.Backend == "static" {
		sd, err := staticdir.New(staticUsers(cfg), rosterRules(cfg)...)
		if err != nil {
			st.Close()
			return nil, err
		}
		dir, scram = staticDirectory{sd}, sd
	}
	cert, err := xmppd.LoadCertificate(cfg.TLS.CertFile, cfg.TLS.KeyFile, cfg.DataDir, cfg.Domain)
	if err != nil {
		st.Close()
		return nil, err
	}
	if cert.SelfSigned {
		log.Warn("using a self-signed TLS certificate; clients will ask to trust it. Set tls.cert_file and tls.key_file for production.")
	}
	l := cfg.Limits
	srv := &xmppd.Server{
		Domain:             cfg.Domain,
		TLSConfig:          cert.TLSConfig(),
		Directory:          dir,
		SCRAM:              scram,
		Store:              st,
		Logger:             log,
		AllowPlaintext:     !cfg.TLS.RequireEncryption,
		HideVersion:        cfg.HideVersion,
		Version:            version,
		MaxStanzaBytes:     int(l.MaxStanzaBytes),
		AuthTimeout:        l.AuthTimeout,
		IdleTimeout:        l.IdleTimeout,
		PingTimeout:        l.PingTimeout,
		MaxSessionsPerUser: l.MaxSessionsPerUser,
		MaxConnsPerIP:      l.MaxConnectionsPerIP,
		ConnRatePerIP:      l.ConnectionsPerIPPerSecond,
		StanzasPerSecond:   l.StanzasPerSecond,
		BytesPerSecond:     int(l.BytesPerSecond),
		OutQueueBytes:      int(l.OutQueueBytes),
		MaxAuthFailures:    l.MaxAuthFailures,
		AuthFailureDelay:   l.AuthFailureDelay,
		MaxOfflineMessages: l.MaxOfflineMessages,
		ResumeTimeout:      l.ResumeTimeout, // XEP-0198
		ReadyAfterStart:    cfg.Directory.Backend == "static",
	}
	srv.Archive = archiveSettings(cfg) // XEP-0313, archive.go
	if sd, ok := dir.(staticDirectory); ok {
		srv.VCardFields = staticVCard(sd.d) // directory.go
	}
	return &parts{store: st, cert: cert, srv: srv}, nil
}

func serve(cfg *conf.Config, path string, level *slog.LevelVar, log *slog.Logger) error {
	p, err := build(cfg, log)
	if err != nil {
		return err
	}
	defer p.store.Close()
	srv := p.srv
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var gauges []xmppd.Gauge
	if cfg.Directory.Backend == "ldap" {
		d, err := startLDAP(ctx, cfg, p.store, srv, log)
		if err != nil {
			return err
		}
		defer d.Close()
		gauges = ldapGauges(d)
	}
	enableSearch(cfg, srv, log)
	if err := startRetention(ctx, cfg, p, log); err != nil {
		return err
	}
	rooms, err := setupMUC(cfg, srv, p.store, log)
	if err != nil {
		return err
	}

	// Signals are ours before the first listener answers: a SIGTERM right
	// after /healthz said ok must still stop the server cleanly.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)
	errc := make(chan error, 4)
	// Occupants hear that the room service stops (status 332) before their
	// streams end.
	closers := []func(){rooms.Shutdown}
	listen := func(name, addr string, serveFn func(net.Listener) error) error {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("listen.%s %s: %w", name, addr, err)
		}
		log.Info("listening", "listener", name, "addr", l.Addr().String())
		go func() {
			if err := serveFn(l); err != nil && !errors.Is(err, xmppd.ErrServerClosed) {
				errc <- fmt.Errorf("%s: %w", name, err)
			}
		}()
		return nil
	}
	if cfg.Listen.C2S != "" {
		if err := listen("c2s", cfg.Listen.C2S, srv.Serve); err != nil {
			return err
		}
	}
	if cfg.Listen.C2SDirectTLS != "" {
		if err := listen("c2s_direct_tls", cfg.Listen.C2SDirectTLS, srv.ServeDirectTLS); err != nil {
			return err
		}
	}
	if cfg.Listen.HTTP != "" {
		hs := &http.Server{Handler: srv.HTTPHandler(gauges...), ReadHeaderTimeout: 10 * time.Second}
		if err := listen("http", cfg.Listen.HTTP, hs.Serve); err != nil {
			return err
		}
		closers = append(closers, func() { hs.Close() })
	}
	registerStoreCmds(srv, func() storeEnv { return onlineStoreEnv(cfg, p, log) })
	al, err := listenAdmin(cfg.Listen.AdminSocket)
	if err != nil {
		return err
	}
	closers = append(closers, func() { al.Close(); os.Remove(cfg.Listen.AdminSocket) })
	go srv.ServeAdmin(al)
	log.Info("xmppd started", "version", version, "domain", cfg.Domain, "data_dir", cfg.DataDir, "users", len(cfg.Directory.Users))

	for {
		select {
		case err := <-errc:
			shutdown(srv, closers, log)
			return err
		case sig := <-sigs:
			if sig == syscall.SIGHUP {
				reload(path, p, level, log)
				continue
			}
			log.Info("stopping", "signal", sig.String())
			shutdown(srv, closers, log)
			return nil
		}
	}
}

// reload applies what can change without a restart: the TLS certificate and
// the log level. Other changes need a restart and are reported as such.
func reload(path string, p *parts, level *slog.LevelVar, log *slog.Logger) {
	if err := p.cert.Reload(); err != nil {
		log.Error("SIGHUP: certificate reload failed; keeping the old one", "err", err)
	} else {
		log.Info("SIGHUP: TLS certificate reloaded")
	}
	cfg, err := conf.Load(path)
	if err != nil {
		log.Error("SIGHUP: configuration has errors; log level unchanged", "err", err)
		return
	}
	level.Set(cfg.LogLevel)
	log.Info("SIGHUP: log level set", "level", cfg.LogLevel.String())
	reloadRetention(cfg, p, log)
}

// shutdown tells the room service first (closers[0]), stops the server,
// then closes the other listeners.
func shutdown(srv *xmppd.Server, closers []func(), log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	closers[0]()
	if err := srv.Shutdown(ctx); err != nil {
		log.Warn("shutdown incomplete", "err", err)
	}
	for _, c := range closers[1:] {
		c()
	}
	log.Info("xmppd stopped")
}

// listenAdmin creates the admin socket with mode 0600. A stale socket file
// from a crashed server is replaced; a live one means another xmppd runs.
func listenAdmin(path string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("admin_socket: %w", err)
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return nil, fmt.Errorf("admin_socket %s: another xmppd is running", path)
	}
	os.Remove(path)
	old := syscall.Umask(0o177)
	l, err := net.Listen("unix", path)
	syscall.Umask(old)
	if err != nil {
		return nil, fmt.Errorf("admin_socket %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		return nil, fmt.Errorf("admin_socket %s: %w", path, err)
	}
	return l, nil
}
