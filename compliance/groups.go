package compliance

import (
	"fmt"

	"github.com/ownchat/ownchat/store"
)

// RecordDirectoryGroups records, with each person's archive, the groups
// the directory gives them now, where these differ from the recorded ones,
// and returns how many archives it updated. People the directory does not
// know (leavers) keep what was recorded while it still knew them: that is
// what their group rules follow from then on (issue 6: a leaver's archive
// is "never silently lost and never kept past its rule").
//
// The server runs it at start, since the directory may have changed while
// it was stopped (the static directory changes only then), and the purge
// does the same for the archives it visits; between the two, the message
// path records a person's groups when their archive is first asked for.
func RecordDirectoryGroups(st *store.Store, groups func(owner string) ([]string, bool)) (int, error) {
	if groups == nil {
		return 0, nil
	}
	owners, err := st.ArchiveOwners()
	if err != nil {
		return 0, fmt.Errorf("compliance: record directory groups: %w", err)
	}
	known := make(map[string][]string)
	for _, o := range owners {
		if o.Kind == store.KindGroupchat {
			continue
		}
		if g, ok := groups(o.JID); ok {
			known[o.JID] = g
		}
	}
	// One comparison pass and at most one write transaction for all.
	n, err := st.RecordArchiveGroups(known, false)
	if err != nil {
		return 0, fmt.Errorf("compliance: record directory groups: %w", err)
	}
	return n, nil
}
