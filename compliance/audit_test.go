package compliance

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ownchat/ownchat/store"
)

func TestAuditListAndVerify(t *testing.T) {
	dir := t.TempDir()
	st, err := store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	for i, a := range []string{"hold add", "archive export", "marker action zebra", "hold release"} {
		if _, err := st.AppendAudit(t0.Add(time.Duration(i)*time.Minute), "uid 0 (root)", a, "detail\twith tab\nand newline"); err != nil {
			t.Fatal(err)
		}
	}
	var out bytes.Buffer
	if err := WriteAuditList(&out, st, 2); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "SEQ") || !strings.HasPrefix(lines[1], "3 ") ||
		!strings.Contains(lines[2], "hold release") || !strings.Contains(lines[2], `with tab\nand newline`) {
		t.Fatalf("audit list -n 2:\n%s", out.String())
	}
	out.Reset()
	if err := VerifyAuditLog(&out, st); err != nil {
		t.Fatal(err)
	}
	recs, _ := st.AuditRecords()
	if want := "audit log intact: 4 records, head " + recs[3].Hash + "\n"; out.String() != want {
		t.Fatalf("verify: %q, want %q", out.String(), want)
	}
	st.Close()

	// One letter of record 3's action changed in the file. bbolt copies
	// pages on write, so freed pages may hold older copies of the record
	// too: all of them are changed, whichever is live.
	path := filepath.Join(dir, store.FileName)
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(raw, []byte("marker action zebra")) {
		t.Fatal("record bytes not found in the file")
	}
	raw = bytes.ReplaceAll(raw, []byte("marker action zebra"), []byte("marker action Zebra"))
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	st, err = store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	out.Reset()
	err = VerifyAuditLog(&out, st)
	var broken *AuditBrokenError
	if !errors.As(err, &broken) || !strings.Contains(out.String(), "record 3:") {
		t.Fatalf("tampered log: %v\n%s", err, out.String())
	}
}
