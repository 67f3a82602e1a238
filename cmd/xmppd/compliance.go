package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ownchat/ownchat/compliance"
	"github.com/ownchat/ownchat/store"
)

func init() {
	storeCmds["archive export"] = cmdArchiveExport
	storeCmds["hold add"] = cmdHoldAdd
	storeCmds["hold list"] = cmdHoldList
	storeCmds["hold release"] = cmdHoldRelease
	storeCmds["user erase"] = cmdUserErase
	storeCmds["audit list"] = cmdAuditList
	storeCmds["audit verify"] = cmdAuditVerify
	storeCmds["compact"] = cmdCompact
	storeless["compact"] = true
}

// parseFlags parses a store command's flags; usage is the command line
// shown with every mistake, since the mistake is all ctl can print.
func parseFlags(fs *flag.FlagSet, args []string, usage string) error {
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%s: %w (usage: %s)", fs.Name(), err, usage)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%s: unexpected argument %q (usage: %s)", fs.Name(), fs.Arg(0), usage)
	}
	return nil
}

func envNow(env *storeEnv) func() time.Time {
	if env.Now != nil {
		return env.Now
	}
	return time.Now
}

const exportUsage = "archive export -user JID | -room JID [-with JID] [-since T] [-until T] [-format json|xml] [-o FILE] [-manifest FILE]; T is RFC 3339 or a date (2026-01-31, UTC)"

// cmdArchiveExport streams an archive as JSON Lines or XEP-0227 XML. The
// manifest (count and SHA-256 of the exported bytes) is the last JSON
// line, or the -manifest file; for XML without -manifest it goes to
// stderr, since it is not XML.
func cmdArchiveExport(ctx context.Context, env *storeEnv, args []string, w io.Writer) error {
	fs := flag.NewFlagSet("archive export", flag.ContinueOnError)
	var o compliance.ExportOptions
	var since, until string
	fs.StringVar(&o.User, "user", "", "a person's archive (bare JID)")
	fs.StringVar(&o.Room, "room", "", "a room's archive (bare JID)")
	fs.StringVar(&o.With, "with", "", "only messages with this JID")
	fs.StringVar(&since, "since", "", "from this time (RFC 3339 or date)")
	fs.StringVar(&until, "until", "", "up to this time, inclusive (RFC 3339 or date: the whole day)")
	fs.StringVar(&o.Format, "format", compliance.FormatJSON, "json or xml")
	if err := parseFlags(fs, args, exportUsage); err != nil {
		return err
	}
	var err error
	if since != "" {
		if o.Since, err = compliance.ParseTime(since, false); err != nil {
			return fmt.Errorf("archive export: -since: %w", err)
		}
	}
	if until != "" {
		if o.Until, err = compliance.ParseTime(until, true); err != nil {
			return fmt.Errorf("archive export: -until: %w", err)
		}
	}
	o.Actor, o.Now = env.Actor, envNow(env)
	// Records still in the writer's queue belong in the export.
	if err := env.Store.FlushArchive(); err != nil {
		return fmt.Errorf("archive export: %w", err)
	}
	m, err := compliance.Export(ctx, env.Store, o, w)
	if err != nil {
		return fmt.Errorf("archive export: %w", err)
	}
	switch {
	case env.Manifest != nil:
		err = compliance.WriteManifest(env.Manifest, m)
	case m.Format == compliance.FormatJSON:
		err = compliance.WriteManifestLine(w, m)
	default:
		err = compliance.WriteManifestLine(env.Stderr, m)
	}
	if err != nil {
		return fmt.Errorf("archive export: %w", err)
	}
	return nil
}

// holdSubject reads the -user / -room pair of the hold commands.
func holdSubject(user, room string) (string, error) {
	if (user == "") == (room == "") {
		return "", errors.New("give exactly one of -user and -room")
	}
	return compliance.BareJID(user + room)
}

func cmdHoldAdd(ctx context.Context, env *storeEnv, args []string, w io.Writer) error {
	const usage = "hold add -user JID | -room JID -case NAME [-reason TEXT]"
	fs := flag.NewFlagSet("hold add", flag.ContinueOnError)
	user := fs.String("user", "", "a person (bare JID)")
	room := fs.String("room", "", "a room (bare JID)")
	caseName := fs.String("case", "", "the case the hold is for")
	reason := fs.String("reason", "", "why")
	if err := parseFlags(fs, args, usage); err != nil {
		return err
	}
	subject, err := holdSubject(*user, *room)
	if err != nil {
		return fmt.Errorf("hold add: %w (usage: %s)", err, usage)
	}
	if strings.TrimSpace(*caseName) == "" {
		return fmt.Errorf("hold add: -case is required (usage: %s)", usage)
	}
	now := envNow(env)()
	h := store.Hold{Case: *caseName, Subject: subject, Reason: *reason, Created: now, By: env.Actor}
	if err := env.Store.AddHold(h); err != nil {
		return fmt.Errorf("hold add: %w", err)
	}
	detail := fmt.Sprintf("case=%q subject=%s reason=%q", h.Case, h.Subject, h.Reason)
	if _, err := env.Store.AppendAudit(now, env.Actor, "hold add", detail); err != nil {
		return fmt.Errorf("hold add: the hold is in place but the audit log failed: %w", err)
	}
	_, err = fmt.Fprintf(w, "hold %q on %s: expiry and erasure of its archive are suspended until `hold release -case %s`\n", h.Case, h.Subject, h.Case)
	return err
}

