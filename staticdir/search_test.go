package staticdir

import (
	"strings"
	"testing"

	"github.com/ownchat/ownchat/sharedroster"
)

func searchDir(t *testing.T) *Directory {
	t.Helper()
	d, err := New([]User{
		{Name: "jmueller", DisplayName: "Jürgen Müller", Groups: []string{"Sales"}, Password: "x"},
		{Name: "anna", DisplayName: "Anna Schmidt", Groups: []string{"Support"}, Password: "x"},
		{Name: "bert", DisplayName: "Bert Sales", Groups: []string{"Legal", "Support"}, Password: "x"},
		{Name: "carl", DisplayName: "Carl", Password: "x"},
	}, sharedroster.Rule{Group: "Sales", Sees: []string{"Support"}})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestSearch(t *testing.T) {
	d := searchDir(t)
	tests := []struct {
		q    map[string]string
		max  int
		want string
	}{
		{map[string]string{"name": "MÜLL"}, 50, "jmueller"},
		{map[string]string{"name": "jmu"}, 50, "jmueller"},
		{map[string]string{"name": "a"}, 50, "anna bert carl"},
		{map[string]string{"name": "a"}, 2, "anna bert"},
		{map[string]string{"department": "supp"}, 50, "anna bert"},
		{map[string]string{"name": "sales"}, 50, "bert"}, // a name, not a group
		{map[string]string{"name": "a", "department": "legal"}, 50, "bert"},
		{map[string]string{"name": "", "department": ""}, 50, ""},
		{map[string]string{"email": "anna"}, 50, ""}, // no mail in the static directory
		{map[string]string{"name": "*"}, 50, ""},
	}
	for _, tc := range tests {
		var got []string
		for _, p := range d.Search(tc.q, tc.max) {
			got = append(got, p.Username)
		}
		if s := strings.Join(got, " "); s != tc.want {
			t.Errorf("Search(%v, %d) = %q, want %q", tc.q, tc.max, s, tc.want)
		}
	}
}

func TestColleaguesWithRule(t *testing.T) {
	d := searchDir(t)
	tests := []struct{ user, want string }{
		{"jmueller", "anna:Support bert:Support"}, // Sales sees Support
		{"anna", "bert:Support jmueller:Sales"},   // and Support sees Sales back
		{"bert", "anna:Support jmueller:Sales"},
		{"carl", ""},
	}
	for _, tc := range tests {
		var got []string
		for _, p := range d.Colleagues(tc.user) {
			got = append(got, p.Username+":"+strings.Join(p.Groups, ","))
		}
		if s := strings.Join(got, " "); s != tc.want {
			t.Errorf("Colleagues(%s) = %q, want %q", tc.user, s, tc.want)
		}
	}
}
