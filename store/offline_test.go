package store

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

func TestOffline(t *testing.T) {
	s := newStore(t)
	t0 := time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC)
	msg := func(i int) []byte { return fmt.Appendf(nil, "<message id='m%d'/>", i) }

	// Fill to the bound, one more is refused.
	const max = 5
	for i := 1; i <= max; i++ {
		if err := s.PushOffline("alice", msg(i), t0.Add(time.Duration(i)*time.Second), max); err != nil {
			t.Fatalf("push %d: %v", i, err)
		}
	}
	if err := s.PushOffline("alice", msg(6), t0, max); !errors.Is(err, ErrOfflineFull) {
		t.Fatalf("push over bound: %v, want ErrOfflineFull", err)
	}
	// A higher bound from a config reload applies at once.
	if err := s.PushOffline("alice", msg(6), t0.Add(6*time.Second), max+1); err != nil {
		t.Fatalf("push under new bound: %v", err)
	}
	check := func(name string, wantSeqs ...uint64) {
		t.Helper()
		msgs, err := s.Offline("alice")
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var seqs []uint64
		for _, m := range msgs {
			seqs = append(seqs, m.Seq)
			if want := msg(int(m.Seq)); !bytes.Equal(m.Stanza, want) {
				t.Errorf("%s: seq %d stanza %q, want %q", name, m.Seq, m.Stanza, want)
			}
			if want := t0.Add(time.Duration(m.Seq) * time.Second); !m.Stamp.Equal(want) || m.Stamp.Location() != time.UTC {
				t.Errorf("%s: seq %d stamp %v, want %v UTC", name, m.Seq, m.Stamp, want)
			}
		}
		if fmt.Sprint(seqs) != fmt.Sprint(wantSeqs) {
			t.Errorf("%s: seqs %v, want %v", name, seqs, wantSeqs)
		}
		if n, err := s.OfflineCount("alice"); err != nil || n != len(wantSeqs) {
			t.Errorf("%s: OfflineCount = %d, %v; want %d", name, n, err, len(wantSeqs))
		}
	}
	check("full", 1, 2, 3, 4, 5, 6)

	for _, tc := range []struct {
		name string
		upTo uint64
		want []uint64
	}{
		{"upTo 0 deletes nothing", 0, []uint64{1, 2, 3, 4, 5, 6}},
		{"upTo 2", 2, []uint64{3, 4, 5, 6}},
		{"upTo 2 again", 2, []uint64{3, 4, 5, 6}},
		{"upTo 4", 4, []uint64{5, 6}},
	} {
		if err := s.DeleteOffline("alice", tc.upTo); err != nil {
			t.Fatal(err)
		}
		check(tc.name, tc.want...)
	}
	// Freed room is reusable, and Seq keeps increasing after deletes.
	for i := 7; i <= 10; i++ {
		if err := s.PushOffline("alice", msg(i), t0.Add(time.Duration(i)*time.Second), 6); err != nil {
			t.Fatalf("push %d: %v", i, err)
		}
	}
	check("refilled", 5, 6, 7, 8, 9, 10)
	if err := s.DeleteOffline("alice", 1<<63); err != nil {
		t.Fatal(err)
	}
	check("all delivered")
	if err := s.PushOffline("alice", msg(11), t0.Add(11*time.Second), 6); err != nil {
		t.Fatal(err)
	}
	check("after emptying", 11)

	// Unknown users and bad arguments.
	if msgs, err := s.Offline("nobody"); err != nil || len(msgs) != 0 {
		t.Errorf("Offline(unknown) = %v, %v", msgs, err)
	}
	if n, err := s.OfflineCount("nobody"); err != nil || n != 0 {
		t.Errorf("OfflineCount(unknown) = %d, %v", n, err)
	}
	if err := s.DeleteOffline("nobody", 10); err != nil {
		t.Errorf("DeleteOffline(unknown) = %v", err)
	}
	if err := s.PushOffline("bob", msg(1), t0, 0); !errors.Is(err, ErrOfflineFull) {
		t.Errorf("push with max 0: %v, want ErrOfflineFull", err)
	}
	if err := s.PushOffline("", msg(1), t0, 10); err == nil {
		t.Error("push for empty user accepted")
	}
}

func TestOfflineReturnsCopies(t *testing.T) {
	s := newStore(t)
	buf := []byte("<message/>")
	if err := s.PushOffline("alice", buf, time.Now(), 10); err != nil {
		t.Fatal(err)
	}
	buf[1] = 'X' // the caller may reuse its buffer after the push
	msgs, _ := s.Offline("alice")
	msgs[0].Stanza[1] = 'Y'
	msgs, _ = s.Offline("alice")
	if string(msgs[0].Stanza) != "<message/>" {
		t.Errorf("stored stanza = %q", msgs[0].Stanza)
	}
}

