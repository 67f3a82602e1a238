package compliance

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/ownchat/ownchat/store"
)

// complianceStore opens a real store in a temporary directory.
func complianceStore(t *testing.T) *store.Store {
	t.Helper()
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

var t0 = time.Date(2026, 1, 30, 23, 0, 0, 0, time.UTC)

// chat archives one 1:1 message for both parties, i minutes after t0.
// Bodies carry what breaks naive exports: line feeds, markup, quotes,
// non-ASCII text.
func chat(st *store.Store, i int, from, to, body string) {
	id := store.ArchiveIDAt(t0.Add(time.Duration(i) * time.Minute))
	var b bytes.Buffer
	fmt.Fprintf(&b, "<message from='%s/res' to='%s' type='chat' id='m%d'><body>", from, to, i)
	xml.EscapeText(&b, []byte(body))
	b.WriteString("</body></message>")
	st.Archive(
		store.ArchiveRecord{Owner: from, ID: id, With: to, Outgoing: true, Kind: store.KindChat, Stanza: b.Bytes()},
		store.ArchiveRecord{Owner: to, ID: id + 1, With: from, Kind: store.KindChat, Stanza: b.Bytes()},
	)
}

// fillArchive writes n messages between alice and bob or carol (every
// third) and returns the bodies alice's archive holds, by stanza id.
func fillArchive(t *testing.T, st *store.Store, n int) map[string]string {
	t.Helper()
	want := map[string]string{}
	for i := range n {
		peer := "bob@example.com"
		if i%3 == 0 {
			peer = "carol@example.com"
		}
		body := fmt.Sprintf("hello %d <b>&amp;</b> 'quoted' \"double\"\nsecond line ünïcødé €", i)
		if i%2 == 0 {
			chat(st, i, "alice@example.com", peer, body)
			want[store.ArchiveIDAt(t0.Add(time.Duration(i)*time.Minute)).String()] = body
		} else {
			chat(st, i, peer, "alice@example.com", body)
			want[(store.ArchiveIDAt(t0.Add(time.Duration(i)*time.Minute)) + 1).String()] = body
		}
	}
	if err := st.FlushArchive(); err != nil {
		t.Fatal(err)
	}
	return want
}

// readJSONExport parses a JSON Lines export: every line a message except
// the last, the manifest, whose hash it checks against the bytes before it.
func readJSONExport(t *testing.T, out []byte) ([]ExportedMessage, Manifest) {
	t.Helper()
	if !bytes.HasSuffix(out, []byte("\n")) {
		t.Fatalf("export does not end with a newline")
	}
	lines := bytes.SplitAfter(out, []byte("\n"))
	lines = lines[:len(lines)-1] // the empty piece after the last \n
	var ml ManifestLine
	last := lines[len(lines)-1]
	if err := json.Unmarshal(last, &ml); err != nil || ml.Manifest.Format == "" {
		t.Fatalf("last line is not a manifest: %q (%v)", last, err)
	}
	sum := sha256.Sum256(out[:len(out)-len(last)])
	if got := hex.EncodeToString(sum[:]); got != ml.Manifest.SHA256 {
		t.Errorf("manifest sha256 %s, recomputed %s", ml.Manifest.SHA256, got)
	}
	var msgs []ExportedMessage
	for i, l := range lines[:len(lines)-1] {
		var m ExportedMessage
		dec := json.NewDecoder(bytes.NewReader(l))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&m); err != nil {
			t.Fatalf("line %d: %v: %q", i+1, err, l)
		}
		msgs = append(msgs, m)
	}
	if ml.Manifest.Count != len(msgs) {
		t.Errorf("manifest count %d, %d lines", ml.Manifest.Count, len(msgs))
	}
	return msgs, ml.Manifest
}

