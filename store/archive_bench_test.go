package store

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	bolt "go.etcd.io/bbolt"
)

// benchStanza is a realistic 1:1 message of about 300 bytes.
var benchStanza = []byte(`<message xmlns='jabber:client' from='alice@corp.example/laptop' to='bob@corp.example' type='chat' id='5f1c2a9e-3b7d-4e0a-9c61-8f2d4b7a1e03'><body>` +
	strings.Repeat("Lorem ipsum dolor sit amet, consectetur. ", 2) +
	`</body><active xmlns='http://jabber.org/protocol/chatstates'/></message>`)

// cpuTime is the process's user+system CPU time. The benchmarks report
// CPU per record besides wall-clock rates because the machines they run
// on are shared: CPU time does not grow when other processes take the
// cores.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkArchiveAppend measures the archive writer: records/s through
// Archive and one FlushArchive at the end, 1,000 owners, ~300-byte
// stanzas. allocs/op counts the writer goroutine's (and bbolt's)
// allocations too.
func BenchmarkArchiveAppend(b *testing.B) {
	owners := benchOwners(1000)
	for _, par := range []int{1, 8} {
		b.Run(fmt.Sprintf("senders=%d", par), func(b *testing.B) {
			s := newStore(b)
			b.SetBytes(int64(len(benchStanza)))
			b.ReportAllocs()
			b.SetParallelism(par)
			start, cpu0 := time.Now(), cpuTime()
			if par == 1 {
				for i := 0; b.Loop(); i++ {
					s.Archive(ArchiveRecord{Owner: owners[i%len(owners)], With: owners[(i*7+1)%len(owners)], Kind: KindChat, Stanza: benchStanza})
				}
			} else {
				b.RunParallel(func(pb *testing.PB) {
					i := rand.IntN(len(owners))
					for pb.Next() {
						i++
						s.Archive(ArchiveRecord{Owner: owners[i%len(owners)], With: owners[(i*7+1)%len(owners)], Kind: KindChat, Stanza: benchStanza})
					}
				})
			}
			if err := s.FlushArchive(); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "records/s")
			b.ReportMetric(float64(b.N)/(cpuTime()-cpu0).Seconds(), "records/cpu-s")
		})
	}
}

func benchOwners(n int) []string {
	owners := make([]string, n)
	for i := range owners {
		owners[i] = fmt.Sprintf("u%05d@corp.example", i)
	}
	return owners
}

