package mam

import (
	"errors"
	"fmt"
	"slices"

	"github.com/ownchat/ownchat/store"
	"github.com/ownchat/ownchat/xmppd/wire"
)

// Page answers a parsed query from the store: it waits for the archive
// writer (a client must see what it just sent, which may still be
// queued), checks that the ids the client paged from exist (§4.3.3), and
// reads the page from the indexes.
func Page(st *store.Store, req *Request) (store.ArchivePage, error) {
	if err := st.FlushArchive(); err != nil {
		return store.ArchivePage{}, fmt.Errorf("mam: flush archive: %w", err)
	}
	if len(req.MustExist) > 0 {
		ok, err := Exists(st.QueryArchive, req.Query.Owner, req.MustExist)
		if err != nil {
			return store.ArchivePage{}, fmt.Errorf("mam: paging id of %s: %w", req.Query.Owner, err)
		}
		if !ok {
			return store.ArchivePage{}, ErrItemNotFound
		}
	}
	page, err := st.QueryArchive(req.Query)
	if err != nil {
		return store.ArchivePage{}, fmt.Errorf("mam: query %s: %w", req.Query.Owner, err)
	}
	if req.CountOnly {
		page.Records = nil
	}
	return page, nil
}

// SendPage renders the page's result messages from the archive (from) to
// the querying session (to), newest first when the page is flipped, each
// through send as one stanza.
func SendPage(to, from string, req *Request, page *store.ArchivePage, send func([]byte)) {
	recs := page.Records
	if req.Flip {
		recs = slices.Clone(recs)
		slices.Reverse(recs)
	}
	for i := range recs {
		send(AppendResult(make([]byte, 0, len(recs[i].Stanza)+320), to, from, req.QueryID, &recs[i]))
	}
}

// ReadMetadata is the <metadata/> answer for owner's archive: two
// one-record pages, the first and the last.
func ReadMetadata(st *store.Store, owner string) (*wire.Element, error) {
	if err := st.FlushArchive(); err != nil {
		return nil, fmt.Errorf("mam: flush archive: %w", err)
	}
	first, err := st.QueryArchive(store.ArchiveQuery{Owner: owner, Max: 1})
	if err != nil {
		return nil, fmt.Errorf("mam: metadata of %s: %w", owner, err)
	}
	if len(first.Records) == 0 {
		return Metadata(0, 0), nil
	}
	last, err := st.QueryArchive(store.ArchiveQuery{Owner: owner, Max: 1, Backward: true})
	if err != nil {
		return nil, fmt.Errorf("mam: metadata of %s: %w", owner, err)
	}
	if len(last.Records) == 0 {
		return nil, errors.New("mam: metadata of " + owner + ": archive emptied during the query")
	}
	return Metadata(first.Records[0].ID, last.Records[0].ID), nil
}
