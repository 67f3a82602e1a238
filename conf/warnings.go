package conf

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
)

// Warnings lists settings that are legal but dangerous, one message per
// entry in the "file:line: key: message" form of errors. The caller logs
// them loudly at start-up.
func (c *Config) Warnings() []string {
	var w []string
	warn := func(path, format string, args ...any) {
		p := Problem{Key: displayKey(path), Msg: fmt.Sprintf(format, args...)}
		name := ""
		if c.src != nil {
			name = c.src.name
			p.Line = c.src.lines.line(path)
		}
		if name == "" {
			w = append(w, p.Key+": "+p.Msg)
			return
		}
		w = append(w, formatProblem(name, p))
	}

	// RFC 6120 §13.8: without TLS, SASL PLAIN sends passwords in clear.
	if !c.TLS.RequireEncryption && c.Listen.C2S != "" && !isLoopback(c.Listen.C2S) {
		warn("tls.require_encryption", "is false and listen.c2s (%s) is not a loopback address: passwords may cross the network unencrypted", c.Listen.C2S)
	} else if !c.TLS.RequireEncryption && c.Listen.C2S != "" {
		// Loopback only, as benchmarks and tests run; still said loudly,
		// because one edit of listen.c2s makes it the case above.
		warn("tls.require_encryption", "is false: clients may log in without TLS on %s (meant for benchmarks and tests on loopback only)", c.Listen.C2S)
	}
	if c.TLS.CertFile == "" && (reachable(c.Listen.C2S) || reachable(c.Listen.C2SDirectTLS)) {
		warn("tls.cert_file", "is not set, so xmppd uses a self-signed certificate on a listener reachable from the network; clients will reject it or ask users to trust it")
	}
	if reachable(c.Listen.HTTP) {
		warn("listen.http", "%s is not a loopback address: /metrics and /healthz are open to the network without authentication", c.Listen.HTTP)
	}

	var plain []string
	first := -1
	for i, u := range c.Directory.Users {
		if u.Password != "" {
			if first < 0 {
				first = i
			}
			plain = append(plain, u.Name)
		}
	}
	if len(plain) > 0 {
		names := plain
		more := ""
		if len(names) > 5 {
			names, more = names[:5], fmt.Sprintf(" and %d more", len(plain)-5)
		}
		warn(indexKey("directory.user", first)+".password", "%d user(s) have a plaintext password (%s%s); replace it with password_hash from `xmppd passwd`",
			len(plain), strings.Join(names, ", "), more)
	}
	if d := &c.Directory; d.Backend == "ldap" {
		if d.BindPassword != "" && d.BindPasswordFile == "" {
			warn("directory.bind_password", "the service account's password is in the configuration file; put it in a file readable only by xmppd and set bind_password_file")
		}
		if d.BindPasswordFile != "" {
			if fi, err := os.Stat(d.BindPasswordFile); err == nil && fi.Mode().Perm()&0o077 != 0 {
				warn("directory.bind_password_file", "%s is readable by other users (mode %v); chmod 600 it", d.BindPasswordFile, fi.Mode().Perm())
			}
		}
		if d.AllowInsecure && !d.StartTLS {
			for _, raw := range d.URL {
				if scheme, host, _ := checkLDAPURL(raw); scheme == "ldap" && !loopbackHost(host) {
					warn("directory.allow_insecure", "is true and %s is not a loopback address: passwords cross the network in clear text", raw)
				}
			}
		}
	}
	if c.Directory.Backend == "static" && len(c.Directory.Users) == 0 {
		warn("directory", "no [[directory.user]] is configured: nobody can log in")
	}
	return w
}

// reachable reports whether addr is an enabled listener on a non-loopback
// address.
func reachable(addr string) bool { return addr != "" && !isLoopback(addr) }

// isLoopback reports whether a listen address only accepts local
// connections. An empty host means every interface; a host name other than
// "localhost" may resolve anywhere.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}
