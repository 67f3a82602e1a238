package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ownchat/ownchat/compliance"
	"github.com/ownchat/ownchat/conf"
	"github.com/ownchat/ownchat/ldapsync"
	"github.com/ownchat/ownchat/retention"
	"github.com/ownchat/ownchat/staticdir"
	"github.com/ownchat/ownchat/store"
	"github.com/ownchat/ownchat/xmppd"
)

// policy is the retention policy in force: set by serve before the server
// accepts connections, swapped at SIGHUP; nil while [archive] is disabled.
// The message path reads it on every archived message, hence an atomic
// pointer rather than a lock.
var policy atomic.Pointer[retention.Policy]

// currentPolicy returns the retention policy in force, nil when the archive
// is disabled.
func currentPolicy() *retention.Policy { return policy.Load() }

// archivePolicy builds the retention policy of cfg's [archive] section,
// nil when the archive is disabled. conf has validated the rules already,
// so an error here is a bug in one of the two checks.
func archivePolicy(cfg *conf.Config) (*retention.Policy, error) {
	a := cfg.Archive
	if !a.Enabled {
		return nil, nil
	}
	rules := make([]retention.Rule, len(a.Rules))
	for i, r := range a.Rules {
		rules[i] = retention.Rule{Match: r.Match, Retention: retention.Duration(r.Parsed)}
	}
	p, err := retention.New(retention.Duration(a.Default), rules)
	if err != nil {
		return nil, fmt.Errorf("archive: %w", err)
	}
	return p, nil
}

// purgePause is the sleep between two deletion transactions of a purge:
// long enough for the archive writer and offline pushes to take the bbolt
// write lock in between, short enough that a million expired messages go
// in well under a minute (measured: cmd/xmppbench -mode purge).
const purgePause = 2 * time.Millisecond

func init() {
	storeCmds["retention preview"] = cmdRetentionPreview
	storeCmds["archive purge"] = cmdArchivePurge
}

// startRetention sets the policy in force and, when the archive is on,
// starts the purge scheduler. serve calls it before any listener accepts,
// so the first archived message already sees the policy.
func startRetention(ctx context.Context, cfg *conf.Config, p *parts, log *slog.Logger) error {
	pol, err := archivePolicy(cfg)
	if err != nil {
		return err
	}
	policy.Store(pol)
	if pol == nil {
		log.Info("archive disabled: nothing is archived, nothing is purged")
		return nil
	}
	groups := directoryGroups(p.srv, cfg.Domain)
	// Group rules must survive a person leaving the directory whether or
	// not a purge ran meanwhile: record the groups now (the directory may
	// have changed while the server was stopped) and, from here on, when
	// the message path first asks for a person's archive.
	if n, err := compliance.RecordDirectoryGroups(p.store, groups); err != nil {
		log.Error("archive: recording directory groups at start failed; a leaver's group rule may fall back to the default until the next purge records them", "err", err)
	} else if n > 0 {
		log.Info("archive: recorded directory groups", "archives", n)
	}
	archiveGroups.Store(&groupRecorder{store: p.store, groups: groups, log: log})
	pr := &compliance.Purger{
		Store:  p.store,
		Policy: currentPolicy,
		Groups: groups,
		Batch:  cfg.Archive.PurgeBatch,
		Pause:  purgePause,
		Log:    log,
	}
	go pr.Loop(ctx, cfg.Archive.PurgeInterval)
	log.Info("archive retention", "policy", pol.String(), "purge_interval", cfg.Archive.PurgeInterval)
	return nil
}

// reloadRetention applies a changed [archive] at SIGHUP: the new policy is
// swapped in and the change is audited with the old and the new rules.
// Turning the archive on or off needs a restart (the scheduler and the
// archive hooks are wired at start), so that is refused with a warning.
func reloadRetention(cfg *conf.Config, p *parts, log *slog.Logger) {
	old := currentPolicy()
	pol, err := archivePolicy(cfg)
	if err != nil {
		log.Error("SIGHUP: archive rules not reloaded", "err", err)
		return
	}
	if (old == nil) != (pol == nil) {
		log.Warn("SIGHUP: archive.enabled changed; restart xmppd to apply it (rules kept as they were)")
		return
	}
	if old.Equal(pol) {
		return
	}
	policy.Store(pol)
	p.srv.ArchivePolicyChanged()
	detail := old.String() + " -> " + pol.String()
	if _, err := p.store.AppendAudit(time.Now(), "SIGHUP", "archive rules changed", detail); err != nil {
		log.Error("SIGHUP: audit of the archive rule change failed", "err", err)
	}
	log.Info("SIGHUP: archive rules changed", "old", old.String(), "new", pol.String())
}

// directoryGroups asks the server's directory (static or LDAP, looked up at
// each call since LDAP attaches its snapshot after start) for a local
// person's groups.
func directoryGroups(srv *xmppd.Server, domain string) func(owner string) ([]string, bool) {
	return ownerGroups(func() xmppd.Directory { return srv.Directory }, domain)
}

func ownerGroups(dir func() xmppd.Directory, domain string) func(owner string) ([]string, bool) {
	return func(owner string) ([]string, bool) {
		local, dom, ok := strings.Cut(owner, "@")
		d := dir()
		if !ok || dom != domain || d == nil {
			return nil, false
		}
		person, known := d.Person(local)
		if !known {
			return nil, false
		}
		return person.Groups, true
	}
}

