package conf

import (
	"reflect"
	"strings"
	"testing"
)

// A static user so that the documents are complete configurations.
const staticUser = `domain = "corp.example"
[tls]
require_encryption = false
[[directory.user]]
name = "anna"
password = "x"
groups = ["Sales"]
`

func TestDirectorySearchAndRules(t *testing.T) {
	tests := []struct {
		name   string
		doc    string
		fields []string
		rules  []RosterRule
		err    string
	}{
		{"defaults", "", []string{"name", "department", "title"}, nil, ""},
		{"email only when listed", "[directory]\nsearch_fields = [\"name\", \"email\"]\n", []string{"name", "email"}, nil, ""},
		{"empty list disables", "[directory]\nsearch_fields = []\n", []string{}, nil, ""},
		{"rules", "[[directory.roster_rule]]\ngroup = \"Sales\"\nsees = [\"Support\", \"Legal\"]\n",
			[]string{"name", "department", "title"}, []RosterRule{{Group: "Sales", Sees: []string{"Support", "Legal"}}}, ""},
		{"unknown field", "[directory]\nsearch_fields = [\"phone\"]\n", nil, nil, `directory.search_fields: must be one of`},
		{"rule without sees", "[[directory.roster_rule]]\ngroup = \"Sales\"\n", nil, nil, `directory.roster_rule: sees is required`},
		{"rule without group", "[[directory.roster_rule]]\nsees = [\"Sales\"]\n", nil, nil, `directory.roster_rule: group is required`},
		{"unknown rule key", "[[directory.roster_rule]]\ngroup = \"A\"\nsee = [\"B\"]\n", nil, nil, `unknown key`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			doc := tc.doc
			// [directory] keys must precede the [[directory.user]] table.
			if strings.HasPrefix(doc, "[directory]") {
				doc = strings.Replace(staticUser, "[[directory.user]]", doc+"[[directory.user]]", 1)
			} else {
				doc = staticUser + doc
			}
			c, err := Parse("xmppd.toml", []byte(doc))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(c.Directory.SearchFields, tc.fields) || !reflect.DeepEqual(c.Directory.RosterRules, tc.rules) {
				t.Errorf("got %q %+v, want %q %+v", c.Directory.SearchFields, c.Directory.RosterRules, tc.fields, tc.rules)
			}
		})
	}
}
