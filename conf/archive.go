package conf

import "time"

// Archive is the [archive] section (issue 6): the message archive
// (XEP-0313) and its retention rules. The retention strings are parsed by
// validation into Retention values.
// TODO(archive): defaults, validation (file:line: key), README.
type Archive struct {
	// Enabled archives 1:1 and room messages per the rules below.
	Enabled bool `toml:"enabled"`
	// DefaultRetention applies when no rule matches: a duration ("90d",
	// "7y", "36h"), "none" (never archived) or "forever".
	DefaultRetention string `toml:"default_retention"`
	// ComplianceMode forces archiving: users cannot turn it off with
	// XEP-0313 preferences.
	ComplianceMode bool `toml:"compliance_mode"`
	// PurgeInterval is how often expired messages are deleted.
	PurgeInterval time.Duration `toml:"purge_interval"`
	// PurgeBatch is the most records one deletion transaction removes.
	PurgeBatch int `toml:"purge_batch"`
	// MaxPage caps a MAM page (XEP-0313 / RSM max).
	MaxPage int `toml:"max_page"`
	// Rules are the [[archive.rule]] entries; the most specific wins.
	Rules []ArchiveRule `toml:"rule"`

	// Default is DefaultRetention parsed.
	Default Retention `toml:"-"`
}

// ArchiveRule is one [[archive.rule]]: match is "group:NAME", "user:JID",
// "room:JID" or "kind:chat" / "kind:groupchat".
type ArchiveRule struct {
	Match     string `toml:"match"`
	Retention string `toml:"retention"`
	// Parsed is Retention parsed.
	Parsed Retention `toml:"-"`
}

// Retention is a parsed retention value: exactly one of Keep > 0, None
// and Forever.
type Retention struct {
	Keep    time.Duration
	None    bool
	Forever bool
}