func TestExportJSONRoundTrip(t *testing.T) {
	st := complianceStore(t)
	want := fillArchive(t, st, 300)
	var out bytes.Buffer
	m, err := Export(context.Background(), st, ExportOptions{User: "Alice@example.com", Actor: "test"}, &out)
	if err != nil {
		t.Fatal(err)
	}
	if err := WriteManifestLine(&out, m); err != nil {
		t.Fatal(err)
	}
	msgs, man := readJSONExport(t, out.Bytes())
	if man.Owner != "alice@example.com" || man.Count != 300 || man.Format != "json" || man.Filters.User != "alice@example.com" {
		t.Errorf("manifest %+v", man)
	}
	seen := map[string]bool{}
	for _, msg := range msgs {
		if seen[msg.ID] {
			t.Errorf("message %s exported twice", msg.ID)
		}
		seen[msg.ID] = true
		body, ok := want[msg.ID]
		if !ok {
			t.Errorf("message %s was not archived for alice", msg.ID)
			continue
		}
		if msg.Body != body {
			t.Errorf("%s: body %q, want %q", msg.ID, msg.Body, body)
		}
		id, err := store.ParseArchiveID(msg.ID)
		if err != nil {
			t.Fatal(err)
		}
		if tm, err := time.Parse(time.RFC3339Nano, msg.Time); err != nil || !tm.Equal(id.Time()) {
			t.Errorf("%s: time %q (%v), want %v", msg.ID, msg.Time, err, id.Time())
		}
		out := strings.HasPrefix(msg.From, "alice@example.com/")
		if msg.Direction != map[bool]string{true: "out", false: "in"}[out] || msg.Owner != "alice@example.com" || msg.Type != "chat" {
			t.Errorf("%s: %+v", msg.ID, msg)
		}
		if (out && msg.To != msg.With) || (!out && !strings.HasPrefix(msg.From, msg.With+"/")) {
			t.Errorf("%s: with %q, from %q, to %q", msg.ID, msg.With, msg.From, msg.To)
		}
		if !strings.HasPrefix(msg.Stanza, "<message") || !strings.Contains(msg.Stanza, "id='m") {
			t.Errorf("%s: stanza %q", msg.ID, msg.Stanza)
		}
	}
	if len(seen) != len(want) {
		t.Errorf("exported %d messages, archived %d", len(seen), len(want))
	}
	// The export is in the audit log with its hash.
	recs, err := st.AuditRecords()
	if err != nil || len(recs) != 1 || recs[0].Action != "archive export" || recs[0].Actor != "test" ||
		!strings.Contains(recs[0].Detail, man.SHA256) || !strings.Contains(recs[0].Detail, "count=300") {
		t.Fatalf("audit %+v, %v", recs, err)
	}
}

func TestExportFilters(t *testing.T) {
	st := complianceStore(t)
	fillArchive(t, st, 60) // minutes 0..59 from 2026-01-30T23:00Z: 60 cross midnight
	day2 := time.Date(2026, 1, 31, 0, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		name   string
		o      ExportOptions
		want   int
		wantOK func(ExportedMessage) bool
	}{
		{"all", ExportOptions{User: "alice@example.com"}, 60, nil},
		{"with carol", ExportOptions{User: "alice@example.com", With: "carol@example.com"}, 20,
			func(m ExportedMessage) bool { return m.With == "carol@example.com" }},
		{"since date", ExportOptions{User: "alice@example.com", Since: mustTime(t, "2026-01-31", false)}, 0, nil},
		{"since", ExportOptions{User: "alice@example.com", Since: t0.Add(30 * time.Minute)}, 30,
			func(m ExportedMessage) bool { return m.Time >= t0.Add(30*time.Minute).Format(TimeLayout) }},
		{"until date includes the whole day", ExportOptions{User: "alice@example.com", Until: mustTime(t, "2026-01-30", true)}, 60, nil},
		{"until", ExportOptions{User: "alice@example.com", Until: t0.Add(9*time.Minute + 30*time.Second)}, 10, nil},
		{"window with bob", ExportOptions{User: "alice@example.com", With: "bob@example.com", Since: t0.Add(3 * time.Minute), Until: t0.Add(8 * time.Minute)}, 4,
			func(m ExportedMessage) bool { return m.With == "bob@example.com" }},
		{"other owner", ExportOptions{User: "bob@example.com"}, 40, func(m ExportedMessage) bool { return m.Owner == "bob@example.com" }},
		{"nobody", ExportOptions{User: "dave@example.com"}, 0, nil},
		{"day2 none", ExportOptions{User: "alice@example.com", Since: day2}, 0, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			m, err := Export(context.Background(), st, tt.o, &out)
			if err != nil {
				t.Fatal(err)
			}
			WriteManifestLine(&out, m)
			msgs, _ := readJSONExport(t, out.Bytes())
			if len(msgs) != tt.want {
				t.Fatalf("%d messages, want %d", len(msgs), tt.want)
			}
			for _, msg := range msgs {
				if tt.wantOK != nil && !tt.wantOK(msg) {
					t.Errorf("filtered out message exported: %+v", msg)
				}
			}
		})
	}
}

