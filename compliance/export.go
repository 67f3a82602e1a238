// Package compliance holds what a compliance officer runs against the
// store: exports for eDiscovery and subject access (this file), erasure,
// the audit log report and the retention purge. Every function here takes
// the store and plain options, so the same code runs inside the server
// (through the admin socket) and in `xmppd ctl` on a stopped server.
package compliance

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/ownchat/ownchat/store"
	"github.com/ownchat/ownchat/xmppd/wire"
	"mellium.im/xmpp/jid"
)

// Export formats.
const (
	FormatJSON = "json"
	FormatXML  = "xml"
)

// ExportOptions selects what Export writes. Exactly one of User and Room
// is set.
type ExportOptions struct {
	User   string // bare JID of a person: their 1:1 archive
	Room   string // bare JID of a room: the room's archive
	With   string // only messages with this JID (bare, or a room occupant's full JID)
	Since  time.Time
	Until  time.Time // inclusive
	Format string    // FormatJSON (default) or FormatXML

	// Actor and Now go into the audit record every export appends.
	Actor string
	Now   func() time.Time
}

// Filters is the selection as recorded in the manifest and the audit log.
type Filters struct {
	User  string `json:"user,omitempty"`
	Room  string `json:"room,omitempty"`
	With  string `json:"with,omitempty"`
	Since string `json:"since,omitempty"`
	Until string `json:"until,omitempty"`
}

// Manifest proves what an export contains: SHA256 is the hex SHA-256 of
// every byte Export wrote (for JSON, every line before the manifest line,
// newlines included), so anyone can check that a file was not changed or
// cut short.
type Manifest struct {
	Count     int     `json:"count"`
	SHA256    string  `json:"sha256"`
	Owner     string  `json:"owner"`
	Filters   Filters `json:"filters"`
	Generated string  `json:"generated"`
	Format    string  `json:"format"`
}

// ManifestLine is the manifest as the last line of a JSON Lines export.
type ManifestLine struct {
	Manifest Manifest `json:"manifest"`
}

// ExportedMessage is one line of a JSON Lines export.
type ExportedMessage struct {
	ID        string `json:"id"` // the XEP-0359 stanza-id the archive gave the message
	Time      string `json:"time"`
	From      string `json:"from"`
	To        string `json:"to"`
	Type      string `json:"type"`
	Body      string `json:"body"`
	Stanza    string `json:"stanza"`
	Owner     string `json:"owner"`
	With      string `json:"with"`
	Direction string `json:"direction"` // "in" or "out" as seen by Owner
}

// TimeLayout is how exports write times: RFC 3339 in UTC with the
// archive's microseconds, fixed width so that times sort as text.
const TimeLayout = "2006-01-02T15:04:05.000000Z07:00"

const (
	nsClient  = "jabber:client"
	nsPIE     = "urn:xmpp:pie:0"
	nsPIEMAM  = "urn:xmpp:pie:0#mam"
	nsMAM     = "urn:xmpp:mam:2"
	nsForward = "urn:xmpp:forward:0"
	nsDelay   = "urn:xmpp:delay"
)

// ParseTime reads a command-line time: RFC 3339, or a date (UTC). A date
// as an upper bound means the end of that day, so -until 2026-01-31
// includes the messages of the 31st.
func ParseTime(s string, upper bool) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC(), nil
	}
	d, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is neither RFC 3339 (2026-01-31T12:00:00Z) nor a date (2026-01-31)", s)
	}
	if upper {
		d = d.AddDate(0, 0, 1).Add(-time.Microsecond)
	}
	return d, nil
}

// BareJID normalizes a JID given on the command line to the bare form the
// archive keys use (RFC 7622: PRECIS, case-folded localpart); it refuses a
// resource, which would select nothing.
func BareJID(s string) (string, error) {
	j, err := jid.Parse(s)
	if err != nil {
		return "", fmt.Errorf("%q is not a JID: %w", s, err)
	}
	if j.Resourcepart() != "" {
		return "", fmt.Errorf("%q has a resource; give the bare JID (user@domain)", s)
	}
	if j.Localpart() == "" {
		return "", fmt.Errorf("%q has no local part (user@domain)", s)
	}
	return j.String(), nil
}

// normWith normalizes a -with JID; unlike BareJID it keeps a resource (a
// room occupant is room@service/nick).
func normWith(s string) (string, error) {
	j, err := jid.Parse(s)
	if err != nil {
		return "", fmt.Errorf("-with %q is not a JID: %w", s, err)
	}
	return j.String(), nil
}

