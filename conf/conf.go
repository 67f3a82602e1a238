// Package conf reads xmppd.toml, the configuration file of xmppd.
//
// Only cmd/xmppd imports conf: it maps a Config into the small option
// structs of the runtime packages, so those never see TOML. Everything is
// parsed here (durations, log levels, paths) so callers never parse strings.
//
// Mistakes are reported all at once, one per line, each with the file, the
// line and the key, the way a compiler does:
//
//	xmppd.toml:14: limits.max_stanza_bytes: must be between 4096 and 16777216 (got 12)
//	xmppd.toml:7: listen.c2ss: unknown key (did you mean "c2s"?)
//
// Unknown keys are errors rather than being ignored: a misspelt limit that
// silently keeps its default is how servers end up unprotected.
package conf

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// Config is the whole of xmppd.toml after defaults and validation.
// Relative paths have been resolved against the config file's directory.
type Config struct {
	// Domain is the XMPP domain served (RFC 7622 §3.2), lowercased.
	Domain string `toml:"domain"`
	// DataDir holds the database, the generated certificate and the admin
	// socket.
	DataDir string `toml:"data_dir"`
	// LogLevel is one of slog.LevelDebug, LevelInfo, LevelWarn, LevelError.
	LogLevel slog.Level `toml:"log_level"`
	// LogFormat is "text" or "json".
	LogFormat string `toml:"log_format"`
	// HideVersion makes XEP-0092 answers omit the version (name only).
	HideVersion bool `toml:"hide_version"`

	Listen    Listen    `toml:"listen"`
	Limits    Limits    `toml:"limits"`
	TLS       TLS       `toml:"tls"`
	Directory Directory `toml:"directory"`
	Archive   Archive   `toml:"archive"`
	MUC       MUC       `toml:"muc"`

	src *source // where each key was written; nil for Default()
}

// Listen holds the listener addresses. An empty address disables that
// listener.
type Listen struct {
	// C2S is the client listener with STARTTLS (RFC 6120 §5).
	C2S string `toml:"c2s"`
	// C2SDirectTLS is the client listener with TLS from the first byte
	// (XEP-0368).
	C2SDirectTLS string `toml:"c2s_direct_tls"`
	// HTTP serves /healthz and /metrics.
	HTTP string `toml:"http"`
	// AdminSocket is the Unix socket of `xmppd` admin commands. After
	// Load/Parse it is never empty: the default is <data_dir>/admin.sock.
	AdminSocket string `toml:"admin_socket"`
}

// Limits are the protections against misbehaving clients.
type Limits struct {
	// MaxStanzaBytes bounds one top-level element (RFC 6120 §13.12 item 4).
	MaxStanzaBytes int64 `toml:"max_stanza_bytes"`
	// AuthTimeout is the time allowed for TLS, SASL and resource binding.
	AuthTimeout time.Duration `toml:"auth_timeout"`
	// IdleTimeout without traffic makes the server send a XEP-0199 ping;
	// without an answer within PingTimeout the connection is closed.
	IdleTimeout time.Duration `toml:"idle_timeout"`
	PingTimeout time.Duration `toml:"ping_timeout"`

	MaxSessionsPerUser  int `toml:"max_sessions_per_user"`
	MaxConnectionsPerIP int `toml:"max_connections_per_ip"`
	// ConnectionsPerIPPerSecond is the refill rate of a per-IP token
	// bucket of new connections (burst twice the rate).
	ConnectionsPerIPPerSecond float64 `toml:"connections_per_ip_per_second"`
	// StanzasPerSecond is the per-connection stanza rate (burst twice the
	// rate); a faster sender is slowed down: the server stops reading from
	// it, so TCP back-pressure holds the flood in the sender's buffers.
	StanzasPerSecond float64 `toml:"stanzas_per_second"`
	// BytesPerSecond throttles reading from one connection; it never
	// produces an error.
	BytesPerSecond int64 `toml:"bytes_per_second"`
	// OutQueueBytes bounds a session's outbound queue; past it the session
	// is disconnected as a slow consumer.
	OutQueueBytes int64 `toml:"out_queue_bytes"`
	// MaxAuthFailures per connection (RFC 6120 §6.4.5 retries) before the
	// stream ends with a policy-violation stream error.
	MaxAuthFailures int `toml:"max_auth_failures"`
	// AuthFailureDelay is the first per-IP back-off after a failed
	// authentication; it doubles with each further failure.
	AuthFailureDelay time.Duration `toml:"auth_failure_delay"`
	// MaxOfflineMessages stored per user (XEP-0160); 0 stores none.
	MaxOfflineMessages int `toml:"max_offline_messages"`
	// ResumeTimeout is how long a XEP-0198 session may be resumed.
	ResumeTimeout time.Duration `toml:"resume_timeout"`
}

