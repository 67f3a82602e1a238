package e2e

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestMUCRoomsAtScale measures what 100,000 persistent rooms in the store
// cost the real binary (issue 5: "start-up time unchanged (lazy loading),
// RSS grows only with rooms in use"): time from exec to the first /healthz
// 200 and VmRSS, with an empty data_dir and with the rooms; then RSS after
// one user joined 100 of the stored rooms. The store is written by the muc
// package's generator (TestFillRoomStore). It is a measurement, opt-in and
// best without -race:
//
//	OWNCHAT_MUC_SCALE=1 go test -run TestMUCRoomsAtScale -v ./e2e/
//
// It fails only when the rooms are loaded at start (start-up over 5x the
// empty one and over 1 s) or when RSS at start grows by more than 32 MiB.
func TestMUCRoomsAtScale(t *testing.T) {
	if os.Getenv("OWNCHAT_MUC_SCALE") != "1" {
		t.Skip("set OWNCHAT_MUC_SCALE=1 to measure")
	}
	requireSlixmpp(t)
	if raceEnabled() {
		t.Log("built with -race: the figures include the race detector's overhead")
	}
	rooms := 100_000
	if v, _ := strconv.Atoi(os.Getenv("OWNCHAT_MUC_SCALE_ROOMS")); v > 0 {
		rooms = v
	}
	const runs = 3 // start-up figures: the median of three

	empty := scaleServer(t, 0)
	full := scaleServer(t, rooms)
	emptyStart, emptyRSS := empty.measureStart(t, runs)
	fullStart, fullRSS := full.measureStart(t, runs)
	t.Logf("empty store:        start %v, VmRSS %d KiB", emptyStart, emptyRSS)
	t.Logf("%d rooms stored: start %v, VmRSS %d KiB (store file %.1f MiB)", rooms, fullStart, fullRSS, full.dbMiB())

	// One session joins 100 of the stored rooms; for comparison, 100 new
	// rooms on the empty store (created on join).
	full.joinRooms(t, "stored", func(i int) string { return fmt.Sprintf("room%d@%s", i*(rooms/100), mucService) })
	empty.joinRooms(t, "new", func(i int) string { return fmt.Sprintf("new%d@%s", i, mucService) })

	if fullStart > 5*emptyStart && fullStart > time.Second {
		t.Errorf("start-up with %d rooms %v vs %v empty: rooms are loaded at start", rooms, fullStart, emptyStart)
	}
	if fullRSS-emptyRSS > 32<<10 {
		t.Errorf("VmRSS at start grew %d KiB with %d stored rooms", fullRSS-emptyRSS, rooms)
	}
}

// scaleSrv is one data_dir and config for TestMUCRoomsAtScale.
type scaleSrv struct {
	cfg, data string
	c2s       int
	http      string
}

func scaleServer(t *testing.T, rooms int) *scaleSrv {
	t.Helper()
	dir := t.TempDir()
	s := &scaleSrv{data: filepath.Join(dir, "data"), c2s: FreePort()}
	hp := FreePort()
	s.http = "127.0.0.1:" + strconv.Itoa(hp)
	cfg := strings.Replace(coreConfig(s.data, s.c2s, FreePort(), hp, ""), `log_level = "debug"`, `log_level = "warn"`, 1)
	s.cfg = filepath.Join(dir, "xmppd.toml")
	if err := os.WriteFile(s.cfg, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	if rooms > 0 {
		// The muc package's generator writes the rooms in one transaction.
		cmd := exec.Command("go", "test", "-count=1", "-run", "^TestFillRoomStore$", "../muc")
		cmd.Env = append(os.Environ(), "OWNCHAT_FILL_ROOMS_DIR="+s.data, "OWNCHAT_FILL_ROOMS="+strconv.Itoa(rooms),
			"OWNCHAT_FILL_ROOMS_SERVICE="+mucService)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("filling the store: %v\n%s", err, out)
		}
	}
	return s
}

