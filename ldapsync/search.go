package ldapsync

import (
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/go-ldap/ldap/v3"
)

// pagedSearch runs a subtree search with the simple paged results control
// (RFC 2696) and calls fn for each entry, one page in memory at a time.
// Referrals and continuation references are skipped (AD returns them for
// other partitions). A server-side limit that cuts the result short is an
// error, never a short result: a truncated user list would deprovision
// everyone past the limit.
func (c *conn) pagedSearch(base, filter string, attrs []string, pageSize int, fn func(*ldap.Entry) error) error {
	paging := ldap.NewControlPaging(uint32(pageSize))
	req := ldap.NewSearchRequest(base, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false,
		filter, attrs, []ldap.Control{paging})
	for {
		res, err := c.l.Search(req)
		if err != nil {
			return fmt.Errorf("search %s under %s: %w", filter, base, err)
		}
		for _, e := range res.Entries {
			if err := fn(e); err != nil {
				c.abandonPaging(req, paging)
				return err
			}
		}
		pc, ok := ldap.FindControl(res.Controls, ldap.ControlTypePaging).(*ldap.ControlPaging)
		if !ok || len(pc.Cookie) == 0 {
			return nil
		}
		paging.SetCookie(pc.Cookie)
	}
}

// abandonPaging tells the server to drop the paged search state: a page
// size of 0 with the last cookie (RFC 2696 §3).
func (c *conn) abandonPaging(req *ldap.SearchRequest, paging *ldap.ControlPaging) {
	if len(paging.Cookie) == 0 {
		return
	}
	paging.PagingSize = 0
	if _, err := c.l.Search(req); err != nil && !answered(err) {
		c.broken = true
	}
}

// entryAttrs gives case-insensitive access to an entry's attributes:
// servers return names as the schema spells them, not as requested.
type entryAttrs []*ldap.EntryAttribute

func (a entryAttrs) values(name string) []string {
	for _, at := range a {
		if strings.EqualFold(at.Name, name) {
			return at.Values
		}
	}
	return nil
}

func (a entryAttrs) raw(name string) [][]byte {
	for _, at := range a {
		if strings.EqualFold(at.Name, name) {
			return at.ByteValues
		}
	}
	return nil
}

// first returns the first non-empty value of the first attribute in list
// that has one.
func (a entryAttrs) first(list []string) string {
	for _, name := range list {
		for _, v := range a.values(name) {
			if v = strings.TrimSpace(v); v != "" {
				return v
			}
		}
	}
	return ""
}

// firstRaw is first for binary values.
func (a entryAttrs) firstRaw(list []string) []byte {
	for _, name := range list {
		for _, v := range a.raw(name) {
			if len(v) > 0 {
				return v
			}
		}
	}
	return nil
}

// entryID renders the stable identity: entryUUID is text, objectGUID 16
// binary bytes, shown in hex. Without the attribute (hidden by an ACL)
// the normalized DN stands in, and renames are seen as delete plus add.
func entryID(a entryAttrs, idAttr, ndn string) string {
	v := a.raw(idAttr)
	if len(v) == 0 || len(v[0]) == 0 {
		return "dn:" + ndn
	}
	id := v[0]
	if utf8.Valid(id) && printable(id) {
		return string(id)
	}
	return "x:" + hex.EncodeToString(id)
}

func printable(b []byte) bool {
	for _, c := range b {
		if c < 0x20 || c == 0x7f {
			return false
		}
	}
	return true
}

// rangeAttr parses an attribute name with AD's range option,
// "member;range=0-1499" or "member;range=1500-*", for member.
func rangeAttr(name, member string) (lo int, hi int, last bool, ok bool) {
	base, opt, found := strings.Cut(name, ";")
	if !found || !strings.EqualFold(base, member) {
		return 0, 0, false, false
	}
	r, isRange := cutPrefixFold(opt, "range=")
	if !isRange {
		return 0, 0, false, false
	}
	los, his, found := strings.Cut(r, "-")
	if !found {
		return 0, 0, false, false
	}
	lo, err := strconv.Atoi(los)
	if err != nil {
		return 0, 0, false, false
	}
	if his == "*" {
		return lo, 0, true, true
	}
	hi, err = strconv.Atoi(his)
	if err != nil || hi < lo {
		return 0, 0, false, false
	}
	return lo, hi, false, true
}

func cutPrefixFold(s, prefix string) (string, bool) {
	if len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix) {
		return s[len(prefix):], true
	}
	return s, false
}

// memberValues returns all values of the member attribute of a group
// entry. Active Directory returns at most 1500 (MaxValRange) values of a
// large multi-valued attribute per request, named "member;range=0-1499";
// the rest is fetched with base searches for "member;range=1500-*" and so
// on until a range ends in "*" (MS-ADTS §3.1.1.3.1.3.3). fetch runs one
// such search and returns the entry's attributes.
func memberValues(a entryAttrs, member string, fetch func(attr string) (entryAttrs, error)) ([]string, error) {
	var out []string
	next := -1
	for _, at := range a {
		if strings.EqualFold(at.Name, member) {
			out = append(out, at.Values...)
			continue
		}
		if _, hi, last, ok := rangeAttr(at.Name, member); ok {
			out = append(out, at.Values...)
			if !last {
				next = hi + 1
			}
		}
	}
	for guard := 0; next >= 0; guard++ {
		if guard > 100000 {
			return out, fmt.Errorf("range retrieval of %s does not end", member)
		}
		more, err := fetch(fmt.Sprintf("%s;range=%d-*", member, next))
		if err != nil {
			return out, err
		}
		next = -1
		for _, at := range more {
			if _, hi, last, ok := rangeAttr(at.Name, member); ok {
				out = append(out, at.Values...)
				if !last {
					next = hi + 1
				}
			}
		}
	}
	return out, nil
}

// baseAttrs reads attrs of the entry dn (a base-scope search).
func (c *conn) baseAttrs(dn string, attrs []string) (entryAttrs, error) {
	req := ldap.NewSearchRequest(dn, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 0, 0, false,
		"(objectClass=*)", attrs, nil)
	res, err := c.l.Search(req)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", dn, err)
	}
	if len(res.Entries) == 0 {
		return nil, nil
	}
	return res.Entries[0].Attributes, nil
}
