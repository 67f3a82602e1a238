// Package retention decides how long an archived message is kept: the
// [archive] rules of the configuration, most specific first.
//
// Precedence (issue 6): a rule for the archive's owner ("user:JID" or
// "room:JID") beats a rule for one of the owner's directory groups
// ("group:NAME"), which beats a rule for the kind of archive ("kind:chat"
// for a person's archive, "kind:groupchat" for a room's), which beats the
// default. When several of the owner's groups have rules the longest
// retention wins (forever > longer > shorter > none): a compliance
// obligation attached to one group must never be shortened because the
// same person is also in a group with a shorter rule.
package retention

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Duration is a parsed retention value: exactly one of Keep > 0, None and
// Forever.
type Duration struct {
	Keep    time.Duration
	None    bool // never archived; whatever is in the archive expires
	Forever bool // kept until erased
}

const (
	day  = 24 * time.Hour
	year = 365 * day
)

// String gives the duration the way the configuration writes it ("90d",
// "7y", "36h0m0s", "none", "forever"), for previews and audit records.
func (d Duration) String() string {
	switch {
	case d.Forever:
		return "forever"
	case d.None:
		return "none"
	case d.Keep > 0 && d.Keep%year == 0:
		return strconv.FormatInt(int64(d.Keep/year), 10) + "y"
	case d.Keep > 0 && d.Keep%day == 0:
		return strconv.FormatInt(int64(d.Keep/day), 10) + "d"
	}
	return d.Keep.String()
}

func (d Duration) valid() bool {
	n := 0
	if d.Keep > 0 {
		n++
	}
	if d.None {
		n++
	}
	if d.Forever {
		n++
	}
	return n == 1 && d.Keep >= 0
}

// longer reports whether d keeps messages longer than e: forever >
// longer Keep > shorter Keep > none.
func (d Duration) longer(e Duration) bool {
	return d.rank() > e.rank()
}

func (d Duration) rank() time.Duration {
	switch {
	case d.Forever:
		return 1<<63 - 1
	case d.None:
		return -1
	}
	return d.Keep
}

// Rule is one [[archive.rule]]: Match is "user:JID", "room:JID",
// "group:NAME", "kind:chat" or "kind:groupchat".
type Rule struct {
	Match     string
	Retention Duration
}

// Subject is an archive whose retention is asked for.
type Subject struct {
	JID    string   // bare JID of the archive owner
	Room   bool     // a room's archive (MUC MAM) rather than a person's
	Groups []string // the owner's directory groups (people only)
}

// Decision is the retention that applies to one archive and the rule it
// came from.
type Decision struct {
	Duration
	Rule string // "default" or the Match of the rule that applied
}

// Archived reports whether messages are archived at all under d.
func (d Decision) Archived() bool { return !d.None }

// noneCutoff is the cutoff for "none": after every id an archive can hold
// even when a clock once ran ahead, and still within the range of
// time.Time.UnixNano so that no store arithmetic overflows.
var noneCutoff = time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)

// Cutoff is the time before which messages have expired at now. expires
// is false for "forever": nothing expires. "none" expires everything.
func (d Decision) Cutoff(now time.Time) (before time.Time, expires bool) {
	switch {
	case d.Forever:
		return time.Time{}, false
	case d.None:
		return noneCutoff, true
	}
	return now.Add(-d.Keep), true
}

// Policy is a validated set of rules. It is immutable, so the server
// swaps a whole Policy at reload and readers need no lock.
type Policy struct {
	def    Decision
	users  map[string]Decision // lowercased bare JID
	rooms  map[string]Decision
	groups map[string]groupRule // lowercased group name
	chat   *Decision
	gchat  *Decision
	rules  []Rule
}

type groupRule struct {
	Decision
	order int // position in the configuration: the earlier wins a tie
}

// New validates the rules and builds a Policy. Errors name the rule by
// its 1-based position; the configuration reports them with file and line
// before this is ever called.
func New(def Duration, rules []Rule) (*Policy, error) {
	if !def.valid() {
		return nil, errors.New("retention: default: want exactly one of a positive duration, none or forever")
	}
	p := &Policy{
		def:    Decision{Duration: def, Rule: "default"},
		users:  map[string]Decision{},
		rooms:  map[string]Decision{},
		groups: map[string]groupRule{},
		rules:  append([]Rule(nil), rules...),
	}
	seen := make(map[string]int, len(rules))
	for i, r := range rules {
		kind, arg, err := SplitMatch(r.Match)
		if err != nil {
			return nil, fmt.Errorf("retention: rule %d: %w", i+1, err)
		}
		if !r.Retention.valid() {
			return nil, fmt.Errorf("retention: rule %d (%s): want exactly one of a positive duration, none or forever", i+1, r.Match)
		}
		key := kind + ":" + strings.ToLower(arg)
		if j, dup := seen[key]; dup {
			return nil, fmt.Errorf("retention: rule %d: %q is the same match as rule %d", i+1, r.Match, j+1)
		}
		seen[key] = i
		d := Decision{Duration: r.Retention, Rule: r.Match}
		switch kind {
		case "user":
			p.users[strings.ToLower(arg)] = d
		case "room":
			p.rooms[strings.ToLower(arg)] = d
		case "group":
			p.groups[strings.ToLower(arg)] = groupRule{Decision: d, order: i}
		case "kind":
			if arg == "chat" {
				p.chat = &d
			} else {
				p.gchat = &d
			}
		}
	}
	return p, nil
}

