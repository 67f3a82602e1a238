package main

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"syscall"
	"time"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat.
// It is 100 on every Linux architecture Go supports (proc(5)); reading it
// with sysconf would need cgo for no gain.
const clockTicks = 100

// procRSS returns VmRSS of pid in KiB, from /proc/PID/status (proc(5)).
func procRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("xmppbench: rss: %w", err)
	}
	return parseVmRSS(b)
}

func parseVmRSS(status []byte) (int64, error) {
	i := bytes.Index(status, []byte("\nVmRSS:"))
	if i < 0 {
		return 0, fmt.Errorf("xmppbench: rss: no VmRSS line")
	}
	f := bytes.Fields(status[i+len("\nVmRSS:"):])
	if len(f) < 2 || string(f[1]) != "kB" {
		return 0, fmt.Errorf("xmppbench: rss: malformed VmRSS line")
	}
	v, err := strconv.ParseInt(string(f[0]), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("xmppbench: rss: %w", err)
	}
	return v, nil
}

// procCPU returns the user+system CPU time pid has used, from
// /proc/PID/stat fields 14 and 15 (proc(5)).
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("xmppbench: cpu: %w", err)
	}
	return parseStatCPU(b)
}

func parseStatCPU(stat []byte) (time.Duration, error) {
	// The command name (field 2) is in parentheses and may hold spaces
	// and parentheses: count fields from the last ')'.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("xmppbench: cpu: malformed stat")
	}
	f := bytes.Fields(stat[i+1:])
	// f[0] is field 3 (state); utime is field 14, stime field 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("xmppbench: cpu: malformed stat")
	}
	ut, err1 := strconv.ParseInt(string(f[11]), 10, 64)
	st, err2 := strconv.ParseInt(string(f[12]), 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("xmppbench: cpu: malformed stat")
	}
	return time.Duration(ut+st) * time.Second / clockTicks, nil
}

// pinnedCPU returns the one CPU pid may run on, from Cpus_allowed_list in
// /proc/PID/status, or -1 when it may run on several.
func pinnedCPU(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return -1
	}
	return parsePinned(b)
}

func parsePinned(status []byte) int {
	i := bytes.Index(status, []byte("\nCpus_allowed_list:"))
	if i < 0 {
		return -1
	}
	f := bytes.Fields(status[i+len("\nCpus_allowed_list:"):])
	if len(f) == 0 {
		return -1
	}
	n, err := strconv.Atoi(string(f[0])) // "1", not "0-1" or "0,2"
	if err != nil {
		return -1
	}
	return n
}

// coreBusy returns the time CPU n has not been idle since boot, from its
// line in /proc/stat (user nice system idle iowait irq softirq steal ...).
func coreBusy(n int) (time.Duration, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, fmt.Errorf("xmppbench: stat: %w", err)
	}
	return parseCoreBusy(b, n)
}

func parseCoreBusy(stat []byte, n int) (time.Duration, error) {
	key := []byte("\ncpu" + strconv.Itoa(n) + " ")
	i := bytes.Index(stat, key)
	if i < 0 {
		return 0, fmt.Errorf("xmppbench: stat: no cpu%d line", n)
	}
	line := stat[i+len(key):]
	if e := bytes.IndexByte(line, '\n'); e >= 0 {
		line = line[:e]
	}
	f := bytes.Fields(line)
	if len(f) < 8 {
		return 0, fmt.Errorf("xmppbench: stat: malformed cpu%d line", n)
	}
	var busy int64
	for k, v := range f[:8] {
		if k == 3 || k == 4 { // idle, iowait
			continue
		}
		x, err := strconv.ParseInt(string(v), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("xmppbench: stat: malformed cpu%d line", n)
		}
		busy += x
	}
	return time.Duration(busy) * time.Second / clockTicks, nil
}

// coreWatch tells how much of the CPU a process is pinned to was taken by
// other work. On a machine shared with other jobs this separates a slow
// server from a starved one: the kernel's per-CPU busy time minus the
// process's own CPU time is what everything else used.
type coreWatch struct {
	core int                  // -1: not pinned, nothing to report
	self func() time.Duration // the watched process's CPU time
}

type coreSample struct {
	at         time.Time
	busy, self time.Duration
}

func (w coreWatch) sample() coreSample {
	s := coreSample{at: time.Now()}
	if w.core >= 0 {
		s.busy, _ = coreBusy(w.core)
		s.self = w.self()
	}
	return s
}

// othersPct returns the percentage of the core that other work used
// between a and b, or nil when the process is not pinned to one core.
func (w coreWatch) othersPct(a, b coreSample) *float64 {
	if w.core < 0 {
		return nil
	}
	wall := b.at.Sub(a.at).Seconds()
	if wall <= 0 {
		return nil
	}
	v := ((b.busy - a.busy) - (b.self - a.self)).Seconds() / wall * 100
	if v < 0 {
		v = 0 // tick granularity
	}
	v = round1(v)
	return &v
}

// selfCPU returns the CPU time this process has used.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// raiseNoFile lifts RLIMIT_NOFILE as far as allowed: to fs.nr_open when
// running as root (which may raise the hard limit), otherwise to the hard
// limit. Tens of thousands of sessions need as many descriptors. It
// returns the soft limit in force afterwards.
func raiseNoFile() uint64 {
	var r syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r) != nil {
		return 0
	}
	if b, err := os.ReadFile("/proc/sys/fs/nr_open"); err == nil {
		if n, err := strconv.ParseUint(string(bytes.TrimSpace(b)), 10, 64); err == nil && n > r.Max {
			up := syscall.Rlimit{Cur: n, Max: n}
			if syscall.Setrlimit(syscall.RLIMIT_NOFILE, &up) == nil {
				return n
			}
		}
	}
	if r.Cur < r.Max {
		r.Cur = r.Max
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &r)
	}
	syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r)
	return r.Cur
}
