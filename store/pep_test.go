package store

import (
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"
)

var pepDefault = PEPConfig{AccessModel: "presence", MaxItems: 1, Persist: true, SendLast: "on_sub_and_presence"}

func pepItem(id, payload string) PEPItem {
	return PEPItem{ID: id, Publisher: "alice@example.com", Time: time.Unix(1700000000, 5).UTC(), Payload: []byte(payload)}
}

func itemIDs(items []PEPItem) []string {
	var ids []string
	for _, it := range items {
		ids = append(ids, it.ID)
	}
	return ids
}

func TestPEPPublishAndItems(t *testing.T) {
	bookmarks := PEPConfig{AccessModel: "whitelist", MaxItems: 3, Persist: true, SendLast: "never"}
	tests := []struct {
		name      string
		cfg       PEPConfig
		publish   []string // item ids in order
		retract   []string
		wantIDs   []string // PEPItems(max 0), oldest first
		wantNewer []string // PEPItems(max 2)
	}{
		{"max 1 keeps the newest", pepDefault, []string{"a", "b", "c"}, nil, []string{"c"}, []string{"c"}},
		{"max 3 drops the oldest", bookmarks, []string{"a", "b", "c", "d"}, nil, []string{"b", "c", "d"}, []string{"c", "d"}},
		{"republished id moves to the end", bookmarks, []string{"a", "b", "a"}, nil, []string{"b", "a"}, []string{"b", "a"}},
		{"retract frees a slot", bookmarks, []string{"a", "b", "c"}, []string{"b"}, []string{"a", "c"}, []string{"a", "c"}},
		{"retract of a missing id", bookmarks, []string{"a"}, []string{"zz"}, []string{"a"}, []string{"a"}},
		{"transient node stores nothing", PEPConfig{AccessModel: "open", MaxItems: 1}, []string{"a", "b"}, nil, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t)
			for i, id := range tt.publish {
				cfg, created, err := s.PEPPublish(PEPPublishRequest{User: "alice", Node: "n", Item: pepItem(id, "<x xmlns='urn:t'>"+id+"</x>"), Create: tt.cfg})
				if err != nil {
					t.Fatal(err)
				}
				if created != (i == 0) || !reflect.DeepEqual(cfg, tt.cfg) {
					t.Fatalf("publish %d: created %v cfg %+v", i, created, cfg)
				}
			}
			for _, id := range tt.retract {
				if _, err := s.PEPRetract("alice", "n", id); err != nil {
					t.Fatal(err)
				}
			}
			items, cfg, err := s.PEPItems("alice", "n", nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			if got := itemIDs(items); !reflect.DeepEqual(got, tt.wantIDs) {
				t.Errorf("items %v, want %v", got, tt.wantIDs)
			}
			if !reflect.DeepEqual(cfg, tt.cfg) {
				t.Errorf("config %+v, want %+v", cfg, tt.cfg)
			}
			newer, _, err := s.PEPItems("alice", "n", nil, 2)
			if err != nil {
				t.Fatal(err)
			}
			if got := itemIDs(newer); !reflect.DeepEqual(got, tt.wantNewer) {
				t.Errorf("newest 2: %v, want %v", got, tt.wantNewer)
			}
			for _, it := range items {
				if want := pepItem(it.ID, "<x xmlns='urn:t'>"+it.ID+"</x>"); !reflect.DeepEqual(it, want) {
					t.Errorf("item %+v, want %+v", it, want)
				}
			}
			// The length counter must agree with the items: publish up to
			// the bound again and count.
			nodes, err := s.PEPNodes("alice")
			if err != nil || len(nodes) != 1 {
				t.Fatalf("nodes %v %v", nodes, err)
			}
			if len(tt.wantIDs) > 0 && (nodes[0].Last == nil || nodes[0].Last.ID != tt.wantIDs[len(tt.wantIDs)-1]) {
				t.Errorf("last item %+v, want %s", nodes[0].Last, tt.wantIDs[len(tt.wantIDs)-1])
			}
		})
	}
}