// joinRooms starts the server, logs alice in, joins 100 rooms named by
// room(i) and logs VmRSS before and after.
func (s *scaleSrv) joinRooms(t *testing.T, kind string, room func(int) string) {
	t.Helper()
	pid, stop := s.start(t)
	defer stop()
	alice := mucLogin(t, &coreServer{C2S: s.c2s}, "alice", "scale")
	defer bye(t, alice)
	before := vmRSS(t, pid)
	anon0, file0 := procStatus(t, pid, "RssAnon"), procStatus(t, pid, "RssFile")
	const n = 100
	t0 := time.Now()
	for i := range n {
		alice.MustDo(t, map[string]any{"cmd": "muc_join", "room": room(i), "nick": "Alice"})
	}
	took := time.Since(t0)
	after := vmRSS(t, pid)
	anon1, file1 := procStatus(t, pid, "RssAnon"), procStatus(t, pid, "RssFile")
	t.Logf("joining %d %s rooms: %v (%v/join); VmRSS %d -> %d KiB (+%d KiB, %.1f KiB/room); RssAnon %d -> %d KiB; RssFile (bbolt mmap, page cache) %d -> %d KiB",
		n, kind, took.Round(time.Millisecond), (took / n).Round(time.Microsecond), before, after, after-before, float64(after-before)/n,
		anon0, anon1, file0, file1)
}

func (s *scaleSrv) dbMiB() float64 {
	fi, err := os.Stat(filepath.Join(s.data, "ownchat.db"))
	if err != nil {
		return 0
	}
	return float64(fi.Size()) / (1 << 20)
}

// start runs xmppd until /healthz answers 200, polling every millisecond,
// and returns its pid and a stop function (SIGTERM, clean exit required).
func (s *scaleSrv) start(t *testing.T) (int, func()) {
	t.Helper()
	pid, _, stop := s.startTimed(t)
	return pid, stop
}

func (s *scaleSrv) startTimed(t *testing.T) (int, time.Duration, func()) {
	t.Helper()
	cmd := exec.Command(xmppdBinary(t), "serve", "-config", s.cfg)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatalf("start xmppd: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop := func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("xmppd exit: %v\n%s", err, out.String())
			}
		case <-time.After(stopTimeout):
			cmd.Process.Kill()
			<-exited
			t.Errorf("xmppd did not stop on SIGTERM")
		}
	}
	client := &http.Client{Timeout: time.Second}
	for {
		if time.Since(t0) > healthzTimeout {
			stop()
			t.Fatalf("xmppd not healthy within %v:\n%s", healthzTimeout, out.String())
		}
		select {
		case err := <-exited:
			t.Fatalf("xmppd exited: %v\n%s", err, out.String())
		default:
		}
		resp, err := client.Get("http://" + s.http + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return cmd.Process.Pid, time.Since(t0), stop
			}
		}
		time.Sleep(time.Millisecond)
	}
}

// measureStart starts and stops the server n times and returns the median
// time to healthy and the median VmRSS right then.
func (s *scaleSrv) measureStart(t *testing.T, n int) (time.Duration, int) {
	t.Helper()
	var took []time.Duration
	var rss []int
	for range n {
		pid, d, stop := s.startTimed(t)
		took = append(took, d)
		rss = append(rss, vmRSS(t, pid))
		// xmppd answers /healthz before it installs its SIGTERM handler
		// (cmd/xmppd/serve.go); a SIGTERM in that window kills it
		// uncleanly, so give it a moment.
		time.Sleep(200 * time.Millisecond)
		stop()
	}
	return median(took), median(rss)
}

func median[T int | time.Duration](v []T) T {
	for i := range v {
		for j := i + 1; j < len(v); j++ {
			if v[j] < v[i] {
				v[i], v[j] = v[j], v[i]
			}
		}
	}
	return v[len(v)/2]
}

// vmRSS reads the resident set size of pid in KiB from /proc.
func vmRSS(t *testing.T, pid int) int { t.Helper(); return procStatus(t, pid, "VmRSS") }

// procStatus reads the KiB figure key of /proc/pid/status.
func procStatus(t *testing.T, pid int, key string) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatalf("%s: %v", key, err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, key+":"); ok {
			kb, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
			if err != nil {
				t.Fatalf("%s line %q: %v", key, line, err)
			}
			return kb
		}
	}
	t.Fatalf("no %s in /proc/%d/status", key, pid)
	return 0
}