// Export streams every archived message matching o to w, one message per
// line, and returns its manifest. It never holds more than one message in
// memory. Whether it succeeded or not, it appends an "archive export"
// record to the audit log: reading someone's messages is what the audit
// log exists to prove.
func Export(ctx context.Context, st *store.Store, o ExportOptions, w io.Writer) (Manifest, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	m, q, err := exportQuery(o)
	if err != nil {
		return Manifest{}, err
	}
	h := sha256.New()
	x := exporter{w: io.MultiWriter(w, h), owner: m.Owner, room: o.Room != ""}
	if m.Format == FormatXML {
		err = x.xmlHead()
	}
	if err == nil {
		err = st.ForEachArchive(q, func(r store.ArchiveRecord) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			m.Count++
			if m.Format == FormatXML {
				return x.xmlRecord(r)
			}
			return x.jsonRecord(r)
		})
	}
	if err == nil && m.Format == FormatXML {
		err = x.xmlTail()
	}
	m.SHA256 = hex.EncodeToString(h.Sum(nil))
	m.Generated = o.Now().UTC().Format(time.RFC3339)
	detail := exportDetail(m, err)
	if _, aerr := st.AppendAudit(o.Now(), o.Actor, "archive export", detail); aerr != nil {
		// An export nobody can account for must not be handed out.
		return m, fmt.Errorf("compliance: export: audit log: %w", aerr)
	}
	if err != nil {
		return m, fmt.Errorf("compliance: export of %s after %d messages: %w", m.Owner, m.Count, err)
	}
	return m, nil
}

func exportDetail(m Manifest, err error) string {
	f, _ := json.Marshal(m.Filters)
	d := fmt.Sprintf("filters=%s format=%s count=%d sha256=%s", f, m.Format, m.Count, m.SHA256)
	if err != nil {
		d += " INCOMPLETE: " + err.Error()
	}
	return d
}

func exportQuery(o ExportOptions) (Manifest, store.ArchiveQuery, error) {
	var m Manifest
	var q store.ArchiveQuery
	switch {
	case (o.User == "") == (o.Room == ""):
		return m, q, errors.New("compliance: export: give exactly one of -user and -room")
	case o.User != "":
		u, err := BareJID(o.User)
		if err != nil {
			return m, q, fmt.Errorf("compliance: export: -user: %w", err)
		}
		m.Owner, m.Filters.User = u, u
	default:
		r, err := BareJID(o.Room)
		if err != nil {
			return m, q, fmt.Errorf("compliance: export: -room: %w", err)
		}
		m.Owner, m.Filters.Room = r, r
	}
	q.Owner = m.Owner
	if o.With != "" {
		w, err := normWith(o.With)
		if err != nil {
			return m, q, fmt.Errorf("compliance: export: %w", err)
		}
		q.With, m.Filters.With = w, w
	}
	if !o.Since.IsZero() {
		q.Start, m.Filters.Since = o.Since, o.Since.UTC().Format(TimeLayout)
	}
	if !o.Until.IsZero() {
		q.End, m.Filters.Until = o.Until, o.Until.UTC().Format(TimeLayout)
	}
	if !o.Since.IsZero() && !o.Until.IsZero() && o.Until.Before(o.Since) {
		return m, q, errors.New("compliance: export: -until is before -since")
	}
	switch o.Format {
	case "", FormatJSON:
		m.Format = FormatJSON
	case FormatXML:
		m.Format = FormatXML
	default:
		return m, q, fmt.Errorf("compliance: export: unknown format %q (want json or xml)", o.Format)
	}
	return m, q, nil
}

// exporter writes records; its buffers are reused from line to line.
type exporter struct {
	w     io.Writer
	owner string
	room  bool
	line  bytes.Buffer
	enc   *json.Encoder
	b     []byte
}

// firstBody is the message's body: the one without xml:lang when there are
// several (RFC 6121 §5.2.3), else the first.
func firstBody(el *wire.Element) string {
	var first *wire.Element
	for _, n := range el.Nodes {
		c := n.El
		if c == nil || c.Local != "body" || c.Space != nsClient {
			continue
		}
		if !c.HasAttr("xml:lang") {
			return c.Text()
		}
		if first == nil {
			first = c
		}
	}
	if first != nil {
		return first.Text()
	}
	return ""
}

