package mam

import (
	"bytes"
	"strings"

	"mellium.im/xmpp/jid"

	"github.com/ownchat/ownchat/xmppd/wire"
)

// Archiving defaults of the preferences (XEP-0313 §7).
const (
	Always = "always"
	Roster = "roster"
	Never  = "never"
)

// Prefs are one archive's preferences (§7).
type Prefs struct {
	Default string   // always, roster or never
	Always  []string // bare JIDs always archived
	Never   []string // bare JIDs never archived
}

// DefaultPrefs is what an account without stored preferences gets: a
// company archive keeps every conversation unless the user opts out.
var DefaultPrefs = Prefs{Default: Always}

// ErrForcedArchiving refuses preferences that would turn archiving off
// when the company requires it (compliance mode).
var ErrForcedArchiving = &Error{Type: "cancel", Condition: "not-allowed", Text: "archiving is required by company policy"}

// ParsePrefs reads a <prefs/> of an iq set. The error is an *Error.
func ParsePrefs(el *wire.Element) (Prefs, error) {
	p := Prefs{Default: el.Attr("default")}
	switch p.Default {
	case Always, Roster, Never:
	default:
		return Prefs{}, badRequest("default must be always, roster or never")
	}
	for _, n := range el.Nodes {
		l := n.El
		if l == nil || l.Space != NS {
			continue
		}
		var list *[]string
		switch l.Local {
		case "always":
			list = &p.Always
		case "never":
			list = &p.Never
		default:
			continue
		}
		for _, jn := range l.Nodes {
			if jn.El == nil || jn.El.Local != "jid" {
				continue
			}
			j, err := jid.Parse(strings.TrimSpace(jn.El.Text()))
			if err != nil {
				return Prefs{}, &Error{Type: "modify", Condition: "jid-malformed", Text: err.Error()}
			}
			*list = append(*list, j.Bare().String())
		}
	}
	return p, nil
}

// CheckForced refuses what compliance mode does not let a user choose:
// any default other than always, and a never list.
func (p Prefs) CheckForced() error {
	if p.Default != Always || len(p.Never) > 0 {
		return ErrForcedArchiving
	}
	return nil
}

// Element is the <prefs/> of a get or set result.
func (p Prefs) Element() *wire.Element {
	el := wire.New(NS, "prefs", "default", p.Default)
	for _, l := range []struct {
		name string
		jids []string
	}{{"always", p.Always}, {"never", p.Never}} {
		le := &wire.Element{Space: NS, Local: l.name}
		for _, j := range l.jids {
			le.Add((&wire.Element{Space: NS, Local: "jid"}).AddText(j))
		}
		el.Add(le)
	}
	return el
}

// Marshal is the stored form: the default, then "+jid" (always) and
// "-jid" (never) lines. JIDs cannot contain a newline.
func (p Prefs) Marshal() []byte {
	var b bytes.Buffer
	b.WriteString(p.Default)
	for _, j := range p.Always {
		b.WriteString("\n+" + j)
	}
	for _, j := range p.Never {
		b.WriteString("\n-" + j)
	}
	return b.Bytes()
}

// UnmarshalPrefs reverses Marshal; nil or empty gives DefaultPrefs.
func UnmarshalPrefs(b []byte) Prefs {
	if len(b) == 0 {
		return DefaultPrefs
	}
	lines := strings.Split(string(b), "\n")
	p := Prefs{Default: lines[0]}
	switch p.Default {
	case Always, Roster, Never:
	default:
		p.Default = Always
	}
	for _, l := range lines[1:] {
		if len(l) < 2 {
			continue
		}
		switch l[0] {
		case '+':
			p.Always = append(p.Always, l[1:])
		case '-':
			p.Never = append(p.Never, l[1:])
		}
	}
	return p
}

// Archives reports whether a message with the bare JID with goes into
// the archive (§7): the never list wins over the always list (a user who
// put a JID in both meant to protect it), then the default. inRoster is
// asked only for the roster default. forced (compliance mode) archives
// everything.
func (p *Prefs) Archives(with string, forced bool, inRoster func(string) bool) bool {
	if forced {
		return true
	}
	for _, j := range p.Never {
		if matches(j, with) {
			return false
		}
	}
	for _, j := range p.Always {
		if matches(j, with) {
			return true
		}
	}
	switch p.Default {
	case Never:
		return false
	case Roster:
		return inRoster != nil && inRoster(with)
	}
	return true
}

// matches compares a preference JID with a bare JID: equal, or the
// preference is the domain of with.
func matches(pref, with string) bool {
	if pref == with {
		return true
	}
	if i := strings.IndexByte(with, '@'); i >= 0 && strings.IndexByte(pref, '@') < 0 {
		return with[i+1:] == pref
	}
	return false
}
