package main

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ownchat/ownchat/ldapsync"
	"github.com/ownchat/ownchat/ldapsync/slapdtest"
	"github.com/ownchat/ownchat/store"
)

// recordedGroups returns the groups recorded with owner's archive.
func recordedGroups(t *testing.T, st *store.Store, owner string) []string {
	t.Helper()
	owners, err := st.ArchiveOwners()
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range owners {
		if o.JID == owner {
			return o.Groups
		}
	}
	t.Fatalf("%s has no archive", owner)
	return nil
}

func archiveOne(t *testing.T, st *store.Store, owner string, at time.Time) {
	t.Helper()
	st.Archive(store.ArchiveRecord{Owner: owner, ID: store.ArchiveIDAt(at) + store.ArchiveID(len(owner)), With: "peer@corp.example",
		Kind: store.KindChat, Stanza: []byte("<message/>")})
	if err := st.FlushArchive(); err != nil {
		t.Fatal(err)
	}
}

// With the server stopped, a purge reads the static directory of the
// configuration: alice's group rule holds although nothing was recorded.
func TestStoppedDirectoryGroupsStatic(t *testing.T) {
	cfg := retentionConf(t, `[directory]
backend = "static"
[[directory.user]]
name = "alice"
password = "a"
groups = ["Sales", "Legal"]
[[directory.user]]
name = "bob"
password = "b"
[archive]
default_retention = "1d"
[[archive.rule]]
match = "group:Legal"
retention = "forever"
`)
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	groups, done, err := stoppedDirectoryGroups(cfg, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer done()
	for _, c := range []struct {
		owner string
		want  []string
		known bool
	}{
		{"alice@corp.example", []string{"Legal", "Sales"}, true},
		{"bob@corp.example", nil, true},
		{"zed@corp.example", nil, false},
		{"alice@elsewhere.example", nil, false},
		{"lobby@conference.corp.example", nil, false},
	} {
		if g, known := groups(c.owner); known != c.known || !slices.Equal(g, c.want) {
			t.Errorf("%s: %q, %v; want %q, %v", c.owner, g, known, c.want, c.known)
		}
	}

	old := time.Now().Add(-10 * 24 * time.Hour)
	archiveOne(t, st, "alice@corp.example", old)
	archiveOne(t, st, "bob@corp.example", old)
	var out bytes.Buffer
	if err := cmdArchivePurge(context.Background(), &storeEnv{Store: st, Config: cfg, Actor: "tester"}, nil, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out.String(), "removed 1 messages") {
		t.Errorf("purge with the server stopped: want bob's message only (alice is in Legal in the config):\n%s", out.String())
	}
}

// An LDAP leaver's archive keeps their group rule: recordLeavers records
// the groups of the snapshot before the sync that removed them, and a
// regrouped person's new groups; with the server stopped, ctl reads the
// stored snapshot.
func TestLDAPLeaverGroups(t *testing.T) {
	dir := slapdtest.Start(t, slapdtest.Options{})
	cfg := retentionConf(t, fmt.Sprintf(`[directory]
backend = "ldap"
preset = "openldap"
url = %q
allow_insecure = true
bind_dn = %q
bind_password = %q
base_dn = %q
roster_groups = ["*"]
[archive]
default_retention = "1d"
[[archive.rule]]
match = "group:Legal"
retention = "forever"
`, dir.URL, slapdtest.ServiceDN, slapdtest.ServicePassword, slapdtest.Suffix))
	pol, err := archivePolicy(cfg)
	if err != nil {
		t.Fatal(err)
	}
	prev := policy.Swap(pol)
	t.Cleanup(func() { policy.Store(prev) })

	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	lc, err := ldapConfig(cfg.Directory)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	d, err := ldapsync.New(lc, st, log)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ctx := context.Background()
	if _, err := d.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	const erin, carol = "erin@corp.example", "carol@corp.example"
	if p, _ := d.Lookup("erin"); !slices.Contains(p.Groups, "Legal") {
		t.Fatalf("fixture: erin's groups %q lack Legal", p.Groups)
	}
	old := time.Now().Add(-10 * 24 * time.Hour)
	archiveOne(t, st, erin, old)
	archiveOne(t, st, carol, old)

	dir.Delete("uid=erin," + slapdtest.People)
	dir.AddMember("cn=Legal,"+slapdtest.Groups, "uid=carol,"+slapdtest.People)
	diff, err := d.Sync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(diff.Removed, "erin") || !slices.Contains(diff.Regrouped, "carol") {
		t.Fatalf("diff %+v; want erin removed and carol regrouped", diff)
	}
	recordLeavers(st, "corp.example", diff, d, log)
	if g := recordedGroups(t, st, erin); !slices.Contains(g, "Legal") {
		t.Errorf("erin left while in Legal; recorded %q", g)
	}
	if g := recordedGroups(t, st, carol); !slices.Contains(g, "Legal") {
		t.Errorf("carol joined Legal; recorded %q", g)
	}
	audit, err := st.AuditRecords()
	if err != nil || len(audit) != 1 || !strings.Contains(audit[0].Detail, "kept under group:Legal = forever") {
		t.Errorf("audit %+v, %v; want erin's record kept under group:Legal", audit, err)
	}

	// ctl with the server stopped: the stored snapshot (carol in Legal,
	// erin gone) and erin's recorded groups keep both archives.
	groups, done, err := stoppedDirectoryGroups(cfg, st, log)
	if err != nil {
		t.Fatal(err)
	}
	g, known2 := groups(carol)
	done()
	if !known2 || !slices.Contains(g, "Legal") {
		t.Errorf("stopped: carol %q, %v; want known, in Legal", g, known2)
	}
	var out bytes.Buffer
	if err := cmdArchivePurge(ctx, &storeEnv{Store: st, Config: cfg, Actor: "tester"}, nil, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out.String(), "removed 0 messages") {
		t.Errorf("purge with the server stopped removed a Legal archive:\n%s", out.String())
	}

	// Without a snapshot there is no directory: the recorded groups apply.
	empty, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer empty.Close()
	if groups, done, err := stoppedDirectoryGroups(cfg, empty, log); err != nil || groups != nil {
		t.Errorf("no snapshot: groups %v, err %v; want nil, nil", groups != nil, err)
	} else {
		done()
	}
}