func mustTime(t *testing.T, s string, upper bool) time.Time {
	t.Helper()
	tm, err := ParseTime(s, upper)
	if err != nil {
		t.Fatal(err)
	}
	return tm
}

func TestExportOptionErrors(t *testing.T) {
	st := complianceStore(t)
	for _, o := range []ExportOptions{
		{},
		{User: "a@example.com", Room: "r@conference.example.com"},
		{User: "a@example.com/res"},
		{User: "example.com"},
		{User: "a@example.com", Format: "csv"},
		{User: "a@example.com", Since: t0, Until: t0.Add(-time.Hour)},
	} {
		if _, err := Export(context.Background(), st, o, io.Discard); err == nil {
			t.Errorf("%+v: no error", o)
		}
	}
}

func TestParseTime(t *testing.T) {
	for _, tt := range []struct {
		in    string
		upper bool
		want  time.Time
		bad   bool
	}{
		{"2026-01-31", false, time.Date(2026, 1, 31, 0, 0, 0, 0, time.UTC), false},
		{"2026-01-31", true, time.Date(2026, 1, 31, 23, 59, 59, 999999000, time.UTC), false},
		{"2026-01-31T10:00:00+01:00", false, time.Date(2026, 1, 31, 9, 0, 0, 0, time.UTC), false},
		{"2026-01-31T10:00:00.5Z", true, time.Date(2026, 1, 31, 10, 0, 0, 5e8, time.UTC), false},
		{"31.01.2026", false, time.Time{}, true},
		{"", false, time.Time{}, true},
	} {
		got, err := ParseTime(tt.in, tt.upper)
		if (err != nil) != tt.bad || !got.Equal(tt.want) {
			t.Errorf("ParseTime(%q, %v) = %v, %v", tt.in, tt.upper, got, err)
		}
	}
}

