package retention

import (
	"strings"
	"testing"
	"time"
)

func keep(d time.Duration) Duration { return Duration{Keep: d} }

var (
	none    = Duration{None: true}
	forever = Duration{Forever: true}
)

func mustNew(t testing.TB, def Duration, rules ...Rule) *Policy {
	t.Helper()
	p, err := New(def, rules)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPolicyFor(t *testing.T) {
	full := []Rule{
		{"kind:chat", keep(30 * day)},
		{"kind:groupchat", keep(7 * day)},
		{"group:Legal", keep(10 * year)},
		{"group:Sales", keep(year)},
		{"group:Interns", none},
		{"group:Board", forever},
		{"user:alice@corp.example", keep(2 * day)},
		{"room:lobby@conference.corp.example", keep(3 * day)},
	}
	for _, tc := range []struct {
		name  string
		rules []Rule
		s     Subject
		want  Duration
		rule  string
	}{
		{"no rules: default", nil, Subject{JID: "bob@corp.example"}, keep(90 * day), "default"},
		{"no rules, room: default", nil, Subject{JID: "r@conference.corp.example", Room: true}, keep(90 * day), "default"},
		{"kind:chat for a person", full, Subject{JID: "bob@corp.example"}, keep(30 * day), "kind:chat"},
		{"kind:groupchat for a room", full, Subject{JID: "r@conference.corp.example", Room: true}, keep(7 * day), "kind:groupchat"},
		{"kind:chat does not apply to rooms", full[:1], Subject{JID: "r@conference.corp.example", Room: true}, keep(90 * day), "default"},
		{"kind:groupchat does not apply to people", full[1:2], Subject{JID: "bob@corp.example"}, keep(90 * day), "default"},
		{"group beats kind", full, Subject{JID: "bob@corp.example", Groups: []string{"Sales"}}, keep(year), "group:Sales"},
		{"group name case-insensitive", full, Subject{JID: "bob@corp.example", Groups: []string{"legal"}}, keep(10 * year), "group:Legal"},
		{"unknown group falls through to kind", full, Subject{JID: "bob@corp.example", Groups: []string{"Ops"}}, keep(30 * day), "kind:chat"},
		{"longest group wins, longer second", full, Subject{JID: "bob@corp.example", Groups: []string{"Sales", "Legal"}}, keep(10 * year), "group:Legal"},
		{"longest group wins, longer first", full, Subject{JID: "bob@corp.example", Groups: []string{"Legal", "Sales"}}, keep(10 * year), "group:Legal"},
		{"group none loses to any duration", full, Subject{JID: "bob@corp.example", Groups: []string{"Interns", "Sales"}}, keep(year), "group:Sales"},
		{"group none alone applies", full, Subject{JID: "bob@corp.example", Groups: []string{"Interns"}}, none, "group:Interns"},
		{"group forever beats everything", full, Subject{JID: "bob@corp.example", Groups: []string{"Legal", "Board", "Interns"}}, forever, "group:Board"},
		{"user beats group", full, Subject{JID: "alice@corp.example", Groups: []string{"Board"}}, keep(2 * day), "user:alice@corp.example"},
		{"user JID case-insensitive", full, Subject{JID: "Alice@Corp.Example"}, keep(2 * day), "user:alice@corp.example"},
		{"user rule does not match a room of that name", full, Subject{JID: "alice@corp.example", Room: true}, keep(7 * day), "kind:groupchat"},
		{"room beats kind", full, Subject{JID: "lobby@conference.corp.example", Room: true}, keep(3 * day), "room:lobby@conference.corp.example"},
		{"room rule does not match a person", full, Subject{JID: "lobby@conference.corp.example"}, keep(30 * day), "kind:chat"},
		{"rooms ignore groups", full, Subject{JID: "x@conference.corp.example", Room: true, Groups: []string{"Board"}}, keep(7 * day), "kind:groupchat"},
		{"equal group durations: first rule wins", []Rule{{"group:B", keep(day)}, {"group:A", keep(day)}},
			Subject{JID: "bob@corp.example", Groups: []string{"A", "B"}}, keep(day), "group:B"},
		{"shorter user rule still beats longer group", []Rule{{"group:Legal", forever}, {"user:bob@corp.example", none}},
			Subject{JID: "bob@corp.example", Groups: []string{"Legal"}}, none, "user:bob@corp.example"},
		{"no group rules, groups given", []Rule{{"kind:chat", keep(day)}}, Subject{JID: "bob@corp.example", Groups: []string{"Legal"}}, keep(day), "kind:chat"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := mustNew(t, keep(90*day), tc.rules...)
			got := p.For(tc.s)
			if got.Duration != tc.want || got.Rule != tc.rule {
				t.Errorf("For(%+v) = %v by %q; want %v by %q", tc.s, got.Duration, got.Rule, tc.want, tc.rule)
			}
		})
	}
}

