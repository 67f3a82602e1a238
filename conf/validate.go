package conf

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"mellium.im/xmpp/jid"
)

// maxSocketPath is the longest Unix socket path Linux accepts: sun_path is
// 108 bytes including the terminating NUL (unix(7)).
const maxSocketPath = 107

// validate checks c after decoding, fills in derived values (normalized
// names, resolved paths) and records every problem in p. base is the
// directory relative paths are resolved against.
func validate(p *problems, c *Config, base string) {
	validateTop(p, c, base)
	validateListen(p, c, base)
	validateLimits(p, &c.Limits)
	validateTLS(p, &c.TLS, base)
	validateDirectory(p, c, base)
	validateMUC(p, c)
	validateArchive(p, c)
}

func validateTop(p *problems, c *Config, base string) {
	if c.Domain == "" {
		if _, set := p.lines["domain"]; set {
			p.addf("domain", "must not be empty")
		} else {
			p.addf("domain", "required: the XMPP domain this server hosts, such as \"corp.example\"")
		}
	} else if d, err := checkDomain(c.Domain); err != nil {
		p.addf("domain", "%v (got %q)", err, c.Domain)
	} else {
		c.Domain = d
	}

	if c.DataDir == "" {
		p.addf("data_dir", "must not be empty")
	} else {
		c.DataDir = resolve(base, c.DataDir)
	}

	if c.LogFormat != "text" && c.LogFormat != "json" {
		p.addf("log_format", "must be \"text\" or \"json\" (got %q)", c.LogFormat)
	}
}

// checkDomain validates a domain as a DNS name (RFC 1035 §2.3.1, with the
// leading digits RFC 1123 §2.1 allows) and returns it in the form
// mellium.im/xmpp/jid gives domainparts (RFC 7622 §3.2), so that
// comparisons with parsed JIDs hold: lowercased, an "xn--" A-label
// turned into its U-label.
func checkDomain(d string) (string, error) {
	switch {
	case strings.Contains(d, "://"):
		return "", errors.New("must be a bare domain name, without a scheme")
	case strings.ContainsAny(d, "/@"):
		return "", errors.New("must be a bare domain name, without a path or user")
	case strings.Contains(d, ":"):
		return "", errors.New("must be a bare domain name, without a port")
	}
	d = strings.TrimSuffix(strings.ToLower(d), ".") // RFC 7622 §3.2: the final dot is stripped
	if _, err := netip.ParseAddr(d); err == nil {
		return "", errors.New("must be a DNS name, not an IP address")
	}
	if err := checkHostname(d); err != nil {
		return "", err
	}
	j, err := jid.New("", d, "")
	if err != nil {
		return "", fmt.Errorf("is not a valid XMPP domain: %v", err)
	}
	return j.Domainpart(), nil
}

// checkHostname validates an ASCII DNS name: labels of 1 to 63 letters,
// digits and inner hyphens, 253 bytes in all.
func checkHostname(h string) error {
	if h == "" {
		return errors.New("must not be empty")
	}
	if len(h) > 253 {
		return errors.New("is longer than 253 bytes")
	}
	for label := range strings.SplitSeq(h, ".") {
		if label == "" {
			return errors.New("has an empty label")
		}
		if len(label) > 63 {
			return fmt.Errorf("has a label longer than 63 bytes")
		}
		if label[0] == '-' || label[len(label)-1] == '-' {
			return fmt.Errorf("has a label starting or ending with '-'")
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				if c >= 0x80 {
					return errors.New("must be ASCII: write an internationalized name in its xn-- form")
				}
				return fmt.Errorf("contains %q, which DNS names cannot", c)
			}
		}
	}
	return nil
}

// resolve makes a relative path relative to base (the config's directory).
func resolve(base, path string) string {
	if filepath.IsAbs(path) {
		return filepath.Clean(path)
	}
	return filepath.Join(base, path)
}

