package compliance

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ownchat/ownchat/store"
)

// personalData gives alice everything erasure must remove.
func personalData(t *testing.T, st *store.Store) {
	t.Helper()
	fillArchive(t, st, 30)
	for _, err := range []error{
		st.SetVCard("alice", []byte("<vCard xmlns='vcard-temp'><FN>Alice</FN></vCard>")),
		st.PushOffline("alice", []byte("<message><body>while away</body></message>"), t0, 10),
		st.Block("alice", "spam@example.com"),
		st.SetLastActivity("alice", t0, "gone"),
		st.Put(MAMPrefsBucket, "alice@example.com", []byte("always")),
		st.Put(MAMPrefsBucket, "bob@example.com", []byte("roster")),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
}

func countArchive(t *testing.T, st *store.Store, owner string) int {
	t.Helper()
	n := 0
	if err := st.ForEachArchive(store.ArchiveQuery{Owner: owner}, func(store.ArchiveRecord) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestErase(t *testing.T) {
	for _, held := range []bool{false, true} {
		t.Run(map[bool]string{false: "no hold", true: "held"}[held], func(t *testing.T) {
			st := complianceStore(t)
			personalData(t, st)
			if held {
				if err := st.AddHold(store.Hold{Case: "ACME-17", Subject: "alice@example.com", Created: t0, By: "test"}); err != nil {
					t.Fatal(err)
				}
			}
			bobBefore := countArchive(t, st, "bob@example.com")
			ended := ""
			rep, err := Erase(context.Background(), st, EraseOptions{
				User: "Alice@Example.com", Domain: "example.com", Actor: "tester",
				EndSessions: func(ctx context.Context, bare string) (int, error) { ended = bare; return 2, nil },
			})
			if err != nil {
				t.Fatal(err)
			}
			if ended != "alice@example.com" {
				t.Errorf("sessions ended for %q", ended)
			}
			var text bytes.Buffer
			rep.Write(&text)
			if held {
				if n := countArchive(t, st, "alice@example.com"); n != 30 {
					t.Errorf("held archive: %d records left, want 30", n)
				}
				if !strings.Contains(text.String(), "kept (hold case ACME-17)") {
					t.Errorf("report does not say why the archive was kept:\n%s", text.String())
				}
			} else {
				if n := countArchive(t, st, "alice@example.com"); n != 0 {
					t.Errorf("%d archive records left", n)
				}
				if !strings.Contains(text.String(), "30 messages deleted") {
					t.Errorf("report:\n%s", text.String())
				}
				owners, err := st.ArchiveOwners()
				if err != nil {
					t.Fatal(err)
				}
				for _, o := range owners {
					if o.JID == "alice@example.com" {
						t.Errorf("archive owner record of alice kept: %+v", o)
					}
				}
			}
			// Everything else goes either way.
			if v, _ := st.VCard("alice"); v != nil {
				t.Error("vCard kept")
			}
			if n, _ := st.OfflineCount("alice"); n != 0 {
				t.Errorf("%d offline messages kept", n)
			}
			if b, _ := st.BlockList("alice"); len(b) != 0 {
				t.Errorf("block list kept: %v", b)
			}
			if tm, _, _ := st.LastActivity("alice"); !tm.IsZero() {
				t.Error("last activity kept")
			}
			if v, _ := st.Get(MAMPrefsBucket, "alice@example.com"); v != nil {
				t.Error("MAM prefs kept")
			}
			// Other people's data stays: bob's copies of alice's messages.
			if v, _ := st.Get(MAMPrefsBucket, "bob@example.com"); v == nil {
				t.Error("bob's MAM prefs deleted")
			}
			if n := countArchive(t, st, "bob@example.com"); n != bobBefore || n == 0 {
				t.Errorf("bob's archive: %d records, had %d", n, bobBefore)
			}
			got := map[string]string{}
			for _, it := range rep.Items {
				got[it.What] = it.Outcome
			}
			if got["offline messages"] != "1 deleted" || got["sessions"] != "2 ended" || !strings.HasPrefix(got["messages in other people's archives"], "kept") {
				t.Errorf("report:\n%s", text.String())
			}
			if rep.Kept() != true { // other people's copies are always kept
				t.Error("Kept() false")
			}
			recs, err := st.AuditRecords()
			if err != nil || len(recs) != 1 || recs[0].Action != "user erase" || recs[0].Actor != "tester" ||
				!strings.Contains(recs[0].Detail, "user=alice@example.com") {
				t.Fatalf("audit %+v %v", recs, err)
			}
			if held != strings.Contains(recs[0].Detail, "ACME-17") {
				t.Errorf("audit detail: %s", recs[0].Detail)
			}
		})
	}
}

func TestEraseRefuses(t *testing.T) {
	st := complianceStore(t)
	for _, u := range []string{"alice@other.example", "alice@example.com/phone", "example.com", ""} {
		if _, err := Erase(context.Background(), st, EraseOptions{User: u, Domain: "example.com", Now: func() time.Time { return t0 }}); err == nil {
			t.Errorf("%q: no error", u)
		}
	}
}