// TLS configures the server certificate.
type TLS struct {
	// CertFile and KeyFile are PEM files (the certificate file may hold
	// the chain), relative to the config file's directory unless
	// absolute. Both empty: a self-signed certificate is generated in
	// DataDir.
	CertFile string `toml:"cert_file"`
	KeyFile  string `toml:"key_file"`
	// RequireEncryption refuses authentication before STARTTLS
	// (RFC 6120 §5.3.1 mandatory-to-negotiate).
	RequireEncryption bool `toml:"require_encryption"`
}

// Directory says where users come from: the [[directory.user]] list
// (backend "static") or an LDAP directory (backend "ldap"), configured by
// the other fields, which are only allowed with "ldap". Empty attribute
// and filter fields are filled by the preset in package ldapsync.
type Directory struct {
	// Backend is "static" (users listed below) or "ldap".
	Backend string `toml:"backend"`
	Users   []User `toml:"user"`

	// Preset is "activedirectory" or "openldap": the attribute and filter
	// defaults (ldapsync.Config.ApplyPreset).
	Preset string `toml:"preset"`
	// URL lists the directory servers, tried in order; in TOML a string
	// or an array of strings. ldaps://host[:port] or ldap://host[:port].
	URL StringList `toml:"url"`
	// AllowInsecure permits ldap:// without StartTLS (passwords in clear
	// text): loopback tests only.
	AllowInsecure bool   `toml:"allow_insecure"`
	StartTLS      bool   `toml:"start_tls"`
	CAFile        string `toml:"ca_file"` // resolved; PEM, checked to hold a certificate
	BindDN        string `toml:"bind_dn"`
	// BindPassword is the service account's password, whether written
	// here or read (trailing newline removed) from BindPasswordFile.
	BindPassword     string `toml:"bind_password"`
	BindPasswordFile string `toml:"bind_password_file"` // resolved
	BaseDN           string `toml:"base_dn"`
	UserBaseDN       string `toml:"user_base_dn"`
	GroupBaseDN      string `toml:"group_base_dn"`
	UserFilter       string `toml:"user_filter"`
	GroupFilter      string `toml:"group_filter"`
	DisabledFilter   string `toml:"disabled_filter"`

	// Attribute names; a mapping attribute may list fallbacks separated by
	// commas ("displayName,cn").
	UsernameAttr    string   `toml:"username_attr"`
	AliasAttrs      []string `toml:"alias_attrs"` // nil: the preset's
	DisplayNameAttr string   `toml:"display_name_attr"`
	GroupNameAttr   string   `toml:"group_name_attr"`
	MemberAttr      string   `toml:"member_attr"`
	MemberUIDAttr   string   `toml:"member_uid_attr"`
	MailAttr        string   `toml:"mail_attr"`
	TitleAttr       string   `toml:"title_attr"`
	PhoneAttr       string   `toml:"phone_attr"`
	DepartmentAttr  string   `toml:"department_attr"`
	PhotoAttr       string   `toml:"photo_attr"`
	GivenNameAttr   string   `toml:"given_name_attr"` // vCard N/GIVEN
	SurnameAttr     string   `toml:"surname_attr"`    // vCard N/FAMILY
	NicknameAttr    string   `toml:"nickname_attr"`   // vCard NICKNAME; none: the given name
	IDAttr          string   `toml:"id_attr"`
	ChangeAttr      string   `toml:"change_attr"`
	ExpiresAttr     string   `toml:"expires_attr"`

	// RosterGroups are the groups whose members see each other; "*" is
	// every group. With backend "ldap" the default is ["*"].
	RosterGroups []string `toml:"roster_groups"`

	SyncInterval       time.Duration `toml:"sync_interval"`
	FullSyncInterval   time.Duration `toml:"full_sync_interval"`
	DialTimeout        time.Duration `toml:"dial_timeout"`
	RequestTimeout     time.Duration `toml:"request_timeout"`
	PageSize           int           `toml:"page_size"`
	MaxPhotoBytes      int           `toml:"max_photo_bytes"`
	MaxRemovedFraction float64       `toml:"max_removed_fraction"`

	// Both backends (conf/ldap.go): directory search and roster rules.
	SearchFields []string     `toml:"search_fields"`
	RosterRules  []RosterRule `toml:"roster_rule"`
}