// TestExportXML: the XEP-0227 document decodes with encoding/xml, holds
// every message once, one <result/> per line, and the manifest's hash
// covers the whole output.
func TestExportXML(t *testing.T) {
	st := complianceStore(t)
	want := fillArchive(t, st, 50)
	var out bytes.Buffer
	m, err := Export(context.Background(), st, ExportOptions{User: "alice@example.com", Format: FormatXML}, &out)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(out.Bytes())
	if m.SHA256 != hex.EncodeToString(sum[:]) || m.Count != 50 || m.Format != "xml" {
		t.Errorf("manifest %+v", m)
	}
	var doc struct {
		XMLName xml.Name `xml:"urn:xmpp:pie:0 server-data"`
		Host    struct {
			JID  string `xml:"jid,attr"`
			User struct {
				Name    string `xml:"name,attr"`
				Archive struct {
					Results []struct {
						XMLName   xml.Name `xml:"urn:xmpp:mam:2 result"`
						ID        string   `xml:"id,attr"`
						Forwarded struct {
							XMLName xml.Name `xml:"urn:xmpp:forward:0 forwarded"`
							Delay   struct {
								Stamp string `xml:"stamp,attr"`
							} `xml:"urn:xmpp:delay delay"`
							Message struct {
								From string `xml:"from,attr"`
								Body string `xml:"jabber:client body"`
							} `xml:"jabber:client message"`
						}
					} `xml:"urn:xmpp:mam:2 result"`
				} `xml:"urn:xmpp:pie:0#mam archive"`
			} `xml:"user"`
		} `xml:"host"`
	}
	if err := xml.Unmarshal(out.Bytes(), &doc); err != nil {
		t.Fatalf("not well-formed: %v", err)
	}
	if doc.Host.JID != "example.com" || doc.Host.User.Name != "alice" || len(doc.Host.User.Archive.Results) != 50 {
		t.Fatalf("host %q user %q, %d results", doc.Host.JID, doc.Host.User.Name, len(doc.Host.User.Archive.Results))
	}
	for _, r := range doc.Host.User.Archive.Results {
		if body, ok := want[r.ID]; !ok || r.Forwarded.Message.Body != body {
			t.Errorf("%s: body %q, want %q", r.ID, r.Forwarded.Message.Body, body)
		}
		id, _ := store.ParseArchiveID(r.ID)
		if ts, err := time.Parse(time.RFC3339Nano, r.Forwarded.Delay.Stamp); err != nil || !ts.Equal(id.Time()) {
			t.Errorf("%s: stamp %q", r.ID, r.Forwarded.Delay.Stamp)
		}
		delete(want, r.ID)
	}
	if len(want) != 0 {
		t.Errorf("%d messages missing", len(want))
	}
	// One message per line: head, 50 results, tail.
	sc := bufio.NewScanner(&out)
	sc.Buffer(nil, 1<<20)
	n := 0
	for sc.Scan() {
		if l := sc.Text(); n > 0 && strings.HasPrefix(l, "<result") && !strings.HasSuffix(l, "</result>") {
			t.Errorf("line %d is not one whole result: %q", n+1, l)
		}
		n++
	}
	if n != 52 {
		t.Errorf("%d lines, want 52", n)
	}
}

func TestExportRoom(t *testing.T) {
	st := complianceStore(t)
	room := "lounge@conference.example.com"
	for i := range 5 {
		st.Archive(store.ArchiveRecord{Owner: room, ID: store.ArchiveIDAt(t0.Add(time.Duration(i) * time.Second)), With: room + "/nick" + fmt.Sprint(i%2),
			Kind: store.KindGroupchat, Stanza: fmt.Appendf(nil, "<message from='%s/nick%d' type='groupchat'><body>b%d</body></message>", room, i%2, i)})
	}
	if err := st.FlushArchive(); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	m, err := Export(context.Background(), st, ExportOptions{Room: room, With: room + "/nick1", Format: FormatXML}, &out)
	if err != nil || m.Count != 2 {
		t.Fatalf("%+v %v", m, err)
	}
	if err := xml.Unmarshal(out.Bytes(), new(struct{})); err != nil {
		t.Fatalf("not well-formed: %v\n%s", err, out.Bytes())
	}
	if !strings.HasPrefix(out.String(), "<server-data xmlns='urn:xmpp:pie:0'><host jid='conference.example.com'><room name='lounge'>") {
		t.Errorf("head: %.120s", out.String())
	}
}

// TestExportCancel: a cancelled export stops, and the audit log says it
// was incomplete.
func TestExportCancel(t *testing.T) {
	st := complianceStore(t)
	fillArchive(t, st, 20)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Export(ctx, st, ExportOptions{User: "alice@example.com"}, io.Discard); err == nil {
		t.Fatal("no error")
	}
	recs, _ := st.AuditRecords()
	if len(recs) != 1 || !strings.Contains(recs[0].Detail, "INCOMPLETE") {
		t.Fatalf("audit %+v", recs)
	}
}

func BenchmarkExportJSON(b *testing.B) {
	st, err := store.Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	for i := range 10000 {
		chat(st, i, "alice@example.com", "bob@example.com", "a body of some typical length, about sixty characters long")
	}
	if err := st.FlushArchive(); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := Export(context.Background(), st, ExportOptions{User: "alice@example.com"}, io.Discard); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*10000)/b.Elapsed().Seconds(), "msgs/s")
}
