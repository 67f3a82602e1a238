package main

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ownchat/ownchat/conf"
	"github.com/ownchat/ownchat/retention"
	"github.com/ownchat/ownchat/store"
)

func retentionConf(t *testing.T, archive string) *conf.Config {
	t.Helper()
	cfg, err := conf.Parse("/tmp/x/xmppd.toml", []byte("domain = \"corp.example\"\n"+archive))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestArchivePolicy(t *testing.T) {
	if p, err := archivePolicy(retentionConf(t, "[archive]\nenabled = false\n")); p != nil || err != nil {
		t.Errorf("disabled: %v, %v; want nil, nil", p, err)
	}
	p, err := archivePolicy(retentionConf(t, `[archive]
default_retention = "30d"
[[archive.rule]]
match = "user:Alice@corp.example"
retention = "forever"
[[archive.rule]]
match = "group:Legal"
retention = "7y"
`))
	if err != nil {
		t.Fatal(err)
	}
	if got := p.For(retention.Subject{JID: "alice@corp.example"}); !got.Forever {
		t.Errorf("alice: %+v; want forever", got)
	}
	if got := p.For(retention.Subject{JID: "bob@corp.example", Groups: []string{"Legal"}}); got.Keep != 7*365*24*time.Hour {
		t.Errorf("bob in Legal: %+v; want 7y", got)
	}
	if got := p.String(); got != "default=30d; user:alice@corp.example=forever; group:Legal=7y" {
		t.Errorf("policy %q", got)
	}
}

func TestRetentionCommands(t *testing.T) {
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	old := time.Now().Add(-40 * 24 * time.Hour)
	st.Archive(
		store.ArchiveRecord{Owner: "alice@corp.example", ID: store.ArchiveIDAt(old), With: "bob@corp.example", Kind: store.KindChat, Stanza: []byte("<message/>")},
		store.ArchiveRecord{Owner: "bob@corp.example", ID: store.ArchiveIDAt(old) + 1, With: "alice@corp.example", Kind: store.KindChat, Stanza: []byte("<message/>")},
	)
	if err := st.FlushArchive(); err != nil {
		t.Fatal(err)
	}
	env := &storeEnv{Store: st, Config: retentionConf(t, "[archive]\ndefault_retention = \"30d\"\n[[archive.rule]]\nmatch = \"user:bob@corp.example\"\nretention = \"1y\"\n"), Actor: "tester"}
	ctx := context.Background()

	var out bytes.Buffer
	if err := cmdRetentionPreview(ctx, env, []string{"-now", "2000-01-01T00:00:00Z"}, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "as of 2000-01-01T00:00:00Z") || !regexp.MustCompile(`(?m)^total\s+2\s+0\s+0$`).MatchString(out.String()) {
		t.Errorf("preview in the past deletes nothing:\n%s", out.String())
	}
	out.Reset()
	if err := cmdRetentionPreview(ctx, env, nil, &out); err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^default\s+30d\s+1\s+1\s+0$`).MatchString(out.String()) {
		t.Errorf("preview now: want alice's message under default:\n%s", out.String())
	}
	for _, args := range [][]string{{"-now", "2000"}, {"extra"}} {
		if err := cmdRetentionPreview(ctx, env, args, &out); err == nil {
			t.Errorf("preview %q: no error", args)
		}
	}
	for _, args := range [][]string{{"-now", "2099-01-01T00:00:00Z"}, {"--now=2099-01-01T00:00:00Z"}} {
		if err := cmdArchivePurge(ctx, env, args, &out); err == nil || !strings.Contains(err.Error(), "preview only") {
			t.Errorf("purge %q: %v; want refused", args, err)
		}
	}
	out.Reset()
	if err := cmdArchivePurge(ctx, env, nil, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out.String(), "removed 1 messages (0 offline) in ") {
		t.Errorf("purge printed:\n%s", out.String())
	}
	audit, err := st.AuditRecords()
	if err != nil || len(audit) != 1 || audit[0].Actor != "tester" {
		t.Errorf("audit %+v, %v; want one record by tester", audit, err)
	}

	env.Config = retentionConf(t, "[archive]\nenabled = false\n")
	if err := cmdArchivePurge(ctx, env, nil, &out); err == nil || !strings.Contains(err.Error(), "disabled") {
		t.Errorf("purge with the archive disabled: %v", err)
	}
}