func validateListen(p *problems, c *Config, base string) {
	l := &c.Listen
	addrs := []struct {
		key  string
		addr string
	}{
		{"listen.c2s", l.C2S},
		{"listen.c2s_direct_tls", l.C2SDirectTLS},
		{"listen.http", l.HTTP},
	}
	for i, a := range addrs {
		if a.addr == "" {
			continue // disabled
		}
		if err := checkAddr(a.addr); err != nil {
			p.addf(a.key, "%v", err)
			continue
		}
		for _, b := range addrs[:i] {
			if sameAddr(a.addr, b.addr) {
				p.addf(a.key, "same address as %s (%s)", b.key, b.addr)
			}
		}
	}

	if l.AdminSocket == "" {
		if c.DataDir != "" {
			l.AdminSocket = filepath.Join(c.DataDir, "admin.sock")
		}
	} else {
		l.AdminSocket = resolve(base, l.AdminSocket)
	}
	if n := len(l.AdminSocket); n > maxSocketPath {
		p.addf("listen.admin_socket", "%q is %d bytes, longer than the %d bytes a Unix socket path may have; set listen.admin_socket to a shorter path",
			l.AdminSocket, n, maxSocketPath)
	}
}

// checkAddr validates a listen address: host:port with a numeric port
// (0 picks a free one) and a host that is empty (all interfaces), an IP
// address or a DNS name.
func checkAddr(a string) error {
	host, port, err := net.SplitHostPort(a)
	if err != nil {
		return fmt.Errorf("want host:port, such as \"127.0.0.1:5222\" or \"[::1]:5222\" (got %q)", a)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("port must be a number from 0 to 65535 (got %q)", port)
	}
	if host == "" {
		return nil
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return nil
	}
	if err := checkHostname(host); err != nil {
		return fmt.Errorf("host %q %v", host, err)
	}
	return nil
}

// sameAddr reports whether two valid listen addresses would collide. Port 0
// never collides: each listener gets its own free port.
func sameAddr(a, b string) bool {
	ah, ap, err1 := net.SplitHostPort(a)
	bh, bp, err2 := net.SplitHostPort(b)
	if err1 != nil || err2 != nil || ap == "0" {
		return false
	}
	an, _ := strconv.Atoi(ap)
	bn, _ := strconv.Atoi(bp)
	return an == bn && strings.EqualFold(ah, bh)
}

func validateLimits(p *problems, l *Limits) {
	intRange := func(key string, v, lo, hi int64) {
		if v < lo || v > hi {
			p.addf("limits."+key, "must be between %d and %d (got %d)", lo, hi, v)
		}
	}
	atLeast := func(key string, v, lo int64) {
		if v < lo {
			p.addf("limits."+key, "must be at least %d (got %d)", lo, v)
		}
	}
	positive := func(key string, d time.Duration) {
		if d <= 0 {
			p.addf("limits."+key, "must be greater than 0 (got %v)", d)
		}
	}
	rate := func(key string, v float64) {
		if !(v > 0) || math.IsInf(v, 0) { // !(v > 0) also catches NaN
			p.addf("limits."+key, "must be a number greater than 0 (got %v)", v)
		}
	}

	intRange("max_stanza_bytes", l.MaxStanzaBytes, 4096, 16<<20)
	positive("auth_timeout", l.AuthTimeout)
	positive("idle_timeout", l.IdleTimeout)
	positive("ping_timeout", l.PingTimeout)
	atLeast("max_sessions_per_user", int64(l.MaxSessionsPerUser), 1)
	atLeast("max_connections_per_ip", int64(l.MaxConnectionsPerIP), 1)
	rate("connections_per_ip_per_second", l.ConnectionsPerIPPerSecond)
	rate("stanzas_per_second", l.StanzasPerSecond)
	// Below 1 KiB/s a client cannot even finish the TLS handshake in
	// auth_timeout.
	atLeast("bytes_per_second", l.BytesPerSecond, 1024)
	// A queue smaller than one stanza would disconnect every recipient of
	// a large stanza.
	if l.OutQueueBytes < l.MaxStanzaBytes {
		p.addf("limits.out_queue_bytes", "must be at least limits.max_stanza_bytes (%d) (got %d)", l.MaxStanzaBytes, l.OutQueueBytes)
	}
	atLeast("max_auth_failures", int64(l.MaxAuthFailures), 1)
	positive("auth_failure_delay", l.AuthFailureDelay)
	atLeast("max_offline_messages", int64(l.MaxOfflineMessages), 0)
	positive("resume_timeout", l.ResumeTimeout)
}

