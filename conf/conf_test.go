package conf

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestDefault(t *testing.T) {
	c := Default()
	for _, tc := range []struct {
		key  string
		got  any
		want any
	}{
		{"domain", c.Domain, ""},
		{"data_dir", c.DataDir, "./data"},
		{"log_level", c.LogLevel, slog.LevelInfo},
		{"log_format", c.LogFormat, "text"},
		{"hide_version", c.HideVersion, false},
		{"listen.c2s", c.Listen.C2S, "127.0.0.1:5222"},
		{"listen.c2s_direct_tls", c.Listen.C2SDirectTLS, ""},
		{"listen.http", c.Listen.HTTP, "127.0.0.1:5280"},
		{"listen.admin_socket", c.Listen.AdminSocket, ""},
		{"limits.max_stanza_bytes", c.Limits.MaxStanzaBytes, int64(262144)},
		{"limits.auth_timeout", c.Limits.AuthTimeout, 30 * time.Second},
		{"limits.idle_timeout", c.Limits.IdleTimeout, 5 * time.Minute},
		{"limits.ping_timeout", c.Limits.PingTimeout, 60 * time.Second},
		{"limits.max_sessions_per_user", c.Limits.MaxSessionsPerUser, 10},
		{"limits.max_connections_per_ip", c.Limits.MaxConnectionsPerIP, 100},
		{"limits.connections_per_ip_per_second", c.Limits.ConnectionsPerIPPerSecond, 20.0},
		{"limits.stanzas_per_second", c.Limits.StanzasPerSecond, 200.0},
		{"limits.bytes_per_second", c.Limits.BytesPerSecond, int64(262144)},
		{"limits.out_queue_bytes", c.Limits.OutQueueBytes, int64(4194304)},
		{"limits.max_auth_failures", c.Limits.MaxAuthFailures, 5},
		{"limits.auth_failure_delay", c.Limits.AuthFailureDelay, time.Second},
		{"limits.max_offline_messages", c.Limits.MaxOfflineMessages, 1000},
		{"limits.resume_timeout", c.Limits.ResumeTimeout, 5 * time.Minute},
		{"tls.cert_file", c.TLS.CertFile, ""},
		{"tls.key_file", c.TLS.KeyFile, ""},
		{"tls.require_encryption", c.TLS.RequireEncryption, true},
		{"directory.backend", c.Directory.Backend, "static"},
		{"directory.user", len(c.Directory.Users), 0},
		{"directory.url", len(c.Directory.URL), 0},
		{"directory.roster_groups", len(c.Directory.RosterGroups), 0}, // ["*"] once backend = "ldap"
		{"directory.sync_interval", c.Directory.SyncInterval, 5 * time.Minute},
		{"directory.full_sync_interval", c.Directory.FullSyncInterval, time.Hour},
		{"directory.dial_timeout", c.Directory.DialTimeout, 5 * time.Second},
		{"directory.request_timeout", c.Directory.RequestTimeout, 30 * time.Second},
		{"directory.page_size", c.Directory.PageSize, 500},
		{"directory.max_photo_bytes", c.Directory.MaxPhotoBytes, 131072},
		{"directory.max_removed_fraction", c.Directory.MaxRemovedFraction, 0.5},
	} {
		if !reflect.DeepEqual(tc.got, tc.want) {
			t.Errorf("%s = %#v, want %#v", tc.key, tc.got, tc.want)
		}
	}
}

// TestMinimal checks that a file with only the domain gets every default,
// plus the derived values.
func TestMinimal(t *testing.T) {
	c, err := Parse("/etc/ownchat/xmppd.toml", []byte(`domain = "corp.example"`))
	if err != nil {
		t.Fatal(err)
	}
	want := Default()
	want.Domain = "corp.example"
	want.DataDir = "/etc/ownchat/data"
	want.Listen.AdminSocket = "/etc/ownchat/data/admin.sock"
	c.src = nil
	if !reflect.DeepEqual(c, want) {
		t.Errorf("got  %+v\nwant %+v", c, want)
	}
}

func TestEveryKey(t *testing.T) {
	doc := `
domain = "Chat.Corp.Example."
data_dir = "/var/lib/ownchat"
log_level = "debug"
log_format = "json"
hide_version = true

[listen]
c2s = "[::]:5222"
c2s_direct_tls = "0.0.0.0:5223"
http = "localhost:0"
admin_socket = "run/admin.sock"

[limits]
max_stanza_bytes = 65536
auth_timeout = "1m30s"
idle_timeout = "1d"
ping_timeout = "2w"
max_sessions_per_user = 3
max_connections_per_ip = 7
connections_per_ip_per_second = 0.5
stanzas_per_second = 50
bytes_per_second = 1024
out_queue_bytes = 65536
max_auth_failures = 2
auth_failure_delay = "250ms"
max_offline_messages = 0
resume_timeout = "1w2d3h"

[tls]
cert_file = "certs/fullchain.pem"
key_file = "/etc/ssl/key.pem"
require_encryption = false

[directory]
backend = "static"

[[directory.user]]
name = "Alice"
password_hash = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g"
display_name = "Alice Example"
groups = ["Engineering", " Ops ", "Engineering"]

[[directory.user]]
name = "bob"
password = "hunter2"
`
	c, err := Parse("/srv/xmppd.toml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	want := &Config{
		Domain:      "chat.corp.example",
		DataDir:     "/var/lib/ownchat",
		LogLevel:    slog.LevelDebug,
		LogFormat:   "json",
		HideVersion: true,
		Listen: Listen{
			C2S:          "[::]:5222",
			C2SDirectTLS: "0.0.0.0:5223",
			HTTP:         "localhost:0",
			AdminSocket:  "/srv/run/admin.sock",
		},
		Limits: Limits{
			MaxStanzaBytes:            65536,
			AuthTimeout:               90 * time.Second,
			IdleTimeout:               24 * time.Hour,
			PingTimeout:               14 * 24 * time.Hour,
			MaxSessionsPerUser:        3,
			MaxConnectionsPerIP:       7,
			ConnectionsPerIPPerSecond: 0.5,
			StanzasPerSecond:          50,
			BytesPerSecond:            1024,
			OutQueueBytes:             65536,
			MaxAuthFailures:           2,
			AuthFailureDelay:          250 * time.Millisecond,
			MaxOfflineMessages:        0,
			ResumeTimeout:             9*24*time.Hour + 3*time.Hour,
		},
		TLS: TLS{
			CertFile:          "/srv/certs/fullchain.pem",
			KeyFile:           "/etc/ssl/key.pem",
			RequireEncryption: false,
		},
		Directory: Directory{
			Backend:            "static",
			SyncInterval:       5 * time.Minute,
			FullSyncInterval:   time.Hour,
			DialTimeout:        5 * time.Second,
			RequestTimeout:     30 * time.Second,
			PageSize:           500,
			MaxPhotoBytes:      131072,
			MaxRemovedFraction: 0.5,
			SearchFields:       []string{"name", "department", "title"},
			Users: []User{
				{
					Name:         "alice",
					PasswordHash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g",
					DisplayName:  "Alice Example",
					Groups:       []string{"Engineering", "Ops"},
				},
				{Name: "bob", Password: "hunter2"},
			},
		},
	}
	want.MUC = defaultMUC()         // [muc] has its own test (muc_test.go)
	want.Archive = defaultArchive() // [archive] too (archive_test.go)
	c.src = nil
	if !reflect.DeepEqual(c, want) {
		t.Errorf("got  %+v\nwant %+v", c, want)
	}
}

