package main

// archive-fill prepares the retention benchmark (issue 6: "purge of 1
// million expired messages while serving traffic: p99 message latency
// stays under 50 ms"): it writes N archive records with old ids straight
// into a stopped server's data_dir, so that xmppd then starts with a
// million expired messages for `xmppd ctl archive purge` to delete while
// `xmppbench -mode msg` measures latency. This is the one part of xmppbench
// that uses ownChat code (the store): it fills, it does not measure.
//
//	xmppbench archive-fill -data DIR -n 1000000 -age 400d -owners 100
//	xmppd serve -config F &          # default_retention = "90d", users user1..user40
//	xmppbench -mode msg -pairs 20 -inflight 1 -duration 60s -warmup 3s &
//	sleep 8; xmppd ctl -config F archive purge
//
// Measured on 2 cores (xmppd, xmppbench and the purge on the same machine,
// purge_batch 1000, 2 ms pause): p99 15.5 ms without the purge, 17.7 ms
// while it removed 1,000,000 messages (69 s, the whole measured minute).

import (
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/ownchat/ownchat/store"
)

func archiveFill(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("xmppbench archive-fill", flag.ContinueOnError)
	fs.SetOutput(stderr)
	data := fs.String("data", "", "the server's data_dir (the server must not run)")
	n := fs.Int("n", 1000000, "records to write")
	owners := fs.Int("owners", 100, "archives to spread them over")
	userFmt := fs.String("user", "old%d", "localpart `format` of the owners")
	domain := fs.String("domain", "example.com", "domain of the owners")
	ageFlag := fs.String("age", "400d", "age of the newest record (Go duration or Nd)")
	size := fs.Int("size", 200, "body size in bytes")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	age, err := parseDays(*ageFlag)
	if *data == "" || *n < 1 || *owners < 1 || err != nil {
		fmt.Fprintln(stderr, "xmppbench archive-fill: need -data, positive -n and -owners, and -age like 400d")
		return 2
	}
	st, err := store.Open(*data)
	if err != nil {
		fmt.Fprintf(stderr, "xmppbench archive-fill: %v\n", err)
		return 1
	}
	start := time.Now()
	// Ids one microsecond apart, ending age ago: unique and all expired
	// under any retention shorter than age.
	first := store.ArchiveIDAt(time.Now().Add(-age)) - store.ArchiveID(*n)
	body := strings.Repeat("x", *size)
	const chunk = 1000
	recs := make([]store.ArchiveRecord, 0, chunk)
	for i := 0; i < *n; i++ {
		owner := fmt.Sprintf(*userFmt, i%*owners) + "@" + *domain
		with := fmt.Sprintf(*userFmt, (i+1)%*owners) + "@" + *domain
		recs = append(recs, store.ArchiveRecord{
			Owner: owner, ID: first + store.ArchiveID(i), With: with, Kind: store.KindChat, Outgoing: i%2 == 0,
			Stanza: []byte("<message xmlns='jabber:client' type='chat' from='" + with + "/r' to='" + owner + "' id='f" +
				strconv.Itoa(i) + "'><body>" + body + "</body></message>"),
		})
		if len(recs) == chunk || i == *n-1 {
			st.Archive(recs...)
			recs = make([]store.ArchiveRecord, 0, chunk)
		}
	}
	if err := st.FlushArchive(); err != nil {
		fmt.Fprintf(stderr, "xmppbench archive-fill: %v\n", err)
		st.Close()
		return 1
	}
	if err := st.Close(); err != nil {
		fmt.Fprintf(stderr, "xmppbench archive-fill: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "archive-fill: %d records in %d archives, newest %s old, in %s\n",
		*n, *owners, *ageFlag, time.Since(start).Round(time.Millisecond))
	return 0
}

func parseDays(s string) (time.Duration, error) {
	if d, ok := strings.CutSuffix(s, "d"); ok {
		v, err := strconv.Atoi(d)
		return time.Duration(v) * 24 * time.Hour, err
	}
	return time.ParseDuration(s)
}