// stoppedDirectoryGroups is the directory a purge or preview consults when
// no server runs, the one the server would start with: the configuration's
// static users, or the LDAP snapshot the server keeps in the store (the
// LDAP server itself is not contacted: ctl must work while it is
// unreachable). Without a snapshot groups is nil and the groups recorded
// with each archive apply. closeDir releases it after the command.
func stoppedDirectoryGroups(cfg *conf.Config, st *store.Store, log *slog.Logger) (groups func(owner string) ([]string, bool), closeDir func(), err error) {
	closeDir = func() {}
	var dir xmppd.Directory
	switch cfg.Directory.Backend {
	case "static":
		sd, err := staticdir.New(staticUsers(cfg), rosterRules(cfg)...)
		if err != nil {
			return nil, closeDir, fmt.Errorf("static directory: %w", err)
		}
		dir = staticDirectory{sd}
	case "ldap":
		lc, err := ldapConfig(cfg.Directory)
		if err != nil {
			return nil, closeDir, fmt.Errorf("ldap directory: %w", err)
		}
		if log == nil {
			log = slog.New(slog.DiscardHandler)
		}
		d, err := ldapsync.New(lc, st, log) // reads the stored snapshot only
		if err != nil {
			return nil, closeDir, fmt.Errorf("ldap directory snapshot: %w", err)
		}
		if !d.Ready() {
			d.Close()
			return nil, closeDir, nil
		}
		dir, closeDir = ldapDirectory{d}, func() { d.Close() }
	default:
		return nil, closeDir, nil
	}
	return ownerGroups(func() xmppd.Directory { return dir }, cfg.Domain), closeDir, nil
}

// envPurger builds the Purger for a ctl command from its environment; call
// done when the command is over.
func envPurger(env *storeEnv) (pr *compliance.Purger, done func(), err error) {
	pol := env.Policy
	if pol == nil && env.Config != nil {
		if pol, err = archivePolicy(env.Config); err != nil {
			return nil, nil, err
		}
	}
	if pol == nil {
		return nil, nil, errors.New("the archive is disabled ([archive] enabled = false): nothing is archived or purged")
	}
	batch := 1000
	if env.Config != nil {
		batch = env.Config.Archive.PurgeBatch
	}
	actor := env.Actor
	if actor == "" {
		actor = "ctl"
	}
	groups, done := env.Groups, func() {}
	if groups == nil && !env.Online && env.Config != nil {
		// With the server stopped, group rules still follow the directory
		// in the configuration rather than only the groups a purge
		// happened to record.
		if groups, done, err = stoppedDirectoryGroups(env.Config, env.Store, env.Log); err != nil {
			return nil, nil, err
		}
	}
	return &compliance.Purger{
		Store:  env.Store,
		Policy: func() *retention.Policy { return pol },
		Groups: groups,
		Batch:  batch,
		Pause:  purgePause,
		Now:    env.Now,
		Log:    env.Log,
		Actor:  actor,
	}, done, nil
}

// cmdRetentionPreview is `xmppd ctl retention preview [-now RFC3339]`: a
// dry run of the purge, per rule.
func cmdRetentionPreview(ctx context.Context, env *storeEnv, args []string, w io.Writer) error {
	fs := flag.NewFlagSet("retention preview", flag.ContinueOnError)
	at := fs.String("now", "", "preview as of this time (RFC 3339), e.g. to see what goes at the end of the quarter")
	if err := parseFlags(fs, args, "retention preview [-now 2027-01-01T00:00:00Z]"); err != nil {
		return err
	}
	pr, done, err := envPurger(env)
	if err != nil {
		return fmt.Errorf("retention preview: %w", err)
	}
	defer done()
	now := time.Now()
	if pr.Now != nil {
		now = pr.Now()
	}
	if *at != "" {
		t, err := time.Parse(time.RFC3339, *at)
		if err != nil {
			return fmt.Errorf("retention preview: -now: want RFC 3339 such as 2027-01-01T00:00:00Z (got %q)", *at)
		}
		now = t
	}
	pr.Now = func() time.Time { return now }
	rep, err := pr.Preview(ctx)
	if err != nil {
		return fmt.Errorf("retention preview: %w", err)
	}
	fmt.Fprintf(w, "retention preview as of %s (dry run: nothing is deleted)\n", now.UTC().Format(time.RFC3339))
	_, err = io.WriteString(w, rep.FormatTable("MESSAGES"))
	return err
}

// cmdArchivePurge is `xmppd ctl archive purge`: expiry now, with the real
// clock. It has no -now on purpose: a purge "as of next year" would delete
// what the rules still say to keep.
func cmdArchivePurge(ctx context.Context, env *storeEnv, args []string, w io.Writer) error {
	if len(args) > 0 {
		if strings.TrimLeft(args[0], "-") == "now" || strings.HasPrefix(strings.TrimLeft(args[0], "-"), "now=") {
			return errors.New("archive purge: -now is for retention preview only; a purge always uses the current time")
		}
		return fmt.Errorf("archive purge: unexpected argument %q (archive purge takes none)", args[0])
	}
	pr, done, err := envPurger(env)
	if err != nil {
		return fmt.Errorf("archive purge: %w", err)
	}
	defer done()
	pr.Now = nil // the real clock, whatever the environment says
	rep, err := pr.Run(ctx)
	fmt.Fprintf(w, "removed %d messages (%d offline) in %s\n", rep.Messages(), rep.Offline, rep.Took.Round(time.Millisecond))
	if len(rep.Rules) > 0 {
		io.WriteString(w, rep.FormatTable("REMOVED"))
	}
	if err != nil {
		return fmt.Errorf("archive purge: %w", err)
	}
	return nil
}
