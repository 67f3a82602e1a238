package compliance

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ownchat/ownchat/retention"
	"github.com/ownchat/ownchat/store"
)

// ActorScheduler is the audit actor of purges run by Purger.Loop.
const ActorScheduler = "scheduler"

// Purger deletes archived messages (and offline messages) whose retention
// has run out, archive by archive, in small transactions so that the
// server keeps serving while it runs (issue 6: no long write locks).
//
// A legal hold wins over every rule: a held archive is counted, never
// touched. A person's group rules use the live directory when it knows
// the person, else the groups recorded with their archive while it did
// (see RecordDirectoryGroups), so a leaver's archive keeps following their
// group's rule rather than silently falling back to the default (shorter
// or longer).
type Purger struct {
	Store *store.Store
	// Policy returns the policy in force (it is swapped at reload); nil
	// means the archive is disabled and nothing is purged: disabling the
	// archive stops archiving, it does not erase what was kept.
	Policy func() *retention.Policy
	// Groups asks the live directory for a person's groups; nil, or known
	// false, means the groups recorded in the store are used.
	Groups func(owner string) (groups []string, known bool)
	// Batch is the most records one deletion transaction removes (default
	// 1000); Pause is the sleep between two such transactions, which lets
	// the message path's archive writes in between.
	Batch int
	Pause time.Duration
	Now   func() time.Time
	Log   *slog.Logger
	// Actor names who asked for the purge in the audit log; empty means
	// the scheduler.
	Actor string
}

// RuleCount is what one retention rule did (or would do) in one purge.
type RuleCount struct {
	Rule      string // "default" or the rule's match
	Retention string // as in the configuration: "90d", "forever", "none"
	Owners    int    // archives under this rule
	Messages  int    // messages deleted (Run) or that would be deleted (Preview)
	// Held is the number of expired messages kept because a legal hold
	// covers their archive; HeldOwners the number of such archives.
	Held       int
	HeldOwners int
}

// Report sums up one purge or preview.
type Report struct {
	Rules   []RuleCount // the policy's rules in configuration order, then the default
	Offline int         // offline messages deleted (or that would be)
	Took    time.Duration
}

// Messages is the number of archived messages deleted (or that would be).
func (r Report) Messages() int {
	n := 0
	for _, rc := range r.Rules {
		n += rc.Messages
	}
	return n
}

// HeldMessages is the number of expired messages kept for legal holds.
func (r Report) HeldMessages() int {
	n := 0
	for _, rc := range r.Rules {
		n += rc.Held
	}
	return n
}

// String is the one-line summary used in logs and in the audit record:
// `removed 12 messages (3 offline), 4 held; default=90d: 12 in 2 archives; ...`.
func (r Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "removed %d messages (%d offline), %d held", r.Messages(), r.Offline, r.HeldMessages())
	for _, rc := range r.Rules {
		if rc.Owners == 0 {
			continue
		}
		fmt.Fprintf(&b, "; %s=%s: %d in %d archives", rc.Rule, rc.Retention, rc.Messages, rc.Owners)
		if rc.Held > 0 {
			fmt.Fprintf(&b, " (%d held in %d)", rc.Held, rc.HeldOwners)
		}
	}
	return b.String()
}

// purging serializes purges within one process: a `ctl archive purge`
// arriving while the scheduler runs waits rather than racing it for the
// same keys (the counts would each be half the truth).
var purging sync.Mutex

// Preview is a dry run: what Run would delete now, per rule. It writes
// nothing (not even the recorded groups).
func (p *Purger) Preview(ctx context.Context) (Report, error) {
	return p.purge(ctx, false)
}

