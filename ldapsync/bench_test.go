package ldapsync

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"
	"github.com/ownchat/ownchat/sharedroster"
	"github.com/ownchat/ownchat/store"
)

// BenchmarkColleagues5000 is a roster fetch for a user in a 5,000-member
// group of a 50,000-user directory (target: under 50 ms).
func BenchmarkColleagues5000(b *testing.B) {
	s, users, groups := syntheticDirectory(50000, 10, false)
	sn := build(s, users, groups, snapMeta{}, time.Now())
	b.ReportAllocs()
	for b.Loop() {
		if got := sn.colleagues("user000042"); len(got) != 4999 {
			b.Fatalf("%d colleagues", len(got))
		}
	}
}

// BenchmarkLookup is the existence check the server makes per stanza.
func BenchmarkLookup(b *testing.B) {
	s, users, groups := syntheticDirectory(50000, 10, false)
	d := &Directory{}
	d.snap.Store(build(s, users, groups, snapMeta{}, time.Now()))
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := d.Lookup("user031337"); !ok {
			b.Fatal("not found")
		}
	}
}

// BenchmarkBuild50k indexes a 50,000-user snapshot (each sync and each
// start with a stored snapshot does this).
func BenchmarkBuild50k(b *testing.B) {
	s, users, groups := syntheticDirectory(50000, 2000, true)
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		u, g := slices.Clone(users), slices.Clone(groups)
		b.StartTimer()
		build(s, u, g, snapMeta{}, time.Now())
	}
}

// BenchmarkAuthenticate is a login against slapd on loopback: a lookup
// search and a bind. It reports the median and the 99th percentile.
func BenchmarkAuthenticate(b *testing.B) {
	s := startSlapd(b, slapdOptions{})
	d, _ := newDir(b, testConfig(s), nil)
	ctx := context.Background()
	if err := d.Authenticate(ctx, "alice", "alice-secret"); err != nil { // warm the pools
		b.Fatal(err)
	}
	var lat []time.Duration
	b.ReportAllocs()
	for b.Loop() {
		t := time.Now()
		if err := d.Authenticate(ctx, "alice", "alice-secret"); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t))
	}
	reportPercentiles(b, lat)
}

// BenchmarkBindOnly is one bind on an open connection: what any LDAP
// login costs at least, the baseline for BenchmarkAuthenticate.
func BenchmarkBindOnly(b *testing.B) {
	s := startSlapd(b, slapdOptions{})
	l, err := ldap.DialURL(s.URL)
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	var lat []time.Duration
	for b.Loop() {
		t := time.Now()
		if err := l.Bind("uid=alice,ou=People,"+suffix, "alice-secret"); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t))
	}
	reportPercentiles(b, lat)
}

func reportPercentiles(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}

// big50k is a slapd holding 50,000 generated users (every 10th with a
// photo) and 2,000 groups, 10 of them with 5,000 members, started once
// for the sync benchmarks.
var big50k struct {
	once sync.Once
	dir  string // removed by TestMain
	s    *slapd
	err  error
}

func startBig(b *testing.B) *slapd {
	requireSlapd(b)
	big50k.once.Do(func() {
		dir, err := os.MkdirTemp("", "ldapsync-bench")
		if err != nil {
			big50k.err = err
			return
		}
		big50k.dir = dir
		tb := &onceTB{TB: b, dir: dir}
		t0 := time.Now()
		gen := writeGenerated(tb, dir, 50000, 2000, 10, 5000, 10)
		big50k.s = startSlapd(tb, slapdOptions{LDIF: []string{fixture, gen}})
		b.Logf("50k directory generated and loaded with slapadd in %v", time.Since(t0).Round(time.Millisecond))
	})
	if big50k.s == nil {
		b.Skipf("no 50k directory: %v", big50k.err)
	}
	big50k.s.SetTB(b)
	return big50k.s
}

// onceTB keeps a shared server alive after the test or benchmark that
// started it: its cleanups never run; TestMain stops the server and
// removes dir, where TempDir makes directories.
type onceTB struct {
	testing.TB
	dir string
}

func (o *onceTB) Cleanup(func()) {}
func (o *onceTB) TempDir() string {
	d, err := os.MkdirTemp(o.dir, "t")
	if err != nil {
		o.Fatal(err)
	}
	return d
}

// BenchmarkSync50k: a full sync of the 50,000-user directory into a
// store (targets: under 60 s, under 500 MB RSS), then an incremental
// sync after 100 changes.
func BenchmarkSync50k(b *testing.B) {
	s := startBig(b)
	ctx := context.Background()
	b.Run("full", func(b *testing.B) {
		for b.Loop() {
			st, err := store.Open(b.TempDir())
			if err != nil {
				b.Fatal(err)
			}
			d, _ := newDir(b, testConfig(s), st)
			resetPeakRSS()
			t := time.Now()
			df, err := d.Sync(ctx)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(time.Since(t).Seconds(), "s/sync")
			b.ReportMetric(float64(peakRSS())/(1<<20), "peak-RSS-MB")
			if len(df.Added) != 50009 {
				b.Fatalf("%d users", len(df.Added))
			}
			if got := len(d.Colleagues("u000007")); got < 5000 {
				b.Fatalf("u000007 has %d colleagues", got)
			}
			d.Close()
			st.Close()
		}
	})
	b.Run("incremental100", func(b *testing.B) {
		cfg := testConfig(s)
		cfg.FullSyncInterval = time.Hour
		d, _ := newDir(b, cfg, nil)
		if _, err := d.Sync(ctx); err != nil {
			b.Fatal(err)
		}
		round := 0
		for b.Loop() {
			b.StopTimer()
			round++
			l := s.Admin()
			for i := range 100 {
				r := ldap.NewModifyRequest(fmt.Sprintf("uid=u%06d,ou=Gen,%s", i*499, suffix), nil)
				r.Replace("title", []string{fmt.Sprintf("Title %d/%d", i, round)})
				if err := l.Modify(r); err != nil {
					b.Fatal(err)
				}
			}
			l.Close()
			b.StartTimer()
			df, err := d.sync(ctx, false)
			if err != nil {
				b.Fatal(err)
			}
			if len(df.Changed) != 100 || d.snap.Load().meta.fullAt.Equal(d.snap.Load().meta.syncedAt) {
				b.Fatalf("incremental sync: %s", df.Summary)
			}
		}
	})
}

// resetPeakRSS resets the kernel's high-water mark of this process's
// resident set (VmHWM), Linux 4.0+.
func resetPeakRSS() { os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) }

// peakRSS returns VmHWM in bytes, 0 when unknown.
func peakRSS() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// BenchmarkColleagues5000Rule is the roster fetch of a member of a
// 5,000-member group whose members also see another 5,000-member group
// (a roster rule): a merge of two sorted lists.
func BenchmarkColleagues5000Rule(b *testing.B) {
	s, users, groups := syntheticDirectory(50000, 10, false)
	s.allGroups = false
	s.RosterRules = []sharedroster.Rule{{Group: "Group 2", Sees: []string{"Group 3"}}}
	s.ruleGroups = sharedroster.RuleGroups(s.RosterRules)
	sn := build(s, users, groups, snapMeta{}, time.Now())
	b.ReportAllocs()
	for b.Loop() {
		if got := sn.colleagues("user000042"); len(got) != 5000 {
			b.Fatalf("%d colleagues", len(got))
		}
	}
}