// SplitMatch checks a rule's match text and splits it into its kind
// ("user", "room", "group" or "kind") and argument.
func SplitMatch(m string) (kind, arg string, err error) {
	kind, arg, ok := strings.Cut(m, ":")
	if !ok {
		return "", "", fmt.Errorf("match %q: want group:NAME, user:JID, room:JID or kind:chat|groupchat", m)
	}
	switch kind {
	case "user", "room":
		if arg == "" || strings.ContainsAny(arg, "/ ") || !strings.Contains(arg, "@") {
			return "", "", fmt.Errorf("match %q: want a bare JID (name@domain) after %s:", m, kind)
		}
	case "group":
		if strings.TrimSpace(arg) == "" {
			return "", "", fmt.Errorf("match %q: empty group name", m)
		}
	case "kind":
		if arg != "chat" && arg != "groupchat" {
			return "", "", fmt.Errorf("match %q: unknown kind %q (want chat or groupchat)", m, arg)
		}
	default:
		return "", "", fmt.Errorf("match %q: unknown kind %q (want group:, user:, room: or kind:)", m, kind)
	}
	return kind, arg, nil
}

// For returns the retention of s's archive. It is on the message path and
// does not allocate for ASCII JIDs and group names.
func (p *Policy) For(s Subject) Decision {
	if s.Room {
		if d, ok := lookup(p.rooms, s.JID); ok {
			return d
		}
		if p.gchat != nil {
			return *p.gchat
		}
		return p.def
	}
	if d, ok := lookup(p.users, s.JID); ok {
		return d
	}
	if len(p.groups) > 0 {
		var best groupRule
		found := false
		for _, g := range s.Groups {
			r, ok := lookup(p.groups, g)
			if !ok {
				continue
			}
			if !found || r.longer(best.Duration) || (!best.longer(r.Duration) && r.order < best.order) {
				best, found = r, true
			}
		}
		if found {
			return best.Decision
		}
	}
	if p.chat != nil {
		return *p.chat
	}
	return p.def
}

// Default is the retention when no rule matches.
func (p *Policy) Default() Decision { return p.def }

// Rules returns the rules in configuration order (for previews and for
// the audit record of a rule change).
func (p *Policy) Rules() []Rule { return append([]Rule(nil), p.rules...) }

// Equal reports whether p and q have the same default and the same rules
// in the same order, so that a reload that changed nothing is not audited
// as a rule change.
func (p *Policy) Equal(q *Policy) bool {
	if p == nil || q == nil {
		return p == q
	}
	if p.def != q.def || len(p.rules) != len(q.rules) {
		return false
	}
	for i := range p.rules {
		if p.rules[i] != q.rules[i] {
			return false
		}
	}
	return true
}

// String describes the policy in one line, the way the configuration
// writes it: `default=90d; group:Legal=10y; kind:groupchat=30d`.
func (p *Policy) String() string {
	if p == nil {
		return "archive disabled"
	}
	var b strings.Builder
	b.WriteString("default=")
	b.WriteString(p.def.Duration.String())
	for _, r := range p.rules {
		b.WriteString("; ")
		b.WriteString(r.Match)
		b.WriteByte('=')
		b.WriteString(r.Retention.String())
	}
	return b.String()
}

// lookup finds key case-insensitively in m, whose keys are lowercase.
// ASCII keys are lowercased into a stack buffer, so the lookup does not
// allocate (the compiler does not copy a []byte converted in a map index).
func lookup[V any](m map[string]V, key string) (V, bool) {
	if len(m) == 0 {
		var zero V
		return zero, false
	}
	upper := false
	for i := 0; i < len(key); i++ {
		c := key[i]
		if c >= utf8.RuneSelf {
			v, ok := m[strings.ToLower(key)]
			return v, ok
		}
		if 'A' <= c && c <= 'Z' {
			upper = true
		}
	}
	if !upper {
		v, ok := m[key]
		return v, ok
	}
	var buf [128]byte
	if len(key) > len(buf) {
		v, ok := m[strings.ToLower(key)]
		return v, ok
	}
	b := buf[:len(key)]
	for i := 0; i < len(key); i++ {
		c := key[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		b[i] = c
	}
	v, ok := m[string(b)]
	return v, ok
}