// TestInlineForms checks that the same settings written as dotted keys,
// inline tables and an array of inline tables decode alike.
func TestInlineForms(t *testing.T) {
	doc := `domain = "corp.example"
listen = { c2s = "127.0.0.1:6222", http = "" }
limits.max_stanza_bytes = 8192
directory.user = [
  { name = "alice", password = "a", groups = ["x"] },
  { name = "bob", password = "b" },
]
`
	c, err := Parse("xmppd.toml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen.C2S != "127.0.0.1:6222" || c.Listen.HTTP != "" || c.Limits.MaxStanzaBytes != 8192 {
		t.Errorf("listen/limits: %+v %+v", c.Listen, c.Limits)
	}
	if len(c.Directory.Users) != 2 || c.Directory.Users[1].Name != "bob" || c.Directory.Users[0].Groups[0] != "x" {
		t.Errorf("users: %+v", c.Directory.Users)
	}
}

func TestPaths(t *testing.T) {
	for _, tc := range []struct {
		name, dataDir, adminSocket string
		wantData, wantSocket       string
	}{
		{"xmppd.toml", "", "", "data", "data/admin.sock"},
		{"xmppd.toml", "./var", "", "var", "var/admin.sock"},
		{"conf/xmppd.toml", "", "", "conf/data", "conf/data/admin.sock"},
		{"conf/xmppd.toml", "../data", "", "data", "data/admin.sock"},
		{"/etc/ownchat/xmppd.toml", "", "", "/etc/ownchat/data", "/etc/ownchat/data/admin.sock"},
		{"/etc/ownchat/xmppd.toml", "/var/lib/ownchat", "", "/var/lib/ownchat", "/var/lib/ownchat/admin.sock"},
		{"/etc/ownchat/xmppd.toml", "/var/lib/ownchat/", "/run/ownchat.sock", "/var/lib/ownchat", "/run/ownchat.sock"},
		{"/etc/ownchat/xmppd.toml", "", "admin.sock", "/etc/ownchat/data", "/etc/ownchat/admin.sock"},
	} {
		doc := `domain = "corp.example"` + "\n"
		if tc.dataDir != "" {
			doc += `data_dir = "` + tc.dataDir + `"` + "\n"
		}
		if tc.adminSocket != "" {
			doc += `listen.admin_socket = "` + tc.adminSocket + `"` + "\n"
		}
		c, err := Parse(tc.name, []byte(doc))
		if err != nil {
			t.Errorf("%s %q: %v", tc.name, tc.dataDir, err)
			continue
		}
		if c.DataDir != filepath.FromSlash(tc.wantData) || c.Listen.AdminSocket != filepath.FromSlash(tc.wantSocket) {
			t.Errorf("%s data_dir=%q admin_socket=%q: got %q, %q; want %q, %q",
				tc.name, tc.dataDir, tc.adminSocket, c.DataDir, c.Listen.AdminSocket, tc.wantData, tc.wantSocket)
		}
	}
}

