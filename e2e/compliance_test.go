package e2e

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// complianceArchive turns the archive on with nothing expiring, so the
// test sees exactly what it sent.
const complianceArchive = `
[archive]
enabled = true
default_retention = "forever"
`

// ctlRun runs `xmppd ctl -config cfg args...` and returns stdout, stderr
// and the exit code.
func ctlRun(t *testing.T, cfg string, args ...string) (string, string, int) {
	t.Helper()
	return runXmppd(t, append([]string{"ctl", "-config", cfg}, args...)...)
}

// mustCtl runs a ctl command that must succeed.
func mustCtl(t *testing.T, cfg string, args ...string) string {
	t.Helper()
	out, errOut, code := ctlRun(t, cfg, args...)
	if code != 0 {
		t.Fatalf("xmppd ctl %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// exportLine is the part of a JSON Lines export line the test checks.
type exportLine struct {
	ID, Time, From, To, Type, Body, Stanza, Owner, With, Direction string
	Manifest                                                       *struct {
		Count  int
		SHA256 string
		Owner  string
	}
}

// checkJSONExport parses an export with its manifest as last line: the
// hash must match the lines before it, every line must be a message, and
// each id must appear once. It returns the bodies.
func checkJSONExport(t *testing.T, data []byte, owner string) []string {
	t.Helper()
	lines := bytes.SplitAfter(data, []byte("\n"))
	if len(lines) < 2 || len(lines[len(lines)-1]) != 0 {
		t.Fatalf("export does not end with a newline: %q", data)
	}
	lines = lines[:len(lines)-1]
	var man exportLine
	if err := json.Unmarshal(lines[len(lines)-1], &man); err != nil || man.Manifest == nil {
		t.Fatalf("last line is no manifest: %q", lines[len(lines)-1])
	}
	sum := sha256.Sum256(data[:len(data)-len(lines[len(lines)-1])])
	if man.Manifest.SHA256 != hex.EncodeToString(sum[:]) || man.Manifest.Owner != owner || man.Manifest.Count != len(lines)-1 {
		t.Errorf("manifest %+v does not match the %d lines before it", *man.Manifest, len(lines)-1)
	}
	seen := map[string]bool{}
	var bodies []string
	for _, l := range lines[:len(lines)-1] {
		var m exportLine
		if err := json.Unmarshal(l, &m); err != nil || m.ID == "" || m.Owner != owner || m.Stanza == "" || m.Time == "" {
			t.Fatalf("bad export line %q: %v", l, err)
		}
		if seen[m.ID] {
			t.Errorf("id %s exported twice", m.ID)
		}
		seen[m.ID] = true
		bodies = append(bodies, m.Body)
	}
	return bodies
}

// TestCompliance drives the compliance commands against the real binary
// with real clients: export round trip (JSON and XML, to files written by
// ctl), legal hold, erasure with and without a hold, the audit log and
// its tamper detection on a copy of the store, and compaction.
func TestCompliance(t *testing.T) {
	requireSlixmpp(t)
	cs := startCore(t, complianceArchive)
	alice, _ := cs.login(t, "alice", "")
	bob, _ := cs.login(t, "Bob", "")
	aliceJID, bobJID := "alice@"+domain, "bob@"+domain

	want := map[string]bool{}
	for i := range 8 {
		// To the full JID: the sessions sent no presence, so a bare JID
		// would go to offline storage.
		from, to := alice, bob
		if i%2 == 1 {
			from, to = bob, alice
		}
		body := fmt.Sprintf("message %d: <b>&</b> 'ünïcødé'\nsecond line", i)
		want[body] = true
		from.MustDo(t, map[string]any{"cmd": "send", "to": to.JID, "body": body})
		to.Expect(t, func(e Event) bool { return e.Name() == "message" && e.Str("body") == body }, eventTimeout)
	}

	dir := t.TempDir()
	exportFile, manifestFile, xmlFile := filepath.Join(dir, "alice.jsonl"), filepath.Join(dir, "alice.manifest"), filepath.Join(dir, "alice.xml")

	// JSON Lines to stdout, manifest last.
	bodies := checkJSONExport(t, []byte(mustCtl(t, cs.Config, "archive", "export", "-user", aliceJID)), aliceJID)
	if len(bodies) != len(want) {
		t.Fatalf("export has %d messages, sent %d", len(bodies), len(want))
	}
	for _, b := range bodies {
		if !want[b] {
			t.Errorf("unexpected body %q", b)
		}
	}
	// -o FILE: written by ctl, 0600, same content shape.
	if out := mustCtl(t, cs.Config, "archive", "export", "-user", aliceJID, "-with", bobJID, "-o", exportFile); out != "" {
		t.Errorf("stdout with -o: %q", out)
	}
	if fi, err := os.Stat(exportFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("export file: %v %v", fi, err)
	}
	data, _ := os.ReadFile(exportFile)
	if n := len(checkJSONExport(t, data, aliceJID)); n != len(want) {
		t.Errorf("-with bob: %d messages, want %d", n, len(want))
	}
	// XML with -manifest FILE: the manifest hashes the XML file.
	mustCtl(t, cs.Config, "archive", "export", "-user", aliceJID, "-format", "xml", "-o", xmlFile, "-manifest", manifestFile)
	xmlData, _ := os.ReadFile(xmlFile)
	if err := xml.Unmarshal(xmlData, new(struct{})); err != nil {
		t.Fatalf("XML export not well-formed: %v", err)
	}
	if n := bytes.Count(xmlData, []byte("<result xmlns='urn:xmpp:mam:2'")); n != len(want) {
		t.Errorf("XML export has %d results, want %d", n, len(want))
	}
	var man struct {
		Count  int
		SHA256 string
		Format string
	}
	mdata, _ := os.ReadFile(manifestFile)
	if err := json.Unmarshal(mdata, &man); err != nil {
		t.Fatalf("manifest file %q: %v", mdata, err)
	}
	if sum := sha256.Sum256(xmlData); man.SHA256 != hex.EncodeToString(sum[:]) || man.Count != len(want) || man.Format != "xml" {
		t.Errorf("XML manifest %+v", man)
	}
	if _, errOut, code := ctlRun(t, cs.Config, "archive", "export", "-user", aliceJID, "-room", "x@conference."+domain); code == 0 || strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
		t.Errorf("export with -user and -room: exit %d, stderr %q", code, errOut)
	}

	// Legal hold.
	mustCtl(t, cs.Config, "hold", "add", "-user", aliceJID, "-case", "ACME-2026", "-reason", "litigation pending")
	if out := mustCtl(t, cs.Config, "hold", "list"); !regexp.MustCompile(`ACME-2026\s+` + regexp.QuoteMeta(aliceJID) + `\s+\S+\s+uid \d+.*litigation pending`).MatchString(out) {
		t.Errorf("hold list:\n%s", out)
	}

	// Erasure of a held person: archive kept (and said why), the rest
	// goes, the online session ends first.
	out := mustCtl(t, cs.Config, "user", "erase", aliceJID)
	if !strings.Contains(out, "kept (hold case ACME-2026)") || !strings.Contains(out, "1 ended") {
		t.Errorf("erase under hold:\n%s", out)
	}
	alice.Expect(t, Is("stream_error", "condition", "not-authorized"), eventTimeout)
	if n := len(checkJSONExport(t, []byte(mustCtl(t, cs.Config, "archive", "export", "-user", aliceJID)), aliceJID)); n != len(want) {
		t.Errorf("held archive after erase: %d messages, want %d", n, len(want))
	}
	out = mustCtl(t, cs.Config, "hold", "release", "-case", "ACME-2026")
	if !strings.Contains(out, "released 1 hold") {
		t.Errorf("hold release: %q", out)
	}
	if _, errOut, code := ctlRun(t, cs.Config, "hold", "release", "-case", "ACME-2026"); code == 0 || !strings.Contains(errOut, "no hold with case") {
		t.Errorf("release of an unknown case: exit %d, %q", code, errOut)
	}
	// Erasure without a hold: bob's archive goes, alice's copies stay.
	if out := mustCtl(t, cs.Config, "user", "erase", bobJID); !strings.Contains(out, fmt.Sprintf("%d messages deleted", len(want))) {
		t.Errorf("erase bob:\n%s", out)
	}
	if n := len(checkJSONExport(t, []byte(mustCtl(t, cs.Config, "archive", "export", "-user", bobJID)), bobJID)); n != 0 {
		t.Errorf("bob's archive after erase: %d messages", n)
	}
	if n := len(checkJSONExport(t, []byte(mustCtl(t, cs.Config, "archive", "export", "-user", aliceJID)), aliceJID)); n != len(want) {
		t.Errorf("alice's archive after bob's erasure: %d messages, want %d", n, len(want))
	}

	// The audit log has every action, by the uid that ran it.
	auditOut := mustCtl(t, cs.Config, "audit", "list")
	for _, action := range []string{"archive export", "hold add", "hold release", "user erase"} {
		if !regexp.MustCompile(`(?m)^\d+\s+\S+\s+uid \d+.*\s` + action + `\s`).MatchString(auditOut) {
			t.Errorf("audit list lacks %q:\n%s", action, auditOut)
		}
	}
	holdSeq := regexp.MustCompile(`(?m)^(\d+)\s.*\shold add\s`).FindStringSubmatch(auditOut)
	if holdSeq == nil {
		t.Fatal("no hold add record")
	}
	if out := mustCtl(t, cs.Config, "audit", "list", "-n", "1"); strings.Count(out, "\n") != 2 {
		t.Errorf("audit list -n 1:\n%s", out)
	}

	if _, errOut, code := ctlRun(t, cs.Config, "compact"); code == 0 || !strings.Contains(errOut, "stop xmppd first: compaction rewrites the store file") {
		t.Errorf("compact while running: exit %d, %q", code, errOut)
	}

	// Offline: the server stopped, the same commands open the store.
	if err := cs.Stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if _, errOut, code := ctlRun(t, cs.Config, "sessions"); code == 0 || !strings.Contains(errOut, "no xmppd server is running") {
		t.Errorf("sessions offline: exit %d, %q", code, errOut)
	}
	if n := len(checkJSONExport(t, []byte(mustCtl(t, cs.Config, "archive", "export", "-user", aliceJID)), aliceJID)); n != len(want) {
		t.Errorf("offline export: %d messages", n)
	}

	// A copy of the store with one letter of the hold's audit record
	// changed ("litigation" -> "litigatiOn"; bbolt may keep older copies
	// of the page, so every copy is changed).
	copyDir := filepath.Join(t.TempDir(), "data")
	if err := os.MkdirAll(copyDir, 0o700); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(cs.DataDir, "ownchat.db"))
	if err != nil {
		t.Fatal(err)
	}
	tampered := bytes.ReplaceAll(raw, []byte(`reason="litigation pending"`), []byte(`reason="litigatiOn pending"`))
	if bytes.Equal(tampered, raw) {
		t.Fatal("the hold's audit detail is not in the store file")
	}
	if err := os.WriteFile(filepath.Join(copyDir, "ownchat.db"), tampered, 0o600); err != nil {
		t.Fatal(err)
	}
	copyCfg := filepath.Join(filepath.Dir(copyDir), "xmppd.toml")
	if err := os.WriteFile(copyCfg, []byte(coreConfig(copyDir, FreePort(), FreePort(), FreePort(), complianceArchive)), 0o600); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := ctlRun(t, copyCfg, "audit", "verify")
	if code != 1 || !strings.Contains(out, "record "+holdSeq[1]+":") || !strings.Contains(errOut, "NOT intact") {
		t.Errorf("verify of the tampered copy: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	verified := regexp.MustCompile(`^audit log intact: \d+ records, head [0-9a-f]{64}\n$`)
	if out := mustCtl(t, cs.Config, "audit", "verify"); !verified.MatchString(out) {
		t.Errorf("verify of the original: %q", out)
	}

	// Compaction offline, then everything still there.
	if out := mustCtl(t, cs.Config, "compact"); !regexp.MustCompile(`compacted .*: \d+ -> \d+ bytes`).MatchString(out) {
		t.Errorf("compact: %q", out)
	}
	if out := mustCtl(t, cs.Config, "audit", "verify"); !verified.MatchString(out) {
		t.Errorf("verify after compaction: %q", out)
	}
	if n := len(checkJSONExport(t, []byte(mustCtl(t, cs.Config, "archive", "export", "-user", aliceJID)), aliceJID)); n != len(want) {
		t.Errorf("export after compaction: %d messages", n)
	}
}