// StringList is a TOML value that may be written as one string or as an
// array of strings.
type StringList []string

// User is one [[directory.user]] entry. Exactly one of Password and
// PasswordHash is set.
type User struct {
	// Name is the localpart, PRECIS UsernameCaseMapped (RFC 8265 §3.3),
	// so "Alice" becomes "alice".
	Name string `toml:"name"`
	// PasswordHash is a PHC string ($argon2id$...) printed by `xmppd passwd`.
	PasswordHash string `toml:"password_hash"`
	// Password is a plaintext password, for demos (see Warnings).
	Password    string   `toml:"password"`
	DisplayName string   `toml:"display_name"`
	Groups      []string `toml:"groups"`
	// GivenName, Surname and Nickname, when set, are the user's vCard N
	// and NICKNAME, owned by the configuration like LDAP's are by the
	// directory. Nickname defaults to GivenName.
	GivenName string `toml:"given_name"`
	Surname   string `toml:"surname"`
	Nickname  string `toml:"nickname"`
}

// Default returns a Config with every default filled in. Domain is empty
// (it is required) and DataDir and AdminSocket are not yet resolved.
func Default() *Config {
	return &Config{
		DataDir:   "./data",
		LogLevel:  slog.LevelInfo,
		LogFormat: "text",
		Listen: Listen{
			C2S:  "127.0.0.1:5222",
			HTTP: "127.0.0.1:5280",
		},
		Limits: Limits{
			MaxStanzaBytes:            262144,
			AuthTimeout:               30 * time.Second,
			IdleTimeout:               5 * time.Minute,
			PingTimeout:               60 * time.Second,
			MaxSessionsPerUser:        10,
			MaxConnectionsPerIP:       100,
			ConnectionsPerIPPerSecond: 20,
			StanzasPerSecond:          200,
			BytesPerSecond:            262144,
			OutQueueBytes:             4194304,
			MaxAuthFailures:           5,
			AuthFailureDelay:          time.Second,
			MaxOfflineMessages:        1000,
			ResumeTimeout:             5 * time.Minute,
		},
		TLS: TLS{RequireEncryption: true},
		MUC: defaultMUC(),
		Directory: Directory{
			Backend:            "static",
			SyncInterval:       5 * time.Minute,
			FullSyncInterval:   time.Hour,
			DialTimeout:        5 * time.Second,
			RequestTimeout:     30 * time.Second,
			PageSize:           500,
			MaxPhotoBytes:      128 << 10,
			MaxRemovedFraction: 0.5,
			SearchFields:       []string{"name", "department", "title"},
		},
		Archive: defaultArchive(),
	}
}