func validateTLS(p *problems, t *TLS, base string) {
	switch {
	case t.CertFile != "" && t.KeyFile == "":
		p.addf("tls.key_file", "required when tls.cert_file is set")
	case t.CertFile == "" && t.KeyFile != "":
		p.addf("tls.cert_file", "required when tls.key_file is set")
	}
	if t.CertFile != "" {
		t.CertFile = resolve(base, t.CertFile)
	}
	if t.KeyFile != "" {
		t.KeyFile = resolve(base, t.KeyFile)
	}
}

func validateDirectory(p *problems, c *Config, base string) {
	validateDirectoryShared(p, &c.Directory)
	switch b := c.Directory.Backend; b {
	case "static":
		for _, k := range ldapKeys() {
			if _, set := p.lines[joinKey("directory", k)]; set {
				p.addf(joinKey("directory", k), "only used with backend = \"ldap\"")
			}
		}
	case "ldap":
		validateLDAP(p, &c.Directory, base)
		for i := range c.Directory.Users {
			p.addf(indexKey("directory.user", i), "not used with backend = \"ldap\": accounts come from the directory")
		}
		return
	default:
		p.addf("directory.backend", "must be \"static\" or \"ldap\" (got %q)", b)
	}

	// Validate names against the configured domain when it is valid, so a
	// bad domain is reported once, not once per user.
	domain := c.Domain
	if _, err := jid.New("", domain, ""); err != nil || domain == "" {
		domain = "example.com"
	}
	seen := make(map[string]int, len(c.Directory.Users)) // name -> line
	for i := range c.Directory.Users {
		u := &c.Directory.Users[i]
		path := indexKey("directory.user", i)
		validateUser(p, u, path, domain, seen)
	}
}

func validateUser(p *problems, u *User, path, domain string, seen map[string]int) {
	switch {
	case u.Name == "":
		p.addf(path+".name", "required")
	default:
		j, err := jid.New(u.Name, domain, "")
		if err != nil || j.Localpart() == "" {
			p.addf(path+".name", "%q is not a valid XMPP username (RFC 7622 §3.3): %v", u.Name, err)
			break
		}
		u.Name = j.Localpart() // PRECIS UsernameCaseMapped: "Alice" -> "alice"
		line := p.lines.line(path + ".name")
		if first, dup := seen[u.Name]; dup {
			p.addf(path+".name", "duplicate user %q (first defined at line %d)", u.Name, first)
		} else {
			seen[u.Name] = line
		}
	}

	switch {
	case u.Password != "" && u.PasswordHash != "":
		p.addf(path+".password", "set either password or password_hash, not both")
	case u.Password == "" && u.PasswordHash == "":
		p.addf(path, "needs password_hash (from `xmppd passwd`) or password")
	case u.PasswordHash != "" && !strings.HasPrefix(u.PasswordHash, "$argon2id$"):
		p.addf(path+".password_hash", "must be an argon2id PHC string from `xmppd passwd` (\"$argon2id$v=19$...\")")
	}

	// Groups: trimmed, without duplicates, none empty.
	groups := u.Groups[:0:0]
	for k, g := range u.Groups {
		g = strings.TrimSpace(g)
		if g == "" {
			p.addf(indexKey(path+".groups", k), "empty group name")
			continue
		}
		dup := false
		for _, h := range groups {
			dup = dup || h == g
		}
		if !dup {
			groups = append(groups, g)
		}
	}
	u.Groups = groups
}