// Run deletes every expired message not covered by a hold and appends an
// audit record "archive purge" with the counts. Every run by a person is
// audited; a scheduled run only when it deleted something or failed, so
// that an idle server does not add a record every hour (the audit log is
// evidence of actions, and a purge that removed nothing changed nothing).
func (p *Purger) Run(ctx context.Context) (Report, error) {
	rep, err := p.purge(ctx, true)
	actor := p.Actor
	if actor == "" {
		actor = ActorScheduler
	}
	// A scheduled run cut short by shutdown before it deleted anything is
	// not an action; one that failed for another reason is.
	failed := err != nil && ctx.Err() == nil
	if actor != ActorScheduler || failed || rep.Messages() > 0 || rep.Offline > 0 {
		detail := rep.String()
		if err != nil {
			detail += "; incomplete: " + err.Error()
		}
		if _, aerr := p.Store.AppendAudit(p.now(), actor, "archive purge", detail); aerr != nil {
			err = errors.Join(err, fmt.Errorf("compliance: audit purge: %w", aerr))
		}
	}
	return rep, err
}

// Loop runs the purge every interval until ctx ends; the first run is one
// interval after the start, so a restart does not add a purge to the
// start-up work. It logs a summary when a run deleted something.
func (p *Purger) Loop(ctx context.Context, every time.Duration) {
	q := *p
	q.Actor = ActorScheduler
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		rep, err := q.Run(ctx)
		switch {
		case err != nil && ctx.Err() != nil:
			return
		case err != nil:
			q.log().Error("archive purge failed", "err", err, "summary", rep.String())
		case rep.Messages() > 0 || rep.Offline > 0:
			q.log().Info("archive purge", "removed", rep.Messages(), "offline", rep.Offline,
				"held", rep.HeldMessages(), "took", rep.Took.Round(time.Millisecond), "summary", rep.String())
		}
	}
}

func (p *Purger) now() time.Time {
	if p.Now != nil {
		return p.Now()
	}
	return time.Now()
}

func (p *Purger) log() *slog.Logger {
	if p.Log != nil {
		return p.Log
	}
	return slog.Default()
}

