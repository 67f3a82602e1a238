package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// retentionConfig keeps everything forever except alice's archive (a user
// rule) and the Temps group's (carol), which expire after two seconds.
func retentionConfig(dataDir string, c2s, http int, extra string) string {
	return fmt.Sprintf(`
domain = %q
data_dir = %q
log_level = "debug"
[listen]
c2s = "127.0.0.1:%d"
http = "127.0.0.1:%d"
[tls]
require_encryption = false
[directory]
backend = "static"
[[directory.user]]
name = "alice"
password = "alice-pw"
[[directory.user]]
name = "bob"
password = "bob-pw"
[[directory.user]]
name = "carol"
password = "carol-pw"
groups = ["Temps"]
[archive]
enabled = true
default_retention = "forever"
%s
[[archive.rule]]
match = "user:alice@%s"
retention = "2s"
[[archive.rule]]
match = "group:Temps"
retention = "2s"
`, domain, dataDir, c2s, http, extra, domain)
}

// exportBodies returns the bodies in owner's archive through `ctl archive
// export`, checking that the manifest counts them.
func exportBodies(t *testing.T, cfg, owner string) []string {
	t.Helper()
	out, errOut, code := runXmppd(t, "ctl", "-config", cfg, "archive", "export", "-user", owner)
	if code != 0 {
		t.Fatalf("archive export -user %s: exit %d: %s", owner, code, errOut)
	}
	var bodies []string
	manifest := -1
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var m struct {
			Body     string `json:"body"`
			Manifest *struct {
				Count int `json:"count"`
			} `json:"manifest"`
		}
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("export line %q: %v", line, err)
		}
		if m.Manifest != nil {
			manifest = m.Manifest.Count
			continue
		}
		bodies = append(bodies, m.Body)
	}
	if manifest != len(bodies) {
		t.Fatalf("export of %s: manifest count %d, %d lines:\n%s", owner, manifest, len(bodies), out)
	}
	slices.Sort(bodies)
	return bodies
}

var removedRE = regexp.MustCompile(`removed (\d+) messages \((\d+) offline\) in `)

