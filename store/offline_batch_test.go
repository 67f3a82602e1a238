package store

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"
)

// TestPushOfflineBatch: the batch stores what PushOffline would, in order,
// with the per-user bound applied message by message (also across the
// transactions of a batch larger than offlineBatchMax), and sequences go on
// from what single pushes stored.
func TestPushOfflineBatch(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	push := func(user string, i int) OfflinePush {
		return OfflinePush{User: user, Stanza: fmt.Appendf(nil, "<message id='%s%d'/>", user, i), Stamp: t0.Add(time.Duration(i) * time.Second)}
	}
	many := func(user string, n int) []OfflinePush {
		var out []OfflinePush
		for i := range n {
			out = append(out, push(user, i))
		}
		return out
	}
	for _, tc := range []struct {
		name     string
		before   int // single pushes of alice first
		max      int
		msgs     []OfflinePush
		wantFull []int          // indexes refused as full
		want     map[string]int // messages stored per user afterwards
	}{
		{"empty", 0, 10, nil, nil, map[string]int{}},
		{"users interleaved", 0, 10, []OfflinePush{push("alice", 0), push("bob", 0), push("alice", 1)}, nil, map[string]int{"alice": 2, "bob": 1}},
		{"bound within the batch", 0, 2, []OfflinePush{push("alice", 0), push("alice", 1), push("bob", 0), push("alice", 2)}, []int{3}, map[string]int{"alice": 2, "bob": 1}},
		{"bound counts earlier pushes", 2, 3, []OfflinePush{push("alice", 10), push("alice", 11)}, []int{1}, map[string]int{"alice": 3}},
		{"no bound stores nothing", 0, 0, []OfflinePush{push("alice", 0)}, []int{0}, map[string]int{"alice": 0}},
		{"several transactions", 0, 5000, many("alice", 2*offlineBatchMax+7), nil, map[string]int{"alice": 2*offlineBatchMax + 7}},
		{"bound across transactions", 0, offlineBatchMax + 1, many("alice", offlineBatchMax+3), []int{offlineBatchMax + 1, offlineBatchMax + 2}, map[string]int{"alice": offlineBatchMax + 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			for i := range tc.before {
				if err := s.PushOffline("alice", []byte("<message id='single'/>"), t0, 100); err != nil {
					t.Fatalf("single push %d: %v", i, err)
				}
			}
			full, done, err := s.PushOfflineBatch(tc.msgs, tc.max)
			if err != nil || done != len(tc.msgs) {
				t.Fatalf("PushOfflineBatch: done %d of %d, %v", done, len(tc.msgs), err)
			}
			var gotFull []int
			for i, f := range full {
				if f {
					gotFull = append(gotFull, i)
				}
			}
			if !slices.Equal(gotFull, tc.wantFull) {
				t.Errorf("full at %v, want %v", gotFull, tc.wantFull)
			}
			for user, n := range tc.want {
				msgs, err := s.Offline(user)
				if err != nil {
					t.Fatal(err)
				}
				if len(msgs) != n {
					t.Fatalf("%s has %d messages, want %d", user, len(msgs), n)
				}
				if c, _ := s.OfflineCount(user); c != n {
					t.Errorf("OfflineCount(%s) = %d, want %d", user, c, n)
				}
				// In batch order, after the single pushes, with increasing Seq.
				var want []OfflinePush
				for i, m := range tc.msgs {
					if m.User == user && !full[i] {
						want = append(want, m)
					}
				}
				skip := 0
				if user == "alice" {
					skip = tc.before
				}
				for i, m := range msgs[skip:] {
					if string(m.Stanza) != string(want[i].Stanza) || !m.Stamp.Equal(want[i].Stamp) {
						t.Fatalf("%s message %d: %q at %v, want %q at %v", user, i, m.Stanza, m.Stamp, want[i].Stanza, want[i].Stamp)
					}
					if i+skip > 0 && m.Seq <= msgs[i+skip-1].Seq {
						t.Fatalf("%s: seq %d after %d", user, m.Seq, msgs[i+skip-1].Seq)
					}
				}
			}
		})
	}
}

func TestPushOfflineBatchEmptyUser(t *testing.T) {
	s := newStore(t)
	_, done, err := s.PushOfflineBatch([]OfflinePush{{User: "alice", Stanza: []byte("<message/>")}, {User: ""}}, 10)
	if !errors.Is(err, errEmptyUser) || done != 0 {
		t.Fatalf("done %d, err %v; want 0, errEmptyUser", done, err)
	}
	if n, _ := s.OfflineCount("alice"); n != 0 {
		t.Fatalf("a refused batch stored %d messages", n)
	}
}

// BenchmarkPushOfflineBatch: 1,000 messages for 1,000 users in one call,
// against BenchmarkPushOfflineSerial's one commit per message.
func BenchmarkPushOfflineBatch(b *testing.B) {
	s := newStore(b)
	msgs := make([]OfflinePush, 1000)
	for i := range msgs {
		msgs[i] = OfflinePush{User: fmt.Sprintf("u%04d", i), Stanza: []byte("<message type='chat'><body>hello</body></message>"), Stamp: time.Now()}
	}
	b.ResetTimer()
	for range b.N {
		if _, _, err := s.PushOfflineBatch(msgs, 1<<30); err != nil {
			b.Fatal(err)
		}
	}
}