func (p *Purger) purge(ctx context.Context, del bool) (Report, error) {
	purging.Lock()
	defer purging.Unlock()
	start := time.Now()
	var pol *retention.Policy
	if p.Policy != nil {
		pol = p.Policy()
	}
	if pol == nil {
		return Report{}, nil
	}
	rules := pol.Rules()
	rep := Report{Rules: make([]RuleCount, 0, len(rules)+1)}
	index := make(map[string]int, len(rules)+1)
	for _, r := range rules {
		index[r.Match] = len(rep.Rules)
		rep.Rules = append(rep.Rules, RuleCount{Rule: r.Match, Retention: r.Retention.String()})
	}
	def := pol.Default()
	index[def.Rule] = len(rep.Rules)
	rep.Rules = append(rep.Rules, RuleCount{Rule: def.Rule, Retention: def.Duration.String()})

	owners, err := p.Store.ArchiveOwners()
	if err != nil {
		return rep, fmt.Errorf("compliance: purge: list archives: %w", err)
	}
	batch := p.Batch
	if batch <= 0 {
		batch = 1000
	}
	// One clock reading for the whole run: every archive is cut at the
	// same instant, so a preview and the report add up.
	now := p.now()
	var errs []error
	for _, o := range owners {
		if err := ctx.Err(); err != nil {
			errs = append(errs, err)
			break
		}
		n, off, held, d, err := p.owner(ctx, pol, o, now, batch, del)
		rc := &rep.Rules[index[d.Rule]]
		rc.Owners++
		rc.Messages += n
		rep.Offline += off
		if held > 0 {
			rc.Held += held
			rc.HeldOwners++
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	rep.Took = time.Since(start)
	return rep, errors.Join(errs...)
}

// owner purges (or counts) one archive: n archived and off offline
// messages expired, held expired messages kept for a hold.
func (p *Purger) owner(ctx context.Context, pol *retention.Policy, o store.ArchiveOwner, now time.Time, batch int, del bool) (n, off, held int, d retention.Decision, err error) {
	room := o.Kind == store.KindGroupchat
	groups := o.Groups
	if !room && p.Groups != nil {
		if g, known := p.Groups(o.JID); known {
			groups = g
			if del && !sameSet(g, o.Groups) {
				// Remembered for when the person leaves the directory;
				// a failure only costs the leaver case, so keep going.
				if err := p.Store.SetArchiveGroups(o.JID, g); err != nil {
					p.log().Warn("archive purge: recording groups failed", "owner", o.JID, "err", err)
				}
			}
		}
	}
	d = pol.For(retention.Subject{JID: o.JID, Room: room, Groups: groups})
	before, expires := d.Cutoff(now)
	if !expires {
		return 0, 0, 0, d, nil
	}
	archiveExpired := o.Count > 0 && o.First != 0 && o.First < store.ArchiveIDAt(before)
	offlineRule := !room && d.Keep > 0 // offline messages follow durations only, never none/forever
	if !archiveExpired && !offlineRule {
		return 0, 0, 0, d, nil
	}
	cases, err := p.Store.HeldBy(o.JID)
	if err != nil {
		return 0, 0, 0, d, fmt.Errorf("compliance: purge %s: holds: %w", o.JID, err)
	}
	if len(cases) > 0 {
		// A hold covers the person's data, offline messages included.
		if archiveExpired {
			held, err = p.Store.CountArchiveBefore(o.JID, before)
			if err != nil {
				return 0, 0, 0, d, fmt.Errorf("compliance: purge %s: count held: %w", o.JID, err)
			}
		}
		return 0, 0, held, d, nil
	}
	if archiveExpired {
		if del {
			n, err = p.Store.ExpireArchive(ctx, o.JID, before, batch, p.Pause)
		} else {
			n, err = p.Store.CountArchiveBefore(o.JID, before)
		}
		if err != nil {
			return n, 0, 0, d, fmt.Errorf("compliance: purge %s: %w", o.JID, err)
		}
	}
	if offlineRule {
		user := offlineUser(o.JID)
		// The counter is one read; most people have nothing waiting, and
		// an empty expiry would still cost a write transaction and an fsync.
		if off, err = p.Store.OfflineCount(user); err == nil && off > 0 {
			if del {
				off, err = p.Store.ExpireOffline(user, before)
			} else {
				off, err = countOfflineBefore(p.Store, user, before)
			}
		}
		if err != nil {
			return n, off, 0, d, fmt.Errorf("compliance: purge %s: offline: %w", o.JID, err)
		}
	}
	return n, off, 0, d, nil
}

// offlineUser is the key of a person's offline queue. Archives are keyed
// by bare JID, but xmppd keeps offline messages (like the rest of an
// account's data) under the username; every person with an archive is an
// account of this server, so the localpart is enough.
func offlineUser(bare string) string {
	local, _, _ := strings.Cut(bare, "@")
	return local
}

func countOfflineBefore(s *store.Store, user string, before time.Time) (int, error) {
	msgs, err := s.Offline(user)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, m := range msgs {
		if m.Stamp.Before(before) {
			n++
		}
	}
	return n, nil
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// FormatTable writes the preview/purge table: one line per rule, then the
// totals. verb is the MESSAGES column's meaning ("EXPIRED" for a preview,
// "REMOVED" for a purge).
func (r Report) FormatTable(verb string) string {
	rows := [][]string{{"RULE", "RETENTION", "ARCHIVES", verb, "HELD"}}
	var owners int
	for _, rc := range r.Rules {
		owners += rc.Owners
		held := strconv.Itoa(rc.Held)
		if rc.Held > 0 {
			held += " (" + strconv.Itoa(rc.HeldOwners) + " archives)"
		}
		rows = append(rows, []string{rc.Rule, rc.Retention, strconv.Itoa(rc.Owners), strconv.Itoa(rc.Messages), held})
	}
	rows = append(rows, []string{"total", "", strconv.Itoa(owners), strconv.Itoa(r.Messages()), strconv.Itoa(r.HeldMessages())})
	width := make([]int, len(rows[0]))
	for _, row := range rows {
		for i, c := range row {
			width[i] = max(width[i], len(c))
		}
	}
	var b strings.Builder
	for _, row := range rows {
		for i, c := range row {
			if i == len(row)-1 {
				b.WriteString(c)
				break
			}
			b.WriteString(c)
			b.WriteString(strings.Repeat(" ", width[i]-len(c)+2))
		}
		b.WriteByte('\n')
	}
	fmt.Fprintf(&b, "offline messages: %d\n", r.Offline)
	return b.String()
}