func TestNewErrors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		def   Duration
		rules []Rule
		want  string
	}{
		{"zero default", Duration{}, nil, "default"},
		{"two values", Duration{Keep: day, Forever: true}, nil, "default"},
		{"no colon", keep(day), []Rule{{"Legal", keep(day)}}, "rule 1"},
		{"unknown prefix", keep(day), []Rule{{"team:x", keep(day)}}, `unknown kind "team"`},
		{"unknown kind", keep(day), []Rule{{"kind:x", keep(day)}}, `unknown kind "x"`},
		{"user without domain", keep(day), []Rule{{"user:bob", keep(day)}}, "bare JID"},
		{"user with resource", keep(day), []Rule{{"user:bob@corp.example/phone", keep(day)}}, "bare JID"},
		{"empty group", keep(day), []Rule{{"group: ", keep(day)}}, "empty group"},
		{"rule without retention", keep(day), []Rule{{"group:A", Duration{}}}, "rule 1 (group:A)"},
		{"duplicate", keep(day), []Rule{{"group:A", keep(day)}, {"group:a", forever}}, "rule 2"},
		{"duplicate user, case", keep(day), []Rule{{"user:A@x", keep(day)}, {"user:a@x", forever}}, "same match as rule 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.def, tc.rules)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New = %v; want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestCutoff(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		d       Duration
		before  time.Time
		expires bool
	}{
		{keep(90 * day), now.Add(-90 * day), true},
		{keep(2 * time.Second), now.Add(-2 * time.Second), true},
		{keep(10 * year), now.Add(-3650 * day), true},
		{forever, time.Time{}, false},
		{none, noneCutoff, true},
	} {
		before, expires := Decision{Duration: tc.d}.Cutoff(now)
		if !before.Equal(tc.before) || expires != tc.expires {
			t.Errorf("%v: Cutoff = %v, %v; want %v, %v", tc.d, before, expires, tc.before, tc.expires)
		}
	}
	// "none" must expire what a clock running ahead stamped, and stay in
	// the range where UnixNano does not overflow.
	before, _ := Decision{Duration: none}.Cutoff(now)
	if !before.After(now.Add(100*year)) || before.UnixNano() <= 0 {
		t.Errorf("none cutoff %v: want far in the future and representable in UnixNano", before)
	}
}

func TestDurationString(t *testing.T) {
	for d, want := range map[Duration]string{
		keep(90 * day):        "90d",
		keep(7 * year):        "7y",
		keep(36 * time.Hour):  "36h0m0s",
		keep(2 * time.Second): "2s",
		keep(400 * day):       "400d",
		none:                  "none",
		forever:               "forever",
	} {
		if got := d.String(); got != want {
			t.Errorf("%#v.String() = %q; want %q", d, got, want)
		}
	}
}

func TestPolicyEqualAndString(t *testing.T) {
	a := mustNew(t, keep(90*day), Rule{"group:Legal", keep(10 * year)}, Rule{"kind:groupchat", none})
	b := mustNew(t, keep(90*day), Rule{"group:Legal", keep(10 * year)}, Rule{"kind:groupchat", none})
	c := mustNew(t, keep(90*day), Rule{"group:Legal", keep(9 * year)}, Rule{"kind:groupchat", none})
	d := mustNew(t, keep(30*day), Rule{"group:Legal", keep(10 * year)}, Rule{"kind:groupchat", none})
	if !a.Equal(b) || a.Equal(c) || a.Equal(d) || a.Equal(nil) || !(*Policy)(nil).Equal(nil) {
		t.Error("Equal: wrong answer")
	}
	if got, want := a.String(), "default=90d; group:Legal=10y; kind:groupchat=none"; got != want {
		t.Errorf("String = %q; want %q", got, want)
	}
	if got := (*Policy)(nil).String(); got != "archive disabled" {
		t.Errorf("nil String = %q", got)
	}
	r := a.Rules()
	r[0].Match = "changed"
	if a.Rules()[0].Match != "group:Legal" {
		t.Error("Rules shares the policy's slice")
	}
}

// For runs for every archived message: it must not allocate, also when a
// client's JID arrives with capitals.
func TestForDoesNotAllocate(t *testing.T) {
	p := mustNew(t, keep(90*day),
		Rule{"group:Legal", keep(10 * year)}, Rule{"group:Sales", keep(year)},
		Rule{"user:alice@corp.example", keep(day)}, Rule{"kind:groupchat", keep(7 * day)})
	subjects := []Subject{
		{JID: "bob@corp.example", Groups: []string{"Sales", "Legal", "Ops"}},
		{JID: "Alice@Corp.Example"},
		{JID: "Bob@corp.example", Groups: []string{"LEGAL"}},
		{JID: "room@conference.corp.example", Room: true},
	}
	for _, s := range subjects {
		if n := testing.AllocsPerRun(100, func() { _ = p.For(s) }); n != 0 {
			t.Errorf("For(%+v) allocates %v times", s, n)
		}
	}
}

func BenchmarkFor(b *testing.B) {
	p := mustNew(b, keep(90*day),
		Rule{"group:Legal", keep(10 * year)}, Rule{"group:Sales", keep(year)},
		Rule{"user:alice@corp.example", keep(day)}, Rule{"kind:groupchat", keep(7 * day)})
	s := Subject{JID: "bob@corp.example", Groups: []string{"Sales", "Legal", "Ops"}}
	b.ReportAllocs()
	for b.Loop() {
		_ = p.For(s)
	}
}
