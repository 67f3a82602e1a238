package compliance

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ownchat/ownchat/store"
)

// WriteAuditList prints the last n records of the audit log as a table
// (all of them when n <= 0).
func WriteAuditList(w io.Writer, st *store.Store, n int) error {
	recs, err := st.AuditRecords()
	if err != nil {
		return fmt.Errorf("compliance: audit list: %w", err)
	}
	if n > 0 && len(recs) > n {
		recs = recs[len(recs)-n:]
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SEQ\tTIME\tACTOR\tACTION\tDETAIL")
	for _, r := range recs {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", r.Seq, r.Time.UTC().Format(time.RFC3339), oneLine(r.Actor), oneLine(r.Action), oneLine(r.Detail))
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("compliance: audit list: %w", err)
	}
	return nil
}

// oneLine keeps a table row on one line whatever a record holds.
func oneLine(s string) string {
	return strings.NewReplacer("\n", `\n`, "\r", `\r`, "\t", " ").Replace(s)
}

// AuditBrokenError is returned by VerifyAuditLog when the chain is broken;
// the problems were printed already.
type AuditBrokenError struct{ Problems int }

func (e *AuditBrokenError) Error() string {
	return fmt.Sprintf("audit log NOT intact: %d problem(s)", e.Problems)
}

// VerifyAuditLog recomputes the audit chain. Intact: it prints
// "audit log intact: N records, head HASH" and returns nil. Otherwise it
// prints one line per problem and returns an *AuditBrokenError.
func VerifyAuditLog(w io.Writer, st *store.Store) error {
	probs, err := st.VerifyAudit()
	if err != nil {
		return fmt.Errorf("compliance: audit verify: %w", err)
	}
	if len(probs) > 0 {
		for _, p := range probs {
			fmt.Fprintf(w, "record %d: %s\n", p.Seq, p.Reason)
		}
		return &AuditBrokenError{Problems: len(probs)}
	}
	recs, err := st.AuditRecords()
	if err != nil {
		return fmt.Errorf("compliance: audit verify: %w", err)
	}
	head := "(empty)"
	if len(recs) > 0 {
		head = recs[len(recs)-1].Hash
	}
	_, err = fmt.Fprintf(w, "audit log intact: %d records, head %s\n", len(recs), head)
	return err
}
