package staticdir

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Search returns up to max people (in username order) matching every term
// of q, case-insensitively, as a substring: "name" matches the username or
// the display name, "department" a group name. The static directory has
// no mail or title, so a term for those (or any other key) matches nobody.
// Empty terms are ignored; with none, nobody matches.
func (d *Directory) Search(q map[string]string, max int) []Person {
	terms := 0
	for k, v := range q {
		if v == "" {
			continue
		}
		if k != "name" && k != "department" {
			return nil
		}
		terms++
	}
	if terms == 0 || max <= 0 {
		return nil
	}
	name, dept := q["name"], q["department"]
	var out []Person
	for i := range d.users {
		p := &d.users[i].person
		if name != "" && !containsFold(p.Username, name) && !containsFold(p.DisplayName, name) {
			continue
		}
		if dept != "" && !anyContainsFold(p.Groups, dept) {
			continue
		}
		out = append(out, *p)
		if len(out) == max {
			break
		}
	}
	return out
}

func anyContainsFold(l []string, sub string) bool {
	for _, s := range l {
		if containsFold(s, sub) {
			return true
		}
	}
	return false
}

// containsFold reports whether sub is in s under simple Unicode case
// folding, without allocating: a search scans every person.
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