func cmdHoldList(ctx context.Context, env *storeEnv, args []string, w io.Writer) error {
	if err := parseFlags(flag.NewFlagSet("hold list", flag.ContinueOnError), args, "hold list"); err != nil {
		return err
	}
	holds, err := env.Store.Holds()
	if err != nil {
		return fmt.Errorf("hold list: %w", err)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CASE\tSUBJECT\tSINCE\tBY\tREASON")
	for _, h := range holds {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", h.Case, h.Subject, h.Created.UTC().Format(time.RFC3339), h.By, strings.ReplaceAll(h.Reason, "\n", " "))
	}
	fmt.Fprintf(tw, "%d hold(s)\n", len(holds))
	return tw.Flush()
}

func cmdHoldRelease(ctx context.Context, env *storeEnv, args []string, w io.Writer) error {
	const usage = "hold release -case NAME"
	fs := flag.NewFlagSet("hold release", flag.ContinueOnError)
	caseName := fs.String("case", "", "the case whose holds end")
	if err := parseFlags(fs, args, usage); err != nil {
		return err
	}
	if *caseName == "" {
		return fmt.Errorf("hold release: -case is required (usage: %s)", usage)
	}
	n, err := env.Store.ReleaseHold(*caseName)
	if err != nil {
		return fmt.Errorf("hold release: %w", err)
	}
	if n == 0 {
		return fmt.Errorf("hold release: no hold with case %q (see: hold list)", *caseName)
	}
	if _, err := env.Store.AppendAudit(envNow(env)(), env.Actor, "hold release", fmt.Sprintf("case=%q released=%d", *caseName, n)); err != nil {
		return fmt.Errorf("hold release: released, but the audit log failed: %w", err)
	}
	_, err = fmt.Fprintf(w, "released %d hold(s) of case %q; those archives follow the retention rules again\n", n, *caseName)
	return err
}

func cmdUserErase(ctx context.Context, env *storeEnv, args []string, w io.Writer) error {
	const usage = "user erase JID"
	if len(args) != 1 || strings.HasPrefix(args[0], "-") {
		return fmt.Errorf("user erase: want one JID (usage: %s)", usage)
	}
	o := compliance.EraseOptions{User: args[0], Actor: env.Actor, Now: envNow(env), EndSessions: env.EndSessions}
	if env.Config != nil {
		o.Domain = env.Config.Domain
	}
	if env.EraseLock != nil {
		if bare, err := compliance.BareJID(args[0]); err == nil {
			defer env.EraseLock(bare)()
		}
	}
	// Queued records of this person must not land after the deletion.
	if err := env.Store.FlushArchive(); err != nil {
		return fmt.Errorf("user erase: %w", err)
	}
	rep, err := compliance.Erase(ctx, env.Store, o)
	if env.Erased != nil && rep.User != "" {
		env.Erased(rep.User)
	}
	if len(rep.Items) > 0 {
		rep.Write(w)
	}
	if err != nil {
		return fmt.Errorf("user erase: %w", err)
	}
	return nil
}

func cmdAuditList(ctx context.Context, env *storeEnv, args []string, w io.Writer) error {
	fs := flag.NewFlagSet("audit list", flag.ContinueOnError)
	n := fs.Int("n", 0, "only the last N records (0: all)")
	if err := parseFlags(fs, args, "audit list [-n N]"); err != nil {
		return err
	}
	return compliance.WriteAuditList(w, env.Store, *n)
}

func cmdAuditVerify(ctx context.Context, env *storeEnv, args []string, w io.Writer) error {
	if err := parseFlags(flag.NewFlagSet("audit verify", flag.ContinueOnError), args, "audit verify"); err != nil {
		return err
	}
	return compliance.VerifyAuditLog(w, env.Store)
}

// cmdCompact rewrites the store file without its free pages. bbolt keeps
// the pages of deleted data (expired, purged, erased) and reuses them for
// new writes, so the old bytes stay in the file until overwritten;
// compaction makes deleted data vanish from disk at once and gives the
// space back. It needs the file to itself, so the server must be stopped.
func cmdCompact(ctx context.Context, env *storeEnv, args []string, w io.Writer) error {
	if err := parseFlags(flag.NewFlagSet("compact", flag.ContinueOnError), args, "compact"); err != nil {
		return err
	}
	if env.Online {
		return errors.New("stop xmppd first: compaction rewrites the store file")
	}
	before, after, err := store.CompactFile(env.Config.DataDir)
	if err != nil {
		return fmt.Errorf("compact: %w", err)
	}
	_, err = fmt.Fprintf(w, "compacted %s: %s -> %s bytes\n", env.Config.DataDir, strconv.FormatInt(before, 10), strconv.FormatInt(after, 10))
	return err
}