// TestLoad checks that Load resolves relative paths against the config
// file's directory, made absolute, and names the file in messages.
func TestLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "xmppd.toml")
	if err := os.WriteFile(path, []byte("domain = \"corp.example\"\ndata_dir = \"state\"\ntls.cert_file = \"c.pem\"\ntls.key_file = \"k.pem\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// Load a relative path from another working directory.
	t.Chdir(dir)
	c, err := Load("xmppd.toml")
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, "state"); c.DataDir != want {
		t.Errorf("DataDir = %q, want %q", c.DataDir, want)
	}
	if want := filepath.Join(dir, "c.pem"); c.TLS.CertFile != want {
		t.Errorf("CertFile = %q, want %q", c.TLS.CertFile, want)
	}

	if err := os.WriteFile(path, []byte("domain = \"corp.example\"\n\nlisten.c2ss = \"\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Load(path)
	if want := path + `:3: listen.c2ss: unknown key (did you mean "c2s"?)`; err == nil || err.Error() != want {
		t.Errorf("Load: got %v, want %s", err, want)
	}

	_, err = Load(filepath.Join(dir, "missing.toml"))
	if !errors.Is(err, os.ErrNotExist) || !strings.HasPrefix(err.Error(), "conf: ") {
		t.Errorf("Load(missing) = %v, want a conf: error wrapping ErrNotExist", err)
	}
}

// TestProblems checks every validation rule, unknown keys at every level
// and type errors, each with its exact message and line.
func TestProblems(t *testing.T) {
	const hash = `"$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g"`
	for _, tc := range []struct {
		name string
		doc  string
		want string // the whole error, one problem per line
	}{
		// Syntax errors come from the toml parser with its line.
		{"syntax", "domain = \"corp.example\"\n\nx = = 1\n",
			"xmppd.toml:3: x: expected value but found '=' instead"},
		{"syntax in value", "domain = \"corp.example\"\nlimits.max_stanza_bytes = 99999999999999999999\n",
			"xmppd.toml:2: limits.max_stanza_bytes: 99999999999999999999 is out of range for int64"},
		{"duplicate key", "domain = \"a.example\"\ndomain = \"b.example\"\n",
			"xmppd.toml:2: domain: Key 'domain' has already been defined."},

		// Top level.
		{"domain missing", "",
			`xmppd.toml: domain: required: the XMPP domain this server hosts, such as "corp.example"`},
		{"domain empty", `domain = ""`,
			"xmppd.toml:1: domain: must not be empty"},
		{"domain scheme", `domain = "https://corp.example"`,
			`xmppd.toml:1: domain: must be a bare domain name, without a scheme (got "https://corp.example")`},
		{"domain port", `domain = "corp.example:5222"`,
			`xmppd.toml:1: domain: must be a bare domain name, without a port (got "corp.example:5222")`},
		{"domain path", `domain = "corp.example/x"`,
			`xmppd.toml:1: domain: must be a bare domain name, without a path or user (got "corp.example/x")`},
		{"domain ip", `domain = "192.0.2.1"`,
			`xmppd.toml:1: domain: must be a DNS name, not an IP address (got "192.0.2.1")`},
		{"domain underscore", `domain = "corp_x.example"`,
			`xmppd.toml:1: domain: contains '_', which DNS names cannot (got "corp_x.example")`},
		{"domain empty label", `domain = "corp..example"`,
			`xmppd.toml:1: domain: has an empty label (got "corp..example")`},
		{"domain hyphen", `domain = "-corp.example"`,
			`xmppd.toml:1: domain: has a label starting or ending with '-' (got "-corp.example")`},
		{"domain unicode", `domain = "bücher.example"`,
			`xmppd.toml:1: domain: must be ASCII: write an internationalized name in its xn-- form (got "bücher.example")`},
		{"domain long label", `domain = "` + strings.Repeat("a", 64) + `.example"`,
			`xmppd.toml:1: domain: has a label longer than 63 bytes (got "` + strings.Repeat("a", 64) + `.example")`},
		{"data_dir empty", "domain = \"corp.example\"\ndata_dir = \"\"",
			"xmppd.toml:2: data_dir: must not be empty"},
		{"log_level", "domain = \"corp.example\"\nlog_level = \"verbose\"",
			`xmppd.toml:2: log_level: must be one of "debug", "info", "warn", "error" (got "verbose")`},
		{"log_format", "domain = \"corp.example\"\nlog_format = \"xml\"",
			`xmppd.toml:2: log_format: must be "text" or "json" (got "xml")`},

		// [listen]
		{"addr no port", "domain = \"corp.example\"\n[listen]\nc2s = \"127.0.0.1\"",
			`xmppd.toml:3: listen.c2s: want host:port, such as "127.0.0.1:5222" or "[::1]:5222" (got "127.0.0.1")`},
		{"addr port range", "domain = \"corp.example\"\n[listen]\nc2s_direct_tls = \":65536\"",
			`xmppd.toml:3: listen.c2s_direct_tls: port must be a number from 0 to 65535 (got "65536")`},
		{"addr service name", "domain = \"corp.example\"\n[listen]\nhttp = \"localhost:http\"",
			`xmppd.toml:3: listen.http: port must be a number from 0 to 65535 (got "http")`},
		{"addr bad host", "domain = \"corp.example\"\n[listen]\nhttp = \"my_host:80\"",
			`xmppd.toml:3: listen.http: host "my_host" contains '_', which DNS names cannot`},
		{"addr duplicate", "domain = \"corp.example\"\n[listen]\nc2s = \"127.0.0.1:5222\"\nhttp = \"127.0.0.1:5222\"",
			"xmppd.toml:4: listen.http: same address as listen.c2s (127.0.0.1:5222)"},
		{"admin socket too long", "domain = \"corp.example\"\n[listen]\nadmin_socket = \"/" + strings.Repeat("s", 110) + "\"",
			`xmppd.toml:3: listen.admin_socket: "/` + strings.Repeat("s", 110) + `" is 111 bytes, longer than the 107 bytes a Unix socket path may have; set listen.admin_socket to a shorter path`},

		// [limits]
		{"max_stanza_bytes low", "domain = \"corp.example\"\n\n[limits]\nmax_stanza_bytes = 12",
			"xmppd.toml:4: limits.max_stanza_bytes: must be between 4096 and 16777216 (got 12)"},
		{"max_stanza_bytes high", "domain = \"corp.example\"\nlimits.max_stanza_bytes = 16777217\nlimits.out_queue_bytes = 33554432",
			"xmppd.toml:2: limits.max_stanza_bytes: must be between 4096 and 16777216 (got 16777217)"},
		{"durations", `domain = "corp.example"
[limits]
auth_timeout = "0s"
idle_timeout = "-5m"
ping_timeout = "0"
auth_failure_delay = "-1d"
resume_timeout = "0w"`,
			"xmppd.toml:3: limits.auth_timeout: must be greater than 0 (got 0s)\n" +
				"xmppd.toml:4: limits.idle_timeout: must be greater than 0 (got -5m0s)\n" +
				"xmppd.toml:5: limits.ping_timeout: must be greater than 0 (got 0s)\n" +
				"xmppd.toml:6: limits.auth_failure_delay: must be greater than 0 (got -24h0m0s)\n" +
				"xmppd.toml:7: limits.resume_timeout: must be greater than 0 (got 0s)"},
		{"counts", `domain = "corp.example"
[limits]
max_sessions_per_user = 0
max_connections_per_ip = -1
max_auth_failures = 0
max_offline_messages = -1
bytes_per_second = 1023`,
			"xmppd.toml:3: limits.max_sessions_per_user: must be at least 1 (got 0)\n" +
				"xmppd.toml:4: limits.max_connections_per_ip: must be at least 1 (got -1)\n" +
				"xmppd.toml:5: limits.max_auth_failures: must be at least 1 (got 0)\n" +
				"xmppd.toml:6: limits.max_offline_messages: must be at least 0 (got -1)\n" +
				"xmppd.toml:7: limits.bytes_per_second: must be at least 1024 (got 1023)"},
		{"rates", `domain = "corp.example"
[limits]
connections_per_ip_per_second = 0
stanzas_per_second = nan`,
			"xmppd.toml:3: limits.connections_per_ip_per_second: must be a number greater than 0 (got 0)\n" +
				"xmppd.toml:4: limits.stanzas_per_second: must be a number greater than 0 (got NaN)"},
		{"out queue below stanza", "domain = \"corp.example\"\n[limits]\nout_queue_bytes = 65536\nmax_stanza_bytes = 65537",
			"xmppd.toml:3: limits.out_queue_bytes: must be at least limits.max_stanza_bytes (65537) (got 65536)"},
		{"duration syntax", "domain = \"corp.example\"\nlimits.idle_timeout = \"5 minutes\"",
			`xmppd.toml:2: limits.idle_timeout: invalid duration "5 minutes" (want a number and a unit: ns, us, ms, s, m, h, d, w or y, as in "30s" or "90d")`},

		// [tls]
		{"key without cert", "domain = \"corp.example\"\n[tls]\nkey_file = \"k.pem\"",
			"xmppd.toml:2: tls.cert_file: required when tls.key_file is set"},
		{"cert without key", "domain = \"corp.example\"\n[tls]\ncert_file = \"c.pem\"",
			"xmppd.toml:2: tls.key_file: required when tls.cert_file is set"},

		// [directory]
		{"backend other", "domain = \"corp.example\"\n[directory]\nbackend = \"sql\"",
			`xmppd.toml:3: directory.backend: must be "static" or "ldap" (got "sql")`},
		{"ldap keys with static", "domain = \"corp.example\"\n[directory]\nbackend = \"static\"\nurl = \"ldaps://dc1\"\nbase_dn = \"dc=x\"\n[[directory.user]]\nname = \"a\"\npassword = \"x\"",
			"xmppd.toml:4: directory.url: only used with backend = \"ldap\"\n" +
				"xmppd.toml:5: directory.base_dn: only used with backend = \"ldap\""},
		{"users", `domain = "corp.example"

[[directory.user]]
name = "alice"
password = "x"

[[directory.user]]
name = "ALICE"
password_hash = ` + hash + `

[[directory.user]]
password = "x"

[[directory.user]]
name = "carol"

[[directory.user]]
name = "dave"
password = "x"
password_hash = ` + hash + `

[[directory.user]]
name = "erin"
password_hash = "$2b$10$abcdefghijklmnopqrstuv"
groups = [
  "ok",
  "  ",
]

[[directory.user]]
name = "frank@corp"
password = "x"
`,
			"xmppd.toml:8: directory.user.name: duplicate user \"alice\" (first defined at line 4)\n" +
				"xmppd.toml:11: directory.user.name: required\n" +
				"xmppd.toml:14: directory.user: needs password_hash (from `xmppd passwd`) or password\n" +
				"xmppd.toml:19: directory.user.password: set either password or password_hash, not both\n" +
				"xmppd.toml:24: directory.user.password_hash: must be an argon2id PHC string from `xmppd passwd` (\"$argon2id$v=19$...\")\n" +
				"xmppd.toml:27: directory.user.groups: empty group name\n" +
				`xmppd.toml:31: directory.user.name: "frank@corp" is not a valid XMPP username (RFC 7622 §3.3): localpart contains forbidden characters`},

		// Unknown keys, at every level, with suggestions.
		{"unknown top", "domain = \"corp.example\"\ndomian = \"x\"",
			`xmppd.toml:2: domian: unknown key (did you mean "domain"?)`},
		{"unknown top far", "domain = \"corp.example\"\nfoo = 1",
			"xmppd.toml:2: foo: unknown key"},
		{"unknown table", "domain = \"corp.example\"\n[listn]\nc2s = \"x\"\nhttp = \"y\"",
			`xmppd.toml:2: listn: unknown key (did you mean "listen"?)`},
		{"unknown listen", "domain = \"corp.example\"\n[listen]\n\n\n\n\nc2ss = \"\"",
			`xmppd.toml:7: listen.c2ss: unknown key (did you mean "c2s"?)`},
		{"unknown limits hyphen", "domain = \"corp.example\"\n[limits]\nmax-stanza-bytes = 4096",
			`xmppd.toml:3: limits.max-stanza-bytes: unknown key (did you mean "max_stanza_bytes"?)`},
		{"unknown tls case", "domain = \"corp.example\"\n[tls]\nCert_File = \"x\"",
			`xmppd.toml:3: tls.Cert_File: unknown key (did you mean "cert_file"?)`},
		{"unknown directory", "domain = \"corp.example\"\n[directory]\nbackend = \"static\"\n[[directory.users]]\nname = \"a\"",
			`xmppd.toml:4: directory.users: unknown key (did you mean "user"?)`},
		{"unknown nested table", "domain = \"corp.example\"\n[directory.ldap]\nurl = \"ldaps://x\"",
			"xmppd.toml:2: directory.ldap: unknown key"},
		{"unknown in second user", "domain = \"corp.example\"\n[[directory.user]]\nname = \"a\"\npassword = \"x\"\n[[directory.user]]\nname = \"b\"\npassword = \"x\"\ngroup = [\"g\"]",
			`xmppd.toml:8: directory.user.group: unknown key (did you mean "groups"?)`},
		{"unknown inline", "domain = \"corp.example\"\nlisten = { c2s = \"127.0.0.1:1\", htttp = \"\" }",
			`xmppd.toml:2: listen.htttp: unknown key (did you mean "http"?)`},
		{"unknown in inline user array", "domain = \"corp.example\"\ndirectory.user = [\n  { name = \"a\", password = \"x\" },\n  { name = \"b\", pasword = \"x\" },\n]",
			`xmppd.toml:4: directory.user.pasword: unknown key (did you mean "password"?)` + "\n" +
				"xmppd.toml:4: directory.user: needs password_hash (from `xmppd passwd`) or password"},
		{"unknown quoted", "domain = \"corp.example\"\n\"listen.c2s\" = \"x\"",
			`xmppd.toml:2: "listen.c2s": unknown key`},

		// Type errors.
		{"type string", "domain = 5",
			"xmppd.toml:1: domain: expected a string (got integer 5)"},
		{"type bool", "domain = \"corp.example\"\nhide_version = \"yes\"",
			`xmppd.toml:2: hide_version: expected true or false (got string "yes")`},
		{"type int", "domain = \"corp.example\"\n[limits]\nmax_stanza_bytes = \"256k\"",
			`xmppd.toml:3: limits.max_stanza_bytes: expected an integer (got string "256k")`},
		{"type int float", "domain = \"corp.example\"\n[limits]\nmax_sessions_per_user = 2.5",
			"xmppd.toml:3: limits.max_sessions_per_user: expected an integer (got float 2.5)"},
		{"type float", "domain = \"corp.example\"\n[limits]\nstanzas_per_second = true",
			"xmppd.toml:3: limits.stanzas_per_second: expected a number (got boolean true)"},
		{"type duration", "domain = \"corp.example\"\n[limits]\nauth_timeout = 30",
			`xmppd.toml:3: limits.auth_timeout: expected a duration string such as "30s" or "90d" (got integer 30)`},
		{"type level", "domain = \"corp.example\"\nlog_level = 1",
			"xmppd.toml:2: log_level: expected a string (got integer 1)"},
		{"type table", "domain = \"corp.example\"\nlisten = \"127.0.0.1:5222\"",
			`xmppd.toml:2: listen: expected a table (got string "127.0.0.1:5222")`},
		{"type array", "domain = \"corp.example\"\n[[directory.user]]\nname = \"a\"\npassword = \"x\"\ngroups = \"eng\"",
			`xmppd.toml:5: directory.user.groups: expected an array (got string "eng")`},
		{"type array element", "domain = \"corp.example\"\n[[directory.user]]\nname = \"a\"\npassword = \"x\"\ngroups = [\n  \"eng\",\n  7,\n]",
			"xmppd.toml:7: directory.user.groups: expected a string (got integer 7)"},
		{"type users not tables", "domain = \"corp.example\"\ndirectory.user = [\"alice\"]",
			`xmppd.toml:2: directory.user: expected a table (got string "alice")`},
		{"type date", "domain = \"corp.example\"\nlimits.resume_timeout = 1979-05-27",
			`xmppd.toml:2: limits.resume_timeout: expected a duration string such as "30s" or "90d" (got date-time 1979-05-27 00:00:00 +0000 date-local)`},
		// A badly typed name reports once, not also "required".
		{"type name", "domain = \"corp.example\"\n[[directory.user]]\nname = 5\npassword = \"x\"",
			"xmppd.toml:3: directory.user.name: expected a string (got integer 5)"},

		// Everything at once, ordered by line.
		{"many", `domain = "corp.example"
[listen]
c2ss = ""
[limits]
max_stanza_bytes = 12
auth_timeout = 30
[tls]
require_encryption = "no"
`,
			`xmppd.toml:3: listen.c2ss: unknown key (did you mean "c2s"?)` + "\n" +
				"xmppd.toml:5: limits.max_stanza_bytes: must be between 4096 and 16777216 (got 12)\n" +
				`xmppd.toml:6: limits.auth_timeout: expected a duration string such as "30s" or "90d" (got integer 30)` + "\n" +
				`xmppd.toml:8: tls.require_encryption: expected true or false (got string "no")`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse("xmppd.toml", []byte(tc.doc))
			if err == nil {
				t.Fatalf("no error; config %+v", c)
			}
			if got := err.Error(); got != tc.want {
				t.Errorf("got:\n%s\nwant:\n%s", got, tc.want)
			}
			var e *Error
			if !errors.As(err, &e) || e.File != "xmppd.toml" || len(e.Problems) != strings.Count(tc.want, "\n")+1 {
				t.Errorf("error is not an *Error with one Problem per line: %#v", err)
			}
		})
	}
}

func TestDomainNormalized(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"corp.example", "corp.example"},
		{"Corp.EXAMPLE", "corp.example"},
		{"corp.example.", "corp.example"},
		{"localhost", "localhost"},
		{"1und1.example", "1und1.example"},
		{"xn--bcher-kva.example", "bücher.example"}, // RFC 7622 §3.2.1: U-labels
	} {
		c, err := Parse("xmppd.toml", []byte(`domain = "`+tc.in+`"`))
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		if c.Domain != tc.want {
			t.Errorf("%q: Domain = %q, want %q", tc.in, c.Domain, tc.want)
		}
	}
}

