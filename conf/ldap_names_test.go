package conf

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestDirectoryNames covers the vCard N and NICKNAME keys: the LDAP
// attribute mappings (validated like the other *_attr keys) and the
// static users' given_name, surname and nickname.
func TestDirectoryNames(t *testing.T) {
	const ldapHead = "domain = \"corp.example\"\n[directory]\nbackend = \"ldap\"\npreset = \"openldap\"\n" +
		"base_dn = \"dc=corp,dc=example\"\nurl = \"ldaps://a\"\n"
	for _, tc := range []struct {
		name string
		doc  string
		want func(d Directory) bool
		err  string
	}{
		{name: "ldap attributes", doc: ldapHead + "given_name_attr = \"givenName\"\nsurname_attr = \"sn,surname\"\nnickname_attr = \"displayName, cn\"\n",
			want: func(d Directory) bool {
				return d.GivenNameAttr == "givenName" && d.SurnameAttr == "sn,surname" && d.NicknameAttr == "displayName, cn"
			}},
		{name: "ldap defaults left to the preset", doc: ldapHead,
			want: func(d Directory) bool { return d.GivenNameAttr == "" && d.SurnameAttr == "" && d.NicknameAttr == "" }},
		{name: "bad given name attribute", doc: ldapHead + "given_name_attr = \"first name\"\n",
			err: `xmppd.toml:7: directory.given_name_attr: is not an attribute name (got "first name")`},
		{name: "bad surname attribute", doc: ldapHead + "surname_attr = \"sn,\"\n",
			err: `xmppd.toml:7: directory.surname_attr: is not an attribute name (got "sn,")`},
		{name: "bad nickname attribute", doc: ldapHead + "nickname_attr = \"-nick\"\n",
			err: `xmppd.toml:7: directory.nickname_attr: is not an attribute name (got "-nick")`},
		{name: "ldap key with the static backend",
			doc: "domain = \"corp.example\"\n[directory]\nbackend = \"static\"\nsurname_attr = \"sn\"\n[[directory.user]]\nname = \"anna\"\npassword = \"x\"\n",
			err: `xmppd.toml:4: directory.surname_attr: only used with backend = "ldap"`},
		{name: "static user names",
			doc: "domain = \"corp.example\"\n[[directory.user]]\nname = \"anna\"\npassword = \"x\"\ngiven_name = \"Anna\"\nsurname = \"Berg\"\nnickname = \"Annie\"\n",
			want: func(d Directory) bool {
				u := d.Users[0]
				return u.GivenName == "Anna" && u.Surname == "Berg" && u.Nickname == "Annie"
			}},
		{name: "static user key misspelt",
			doc: "domain = \"corp.example\"\n[[directory.user]]\nname = \"anna\"\npassword = \"x\"\ngivenname = \"Anna\"\n",
			err: `xmppd.toml:5: directory.user.givenname: unknown key (did you mean "given_name"?)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "xmppd.toml")
			c, err := Parse(path, []byte(tc.doc))
			if tc.err != "" {
				if err == nil {
					t.Fatalf("no error, want %q", tc.err)
				}
				if got := strings.ReplaceAll(err.Error(), path, "xmppd.toml"); !strings.Contains(got, tc.err) {
					t.Errorf("got:\n%s\nwant:\n%s", got, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tc.want(c.Directory) {
				t.Errorf("got %+v", c.Directory)
			}
		})
	}
}