// TestRetentionPurge: the real binary with real clients. Messages past a
// user rule and a group rule are removed by `ctl archive purge`; the
// default ("forever") keeps the rest; a legal hold keeps the held user's
// expired messages; the scheduler purges on its own; a SIGHUP rule change
// is applied and audited.
func TestRetentionPurge(t *testing.T) {
	requireSlixmpp(t)
	dir := t.TempDir()
	c2s := FreePort()
	cfg := WriteConfig(t, retentionConfig(filepath.Join(dir, "data"), c2s, FreePort(), ""))
	x := StartXmppd(t, cfg)

	login := func(user string) *Slix {
		s := StartSlix(t, SlixOptions{JID: user + "@" + domain, Password: user + "-pw", Port: c2s, Resource: "r", NoVerify: true})
		s.WaitSession(t)
		s.MustDo(t, map[string]any{"cmd": "presence"})
		return s
	}
	alice, bob, carol := login("alice"), login("bob"), login("carol")
	send := func(from *Slix, to, body string) {
		from.MustDo(t, map[string]any{"cmd": "send", "to": to + "@" + domain, "body": body})
	}
	send(alice, "bob", "a1")
	send(alice, "bob", "a2")
	send(bob, "alice", "b1")
	send(carol, "bob", "c1")
	for _, b := range []string{"a1", "a2", "c1"} {
		bob.Expect(t, Is("message", "body", b), 10*time.Second)
	}
	alice.Expect(t, Is("message", "body", "b1"), 10*time.Second)

	// Ctl commands run against the server through the admin socket.
	if out, errOut, code := runXmppd(t, "ctl", "-config", cfg, "retention", "preview"); code != 0 {
		t.Fatalf("retention preview: exit %d: %s%s", code, out, errOut)
	}
	if got := exportBodies(t, cfg, "bob@"+domain); !slices.Equal(got, []string{"a1", "a2", "b1", "c1"}) {
		t.Fatalf("bob's archive before the purge: %q", got)
	}
	if out, errOut, code := runXmppd(t, "ctl", "-config", cfg, "hold", "add", "-user", "carol@"+domain, "-case", "case-7", "-reason", "e2e"); code != 0 {
		t.Fatalf("hold add: exit %d: %s%s", code, out, errOut)
	}

	time.Sleep(3 * time.Second)
	out, errOut, code := runXmppd(t, "ctl", "-config", cfg, "retention", "preview")
	if code != 0 {
		t.Fatalf("retention preview: exit %d: %s", code, errOut)
	}
	// alice's 3 would go; carol's one is held.
	for _, want := range []string{
		"user:alice@" + domain + "  2s",
		"group:Temps",
		"dry run",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("preview lacks %q:\n%s", want, out)
		}
	}
	if !regexp.MustCompile(`(?m)^total\s+3\s+3\s+1$`).MatchString(out) {
		t.Errorf("preview totals: want 3 archives, 3 messages, 1 held:\n%s", out)
	}
	// The preview deleted nothing.
	if got := exportBodies(t, cfg, "alice@"+domain); len(got) != 3 {
		t.Fatalf("alice's archive after the preview: %q; want 3 messages", got)
	}

	if _, errOut, code := runXmppd(t, "ctl", "-config", cfg, "archive", "purge", "-now", "2030-01-01T00:00:00Z"); code == 0 || !strings.Contains(errOut, "-now is for retention preview only") {
		t.Errorf("archive purge -now: exit %d, %q; want a refusal", code, errOut)
	}
	out, errOut, code = runXmppd(t, "ctl", "-config", cfg, "archive", "purge")
	if code != 0 {
		t.Fatalf("archive purge: exit %d: %s%s", code, out, errOut)
	}
	m := removedRE.FindStringSubmatch(out)
	if m == nil || m[1] != "3" || m[2] != "0" {
		t.Fatalf("archive purge printed %q; want removed 3 messages (0 offline)", out)
	}
	if got := exportBodies(t, cfg, "alice@"+domain); len(got) != 0 {
		t.Errorf("alice's archive after the purge: %q; want empty (user rule 2s)", got)
	}
	if got := exportBodies(t, cfg, "bob@"+domain); !slices.Equal(got, []string{"a1", "a2", "b1", "c1"}) {
		t.Errorf("bob's archive after the purge: %q; want all four (default forever)", got)
	}
	if got := exportBodies(t, cfg, "carol@"+domain); !slices.Equal(got, []string{"c1"}) {
		t.Errorf("carol's archive after the purge: %q; want c1 (held)", got)
	}
	out, errOut, code = runXmppd(t, "ctl", "-config", cfg, "audit", "list")
	if code != 0 || !strings.Contains(out, "archive purge") || !strings.Contains(out, "removed 3 messages") {
		t.Errorf("audit list lacks the purge (exit %d, %s):\n%s", code, errOut, out)
	}

	// Released: the scheduler is not running this often, so purge by hand.
	if _, errOut, code := runXmppd(t, "ctl", "-config", cfg, "hold", "release", "-case", "case-7"); code != 0 {
		t.Fatalf("hold release: %s", errOut)
	}
	out, _, _ = runXmppd(t, "ctl", "-config", cfg, "archive", "purge")
	if m := removedRE.FindStringSubmatch(out); m == nil || m[1] != "1" {
		t.Errorf("purge after release printed %q; want removed 1", out)
	}
	if got := exportBodies(t, cfg, "carol@"+domain); len(got) != 0 {
		t.Errorf("carol's archive after release and purge: %q", got)
	}

	// SIGHUP with a shorter default: the new rules apply (bob's messages
	// go) and the change is audited.
	old, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg, []byte(strings.Replace(string(old), `default_retention = "forever"`, `default_retention = "1s"`, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	x.cmd.Process.Signal(syscall.SIGHUP)
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(x.Output(), "SIGHUP: archive rules changed") && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.Contains(x.Output(), "SIGHUP: archive rules changed") {
		t.Fatalf("no rule change logged after SIGHUP:\n%s", x.Output())
	}
	out, _, _ = runXmppd(t, "ctl", "-config", cfg, "audit", "list")
	if !strings.Contains(out, "archive rules changed") || !strings.Contains(out, "default=forever") || !strings.Contains(out, "default=1s") {
		t.Errorf("audit list lacks the rule change old -> new:\n%s", out)
	}
	time.Sleep(1100 * time.Millisecond)
	out, _, _ = runXmppd(t, "ctl", "-config", cfg, "archive", "purge")
	if m := removedRE.FindStringSubmatch(out); m == nil || m[1] != "4" {
		t.Errorf("purge after the reload printed %q; want removed 4 (bob's, now under default 1s)", out)
	}

	// Deleted means gone from the disk too: after `ctl compact` (server
	// stopped) no purged message is left in the bbolt file, free pages
	// included.
	if err := x.Stop(); err != nil {
		t.Fatal(err)
	}
	if out, errOut, code := runXmppd(t, "ctl", "-config", cfg, "compact"); code != 0 {
		t.Fatalf("compact: exit %d: %s%s", code, out, errOut)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "data", "ownchat.db"))
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range []string{"a1", "a2", "b1", "c1"} {
		if bytes.Contains(raw, []byte("<body>"+b+"</body>")) {
			t.Errorf("the purged message %q is still in ownchat.db after compaction", b)
		}
	}
}