func TestLogLevels(t *testing.T) {
	for in, want := range map[string]slog.Level{
		"debug": slog.LevelDebug, "info": slog.LevelInfo, "warn": slog.LevelWarn, "error": slog.LevelError,
		"WARN": slog.LevelWarn, "Debug": slog.LevelDebug,
	} {
		c, err := Parse("xmppd.toml", []byte("domain = \"corp.example\"\nlog_level = \""+in+"\""))
		if err != nil || c.LogLevel != want {
			t.Errorf("log_level %q: %v, %v; want %v", in, c, err, want)
		}
	}
}

func TestUserNamesNormalized(t *testing.T) {
	doc := `domain = "corp.example"
[[directory.user]]
name = "Alice"
password = "x"
[[directory.user]]
name = "ÉMILE"
password = "x"
`
	c, err := Parse("xmppd.toml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if got := []string{c.Directory.Users[0].Name, c.Directory.Users[1].Name}; got[0] != "alice" || got[1] != "émile" {
		t.Errorf("names = %q, want [alice émile]", got)
	}
}

func TestWarnings(t *testing.T) {
	users := func(n int) string {
		var b strings.Builder
		for i := range n {
			b.WriteString("[[directory.user]]\nname = \"u" + string(rune('a'+i)) + "\"\npassword = \"x\"\n")
		}
		return b.String()
	}
	const hashed = "[[directory.user]]\nname = \"h\"\npassword_hash = \"$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g\"\n"
	for _, tc := range []struct {
		name string
		doc  string
		want []string
	}{
		{"safe defaults", "domain = \"corp.example\"\n" + hashed, nil},
		{"loopback plaintext warned", "domain = \"corp.example\"\ntls.require_encryption = false\nlisten.c2s = \"[::1]:5222\"\n" + hashed,
			[]string{"xmppd.toml:2: tls.require_encryption: is false: clients may log in without TLS on [::1]:5222 (meant for benchmarks and tests on loopback only)"}},
		{"plaintext c2s on network",
			"domain = \"corp.example\"\n[listen]\nc2s = \"0.0.0.0:5222\"\n[tls]\ncert_file = \"c\"\nkey_file = \"k\"\nrequire_encryption = false\n" + hashed,
			[]string{"xmppd.toml:7: tls.require_encryption: is false and listen.c2s (0.0.0.0:5222) is not a loopback address: passwords may cross the network unencrypted"}},
		{"self-signed on network",
			"domain = \"corp.example\"\nlisten.c2s_direct_tls = \":5223\"\n" + hashed,
			[]string{"xmppd.toml: tls.cert_file: is not set, so xmppd uses a self-signed certificate on a listener reachable from the network; clients will reject it or ask users to trust it"}},
		{"http on network",
			"domain = \"corp.example\"\n[listen]\n\nhttp = \"10.0.0.1:5280\"\n" + hashed,
			[]string{"xmppd.toml:4: listen.http: 10.0.0.1:5280 is not a loopback address: /metrics and /healthz are open to the network without authentication"}},
		{"http by host name",
			"domain = \"corp.example\"\nlisten.http = \"metrics.corp.example:5280\"\n" + hashed,
			[]string{"xmppd.toml:2: listen.http: metrics.corp.example:5280 is not a loopback address: /metrics and /healthz are open to the network without authentication"}},
		{"plaintext passwords",
			"domain = \"corp.example\"\n" + hashed + users(7),
			[]string{"xmppd.toml:7: directory.user.password: 7 user(s) have a plaintext password (ua, ub, uc, ud, ue and 2 more); replace it with password_hash from `xmppd passwd`"}},
		{"no users", "domain = \"corp.example\"\n",
			[]string{"xmppd.toml: directory: no [[directory.user]] is configured: nobody can log in"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse("xmppd.toml", []byte(tc.doc))
			if err != nil {
				t.Fatal(err)
			}
			if got := c.Warnings(); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got  %q\nwant %q", got, tc.want)
			}
		})
	}

	// Default() has no file: messages carry the key only.
	c := Default()
	c.Listen.HTTP = ":5280"
	got := c.Warnings()
	if len(got) != 2 || !strings.HasPrefix(got[0], "listen.http: :5280 is not a loopback address") {
		t.Errorf("Default().Warnings() = %q", got)
	}
}

