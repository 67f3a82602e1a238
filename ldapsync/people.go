package ldapsync

import "github.com/ownchat/ownchat/textmatch"

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
		if name != "" && !textmatch.ContainsFold(p.Username, name) && !textmatch.ContainsFold(p.DisplayName, name) ||
			!textmatch.ContainsFold(p.Mail, mail) || !textmatch.ContainsFold(p.Department, dept) || !textmatch.ContainsFold(p.Title, title) {
			continue
		}
		out = append(out, *p)
		if len(out) == max {
			break
		}
	}
	return out
}