// Load reads, decodes, completes and validates the file at path. Relative
// paths in it are resolved against the directory of path, made absolute so
// that a later chdir does not move them. A configuration problem is
// returned as an *Error.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("conf: %w", err)
	}
	base, err := filepath.Abs(filepath.Dir(path))
	if err != nil {
		return nil, fmt.Errorf("conf: %s: %w", path, err)
	}
	return parse(path, base, data)
}

// Parse is Load for a document already in memory. name is used in
// messages and its directory is the base of relative paths.
func Parse(name string, data []byte) (*Config, error) {
	return parse(name, filepath.Dir(name), data)
}

func parse(name, base string, data []byte) (*Config, error) {
	var doc map[string]any
	if _, err := toml.Decode(string(data), &doc); err != nil {
		return nil, syntaxError(name, err)
	}
	src := &source{name: name, lines: scanKeyLines(data)}
	c := Default()
	c.src = src
	p := &problems{lines: src.lines}
	decodeTable(p, "", doc, structOf(c))
	validate(p, c, base)
	if len(p.list) > 0 {
		return nil, p.err(name)
	}
	return c, nil
}

// syntaxError turns a decoder error into a one-problem *Error. The
// parser stops at its first error, so there is only one.
func syntaxError(name string, err error) error {
	var pe toml.ParseError
	if errors.As(err, &pe) {
		// LastKey is the key whose value was being read, or empty when
		// the error is not inside a value.
		return &Error{File: name, Problems: []Problem{{Line: pe.Position.Line, Key: pe.LastKey, Msg: pe.Message}}}
	}
	return &Error{File: name, Problems: []Problem{{Msg: err.Error()}}}
}

// source remembers where a Config came from, for Warnings.
type source struct {
	name  string
	lines keyLines
}

// Problem is one mistake in a configuration file.
type Problem struct {
	Line int    // 1-based; 0 when no line applies (a required key is missing)
	Key  string // dotted key as written, e.g. "limits.max_stanza_bytes"; may be empty
	Msg  string
}

// Error is every Problem found in one file, ordered by line.
type Error struct {
	File     string
	Problems []Problem
}

// Error formats one problem per line as "file:line: key: message".
func (e *Error) Error() string {
	var b strings.Builder
	for i, p := range e.Problems {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(formatProblem(e.File, p))
	}
	return b.String()
}

func formatProblem(file string, p Problem) string {
	s := file
	if p.Line > 0 {
		s += ":" + strconv.Itoa(p.Line)
	}
	s += ": "
	if p.Key != "" {
		s += p.Key + ": "
	}
	return s + p.Msg
}

// problems collects Problems while decoding and validating.
type problems struct {
	lines keyLines
	list  []Problem
	// bad holds the paths whose values could not be decoded. Validation
	// stays quiet about them and everything below them: "name = 5" should
	// give one problem, not also "name: required".
	bad map[string]bool
}

// badf records a value that could not be decoded.
func (p *problems) badf(path, format string, args ...any) {
	if p.bad == nil {
		p.bad = map[string]bool{}
	}
	p.bad[path] = true
	p.add(path, format, args...)
}

// addf records a problem with the value at path (see joinKey/indexKey),
// unless that value or one it belongs to failed to decode.
func (p *problems) addf(path, format string, args ...any) {
	for q := path; q != ""; q = parentKey(q) {
		if p.bad[q] {
			return
		}
	}
	p.add(path, format, args...)
}

func (p *problems) add(path, format string, args ...any) {
	p.list = append(p.list, Problem{
		Line: p.lines.line(path),
		Key:  displayKey(path),
		Msg:  fmt.Sprintf(format, args...),
	})
}

func (p *problems) err(name string) *Error {
	sort.SliceStable(p.list, func(i, j int) bool { return p.list[i].Line < p.list[j].Line })
	return &Error{File: name, Problems: p.list}
}