// TestPushOfflineConcurrentBound races many pushes against a small bound:
// Batch must neither lose pushes nor overshoot the bound.
func TestPushOfflineConcurrentBound(t *testing.T) {
	s := newStore(t)
	const pushers, max = 40, 25
	var ok, full atomic.Int32
	var wg sync.WaitGroup
	for i := range pushers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, user := range []string{"alice", "bob"} {
				switch err := s.PushOffline(user, fmt.Appendf(nil, "<m%d/>", i), time.Now(), max); {
				case err == nil:
					ok.Add(1)
				case errors.Is(err, ErrOfflineFull):
					full.Add(1)
				default:
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	if ok.Load() != 2*max || full.Load() != 2*(pushers-max) {
		t.Errorf("%d stored, %d refused; want %d and %d", ok.Load(), full.Load(), 2*max, 2*(pushers-max))
	}
	for _, user := range []string{"alice", "bob"} {
		msgs, _ := s.Offline(user)
		n, _ := s.OfflineCount(user)
		if len(msgs) != max || n != max {
			t.Errorf("%s: %d messages, count %d, want %d", user, len(msgs), n, max)
		}
		for i, m := range msgs {
			if m.Seq != uint64(i+1) {
				t.Errorf("%s: message %d has Seq %d", user, i, m.Seq)
			}
		}
	}
}

// The crash test: a child process pushes offline messages from several
// goroutines and prints each Seq once PushOffline has returned; the parent
// SIGKILLs it mid-stream, reopens the file and wants every printed message.

const crashChildEnv = "OWNCHAT_STORE_CRASH_CHILD"

func crashChild(dir string) int {
	s, err := Open(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	var mu sync.Mutex
	out := bufio.NewWriter(os.Stdout)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			user := fmt.Sprint("user", w)
			for i := 0; ; i++ {
				seq, err := s.pushOffline(user, crashStanza(user, i), time.Now(), 1<<30)
				if err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(3)
				}
				mu.Lock()
				fmt.Fprintf(out, "%s %d %d\n", user, seq, i)
				out.Flush() // the parent must see it only after the push returned
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return 0
}

func crashStanza(user string, i int) []byte {
	return fmt.Appendf(nil, "<message to='%s@corp.example' id='%d'><body>%s</body></message>", user, i, strings.Repeat("x", i%500))
}

func TestCrashKeepsAcknowledgedPushes(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns a child process")
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+dir)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}

	type ack struct {
		user string
		seq  uint64
		i    int
	}
	var acks []ack
	sc := bufio.NewScanner(stdout)
	const killAfter = 300
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 3 {
			t.Fatalf("bad child line %q", sc.Text())
		}
		seq, _ := strconv.ParseUint(f[1], 10, 64)
		i, _ := strconv.Atoi(f[2])
		acks = append(acks, ack{f[0], seq, i})
		if len(acks) == killAfter {
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
		}
	}
	err = cmd.Wait()
	if len(acks) < killAfter {
		t.Fatalf("child stopped after %d pushes: %v\n%s", len(acks), err, stderr.String())
	}
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("child was not killed: %v\n%s", err, stderr.String())
	}

	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	stored := map[string]map[uint64][]byte{}
	for w := range 4 {
		user := fmt.Sprint("user", w)
		msgs, err := s.Offline(user)
		if err != nil {
			t.Fatal(err)
		}
		stored[user] = map[uint64][]byte{}
		for _, m := range msgs {
			stored[user][m.Seq] = m.Stanza
		}
		if n, _ := s.OfflineCount(user); n != len(msgs) {
			t.Errorf("%s: OfflineCount %d but %d messages", user, n, len(msgs))
		}
	}
	for _, a := range acks {
		got, ok := stored[a.user][a.seq]
		if !ok {
			t.Errorf("%s seq %d acknowledged but lost", a.user, a.seq)
		} else if want := crashStanza(a.user, a.i); !bytes.Equal(got, want) {
			t.Errorf("%s seq %d = %q, want %q", a.user, a.seq, got, want)
		}
	}
	t.Logf("%d acknowledged pushes before SIGKILL, all present after reopen", len(acks))
}

// BenchmarkPushOfflineParallel measures pushes from many goroutines, the
// case Batch exists for: each commit's fsync is shared by the batch.
func BenchmarkPushOfflineParallel(b *testing.B) {
	s := newStore(b)
	stanza := []byte("<message from='bob@corp.example/phone' to='alice@corp.example' type='chat' id='abc123'><body>Are you there? Lunch at noon.</body></message>")
	var n atomic.Int64
	b.ReportAllocs()
	b.SetParallelism(16) // 16 × GOMAXPROCS pushers: a busy server's sessions
	b.RunParallel(func(pb *testing.PB) {
		user := fmt.Sprint("user", n.Add(1))
		for pb.Next() {
			if err := s.PushOffline(user, stanza, time.Now(), 1<<30); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkPushOfflineSerial is the latency of a single push with no
// concurrency: the batch delay plus one fsync.
func BenchmarkPushOfflineSerial(b *testing.B) {
	s := newStore(b)
	stanza := []byte("<message to='alice@corp.example'><body>hi</body></message>")
	b.ReportAllocs()
	for b.Loop() {
		if err := s.PushOffline("alice", stanza, time.Now(), 1<<30); err != nil {
			b.Fatal(err)
		}
	}
}