func TestPEPItemsByID(t *testing.T) {
	s := newStore(t)
	cfg := PEPConfig{AccessModel: "presence", MaxItems: 10, Persist: true}
	for _, id := range []string{"a", "b", "c"} {
		if _, _, err := s.PEPPublish(PEPPublishRequest{User: "alice", Node: "n", Item: pepItem(id, "<x/>"), Create: cfg}); err != nil {
			t.Fatal(err)
		}
	}
	items, _, err := s.PEPItems("alice", "n", []string{"c", "nope", "a"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := itemIDs(items); !reflect.DeepEqual(got, []string{"c", "a"}) {
		t.Errorf("by id: %v", got)
	}
	if _, _, err := s.PEPItems("alice", "other", nil, 0); !errors.Is(err, ErrPEPNoNode) {
		t.Errorf("missing node: %v", err)
	}
	if _, _, err := s.PEPItems("bob", "n", nil, 0); !errors.Is(err, ErrPEPNoNode) {
		t.Errorf("missing user: %v", err)
	}
}

func TestPEPCheckAndLimits(t *testing.T) {
	s := newStore(t)
	errPre := errors.New("precondition")
	req := PEPPublishRequest{User: "alice", Node: "n", Item: pepItem("a", "<x/>"), Create: pepDefault, MaxNodes: 2}
	var sawExists []bool
	req.Check = func(cfg PEPConfig, exists bool) error {
		sawExists = append(sawExists, exists)
		if exists && cfg.AccessModel != "open" {
			return errPre
		}
		return nil
	}
	if _, _, err := s.PEPPublish(req); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.PEPPublish(req); !errors.Is(err, errPre) {
		t.Fatalf("second publish: %v, want the check's error", err)
	}
	if !reflect.DeepEqual(sawExists, []bool{false, true}) {
		t.Errorf("check saw %v", sawExists)
	}
	// The failed check changed nothing.
	if items, _, _ := s.PEPItems("alice", "n", nil, 0); len(items) != 1 {
		t.Errorf("items after failed check: %v", items)
	}
	req.Check = nil
	req.Node = "m"
	if _, _, err := s.PEPPublish(req); err != nil {
		t.Fatal(err)
	}
	req.Node = "third"
	if _, _, err := s.PEPPublish(req); !errors.Is(err, ErrPEPNodeLimit) {
		t.Fatalf("third node: %v, want ErrPEPNodeLimit", err)
	}
	if created, err := s.PEPCreate("alice", "third", pepDefault, 2); !errors.Is(err, ErrPEPNodeLimit) || created {
		t.Fatalf("create third: %v %v", created, err)
	}
	// An existing node is still published to at the limit.
	req.Node = "m"
	if _, _, err := s.PEPPublish(req); err != nil {
		t.Fatal(err)
	}
}

func TestPEPConfigureDelete(t *testing.T) {
	s := newStore(t)
	cfg := PEPConfig{AccessModel: "roster", RosterGroups: []string{"Friends", "Ünïcode"}, MaxItems: 5, Persist: true, SendLast: "on_sub"}
	for i := range 5 {
		if _, _, err := s.PEPPublish(PEPPublishRequest{User: "alice", Node: "n", Item: pepItem(fmt.Sprint(i), "<x/>"), Create: cfg}); err != nil {
			t.Fatal(err)
		}
	}
	got, ok, err := s.PEPConfig("alice", "n")
	if err != nil || !ok || !reflect.DeepEqual(got, cfg) {
		t.Fatalf("config %+v %v %v, want %+v", got, ok, err, cfg)
	}
	cfg.MaxItems = 2
	cfg.RosterGroups = nil
	if err := s.PEPConfigure("alice", "n", cfg); err != nil {
		t.Fatal(err)
	}
	items, _, _ := s.PEPItems("alice", "n", nil, 0)
	if ids := itemIDs(items); !reflect.DeepEqual(ids, []string{"3", "4"}) {
		t.Errorf("after max_items 2: %v", ids)
	}
	// The counter follows the trim: one more publish keeps two.
	if _, _, err := s.PEPPublish(PEPPublishRequest{User: "alice", Node: "n", Item: pepItem("5", "<x/>")}); err != nil {
		t.Fatal(err)
	}
	items, _, _ = s.PEPItems("alice", "n", nil, 0)
	if ids := itemIDs(items); !reflect.DeepEqual(ids, []string{"4", "5"}) {
		t.Errorf("after another publish: %v", ids)
	}
	if err := s.PEPConfigure("alice", "nope", cfg); !errors.Is(err, ErrPEPNoNode) {
		t.Errorf("configure missing node: %v", err)
	}
	if found, err := s.PEPDeleteNode("alice", "n"); err != nil || !found {
		t.Fatalf("delete: %v %v", found, err)
	}
	if found, err := s.PEPDeleteNode("alice", "n"); err != nil || found {
		t.Fatalf("delete again: %v %v", found, err)
	}
	if _, ok, _ := s.PEPConfig("alice", "n"); ok {
		t.Error("node still there")
	}
	// DeleteUser takes the PEP nodes with it.
	if _, _, err := s.PEPPublish(PEPPublishRequest{User: "alice", Node: "n", Item: pepItem("a", "<x/>"), Create: cfg}); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteUser("alice"); err != nil {
		t.Fatal(err)
	}
	if nodes, err := s.PEPNodes("alice"); err != nil || len(nodes) != 0 {
		t.Errorf("nodes after DeleteUser: %v %v", nodes, err)
	}
}

func TestUpdatePrivate(t *testing.T) {
	s := newStore(t)
	key := "{storage:bookmarks}storage"
	for i, want := range []string{"<a/>", "<a/><b/>"} {
		err := s.UpdatePrivate("alice", key, func(old []byte) ([]byte, error) {
			if i == 0 && old != nil {
				t.Errorf("first update saw %q", old)
			}
			return append(old, fmt.Sprintf("<%c/>", 'a'+i)...), nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := s.Private("alice", key); string(got) != want {
			t.Errorf("after update %d: %q, want %q", i, got, want)
		}
	}
	boom := errors.New("boom")
	if err := s.UpdatePrivate("alice", key, func([]byte) ([]byte, error) { return nil, boom }); !errors.Is(err, boom) {
		t.Errorf("failing update: %v", err)
	}
	if err := s.UpdatePrivate("alice", key, func([]byte) ([]byte, error) { return nil, nil }); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Private("alice", key); got != nil {
		t.Errorf("after delete: %q", got)
	}
}

func TestDecodePEPRecordsTruncated(t *testing.T) {
	cfg := appendPEPConfig(nil, PEPConfig{AccessModel: "roster", RosterGroups: []string{"g"}, MaxItems: 7, Persist: true, SendLast: "never"})
	for i := range len(cfg) {
		if _, err := decodePEPConfig(cfg[:i]); err == nil {
			t.Errorf("config truncated to %d bytes decoded", i)
		}
	}
	it := appendPEPItem(nil, pepItem("id", ""))
	for i := range len(it) {
		if _, err := decodePEPItem(it[:i]); err == nil {
			t.Errorf("item truncated to %d bytes decoded", i)
		}
	}
}
