package staticdir

import "github.com/ownchat/ownchat/textmatch"

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
		if name != "" && !textmatch.ContainsFold(p.Username, name) && !textmatch.ContainsFold(p.DisplayName, name) {
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
		if textmatch.ContainsFold(s, sub) {
			return true
		}
	}
	return false
}
