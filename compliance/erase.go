package compliance

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ownchat/ownchat/store"
)

// MAMPrefsBucket is the store KV bucket of XEP-0313 preferences, keyed by
// bare JID (written by the MAM code, erased here).
const MAMPrefsBucket = "mamprefs"

// EraseOptions describes one GDPR erasure (Art. 17).
type EraseOptions struct {
	User   string // JID of the person, bare
	Domain string // the server's domain: only local accounts have data here
	// EndSessions ends the person's sessions and returns once they are
	// gone (the running server); nil when no server runs.
	EndSessions func(ctx context.Context, bare string) (int, error)
	Actor       string
	Now         func() time.Time
}

// EraseItem is one line of an erasure report.
type EraseItem struct {
	What    string
	Outcome string
	Kept    bool
}

// EraseReport says what an erasure deleted and what it kept, and why.
type EraseReport struct {
	User  string
	Items []EraseItem
}

// Kept reports whether anything was kept.
func (r EraseReport) Kept() bool {
	for _, it := range r.Items {
		if it.Kept {
			return true
		}
	}
	return false
}

// Write prints the report as a table.
func (r EraseReport) Write(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "erasure of %s\n", r.User)
	fmt.Fprintln(tw, "DATA\tRESULT")
	for _, it := range r.Items {
		fmt.Fprintf(tw, "%s\t%s\n", it.What, it.Outcome)
	}
	return tw.Flush()
}

// Erase deletes a person's data: their archive (unless a legal hold covers
// it), offline messages, roster, private XML, vCard, last activity, block
// list and PEP nodes (store.DeleteUser), archive preferences and the
// archive's owner record. It ends the person's sessions first so nothing
// they do is written after the deletion.
//
// What stays, by design: the copies of this person's messages in other
// people's archives (each party of a 1:1 message has their own copy, which
// is the other party's data and subject to their retention rules) and room
// archives (the room's record, kept by the room's rules). A hold keeps the
// archive until its case is released; erase again then. The account in
// the directory is the directory's business: while it exists the person
// can log in again and new data accrues.
//
// Every erasure appends a "user erase" audit record with the report.
func Erase(ctx context.Context, st *store.Store, o EraseOptions) (EraseReport, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	bare, err := BareJID(o.User)
	if err != nil {
		return EraseReport{}, fmt.Errorf("compliance: erase: %w", err)
	}
	local, domain, _ := strings.Cut(bare, "@")
	if o.Domain != "" && domain != o.Domain {
		return EraseReport{}, fmt.Errorf("compliance: erase: %s is not an account of this server (%s)", bare, o.Domain)
	}
	r := EraseReport{User: bare}
	add := func(what, outcome string, kept bool) {
		r.Items = append(r.Items, EraseItem{What: what, Outcome: outcome, Kept: kept})
	}
	err = erase(ctx, st, o, bare, local, add)
	detail := r.summary()
	if err != nil {
		detail += "; FAILED: " + err.Error()
	}
	if _, aerr := st.AppendAudit(o.Now(), o.Actor, "user erase", detail); aerr != nil {
		err = errors.Join(err, fmt.Errorf("audit log: %w", aerr))
	}
	if err != nil {
		return r, fmt.Errorf("compliance: erase %s: %w", bare, err)
	}
	return r, nil
}

func erase(ctx context.Context, st *store.Store, o EraseOptions, bare, local string, add func(string, string, bool)) error {
	if o.EndSessions != nil {
		n, err := o.EndSessions(ctx, bare)
		if err != nil {
			return fmt.Errorf("ending sessions: %w", err)
		}
		add("sessions", fmt.Sprintf("%d ended", n), false)
	}
	cases, err := st.HeldBy(bare)
	if err != nil {
		return fmt.Errorf("holds: %w", err)
	}
	if len(cases) > 0 {
		add("archive", "kept (hold case "+strings.Join(cases, ", ")+")", true)
	} else {
		// DeleteArchive checks the hold again in each transaction: a hold
		// placed meanwhile stops it.
		n, err := st.DeleteArchive(ctx, bare)
		switch {
		case errors.Is(err, store.ErrHeld):
			cases, _ := st.HeldBy(bare)
			add("archive", fmt.Sprintf("%d messages deleted, the rest kept (hold case %s placed during the erasure)", n, strings.Join(cases, ", ")), true)
		case err != nil:
			return fmt.Errorf("archive: %w", err)
		default:
			add("archive", fmt.Sprintf("%d messages deleted", n), false)
		}
	}
	off, err := st.OfflineCount(local)
	if err != nil {
		return fmt.Errorf("offline messages: %w", err)
	}
	if err := st.DeleteUser(local); err != nil {
		return fmt.Errorf("account data: %w", err)
	}
	add("offline messages", fmt.Sprintf("%d deleted", off), false)
	add("roster, private XML, vCard, last activity, block list, PEP", "deleted", false)
	if err := st.Delete(MAMPrefsBucket, bare); err != nil {
		return fmt.Errorf("archive preferences: %w", err)
	}
	add("archive preferences", "deleted", false)
	add("messages in other people's archives", "kept (their copies: each party's archive is theirs)", true)
	add("messages in room archives", "kept (the room's archive, under the room's rules)", true)
	return nil
}

// summary is the report in one line for the audit log.
func (r EraseReport) summary() string {
	parts := make([]string, 0, len(r.Items))
	for _, it := range r.Items {
		parts = append(parts, it.What+": "+it.Outcome)
	}
	return "user=" + r.User + "; " + strings.Join(parts, "; ")
}
