package staticdir

import "testing"

// TestNames: configured names are kept per user; the nickname defaults
// to the given name, as with the LDAP directory.
func TestNames(t *testing.T) {
	d, err := New([]User{
		{Name: "anna", Password: "x", GivenName: "Anna", Surname: "Berg", Groups: []string{"g"}},
		{Name: "ben", Password: "x", GivenName: "Benjamin", Nickname: "Ben", Groups: []string{"g"}},
		{Name: "cleo", Password: "x", Surname: "Dahl"},
		{Name: "dora", Password: "x"},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		user string
		want Names
	}{
		{"anna", Names{Given: "Anna", Surname: "Berg", Nickname: "Anna"}},
		{"ben", Names{Given: "Benjamin", Nickname: "Ben"}},
		{"cleo", Names{Surname: "Dahl"}},
		{"dora", Names{}},
	} {
		if got, ok := d.Names(tc.user); !ok || got != tc.want {
			t.Errorf("Names(%s) = %+v, %v, want %+v", tc.user, got, ok, tc.want)
		}
	}
	if _, ok := d.Names("eve"); ok {
		t.Error("Names(eve) ok")
	}
}
