package ldapsync

import (
	"sort"
	"strings"

	"github.com/go-ldap/ldap/v3"
)

// normDN returns a canonical form of a DN for comparisons: a group's
// member values are written by whoever edited the group ("CN=Bob, OU=People,
// DC=corp,DC=example") while the user entry's DN comes from the server, and
// both must meet. Attribute types and values are lowercased (the naming
// attributes in use, cn/uid/ou/dc, match case-insensitively), spaces
// around separators dropped, and escaped values decoded and re-escaped one
// way (RFC 4514 §2.4). An unparsable DN is returned lowercased, so it can
// only meet itself.
func normDN(dn string) string {
	if !strings.ContainsAny(dn, `\"+#;<>`) {
		return normSimpleDN(dn)
	}
	parsed, err := ldap.ParseDN(dn)
	if err != nil {
		return strings.ToLower(dn)
	}
	var b strings.Builder
	b.Grow(len(dn))
	for i, rdn := range parsed.RDNs {
		if i > 0 {
			b.WriteByte(',')
		}
		attrs := rdn.Attributes
		if len(attrs) > 1 { // multi-valued RDN: order is not significant
			attrs = append([]*ldap.AttributeTypeAndValue(nil), attrs...)
			sort.Slice(attrs, func(i, j int) bool {
				return strings.ToLower(attrs[i].Type) < strings.ToLower(attrs[j].Type)
			})
		}
		for j, a := range attrs {
			if j > 0 {
				b.WriteByte('+')
			}
			b.WriteString(strings.ToLower(a.Type))
			b.WriteByte('=')
			writeDNValue(&b, strings.ToLower(a.Value))
		}
	}
	return b.String()
}

// normSimpleDN handles a DN without escapes, quotes or multi-valued RDNs,
// which is nearly every DN, without ParseDN's allocations.
func normSimpleDN(dn string) string {
	var b strings.Builder
	b.Grow(len(dn))
	first := true
	for rdn := range strings.SplitSeq(dn, ",") {
		if !first {
			b.WriteByte(',')
		}
		first = false
		typ, val, ok := strings.Cut(rdn, "=")
		b.WriteString(strings.ToLower(strings.TrimSpace(typ)))
		if ok {
			b.WriteByte('=')
			writeDNValue(&b, strings.ToLower(strings.TrimSpace(val)))
		}
	}
	return b.String()
}

// writeDNValue escapes the characters that would make a value ambiguous in
// the normalized form.
func writeDNValue(b *strings.Builder, v string) {
	for i := 0; i < len(v); i++ {
		switch c := v[i]; c {
		case ',', '+', '\\', '=', '"', ';', '<', '>':
			b.WriteByte('\\')
			b.WriteByte(c)
		case '#':
			if i == 0 {
				b.WriteByte('\\')
			}
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
}