// TestRetentionScheduler: with a short purge_interval the server expires
// messages by itself and logs it; `ctl archive purge` on a stopped server
// works on the store directly.
func TestRetentionScheduler(t *testing.T) {
	requireSlixmpp(t)
	dir := t.TempDir()
	c2s := FreePort()
	cfg := WriteConfig(t, retentionConfig(filepath.Join(dir, "data"), c2s, FreePort(), `purge_interval = "1s"`))
	x := StartXmppd(t, cfg)
	alice := StartSlix(t, SlixOptions{JID: "alice@" + domain, Password: "alice-pw", Port: c2s, Resource: "r", NoVerify: true})
	alice.WaitSession(t)
	bob := StartSlix(t, SlixOptions{JID: "bob@" + domain, Password: "bob-pw", Port: c2s, Resource: "r", NoVerify: true})
	bob.WaitSession(t)
	bob.MustDo(t, map[string]any{"cmd": "presence"})
	for i := range 5 {
		alice.MustDo(t, map[string]any{"cmd": "send", "to": "bob@" + domain, "body": "m" + strconv.Itoa(i)})
	}
	bob.Expect(t, Is("message", "body", "m4"), 10*time.Second)

	deadline := time.Now().Add(15 * time.Second)
	for !strings.Contains(x.Output(), "archive purge") && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if !strings.Contains(x.Output(), "removed=5") {
		t.Fatalf("the scheduler did not log removing alice's 5 messages:\n%s", x.Output())
	}
	if got := exportBodies(t, cfg, "alice@"+domain); len(got) != 0 {
		t.Errorf("alice's archive after the scheduled purge: %q", got)
	}
	if got := exportBodies(t, cfg, "bob@"+domain); len(got) != 5 {
		t.Errorf("bob's archive: %q; want 5 (forever)", got)
	}
	out, _, _ := runXmppd(t, "ctl", "-config", cfg, "audit", "list")
	if !strings.Contains(out, "scheduler") || !strings.Contains(out, "archive purge") {
		t.Errorf("audit list lacks the scheduler's purge:\n%s", out)
	}

	// Offline: the same command opens the store itself.
	if err := x.Stop(); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := runXmppd(t, "ctl", "-config", cfg, "archive", "purge")
	if code != 0 || removedRE.FindStringSubmatch(out) == nil {
		t.Errorf("archive purge without a server: exit %d, %s%s", code, out, errOut)
	}
	out, errOut, code = runXmppd(t, "ctl", "-config", cfg, "retention", "preview", "-now", "2099-01-01T00:00:00Z")
	if code != 0 || !strings.Contains(out, "as of 2099-01-01T00:00:00Z") {
		t.Errorf("retention preview -now without a server: exit %d, %s%s", code, out, errOut)
	}
}