func (x *exporter) jsonRecord(r store.ArchiveRecord) error {
	m := ExportedMessage{
		ID:        r.ID.String(),
		Time:      r.ID.Time().Format(TimeLayout),
		Stanza:    string(r.Stanza),
		Owner:     x.owner,
		With:      r.With,
		Direction: "in",
	}
	if r.Outgoing {
		m.Direction = "out"
	}
	// A stanza the parser refuses is still exported, raw: leaving it out
	// would make the export incomplete without anyone noticing.
	if el, err := wire.ParseElement(r.Stanza); err == nil {
		m.From, m.To, m.Type, m.Body = el.Attr("from"), el.Attr("to"), el.Attr("type"), firstBody(el)
		if m.Type == "" {
			m.Type = "normal" // RFC 6121 §5.2.2: absent type means normal
		}
	}
	if x.enc == nil {
		x.enc = json.NewEncoder(&x.line)
		x.enc.SetEscapeHTML(false) // readable XML in "stanza"; JSON does not need it
	}
	x.line.Reset()
	if err := x.enc.Encode(&m); err != nil { // Encode ends the line with \n
		return fmt.Errorf("encode %s: %w", m.ID, err)
	}
	_, err := x.w.Write(x.line.Bytes())
	return err
}

// xmlHead opens the XEP-0227 document on its own line. XEP-0227 has no
// element for rooms; a room export uses <room name='LOCAL'> in place of
// <user>, inside the <host> of the room service.
func (x *exporter) xmlHead() error {
	local, domain, _ := strings.Cut(x.owner, "@")
	b := append(x.b[:0], "<server-data xmlns='"+nsPIE+"'><host jid='"...)
	b = wire.AppendAttrEscaped(b, domain)
	if x.room {
		b = append(b, "'><room name='"...)
	} else {
		b = append(b, "'><user name='"...)
	}
	b = wire.AppendAttrEscaped(b, local)
	b = append(b, "'><archive xmlns='"+nsPIEMAM+"'>\n"...)
	x.b = b
	_, err := x.w.Write(b)
	return err
}

func (x *exporter) xmlTail() error {
	tail := "</archive></user></host></server-data>\n"
	if x.room {
		tail = "</archive></room></host></server-data>\n"
	}
	_, err := io.WriteString(x.w, tail)
	return err
}

// xmlRecord writes one <result/> per line, as a XEP-0313 result would
// carry it. Line feeds inside message text are written as &#xA; so that a
// line is exactly one message.
func (x *exporter) xmlRecord(r store.ArchiveRecord) error {
	b := append(x.b[:0], "<result xmlns='"+nsMAM+"' id='"...)
	b = wire.AppendAttrEscaped(b, r.ID.String())
	b = append(b, "'><forwarded xmlns='"+nsForward+"'><delay xmlns='"+nsDelay+"' stamp='"...)
	b = r.ID.Time().AppendFormat(b, TimeLayout)
	b = append(b, "'/>"...)
	el, err := wire.ParseElement(r.Stanza)
	if err != nil {
		return fmt.Errorf("archived message %s is not well-formed XML: %w", r.ID, err)
	}
	start := len(b)
	b = el.AppendXML(b, nsForward) // the message gets xmlns='jabber:client' back
	b = escapeNewlines(b, start)
	b = append(b, "</forwarded></result>\n"...)
	x.b = b
	_, err = x.w.Write(b)
	return err
}

// escapeNewlines replaces the line feeds in b[from:] with &#xA;. The wire
// serializer writes them literally only in character data (attribute
// values already carry &#xA;), where the reference means the same.
func escapeNewlines(b []byte, from int) []byte {
	n := bytes.Count(b[from:], []byte{'\n'})
	if n == 0 {
		return b
	}
	tail := append([]byte(nil), b[from:]...)
	b = b[:from]
	for _, c := range tail {
		if c == '\n' {
			b = append(b, "&#xA;"...)
		} else {
			b = append(b, c)
		}
	}
	return b
}

// WriteManifestLine writes m as the last line of a JSON Lines export.
func WriteManifestLine(w io.Writer, m Manifest) error {
	b, err := json.Marshal(ManifestLine{Manifest: m})
	if err != nil {
		return fmt.Errorf("compliance: manifest: %w", err)
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// WriteManifest writes m as one JSON object (the -manifest FILE form).
func WriteManifest(w io.Writer, m Manifest) error {
	b, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("compliance: manifest: %w", err)
	}
	_, err = w.Write(append(b, '\n'))
	return err
}
