package conf

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestArchiveDefaults(t *testing.T) {
	c, err := Parse("xmppd.toml", []byte(`domain = "corp.example"`))
	if err != nil {
		t.Fatal(err)
	}
	a := c.Archive
	for _, tc := range []struct {
		key       string
		got, want any
	}{
		{"archive.enabled", a.Enabled, true},
		{"archive.default_retention", a.DefaultRetention, "90d"},
		{"archive.default_retention parsed", a.Default, Retention{Keep: 90 * day}},
		{"archive.purge_interval", a.PurgeInterval, time.Hour},
		{"archive.purge_batch", a.PurgeBatch, 1000},
		{"archive.max_page", a.MaxPage, 250},
		{"archive.compliance_mode", a.ComplianceMode, false},
		{"archive.rule", len(a.Rules), 0},
	} {
		if tc.got != tc.want {
			t.Errorf("%s = %v; want %v", tc.key, tc.got, tc.want)
		}
	}
}

func TestArchiveEveryKey(t *testing.T) {
	doc := `domain = "corp.example"
[archive]
enabled = false
default_retention = "7y"
compliance_mode = true
purge_interval = "10m"
purge_batch = 200
max_page = 50

[[archive.rule]]
match = "group:Legal"
retention = "10y"

[[archive.rule]]
match = "user:Alice@Corp.Example"
retention = "2s"

[[archive.rule]]
match = "room:lobby@conference.corp.example"
retention = "none"

[[archive.rule]]
match = "kind:groupchat"
retention = "forever"

[[archive.rule]]
match = "kind:chat"
retention = "1w3d"
`
	c, err := Parse("xmppd.toml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	a := c.Archive
	if a.Enabled || !a.ComplianceMode || a.PurgeInterval != 10*time.Minute || a.PurgeBatch != 200 || a.MaxPage != 50 {
		t.Errorf("scalars: %+v", a)
	}
	if a.Default != (Retention{Keep: 7 * year}) {
		t.Errorf("Default = %+v", a.Default)
	}
	want := []ArchiveRule{
		{"group:Legal", "10y", Retention{Keep: 3650 * day}},
		{"user:alice@corp.example", "2s", Retention{Keep: 2 * time.Second}}, // JIDs normalized (RFC 7622)
		{"room:lobby@conference.corp.example", "none", Retention{None: true}},
		{"kind:groupchat", "forever", Retention{Forever: true}},
		{"kind:chat", "1w3d", Retention{Keep: 10 * day}},
	}
	if len(a.Rules) != len(want) {
		t.Fatalf("rules: %+v", a.Rules)
	}
	for i := range want {
		if a.Rules[i] != want[i] {
			t.Errorf("rule %d = %+v; want %+v", i, a.Rules[i], want[i])
		}
	}
}

func TestArchiveProblems(t *testing.T) {
	const head = "domain = \"corp.example\"\n[archive]\n"
	for _, tc := range []struct {
		name string
		doc  string // after head: line 3 onwards
		want string
	}{
		{"default empty", `default_retention = ""`,
			`xmppd.toml:3: archive.default_retention: must not be empty: a duration such as "90d" or "7y", "none" or "forever"`},
		{"default bad unit", `default_retention = "90x"`,
			`xmppd.toml:3: archive.default_retention: invalid duration "90x" (want a number and a unit: ns, us, ms, s, m, h, d, w or y, as in "30s" or "90d"), or "none" or "forever"`},
		{"default zero", `default_retention = "0d"`,
			`xmppd.toml:3: archive.default_retention: must be positive (got "0d"); "none" means never archived`},
		{"default negative", `default_retention = "-1y"`,
			`xmppd.toml:3: archive.default_retention: must be positive (got "-1y"); "none" means never archived`},
		{"default too long", `default_retention = "300y"`,
			`xmppd.toml:3: archive.default_retention: duration "300y" is too long, or "none" or "forever"`},
		{"default Forever", `default_retention = "Forever"`,
			`xmppd.toml:3: archive.default_retention: invalid duration "Forever" (want a number and a unit: ns, us, ms, s, m, h, d, w or y, as in "30s" or "90d"), or "none" or "forever"`},
		{"purge interval", `purge_interval = "10ms"`,
			`xmppd.toml:3: archive.purge_interval: must be at least 1s (got 10ms)`},
		{"purge batch", `purge_batch = 0`,
			`xmppd.toml:3: archive.purge_batch: must be at least 1 (got 0)`},
		{"max page", `max_page = -1`,
			`xmppd.toml:3: archive.max_page: must be at least 1 (got -1)`},
		{"unknown key", `default_retenton = "1d"`,
			`xmppd.toml:3: archive.default_retenton: unknown key (did you mean "default_retention"?)`},
		{"unknown kind", "[[archive.rule]]\nmatch = \"kind:x\"\nretention = \"1d\"",
			`xmppd.toml:4: archive.rule.match: "kind:x": unknown kind "x" (want chat or groupchat)`},
		{"unknown prefix", "[[archive.rule]]\nmatch = \"team:Legal\"\nretention = \"1d\"",
			`xmppd.toml:4: archive.rule.match: unknown kind "team" (want group:, user:, room: or kind:)`},
		{"no colon", "[[archive.rule]]\nmatch = \"Legal\"\nretention = \"1d\"",
			`xmppd.toml:4: archive.rule.match: "Legal": want group:NAME, user:JID, room:JID or kind:chat|groupchat`},
		{"user resource", "[[archive.rule]]\nmatch = \"user:bob@corp.example/phone\"\nretention = \"1d\"",
			`xmppd.toml:4: archive.rule.match: "user:bob@corp.example/phone": want a bare JID (name@domain) after user:`},
		{"user no local", "[[archive.rule]]\nmatch = \"user:corp.example\"\nretention = \"1d\"",
			`xmppd.toml:4: archive.rule.match: "user:corp.example": want a bare JID (name@domain) after user:`},
		{"user other domain", "[[archive.rule]]\nmatch = \"user:bob@other.example\"\nretention = \"1d\"",
			`xmppd.toml:4: archive.rule.match: "user:bob@other.example": not an account of corp.example; a rule for another domain never applies`},
		{"empty group", "[[archive.rule]]\nmatch = \"group:\"\nretention = \"1d\"",
			`xmppd.toml:4: archive.rule.match: "group:": empty group name`},
		{"match missing", "[[archive.rule]]\nretention = \"1d\"",
			`xmppd.toml:3: archive.rule: match: required (group:NAME, user:JID, room:JID or kind:chat|groupchat)`},
		{"retention missing", "[[archive.rule]]\nmatch = \"group:A\"",
			`xmppd.toml:3: archive.rule: retention: required (a duration such as "90d" or "7y", "none" or "forever")`},
		{"retention bad", "[[archive.rule]]\nmatch = \"group:A\"\nretention = \"ten years\"",
			`xmppd.toml:5: archive.rule.retention: invalid duration "ten years" (want a number and a unit: ns, us, ms, s, m, h, d, w or y, as in "30s" or "90d"), or "none" or "forever"`},
		{"duplicate group, case folded", "[[archive.rule]]\nmatch = \"group:Legal\"\nretention = \"1y\"\n[[archive.rule]]\nmatch = \"group:legal\"\nretention = \"2y\"",
			`xmppd.toml:7: archive.rule.match: "group:legal" is already matched by the rule at line 4; two rules for the same match contradict each other`},
		{"duplicate user, normalized", "[[archive.rule]]\nmatch = \"user:Bob@corp.example\"\nretention = \"1y\"\n[[archive.rule]]\nmatch = \"kind:chat\"\nretention = \"1y\"\n[[archive.rule]]\nmatch = \"user:bob@CORP.example\"\nretention = \"1y\"",
			`xmppd.toml:10: archive.rule.match: "user:bob@CORP.example" is already matched by the rule at line 4; two rules for the same match contradict each other`},
		{"two problems in order", "default_retention = \"x\"\n[[archive.rule]]\nmatch = \"kind:x\"\nretention = \"0s\"",
			`xmppd.toml:3: archive.default_retention: invalid duration "x" (want a number and a unit: ns, us, ms, s, m, h, d, w or y, as in "30s" or "90d"), or "none" or "forever"` + "\n" +
				`xmppd.toml:5: archive.rule.match: "kind:x": unknown kind "x" (want chat or groupchat)` + "\n" +
				`xmppd.toml:6: archive.rule.retention: must be positive (got "0s"); "none" means never archived`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse("xmppd.toml", []byte(head+tc.doc))
			if err == nil {
				t.Fatalf("no error; archive %+v", c.Archive)
			}
			if got := err.Error(); got != tc.want {
				t.Errorf("got:\n%s\nwant:\n%s", got, tc.want)
			}
			var e *Error
			if !errors.As(err, &e) || len(e.Problems) != strings.Count(tc.want, "\n")+1 {
				t.Errorf("want one Problem per line: %#v", err)
			}
		})
	}
}
