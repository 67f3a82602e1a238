package mam

import (
	"bytes"
	"strconv"

	"github.com/ownchat/ownchat/store"
	"github.com/ownchat/ownchat/xmppd/wire"
)

const stampLayout = "2006-01-02T15:04:05.000000Z" // XEP-0082 with the id's microseconds

// AppendResult appends one result message (§4.2): from the archive
// (from) to the querying session (to), the record's stanza forwarded
// (XEP-0297) with a XEP-0203 delay at the archive time. The stored stanza
// is spliced in as it is: a page costs no parse.
func AppendResult(b []byte, to, from, queryID string, rec *store.ArchiveRecord) []byte {
	b = append(b, "<message to='"...)
	b = wire.AppendAttrEscaped(b, to)
	b = append(b, "' from='"...)
	b = wire.AppendAttrEscaped(b, from)
	b = append(b, "'><result xmlns='"+NS+"'"...)
	if queryID != "" {
		b = append(b, " queryid='"...)
		b = wire.AppendAttrEscaped(b, queryID)
		b = append(b, '\'')
	}
	b = append(b, " id='"...)
	b = append(b, rec.ID.String()...)
	b = append(b, "'><forwarded xmlns='"+NSForward+"'><delay xmlns='"+NSDelay+"' stamp='"...)
	b = rec.ID.Time().AppendFormat(b, stampLayout)
	b = append(b, "'/>"...)
	b = appendStanza(b, rec.Stanza)
	return append(b, "</forwarded></result></message>"...)
}

// appendStanza makes sure the forwarded message declares jabber:client:
// inside <forwarded/> it would otherwise inherit urn:xmpp:forward:0.
func appendStanza(b, st []byte) []byte {
	const open = "<message"
	if bytes.HasPrefix(st, []byte(open)) && len(st) > len(open) {
		end := bytes.IndexByte(st, '>')
		if end > 0 && !bytes.Contains(st[:end], []byte("xmlns=")) {
			b = append(b, open+" xmlns='"+nsClient+"'"...)
			return append(b, st[len(open):]...)
		}
	}
	return append(b, st...)
}

// Fin is the iq result payload that ends a query (§4.3): complete when
// the page reached the end of the results in its direction, and the RSM
// first/last/count. first and last name the oldest and the newest record
// of the page also when it is flipped: flipping changes only the order of
// transmission (§4.3.5).
func Fin(req *Request, page *store.ArchivePage) *wire.Element {
	fin := wire.New(NS, "fin")
	complete := page.Complete
	if req.CountOnly {
		complete = page.Count == 0
	}
	if complete {
		fin.SetAttr("complete", "true")
	}
	set := wire.New(NSRSM, "set")
	if !req.CountOnly && len(page.Records) > 0 {
		set.Add(textEl(NSRSM, "first", page.Records[0].ID.String()))
		set.Add(textEl(NSRSM, "last", page.Records[len(page.Records)-1].ID.String()))
	}
	if page.Count >= 0 {
		set.Add(textEl(NSRSM, "count", strconv.Itoa(page.Count)))
	}
	return fin.Add(set)
}

// Metadata is the answer to <metadata/> (§6, XEP-0313 1.1): the first
// and the last message of the archive; empty for an empty archive.
func Metadata(first, last store.ArchiveID) *wire.Element {
	md := wire.New(NS, "metadata")
	if first == 0 {
		return md
	}
	for _, e := range []struct {
		name string
		id   store.ArchiveID
	}{{"start", first}, {"end", last}} {
		md.Add(&wire.Element{Space: NS, Local: e.name, Attrs: []wire.Attr{
			{Name: "id", Value: e.id.String()},
			{Name: "timestamp", Value: e.id.Time().Format(stampLayout)},
		}})
	}
	return md
}

func textEl(space, local, text string) *wire.Element {
	return (&wire.Element{Space: space, Local: local}).AddText(text)
}
