// Package wire reads and writes the XML of XMPP streams (RFC 6120 §4, §11).
//
// It is the server's hot path: every stanza is parsed here, inspected,
// stamped with 'from' and written back out for each recipient. It imports
// only the standard library and does not use encoding/xml, which costs
// about 50 allocations per stanza and rewrites prefixes.
//
// # Model
//
// An Element keeps what the sender wrote: prefixes, namespace declarations
// (as ordinary Attrs) and attribute order. Space is the resolved namespace.
// AppendXML writes an element relative to its parent's default namespace, so
// a forwarded stanza comes out as it came in, and built elements get the
// xmlns they need. A stanza that uses a prefix declared on the stream header
// gets that declaration added to its own Attrs, so it stays valid when it is
// written into another stream or an archive.
//
// # Parsing in two passes
//
// Pass 1 (Parser.scan) is a small resumable state machine in the spirit of
// nats-server's parser. It only finds where the current top-level element
// ends: it follows quotes, CDATA sections, nesting depth and end tag names,
// keeps its state across reads, and runs bytes.IndexByte over text, so it
// costs little and never looks at a byte twice. It enforces MaxStanzaBytes
// and MaxDepth while the stanza is still arriving and rejects comments,
// processing instructions and DTDs as soon as they appear, so hostile input
// is cut off before it is buffered.
//
// Pass 2 (parseTree) then parses the complete frame in one go, with no
// suspension points: names (XML 1.0 §2.3, Namespaces in XML §4), attributes,
// references, UTF-8 and the Char production (§2.2), line ends (§2.11),
// attribute-value normalization (§3.3.3), namespaces and duplicate
// attributes. It records the tree as indices and spans in a pooled scratch
// and decodes all strings into one byte arena. Then build makes the
// caller's tree with four allocations: the arena as one string (every name,
// value and text is a substring of it; stream-level namespaces are shared
// strings of the parser), and one slab each of Elements, Attrs and Nodes.
// Sub-slices are capped so appending to one element never touches another,
// and the stanza's root has one spare Attr slot so stamping 'from' does not
// allocate. Nothing returned aliases the read buffer.
//
// # Memory while idle
//
// Most sessions spend most of their time parked in Next waiting for the
// next stanza. When everything buffered has been consumed at a top-level
// boundary, the parser returns its 4 KiB read buffer to a sync.Pool and
// blocks in a 1-byte Read into an array inside the Parser. White space
// keepalives are consumed there one byte at a time without taking a buffer.
// When a byte of markup arrives, the parser takes a pooled buffer and reads
// the rest with ordinary large reads; a stanza bigger than the buffer grows
// it (doubling, at most MaxStanzaBytes plus one buffer), and such grown
// buffers are dropped rather than pooled. The parse scratch is pooled the
// same way. An idle Parser therefore holds a few hundred bytes; this works
// for a net.Conn and a *tls.Conn alike (tls.Conn keeps its decrypted record
// internally and hands it out across the small and the large read).
//
// # Errors
//
// Syntax and policy problems are *Error values carrying the RFC 6120 §4.9.3
// stream error condition to send; they are sticky. Errors from the reader
// are returned as they are and are not sticky: after a read deadline Next
// can be called again and continues in the middle of the stanza.
package wire
