package wire

import "strconv"

// Stream error conditions (RFC 6120 §4.9.3) that the parser reports. The
// server sends the condition back to the peer before closing the stream.
const (
	// NotWellFormed: the XML violates XML 1.0 or Namespaces in XML
	// (RFC 6120 §4.9.3.13, §11.3).
	NotWellFormed = "not-well-formed"
	// RestrictedXML: a comment, processing instruction, DTD or entity
	// reference other than the predefined ones (RFC 6120 §4.9.3.18, §11.1).
	RestrictedXML = "restricted-xml"
	// PolicyViolation: a Limits value was exceeded (RFC 6120 §4.9.3.14).
	PolicyViolation = "policy-violation"
	// InvalidNamespace: the stream element is not
	// {http://etherx.jabber.org/streams}stream (RFC 6120 §4.9.3.10, §11.2).
	InvalidNamespace = "invalid-namespace"
	// UnsupportedEncoding: the XML declaration names an encoding other than
	// UTF-8 (RFC 6120 §4.9.3.22, §11.6).
	UnsupportedEncoding = "unsupported-encoding"
	// BadFormat: well-formed XML the stream cannot carry, e.g. character data
	// between stanzas (RFC 6120 §4.9.3.1).
	BadFormat = "bad-format"
)

// Error is a parse error that must end the stream with a stream error.
// Once Next returns an *Error the Parser returns the same error forever.
type Error struct {
	Condition string // one of the condition constants above
	Text      string // human readable detail, safe to send to the peer
	Offset    int64  // byte offset in the stream (since the last Reset) where the problem was found
}

func (e *Error) Error() string {
	return "wire: " + e.Condition + " at byte " + strconv.FormatInt(e.Offset, 10) + ": " + e.Text
}

// StreamsNS is the namespace of the stream element, RFC 6120 §4.8.1.
const StreamsNS = "http://etherx.jabber.org/streams"

// StreamErrorNS is the namespace of stream error conditions, RFC 6120 §4.9.2.
const StreamErrorNS = "urn:ietf:params:xml:ns:xmpp-streams"

// AppendXML appends the stream error element for e, as in RFC 6120 §4.9.2:
//
//	<stream:error><COND xmlns='urn:ietf:params:xml:ns:xmpp-streams'/><text xmlns='...'>TEXT</text></stream:error>
//
// It assumes the sender's stream header bound the "stream" prefix, which our
// server always does.
func (e *Error) AppendXML(b []byte) []byte {
	b = append(b, "<stream:error><"...)
	b = append(b, e.Condition...)
	b = append(b, " xmlns='"+StreamErrorNS+"'/>"...)
	if e.Text != "" {
		b = append(b, "<text xmlns='"+StreamErrorNS+"'>"...)
		b = AppendEscaped(b, e.Text)
		b = append(b, "</text>"...)
	}
	return append(b, "</stream:error>"...)
}
