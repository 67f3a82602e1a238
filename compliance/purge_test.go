package compliance

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ownchat/ownchat/retention"
	"github.com/ownchat/ownchat/store"
)

const day = 24 * time.Hour

var now = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

// seq makes ids unique across the whole test store.
var seq atomic.Uint64

func openStore(t testing.TB) *store.Store {
	t.Helper()
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// archiveAt writes n records into owner's archive, stamped at (ids from)
// the given time.
func archiveAt(t testing.TB, st *store.Store, owner string, kind store.ArchiveKind, at time.Time, n int) {
	t.Helper()
	recs := make([]store.ArchiveRecord, n)
	for i := range recs {
		id := store.ArchiveIDAt(at) + store.ArchiveID(seq.Add(1))
		recs[i] = store.ArchiveRecord{
			Owner: owner, ID: id, With: "peer@corp.example", Kind: kind,
			Stanza: fmt.Appendf(nil, "<message xmlns='jabber:client' type='chat' to='%s' from='peer@corp.example/x'><body>%d</body></message>", owner, id),
		}
	}
	st.Archive(recs...)
	if err := st.FlushArchive(); err != nil {
		t.Fatal(err)
	}
}

// left counts what is left in owner's archive.
func left(t testing.TB, st *store.Store, owner string) int {
	t.Helper()
	n, err := st.CountArchiveBefore(owner, now.Add(100*365*day))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func policy(t testing.TB, def retention.Duration, rules ...retention.Rule) func() *retention.Policy {
	t.Helper()
	p, err := retention.New(def, rules)
	if err != nil {
		t.Fatal(err)
	}
	return func() *retention.Policy { return p }
}

func keep(d time.Duration) retention.Duration { return retention.Duration{Keep: d} }

// directory is a hand-written directory: who is known with which groups.
type directory map[string][]string

func (d directory) groups(owner string) ([]string, bool) {
	g, ok := d[owner]
	return g, ok
}

func rule(rep Report, name string) RuleCount {
	for _, rc := range rep.Rules {
		if rc.Rule == name {
			return rc
		}
	}
	return RuleCount{Rule: "missing " + name}
}

func TestPurgerPreviewAndRun(t *testing.T) {
	st := openStore(t)
	const (
		alice = "alice@corp.example" // default 30d
		bob   = "bob@corp.example"   // group Legal: 10y
		carol = "carol@corp.example" // user rule 1d, also in Legal: the user rule wins
		frank = "frank@corp.example" // default, but held
		lobby = "lobby@conference.corp.example"
		ops   = "ops@conference.corp.example"
	)
	for _, o := range []string{alice, bob, carol, frank} {
		archiveAt(t, st, o, store.KindChat, now.Add(-400*day), 3)
		archiveAt(t, st, o, store.KindChat, now.Add(-40*day), 2)
		archiveAt(t, st, o, store.KindChat, now.Add(-2*day), 1)
		archiveAt(t, st, o, store.KindChat, now.Add(-time.Hour), 1)
	}
	archiveAt(t, st, lobby, store.KindGroupchat, now.Add(-400*day), 5) // kind:groupchat forever
	archiveAt(t, st, ops, store.KindGroupchat, now.Add(-400*day), 4)   // room:ops 7d
	archiveAt(t, st, ops, store.KindGroupchat, now.Add(-time.Hour), 1)
	if err := st.AddHold(store.Hold{Case: "case-1", Subject: frank, Reason: "litigation", Created: now, By: "test"}); err != nil {
		t.Fatal(err)
	}
	// Offline messages follow the owner's rule too. xmppd queues them
	// under the username, not the bare JID that keys the archive.
	const aliceUser = "alice"
	for _, age := range []time.Duration{100 * day, 31 * day, day} {
		if err := st.PushOffline(aliceUser, []byte("<message/>"), now.Add(-age), 100); err != nil {
			t.Fatal(err)
		}
	}

	p := &Purger{
		Store: st,
		Policy: policy(t, keep(30*day),
			retention.Rule{Match: "group:Legal", Retention: keep(10 * 365 * day)},
			retention.Rule{Match: "user:carol@corp.example", Retention: keep(day)},
			retention.Rule{Match: "kind:groupchat", Retention: retention.Duration{Forever: true}},
			retention.Rule{Match: "room:ops@conference.corp.example", Retention: keep(7 * day)},
			retention.Rule{Match: "group:Nobody", Retention: retention.Duration{None: true}},
		),
		Groups: directory{bob: {"Legal"}, carol: {"Legal"}, alice: {"Sales"}, frank: nil}.groups,
		Batch:  2, // several transactions per archive
		Now:    func() time.Time { return now },
		Actor:  "uid=0(root)",
	}
	want := map[string]RuleCount{
		"default":                          {Retention: "30d", Owners: 2, Messages: 5, Held: 5, HeldOwners: 1},
		"group:Legal":                      {Retention: "10y", Owners: 1},
		"user:carol@corp.example":          {Retention: "1d", Owners: 1, Messages: 6},
		"kind:groupchat":                   {Retention: "forever", Owners: 1},
		"room:ops@conference.corp.example": {Retention: "7d", Owners: 1, Messages: 4},
		"group:Nobody":                     {Retention: "none"},
	}
	check := func(what string, rep Report) {
		t.Helper()
		if len(rep.Rules) != len(want) {
			t.Errorf("%s: %d rules, want %d: %+v", what, len(rep.Rules), len(want), rep.Rules)
		}
		for name, w := range want {
			w.Rule = name
			if got := rule(rep, name); got != w {
				t.Errorf("%s: %s = %+v; want %+v", what, name, got, w)
			}
		}
		if rep.Offline != 2 {
			t.Errorf("%s: offline = %d; want 2", what, rep.Offline)
		}
	}

	rep, err := p.Preview(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	check("preview", rep)
	if rep.Rules[len(rep.Rules)-1].Rule != "default" {
		t.Errorf("preview: the default is not the last row: %+v", rep.Rules)
	}
	for o, n := range map[string]int{alice: 7, bob: 7, carol: 7, frank: 7, lobby: 5, ops: 5} {
		if got := left(t, st, o); got != n {
			t.Errorf("after preview %s has %d records; want %d (a preview deletes nothing)", o, got, n)
		}
	}
	audit, err := st.AuditRecords()
	if err != nil {
		t.Fatal(err)
	}
	if len(audit) != 0 {
		t.Errorf("a preview was audited: %+v", audit)
	}

	rep, err = p.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	check("run", rep)
	for o, n := range map[string]int{alice: 2, bob: 7, carol: 1, frank: 7, lobby: 5, ops: 1} {
		if got := left(t, st, o); got != n {
			t.Errorf("after run %s has %d records; want %d", o, got, n)
		}
	}
	if n, err := st.OfflineCount(aliceUser); err != nil || n != 1 {
		t.Errorf("alice's offline messages after run: %d, %v; want 1 (the one younger than 30d)", n, err)
	}
	audit, err = st.AuditRecords()
	if err != nil {
		t.Fatal(err)
	}
	if len(audit) != 1 || audit[0].Action != "archive purge" || audit[0].Actor != "uid=0(root)" ||
		!strings.Contains(audit[0].Detail, "removed 15 messages (2 offline), 5 held") {
		t.Errorf("audit = %+v; want one archive purge record by uid=0(root) with the counts", audit)
	}

	// A second run finds nothing: still audited, since a person asked.
	rep, err = p.Run(context.Background())
	if err != nil || rep.Messages() != 0 || rep.Offline != 0 || rep.HeldMessages() != 5 {
		t.Errorf("second run: %v, %v; want nothing removed and 5 held", rep, err)
	}
	// The scheduler does not audit a run that removed nothing.
	p.Actor = ""
	if _, err := p.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if audit, _ = st.AuditRecords(); len(audit) != 2 {
		t.Errorf("audit has %d records; want 2 (the empty scheduled run is not audited)", len(audit))
	}

	// Released: frank's expired messages go at the next run, by the scheduler.
	if _, err := st.ReleaseHold("case-1"); err != nil {
		t.Fatal(err)
	}
	rep, err = p.Run(context.Background())
	if err != nil || rule(rep, "default").Messages != 5 {
		t.Fatalf("run after release: %+v, %v", rep, err)
	}
	if got := left(t, st, frank); got != 2 {
		t.Errorf("frank after release has %d; want 2", got)
	}
	audit, _ = st.AuditRecords()
	if last := audit[len(audit)-1]; last.Actor != ActorScheduler || last.Action != "archive purge" {
		t.Errorf("last audit record = %+v; want the scheduler's purge", last)
	}
}

// A person who left the directory keeps their group's rule: the groups
// are recorded while the directory still knows them.
func TestPurgerLeaverKeepsGroupRule(t *testing.T) {
	st := openStore(t)
	const dave, erin = "dave@corp.example", "erin@corp.example"
	archiveAt(t, st, dave, store.KindChat, now.Add(-100*day), 3)
	archiveAt(t, st, erin, store.KindChat, now.Add(-100*day), 3)
	dir := directory{dave: {"Legal"}}
	p := &Purger{
		Store:  st,
		Policy: policy(t, keep(30*day), retention.Rule{Match: "group:Legal", Retention: retention.Duration{Forever: true}}),
		Groups: dir.groups,
		Now:    func() time.Time { return now },
	}
	if _, err := p.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := left(t, st, dave); got != 3 {
		t.Fatalf("dave (Legal) has %d; want 3", got)
	}
	if got := left(t, st, erin); got != 0 {
		t.Fatalf("erin (no group, default 30d) has %d; want 0", got)
	}
	owners, err := st.ArchiveOwners()
	if err != nil {
		t.Fatal(err)
	}
	var recorded []string
	for _, o := range owners {
		if o.JID == dave {
			recorded = o.Groups
		}
	}
	if len(recorded) != 1 || recorded[0] != "Legal" {
		t.Fatalf("dave's recorded groups = %q; want [Legal]", recorded)
	}

	delete(dir, dave) // dave leaves the company
	archiveAt(t, st, dave, store.KindChat, now.Add(-50*day), 1)
	rep, err := p.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got := left(t, st, dave); got != 4 {
		t.Errorf("after leaving, dave has %d; want 4 (group:Legal forever still applies)", got)
	}
	if rc := rule(rep, "group:Legal"); rc.Owners != 1 {
		t.Errorf("group:Legal covers %d archives after dave left; want 1", rc.Owners)
	}

	// Without a directory at all (ctl with no server running), the
	// recorded groups are used as well.
	p.Groups = nil
	if _, err := p.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := left(t, st, dave); got != 4 {
		t.Errorf("offline ctl run: dave has %d; want 4", got)
	}
}

func TestPurgerNone(t *testing.T) {
	st := openStore(t)
	const u = "intern@corp.example"
	archiveAt(t, st, u, store.KindChat, now.Add(-time.Minute), 2)
	archiveAt(t, st, u, store.KindChat, now.Add(time.Hour), 1) // stamped by a clock running ahead
	p := &Purger{
		Store:  st,
		Policy: policy(t, keep(30*day), retention.Rule{Match: "user:" + u, Retention: retention.Duration{None: true}}),
		Now:    func() time.Time { return now },
	}
	rep, err := p.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got := left(t, st, u); got != 0 || rep.Messages() != 3 {
		t.Errorf("none: %d left, %d removed; want everything removed", got, rep.Messages())
	}
}

func TestPurgerDisabled(t *testing.T) {
	st := openStore(t)
	archiveAt(t, st, "a@corp.example", store.KindChat, now.Add(-1000*day), 2)
	p := &Purger{Store: st, Policy: func() *retention.Policy { return nil }, Now: func() time.Time { return now }}
	rep, err := p.Run(context.Background())
	if err != nil || rep.Messages() != 0 || left(t, st, "a@corp.example") != 2 {
		t.Errorf("disabled archive: %+v, %v; want nothing touched", rep, err)
	}
}

// The policy is read at each run, so a reload applies at the next purge.
func TestPurgerLoopUsesCurrentPolicy(t *testing.T) {
	st := openStore(t)
	const u = "alice@corp.example"
	archiveAt(t, st, u, store.KindChat, now.Add(-10*day), 3)
	var pol atomic.Pointer[retention.Policy]
	long, _ := retention.New(keep(30*day), nil)
	short, _ := retention.New(keep(day), nil)
	pol.Store(long)
	p := &Purger{Store: st, Policy: pol.Load, Now: func() time.Time { return now }}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { p.Loop(ctx, 5*time.Millisecond); close(done) }()
	time.Sleep(50 * time.Millisecond)
	if got := left(t, st, u); got != 3 {
		t.Errorf("under 30d the loop removed records: %d left", got)
	}
	pol.Store(short)
	deadline := time.Now().Add(5 * time.Second)
	for left(t, st, u) != 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
	if got := left(t, st, u); got != 0 {
		t.Errorf("after the swap to 1d the loop left %d records", got)
	}
	audit, err := st.AuditRecords()
	if err != nil {
		t.Fatal(err)
	}
	if len(audit) != 1 || audit[0].Actor != ActorScheduler {
		t.Errorf("audit = %+v; want exactly one scheduler record (the run that deleted)", audit)
	}
}

func TestReportFormat(t *testing.T) {
	rep := Report{Rules: []RuleCount{
		{Rule: "group:Legal", Retention: "10y", Owners: 3, Messages: 0, Held: 40, HeldOwners: 1},
		{Rule: "default", Retention: "90d", Owners: 12, Messages: 1234},
	}, Offline: 7}
	want := "" +
		"RULE         RETENTION  ARCHIVES  MESSAGES  HELD\n" +
		"group:Legal  10y        3         0         40 (1 archives)\n" +
		"default      90d        12        1234      0\n" +
		"total                   15        1234      40\n" +
		"offline messages: 7\n"
	if got := rep.FormatTable("MESSAGES"); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
	if got, want := rep.String(), "removed 1234 messages (7 offline), 40 held; group:Legal=10y: 0 in 3 archives (40 held in 1); default=90d: 1234 in 12 archives"; got != want {
		t.Errorf("String = %q; want %q", got, want)
	}
}
