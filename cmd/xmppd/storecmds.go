package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"
	"time"

	"github.com/ownchat/ownchat/conf"
	"github.com/ownchat/ownchat/retention"
	"github.com/ownchat/ownchat/store"
	"github.com/ownchat/ownchat/xmppd"
)

// storeEnv is what a store command needs. On a running server it is built
// by serve (Groups asks the live directory); when no server runs, `xmppd
// ctl` opens the store itself and Groups is nil (a purge then reads the
// configured directory as the server would start with it: see
// stoppedDirectoryGroups).
type storeEnv struct {
	Store  *store.Store // nil for the commands in storeless
	Config *conf.Config
	Policy *retention.Policy
	// Groups returns a person's current directory groups; known is false
	// for someone the directory does not (or no longer) know.
	Groups func(owner string) (groups []string, known bool)
	// Actor names who ran the command, for the audit log: the admin
	// socket peer's uid and user name, or the local user offline.
	Actor string
	Now   func() time.Time
	Log   *slog.Logger
	// Online is true inside the running server.
	Online bool
	// Stderr takes notes and warnings; ctl prints them on its stderr.
	Stderr io.Writer
	// Manifest is where `-manifest FILE` output goes (ctl writes the
	// file); nil when no -manifest was given.
	Manifest io.Writer
	// EndSessions ends a local person's sessions and returns once they are
	// gone; nil when no server runs (nobody is online then).
	EndSessions func(ctx context.Context, bare string) (int, error)
	// EraseLock keeps a person from logging in while their data is
	// erased; nil offline (no server, no logins).
	EraseLock func(bare string) (release func())
	// Erased tells the running server that a person's data is gone, so it
	// drops what it cached of it (archive preferences); nil offline.
	Erased func(bare string)
}

// storeCmd is one compliance command ("archive purge", "hold add", ...):
// the same code runs in the server (through the admin socket) and in
// `xmppd ctl` when no server runs. Output is streamed to w; an error
// becomes ctl's one-line reason and a non-zero exit.
type storeCmd func(ctx context.Context, env *storeEnv, args []string, w io.Writer) error

// storeCmds maps "word" or "word subword" (as typed after `xmppd ctl`) to
// its command. Files register theirs in init.
var storeCmds = map[string]storeCmd{}

// storeless lists the store commands that need the store file closed (ctl
// runs them without opening it; they refuse to run online).
var storeless = map[string]bool{}

// lookupStoreCmd finds the command for `first args...`: "first args[0]"
// when registered, else "first". It returns the command's name and its
// remaining arguments; ok is false when no store command has that name.
func lookupStoreCmd(first string, args []string) (name string, cmd storeCmd, rest []string, ok bool) {
	if len(args) > 0 {
		if c := storeCmds[first+" "+args[0]]; c != nil {
			return first + " " + args[0], c, args[1:], true
		}
	}
	if c := storeCmds[first]; c != nil {
		return first, c, args, true
	}
	return "", nil, nil, false
}

// storeCmdGroup reports whether some store command starts with first.
func storeCmdGroup(first string) bool {
	for name := range storeCmds {
		if w, _, _ := strings.Cut(name, " "); w == first {
			return true
		}
	}
	return false
}

// storeCmdNames lists the store commands, sorted.
func storeCmdNames() []string {
	names := make([]string, 0, len(storeCmds))
	for n := range storeCmds {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// registerStoreCmds makes every store command reachable through the admin
// socket: one streaming admin command per first word ("archive", "hold",
// ...), which picks the store command by the next word. env is called per
// command, so a policy swapped at SIGHUP is seen at once.
func registerStoreCmds(srv *xmppd.Server, env func() storeEnv) {
	firsts := map[string]bool{}
	for name := range storeCmds {
		w, _, _ := strings.Cut(name, " ")
		firsts[w] = true
	}
	for first := range firsts {
		srv.HandleAdminStream(first, func(ctx context.Context, call xmppd.AdminCall, w io.Writer) error {
			name, cmd, args, ok := lookupStoreCmd(first, call.Args)
			if !ok {
				return unknownStoreCmd(first, call.Args)
			}
			e := env()
			e.Online = true
			e.Actor = call.Actor
			e.Stderr = call.Outputs[xmppd.AdminStderr]
			if e.Stderr == nil {
				e.Stderr = io.Discard
			}
			e.Manifest = call.Outputs[manifestStream]
			if e.Now == nil {
				e.Now = time.Now
			}
			if e.Log != nil {
				e.Log.Info("store command", "command", name, "actor", call.Actor)
			}
			return cmd(ctx, &e, args, w)
		})
	}
}

// manifestStream is the admin side stream of `-manifest FILE`.
const manifestStream = "manifest"

func unknownStoreCmd(first string, args []string) error {
	var subs []string
	for _, n := range storeCmdNames() {
		if w, sub, ok := strings.Cut(n, " "); ok && w == first {
			subs = append(subs, sub)
		}
	}
	got := first
	if len(args) > 0 {
		got += " " + args[0]
	}
	return fmt.Errorf("unknown command %q (%s takes: %s)", got, first, strings.Join(subs, ", "))
}

// onlineStoreEnv is the environment of a store command inside the server.
func onlineStoreEnv(cfg *conf.Config, p *parts, log *slog.Logger) storeEnv {
	return storeEnv{
		Store:  p.store,
		Config: cfg,
		Policy: currentPolicy(),
		Groups: directoryGroups(p.srv, cfg.Domain),
		Now:    time.Now,
		Log:    log,
		EndSessions: func(ctx context.Context, bare string) (int, error) {
			return p.srv.EndUserSessions(ctx, bare, "your account data is being erased")
		},
		Erased:    p.srv.UserErased,
		EraseLock: p.srv.EraseLock,
	}
}