// genArchive fills s directly with owners × perOwner records in large
// transactions of sorted keys, far faster than the writer (which must
// take records in arrival order): it builds test archives of millions.
// Record i of owner o has id base + i*owners + o (owners interleave in
// time, as in real traffic) and talks with contact i % 20.
func genArchive(tb testing.TB, s *Store, owners, perOwner, stanzaBytes int) (base ArchiveID) {
	tb.Helper()
	const contacts = 20
	base = ArchiveIDAt(time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC))
	names := benchOwners(owners)
	with := func(i int) string { return fmt.Sprintf("c%02d@corp.example", i%contacts) }
	stanza := append([]byte(nil), benchStanza...)
	for len(stanza) < stanzaBytes {
		stanza = append(stanza, ' ')
	}
	stanza = stanza[:stanzaBytes]
	id := func(o, i int) ArchiveID { return base + ArchiveID(i*owners+o) }

	const perTx = 250_000
	// kv appends key and value to the buffers it is given. bbolt copies
	// keys but keeps values until commit, so values go into an arena that
	// lives as long as the transaction.
	put := func(bucket []byte, n int, kv func(j int, key, val []byte) ([]byte, []byte)) {
		var key, val, arena []byte
		for j := 0; j < n; {
			err := s.db.Update(func(tx *bolt.Tx) error {
				b := tx.Bucket(bucket)
				b.FillPercent = 1.0 // sorted appends: full pages
				arena = make([]byte, 0, 64<<20)
				for end := min(n, j+perTx); j < end; j++ {
					start := len(arena)
					key, arena = kv(j, key[:0], arena)
					val = arena[start:len(arena):len(arena)]
					if err := b.Put(key, val); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				tb.Fatal(err)
			}
		}
	}
	total := owners * perOwner
	// arc: owner-major, id ascending, which is key order.
	put(bucketArc, total, func(j int, key, val []byte) ([]byte, []byte) {
		o, i := j/perOwner, j%perOwner
		r := ArchiveRecord{With: with(i), Outgoing: i%2 == 0, Kind: KindChat, Stanza: stanza}
		return appendArcKey(key, names[o], id(o, i)), appendArcValue(val, &r)
	})
	// arcw: owner, then contact (c00..c19 sort as numbers), then id.
	var order [][2]int // (contact, i) in key order for one owner
	for c := range contacts {
		for i := c; i < perOwner; i += contacts {
			order = append(order, [2]int{c, i})
		}
	}
	put(bucketArcWith, total, func(j int, key, val []byte) ([]byte, []byte) {
		o, ci := j/perOwner, order[j%perOwner]
		return appendArcWithKey(key, names[o], with(ci[0]), id(o, ci[1])), emptyValue
	})
	put(bucketArcOwner, owners, func(o int, key, val []byte) ([]byte, []byte) {
		m := arcOwner{count: uint64(perOwner), first: id(o, 0), last: id(o, perOwner-1), kind: KindChat}
		return append(key, names[o]...), m.appendTo(val)
	})
	if err := s.db.Update(func(tx *bolt.Tx) error { return bumpArcLast(tx, id(owners-1, perOwner-1)) }); err != nil {
		tb.Fatal(err)
	}
	if err := s.loadArchiveLast(); err != nil {
		tb.Fatal(err)
	}
	return base
}

// pageQuery is one random MAM page request: a random owner, with or
// without a With filter, forward or backward, from the edge or from a
// random position (RSM after/before).
func pageQuery(rng *rand.Rand, owners, perOwner int, base ArchiveID) ArchiveQuery {
	o := rng.IntN(owners)
	q := ArchiveQuery{Owner: fmt.Sprintf("u%05d@corp.example", o), Max: 50, Backward: rng.IntN(2) == 0}
	if rng.IntN(2) == 0 {
		q.With = fmt.Sprintf("c%02d@corp.example", rng.IntN(20))
	}
	if rng.IntN(2) == 0 {
		at := base + ArchiveID(rng.IntN(perOwner)*owners+o)
		if q.Backward {
			q.BeforeID = at
		} else {
			q.AfterID = at
		}
	}
	return q
}

// TestArchivePageLatency builds a generated archive and times 10,000
// random page queries. By default it uses 200,000 records; with
// OWNCHAT_ARCHIVE_10M=1 it builds the 10 million (5,000 owners,
// a few GB in the temp dir, minutes) and reports build time, file size
// and p50/p99. The target is p99 < 10 ms for a page of 50.
func TestArchivePageLatency(t *testing.T) {
	owners, perOwner, stanza := 100, 2000, 300
	if os.Getenv("OWNCHAT_ARCHIVE_10M") == "1" {
		owners = 5000
	} else if testing.Short() {
		t.Skip("builds a 200,000 record archive")
	}
	s := newStore(t)
	start := time.Now()
	base := genArchive(t, s, owners, perOwner, stanza)
	build := time.Since(start)
	fi, err := os.Stat(s.Path())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("generated %d records (%d owners) in %v, file %d MiB", owners*perOwner, owners, build.Round(time.Millisecond), fi.Size()>>20)

	// Wall time on a shared machine measures the neighbours too, so the
	// target is checked on this thread's CPU time (which includes page
	// faults); wall time is reported beside it.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	rng := rand.New(rand.NewPCG(1, 2))
	lat := make([]time.Duration, 0, 10_000)
	cpu := make([]time.Duration, 0, 10_000)
	for range 10_000 {
		q := pageQuery(rng, owners, perOwner, base)
		t0, c0 := time.Now(), threadCPU()
		page, err := s.QueryArchive(q)
		lat = append(lat, time.Since(t0))
		cpu = append(cpu, threadCPU()-c0)
		if err != nil {
			t.Fatal(err)
		}
		// Every page from the edge is full; a page from a random position
		// may be cut by the archive's end.
		if q.AfterID == 0 && q.BeforeID == 0 && len(page.Records) != 50 {
			t.Fatalf("%+v: %d records", q, len(page.Records))
		}
		for _, r := range page.Records {
			if r.Owner != q.Owner || q.With != "" && r.With != q.With || len(r.Stanza) != stanza {
				t.Fatalf("%+v: wrong record %+v", q, r)
			}
		}
	}
	slices.Sort(lat)
	slices.Sort(cpu)
	p99 := cpu[len(cpu)*99/100]
	t.Logf("page of 50 from %d records: wall p50 %v p99 %v max %v; CPU p50 %v p99 %v max %v", owners*perOwner,
		lat[len(lat)/2], lat[len(lat)*99/100], lat[len(lat)-1], cpu[len(cpu)/2], p99, cpu[len(cpu)-1])
	if p99 > 10*time.Millisecond {
		t.Errorf("CPU p99 %v, the issue's target is under 10ms", p99)
	}
}

// threadCPU is the calling OS thread's CPU time in nanoseconds
// (CLOCK_THREAD_CPUTIME_ID; getrusage only counts in scheduler ticks).
func threadCPU() time.Duration {
	const clockThreadCPUTime = 3
	var ts syscall.Timespec
	syscall.Syscall(syscall.SYS_CLOCK_GETTIME, clockThreadCPUTime, uintptr(unsafe.Pointer(&ts)), 0)
	return time.Duration(ts.Nano())
}

// BenchmarkArchiveQueryPage: one page of 50 from a 200,000-record archive
// (100 owners × 2,000), from the edge or from a random position.
func BenchmarkArchiveQueryPage(b *testing.B) {
	const owners, perOwner = 100, 2000
	s := newStore(b)
	base := genArchive(b, s, owners, perOwner, 300)
	for _, with := range []bool{false, true} {
		for _, backward := range []bool{false, true} {
			b.Run(fmt.Sprintf("with=%v/backward=%v", with, backward), func(b *testing.B) {
				b.ReportAllocs()
				rng := rand.New(rand.NewPCG(3, 4))
				for b.Loop() {
					q := pageQuery(rng, owners, perOwner, base)
					q.Backward = backward
					q.With = ""
					if with {
						q.With = "c07@corp.example"
					}
					q.AfterID, q.BeforeID = 0, 0
					page, err := s.QueryArchive(q)
					if err != nil || len(page.Records) != 50 {
						b.Fatalf("%d records, %v", len(page.Records), err)
					}
				}
			})
		}
	}
}

// BenchmarkArchiveExpire expires 1,000,000 records of one owner in
// transactions of 1,000 (run with -benchtime=1x; each op builds a fresh
// archive outside the timer).
func BenchmarkArchiveExpire(b *testing.B) {
	for b.Loop() {
		b.StopTimer()
		s, err := Open(b.TempDir())
		if err != nil {
			b.Fatal(err)
		}
		genArchive(b, s, 1, 1_000_000, 300)
		b.StartTimer()
		n, err := s.ExpireArchive(context.Background(), "u00000@corp.example", time.Now(), 1000, 0)
		if err != nil || n != 1_000_000 {
			b.Fatalf("expired %d, %v", n, err)
		}
		b.StopTimer()
		s.Close()
		b.StartTimer()
	}
}
