package ldapsync

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Search returns up to max people who may log in (in username order)
// matching every term of q, case-insensitively, as a substring of the
// snapshot's attributes: "name" (username or display name), "email",
// "department", "title". It never asks the directory: a search must not
// cost an LDAP query per keystroke, and it sees what rosters see. An
// unknown key matches nobody; empty terms are ignored; with no term,
// nobody matches. Photo is nil.
func (d *Directory) Search(q map[string]string, max int) []Person {
	sn := d.snap.Load()
	if sn == nil || max <= 0 {
		return nil
	}
	terms := 0
	for k, v := range q {
		if v == "" {
			continue
		}
		switch k {
		case "name", "email", "department", "title":
			terms++
		default:
			return nil
		}
	}
	if terms == 0 {
		return nil
	}
	name, mail, dept, title := q["name"], q["email"], q["department"], q["title"]
	var out []Person
	for i := range sn.people {
		p := &sn.people[i].Person
		if name != "" && !containsFold(p.Username, name) && !containsFold(p.DisplayName, name) ||
			!containsFold(p.Mail, mail) || !containsFold(p.Department, dept) || !containsFold(p.Title, title) {
			continue
		}
		out = append(out, *p)
		if len(out) == max {
			break
		}
	}
	return out
}

// containsFold reports whether sub is in s under simple Unicode case
// folding, without allocating: a search scans every person. An empty sub
// is in every s.
func containsFold(s, sub string) bool {
	if sub == "" {
		return true
	}
	for i := 0; i < len(s); {
		if hasPrefixFold(s[i:], sub) {
			return true
		}
		if s[i] < utf8.RuneSelf {
			i++
			continue
		}
		_, n := utf8.DecodeRuneInString(s[i:])
		i += n
	}
	return false
}

func hasPrefixFold(s, prefix string) bool {
	for prefix != "" {
		if s == "" {
			return false
		}
		if c1, c2 := s[0], prefix[0]; c1 < utf8.RuneSelf && c2 < utf8.RuneSelf {
			// ASCII, nearly every byte of a name: no rune decoding.
			if lowerASCII(c1) != lowerASCII(c2) {
				return false
			}
			s, prefix = s[1:], prefix[1:]
			continue
		}
		r1, n1 := utf8.DecodeRuneInString(s)
		r2, n2 := utf8.DecodeRuneInString(prefix)
		if r1 != r2 && unicode.ToLower(r1) != unicode.ToLower(r2) && !strings.EqualFold(s[:n1], prefix[:n2]) {
			return false
		}
		s, prefix = s[n1:], prefix[n2:]
	}
	return true
}

func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}