// TestQuickstart loads the example the docs point at, when it exists.
func TestQuickstart(t *testing.T) {
	path := filepath.Join("..", "examples", "quickstart.toml")
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		t.Skip("no ../examples/quickstart.toml yet")
	}
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if c.Domain == "" || len(c.Directory.Users) == 0 {
		t.Errorf("quickstart: domain %q, %d users", c.Domain, len(c.Directory.Users))
	}
	for _, w := range c.Warnings() {
		t.Logf("quickstart warning: %s", w)
	}
}

func TestSuggest(t *testing.T) {
	known := tomlFields(reflect.TypeFor[Limits]())
	for _, tc := range []struct{ in, want string }{
		{"max_stanza_byte", "max_stanza_bytes"},
		{"MAX_STANZA_BYTES", "max_stanza_bytes"},
		{"max-auth-failures", "max_auth_failures"},
		{"ping_timout", "ping_timeout"},
		{"idle", ""},
		{"x", ""},
	} {
		want := ""
		if tc.want != "" {
			want = ` (did you mean "` + tc.want + `"?)`
		}
		if got := suggest(tc.in, known); got != want {
			t.Errorf("suggest(%q) = %q, want %q", tc.in, got, want)
		}
	}
}

// BenchmarkParse20000Users measures start-up with a large static directory.
func BenchmarkParse20000Users(b *testing.B) {
	var doc strings.Builder
	doc.WriteString("domain = \"corp.example\"\n")
	for i := range 20000 {
		doc.WriteString("[[directory.user]]\nname = \"user")
		doc.WriteString(strings.Repeat("x", i%7))
		doc.WriteString(string(rune('a' + i%26)))
		doc.WriteString(strconv.Itoa(i))
		doc.WriteString("\"\npassword_hash = \"$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g\"\ngroups = [\"Everyone\", \"Team ")
		doc.WriteString(strconv.Itoa(i % 40))
		doc.WriteString("\"]\n")
	}
	data := []byte(doc.String())
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse("xmppd.toml", data); err != nil {
			b.Fatal(err)
		}
	}
}

