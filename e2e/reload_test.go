package e2e

import (
	"crypto/tls"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestSIGHUPReload: SIGHUP makes new TLS handshakes present the certificate
// now in cert_file/key_file (no restart, sessions kept) and applies the
// configured log level.
func TestSIGHUPReload(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	writeSelfSigned(t, certFile, keyFile, domain)
	direct := FreePort()
	cfgText := func(level string) string {
		return fmt.Sprintf(`domain = %q
data_dir = %q
log_level = %q
[listen]
c2s = "127.0.0.1:%d"
c2s_direct_tls = "127.0.0.1:%d"
http = "127.0.0.1:%d"
[tls]
cert_file = %q
key_file = %q
[directory]
backend = "static"
[[directory.user]]
name = "alice"
password = "alice-pw"
`, domain, filepath.Join(dir, "data"), level, FreePort(), direct, FreePort(), certFile, keyFile)
	}
	cfg := filepath.Join(dir, "xmppd.toml")
	text := cfgText("info")
	if err := os.WriteFile(cfg, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	x := StartXmppd(t, cfg)

	serial := func() string {
		t.Helper()
		c, err := tls.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", direct), &tls.Config{InsecureSkipVerify: true, ServerName: domain, NextProtos: []string{"xmpp-client"}})
		if err != nil {
			t.Fatalf("direct TLS: %v", err)
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].SerialNumber.String()
	}
	before := serial()
	alice := StartSlix(t, SlixOptions{JID: "alice@" + domain, Password: "alice-pw", Port: direct, DirectTLS: true, NoVerify: true})
	alice.WaitSession(t)

	writeSelfSigned(t, certFile, keyFile, domain)
	// Same config except the log level, written in place.
	if err := os.WriteFile(cfg, []byte(strings.Replace(text, `log_level = "info"`, `log_level = "debug"`, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	x.cmd.Process.Signal(syscall.SIGHUP)
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(x.Output(), "SIGHUP: log level set") && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	out := x.Output()
	if !strings.Contains(out, "SIGHUP: TLS certificate reloaded") || !strings.Contains(out, "level=DEBUG") {
		t.Errorf("after SIGHUP the log lacks the reload and the new level:\n%s", out)
	}
	if after := serial(); after == before {
		t.Errorf("certificate serial %s unchanged after SIGHUP", after)
	}
	// The session survived the reload.
	alice.MustDo(t, map[string]any{"cmd": "ping", "jid": domain})
}
