package xmppd

import (
	"github.com/ownchat/ownchat/xmppd/wire"
)

// Namespaces used by the core.
const (
	nsClient      = "jabber:client"
	nsStream      = "http://etherx.jabber.org/streams"
	nsStreams     = "urn:ietf:params:xml:ns:xmpp-streams"
	nsStanzas     = "urn:ietf:params:xml:ns:xmpp-stanzas"
	nsTLS         = "urn:ietf:params:xml:ns:xmpp-tls"
	nsSASL        = "urn:ietf:params:xml:ns:xmpp-sasl"
	nsBind        = "urn:ietf:params:xml:ns:xmpp-bind"
	nsSession     = "urn:ietf:params:xml:ns:xmpp-session"
	nsRoster      = "jabber:iq:roster"
	nsRosterVer   = "urn:xmpp:features:rosterver"
	nsPreApproval = "urn:xmpp:features:pre-approval"
	nsDiscoInfo   = "http://jabber.org/protocol/disco#info"
	nsDiscoItems  = "http://jabber.org/protocol/disco#items"
	nsPing        = "urn:xmpp:ping"
	nsVersion     = "jabber:iq:version"
	nsTime        = "urn:xmpp:time"
	nsDelay       = "urn:xmpp:delay"
	nsHints       = "urn:xmpp:hints"
	nsRegister    = "jabber:iq:register"
)

// streamCondition is an RFC 6120 §4.9.3 stream error condition.
type streamCondition string

const (
	errBadFormat           streamCondition = "bad-format"
	errConflict            streamCondition = "conflict"
	errConnectionTimeout   streamCondition = "connection-timeout"
	errHostUnknown         streamCondition = "host-unknown"
	errInternalServerError streamCondition = "internal-server-error"
	errInvalidFrom         streamCondition = "invalid-from"
	errInvalidNamespace    streamCondition = "invalid-namespace"
	errNotAuthorized       streamCondition = "not-authorized"
	errNotWellFormed       streamCondition = "not-well-formed"
	errPolicyViolation     streamCondition = "policy-violation"
	errResourceConstraint  streamCondition = "resource-constraint"
	errSystemShutdown      streamCondition = "system-shutdown"
	errUnsupportedStanza   streamCondition = "unsupported-stanza-type"
	errUnsupportedVersion  streamCondition = "unsupported-version"
)

// streamError queues <stream:error/> and the closing tag, then the
// connection closes once they are written (RFC 6120 §4.9.1.1). If our
// stream header was not sent yet it is sent first (§4.9.1.2).
func (c *conn) streamError(cond streamCondition, text string) {
	c.streamErrorApp(cond, text, "")
}

// streamErrorApp is streamError with an application-specific condition
// element (RFC 6120 §4.9.4), e.g. XEP-0198's <handled-count-too-high/>.
func (c *conn) streamErrorApp(cond streamCondition, text, app string) {
	// Other goroutines call this too (Shutdown, a conflicting bind): the
	// header state is read under wmu.
	c.wmu.Lock()
	// An ended stream is not resumed (XEP-0198 §5); a parked session has no
	// stream to write to, so it just ends.
	c.noResume = true
	if c.parkedLocked() {
		c.wmu.Unlock()
		c.smEnd(true)
		return
	}
	defer c.wmu.Unlock()
	if c.wclosed {
		return
	}
	b := make([]byte, 0, 256)
	if !c.headerSent {
		b = c.appendHeader(b)
	}
	b = append(b, "<stream:error><"...)
	b = append(b, cond...)
	b = append(b, " xmlns='"+nsStreams+"'/>"...)
	if text != "" {
		b = append(b, "<text xmlns='"+nsStreams+"' xml:lang='en'>"...)
		b = wire.AppendEscaped(b, text)
		b = append(b, "</text>"...)
	}
	b = append(b, app...)
	b = append(b, "</stream:error></stream:stream>"...)
	c.wq = append(c.wq, b)
	c.wclosed = true
	c.closeErr = true
	c.startFlushLocked()
}

// stanzaError describes an RFC 6120 §8.3 error.
type stanzaError struct {
	Type      string // auth | cancel | continue | modify | wait
	Condition string
	Text      string
}

var (
	errServiceUnavailable = stanzaError{"cancel", "service-unavailable", ""}
	errFeatureNotImpl     = stanzaError{"cancel", "feature-not-implemented", ""}
	errBadRequest         = stanzaError{"modify", "bad-request", ""}
	errNotAllowed         = stanzaError{"cancel", "not-allowed", ""}
	errForbidden          = stanzaError{"auth", "forbidden", ""}
	errItemNotFound       = stanzaError{"cancel", "item-not-found", ""}
	errRemoteNotFound     = stanzaError{"cancel", "remote-server-not-found", ""}
	errInternal           = stanzaError{"wait", "internal-server-error", ""}
	errJIDMalformed       = stanzaError{"modify", "jid-malformed", ""}
	errResConstraint      = stanzaError{"wait", "resource-constraint", ""}
	errNotAcceptable      = stanzaError{"modify", "not-acceptable", ""}
)

func (e stanzaError) withText(t string) stanzaError { e.Text = t; return e }

func (e stanzaError) element() *wire.Element {
	er := &wire.Element{Space: nsClient, Local: "error", Attrs: []wire.Attr{{Name: "type", Value: e.Type}}}
	er.Add(elem(nsStanzas, e.Condition))
	if e.Text != "" {
		t := elem(nsStanzas, "text", "xml:lang", "en")
		t.AddText(e.Text)
		er.Add(t)
	}
	return er
}

// errorReply builds the error response to el (RFC 6120 §8.3.1): addresses
// swapped, type error, the id kept. For IQs the original payload is not
// echoed; the error child is enough for every client we know.
func errorReply(el *wire.Element, from string, e stanzaError) *wire.Element {
	r := &wire.Element{Space: nsClient, Local: el.Local}
	if id := el.Attr("id"); id != "" || el.HasAttr("id") {
		r.SetAttr("id", id)
	}
	r.SetAttr("type", "error")
	if from != "" {
		r.SetAttr("from", from)
	}
	if to := el.Attr("from"); to != "" {
		r.SetAttr("to", to)
	}
	r.Add(e.element())
	return r
}