// writeCA writes a self-signed certificate as PEM and returns its path.
func writeCA(t *testing.T, dir string) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "CA"},
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestLDAP decodes every LDAP key of [directory].
func TestLDAP(t *testing.T) {
	dir := t.TempDir()
	writeCA(t, dir)
	if err := os.WriteFile(filepath.Join(dir, "ldap.secret"), []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	doc := `domain = "corp.example"
[directory]
backend = "ldap"
preset = "activedirectory"
url = ["ldaps://dc1.corp.example:636", "ldap://dc2.corp.example"]
start_tls = false
allow_insecure = true
ca_file = "ca.pem"
bind_dn = "CN=xmppd,OU=Service Accounts,DC=corp,DC=example"
bind_password_file = "ldap.secret"
base_dn = "DC=corp,DC=example"
user_base_dn = "OU=Staff,DC=corp,DC=example"
group_base_dn = "OU=Groups,DC=corp,DC=example"
user_filter = "(&(objectCategory=person)(objectClass=user))"
group_filter = "(objectClass=group)"
disabled_filter = "(userAccountControl:1.2.840.113556.1.4.803:=2)"
username_attr = "sAMAccountName"
alias_attrs = ["userPrincipalName", "mail"]
display_name_attr = "displayName,cn"
group_name_attr = "cn"
member_attr = "member"
member_uid_attr = "memberUid"
mail_attr = "mail"
title_attr = "title"
phone_attr = "telephoneNumber"
department_attr = "department"
photo_attr = "thumbnailPhoto"
id_attr = "objectGUID"
change_attr = "uSNChanged"
expires_attr = "accountExpires"
roster_groups = ["Engineering", " Sales "]
sync_interval = "1m"
full_sync_interval = "2h"
dial_timeout = "2s"
request_timeout = "10s"
page_size = 1000
max_photo_bytes = 65536
max_removed_fraction = 0.25
`
	c, err := Parse(filepath.Join(dir, "xmppd.toml"), []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	want := Directory{
		Backend: "ldap", Preset: "activedirectory",
		URL:           StringList{"ldaps://dc1.corp.example:636", "ldap://dc2.corp.example"},
		AllowInsecure: true, CAFile: filepath.Join(dir, "ca.pem"),
		BindDN: "CN=xmppd,OU=Service Accounts,DC=corp,DC=example", BindPassword: "s3cret",
		BindPasswordFile: filepath.Join(dir, "ldap.secret"),
		BaseDN:           "DC=corp,DC=example", UserBaseDN: "OU=Staff,DC=corp,DC=example", GroupBaseDN: "OU=Groups,DC=corp,DC=example",
		UserFilter: "(&(objectCategory=person)(objectClass=user))", GroupFilter: "(objectClass=group)",
		DisabledFilter: "(userAccountControl:1.2.840.113556.1.4.803:=2)",
		UsernameAttr:   "sAMAccountName", AliasAttrs: []string{"userPrincipalName", "mail"},
		DisplayNameAttr: "displayName,cn", GroupNameAttr: "cn", MemberAttr: "member", MemberUIDAttr: "memberUid",
		MailAttr: "mail", TitleAttr: "title", PhoneAttr: "telephoneNumber", DepartmentAttr: "department",
		PhotoAttr: "thumbnailPhoto", IDAttr: "objectGUID", ChangeAttr: "uSNChanged", ExpiresAttr: "accountExpires",
		RosterGroups: []string{"Engineering", "Sales"},
		SyncInterval: time.Minute, FullSyncInterval: 2 * time.Hour, DialTimeout: 2 * time.Second,
		RequestTimeout: 10 * time.Second, PageSize: 1000, MaxPhotoBytes: 65536, MaxRemovedFraction: 0.25,
		SearchFields: []string{"name", "department", "title"},
	}
	if !reflect.DeepEqual(c.Directory, want) {
		t.Errorf("got  %+v\nwant %+v", c.Directory, want)
	}

	// The smallest LDAP configuration: a single URL string, defaults.
	c, err = Parse("xmppd.toml", []byte(`domain = "corp.example"
directory = { backend = "ldap", preset = "openldap", url = "ldaps://ldap.corp.example", base_dn = "dc=corp,dc=example" }
`))
	if err != nil {
		t.Fatal(err)
	}
	d := c.Directory
	if !reflect.DeepEqual(d.URL, StringList{"ldaps://ldap.corp.example"}) || !reflect.DeepEqual(d.RosterGroups, []string{"*"}) ||
		d.AliasAttrs != nil || d.SyncInterval != 5*time.Minute || d.BindDN != "" {
		t.Errorf("minimal: %+v", d)
	}
	if w := c.Warnings(); len(w) != 0 {
		t.Errorf("minimal LDAP configuration warns: %q", w)
	}
}

func TestLDAPProblems(t *testing.T) {
	dir := t.TempDir()
	writeCA(t, dir)
	os.WriteFile(filepath.Join(dir, "empty.secret"), []byte("\n"), 0o600)
	os.WriteFile(filepath.Join(dir, "not.pem"), []byte("hello"), 0o600)
	const head = "domain = \"corp.example\"\n[directory]\nbackend = \"ldap\"\npreset = \"openldap\"\nbase_dn = \"dc=corp,dc=example\"\n"
	for _, tc := range []struct {
		name string
		doc  string // after head (line 6 on)
		want string
	}{
		{"required", "", "xmppd.toml:2: directory.url: required with backend = \"ldap\", such as \"ldaps://dc1.corp.example\" or a list of servers"},
		{"no preset", "url = \"ldaps://a\"\npreset = \"\"", ""}, // replaced below
		{"bad preset", "url = \"ldaps://a\"\n[directory.x]", ""},
		{"plain ldap", "url = \"ldap://dc1.corp.example\"",
			`xmppd.toml:6: directory.url: ldap://dc1.corp.example would send the service account's and every user's password in clear text: use ldaps://, set start_tls = true, or (loopback tests only) allow_insecure = true`},
		{"plain ldap in list", "url = [\n  \"ldaps://dc1\",\n  \"ldap://dc2\",\n]",
			`xmppd.toml:8: directory.url: ldap://dc2 would send the service account's and every user's password in clear text: use ldaps://, set start_tls = true, or (loopback tests only) allow_insecure = true`},
		{"start_tls on ldaps", "url = \"ldaps://dc1\"\nstart_tls = true",
			"xmppd.toml:7: directory.start_tls: is for ldap:// URLs; ldaps://dc1 is ldaps://, already TLS"},
		{"url scheme", "url = \"https://dc1\"", `xmppd.toml:6: directory.url: must start with ldaps:// or ldap:// (got "https://dc1")`},
		{"url with dn", "url = \"ldaps://dc1/dc=corp,dc=example\"",
			`xmppd.toml:6: directory.url: must be scheme://host[:port] only; the DNs go in base_dn (got "ldaps://dc1/dc=corp,dc=example")`},
		{"url type", "url = 5", "xmppd.toml:6: directory.url: expected a string or an array of strings (got integer 5)"},
		{"url element type", "url = [\"ldaps://a\", 5]", "xmppd.toml:6: directory.url: expected a string (got integer 5)"},
		{"ca file missing", "url = \"ldaps://a\"\nca_file = \"nope.pem\"",
			"xmppd.toml:7: directory.ca_file: open " + filepath.Join(dir, "nope.pem") + ": no such file or directory"},
		{"ca file not pem", "url = \"ldaps://a\"\nca_file = \"not.pem\"",
			"xmppd.toml:7: directory.ca_file: " + filepath.Join(dir, "not.pem") + " holds no PEM certificate"},
		{"both passwords", "url = \"ldaps://a\"\nbind_dn = \"cn=x\"\nbind_password = \"p\"\nbind_password_file = \"empty.secret\"",
			"xmppd.toml:8: directory.bind_password: set either bind_password or bind_password_file, not both"},
		{"empty password file", "url = \"ldaps://a\"\nbind_dn = \"cn=x\"\nbind_password_file = \"empty.secret\"",
			"xmppd.toml:8: directory.bind_password_file: " + filepath.Join(dir, "empty.secret") + " is empty"},
		{"bind dn without password", "url = \"ldaps://a\"\nbind_dn = \"cn=x\"",
			"xmppd.toml:7: directory.bind_dn: needs bind_password_file (or bind_password); an empty password would be an anonymous bind"},
		{"password without bind dn", "url = \"ldaps://a\"\nbind_password = \"p\"",
			"xmppd.toml:2: directory.bind_dn: required with a bind password: the DN of the service account"},
		{"bad dn", "url = \"ldaps://a\"\nuser_base_dn = \"corp.example\"",
			`xmppd.toml:7: directory.user_base_dn: "corp.example" is not a DN: DN ended with incomplete type, value pair`},
		{"bad filter", "url = \"ldaps://a\"\nuser_filter = \"objectClass=user\"",
			`xmppd.toml:7: directory.user_filter: "objectClass=user" is not an LDAP filter (RFC 4515): LDAP Result Code 201 "Filter Compile Error": ldap: filter does not start with an '('`},
		{"bad attribute", "url = \"ldaps://a\"\nmail_attr = \"e-mail address\"",
			`xmppd.toml:7: directory.mail_attr: is not an attribute name (got "e-mail address")`},
		{"one attribute", "url = \"ldaps://a\"\nusername_attr = \"uid,cn\"",
			`xmppd.toml:7: directory.username_attr: must be one attribute name (got "uid,cn")`},
		{"empty roster group", "url = \"ldaps://a\"\nroster_groups = [\"a\", \"\"]", "xmppd.toml:7: directory.roster_groups: empty group name"},
		{"intervals", "url = \"ldaps://a\"\nsync_interval = \"10m\"\nfull_sync_interval = \"5m\"\npage_size = 0\nmax_removed_fraction = 0",
			"xmppd.toml:8: directory.full_sync_interval: must be at least 10m0s (got 5m0s)\n" +
				"xmppd.toml:9: directory.page_size: must be between 1 and 100000 (got 0)\n" +
				"xmppd.toml:10: directory.max_removed_fraction: must be greater than 0 and at most 1 (got 0)"},
		{"users with ldap", "url = \"ldaps://a\"\n[[directory.user]]\nname = \"alice\"\npassword = \"x\"",
			"xmppd.toml:7: directory.user: not used with backend = \"ldap\": accounts come from the directory"},
		{"unknown ldap key", "url = \"ldaps://a\"\nbasedn = \"dc=x\"", `xmppd.toml:7: directory.basedn: unknown key (did you mean "base_dn"?)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc, want := head+tc.doc, tc.want
			switch tc.name {
			case "no preset":
				doc = strings.Replace(head, "preset = \"openldap\"\n", "", 1) + "url = \"ldaps://a\"\n"
				want = `xmppd.toml:2: directory.preset: required with backend = "ldap": "activedirectory" or "openldap"`
			case "bad preset":
				doc = strings.Replace(head, "openldap", "samba", 1) + "url = \"ldaps://a\"\n"
				want = `xmppd.toml:4: directory.preset: must be "activedirectory" or "openldap" (got "samba")`
			}
			_, err := Parse(filepath.Join(dir, "xmppd.toml"), []byte(doc))
			if err == nil {
				t.Fatal("no error")
			}
			if got := strings.ReplaceAll(err.Error(), filepath.Join(dir, "xmppd.toml"), "xmppd.toml"); got != want {
				t.Errorf("got:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

func TestLDAPWarnings(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "open.secret"), []byte("p"), 0o644)
	os.WriteFile(filepath.Join(dir, "closed.secret"), []byte("p"), 0o600)
	const head = "domain = \"corp.example\"\n[directory]\nbackend = \"ldap\"\npreset = \"openldap\"\nbase_dn = \"dc=corp,dc=example\"\nbind_dn = \"cn=x\"\n"
	for _, tc := range []struct {
		name string
		doc  string
		want []string
	}{
		{"safe", "url = \"ldaps://a\"\nbind_password_file = \"closed.secret\"", nil},
		{"loopback insecure", "url = \"ldap://127.0.0.1:389\"\nallow_insecure = true\nbind_password_file = \"closed.secret\"", nil},
		{"inline password", "url = \"ldaps://a\"\nbind_password = \"p\"",
			[]string{"xmppd.toml:8: directory.bind_password: the service account's password is in the configuration file; put it in a file readable only by xmppd and set bind_password_file"}},
		{"readable file", "url = \"ldaps://a\"\nbind_password_file = \"open.secret\"",
			[]string{"xmppd.toml:8: directory.bind_password_file: " + filepath.Join(dir, "open.secret") + " is readable by other users (mode -rw-r--r--); chmod 600 it"}},
		{"insecure on network", "url = \"ldap://dc1.corp.example\"\nallow_insecure = true\nbind_password_file = \"closed.secret\"",
			[]string{"xmppd.toml:8: directory.allow_insecure: is true and ldap://dc1.corp.example is not a loopback address: passwords cross the network in clear text"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse(filepath.Join(dir, "xmppd.toml"), []byte(head+tc.doc))
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, w := range c.Warnings() {
				got = append(got, strings.ReplaceAll(w, filepath.Join(dir, "xmppd.toml"), "xmppd.toml"))
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got  %q\nwant %q", got, tc.want)
			}
		})
	}
}
