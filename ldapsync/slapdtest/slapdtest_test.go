package slapdtest

import (
	"crypto/tls"
	"os"
	"testing"

	"github.com/go-ldap/ldap/v3"
)

// bind reports whether dn can bind with password on s right now.
func bind(t *testing.T, s *Server, dn, password string) error {
	t.Helper()
	l, err := ldap.DialURL(s.URL)
	if err != nil {
		return err
	}
	defer l.Close()
	return l.Bind(dn, password)
}

// TestServer drives every helper against the fixture: each step changes
// the directory and the binds after it prove the change.
func TestServer(t *testing.T) {
	if _, err := os.Stat(Fixture()); err != nil {
		t.Fatalf("Fixture() = %s: %v", Fixture(), err)
	}
	s := Start(t, Options{})
	alice, nina := "uid=alice,"+People, "uid=nina,"+People
	steps := []struct {
		name  string
		do    func()
		binds map[string]bool // dn -> bind with "<uid>-secret" succeeds
	}{
		{"fixture", func() {}, map[string]bool{alice: true, "uid=frank," + People: false, nina: false}},
		{"lock", func() { s.Lock(alice) }, map[string]bool{alice: false}},
		{"unlock", func() { s.Unlock(alice) }, map[string]bool{alice: true}},
		{"add", func() {
			s.Add(nina, Person("nina", "Nina Nowak", "displayName", "Nina Nowak"))
			s.AddMember("cn=Sales,"+Groups, nina)
		}, map[string]bool{nina: true}},
		{"delete", func() {
			s.Delete(nina)
			s.Await("cn=Sales,"+Groups, "(member="+nina+")", false) // refint
		}, map[string]bool{nina: false}},
		{"rename", func() {
			s.Rename(alice, "uid=alicia")
			s.Await("cn=Engineering,"+Groups, "(member=uid=alicia,"+People+")", true)
		}, map[string]bool{"uid=alicia," + People: true, alice: false}},
	}
	passwords := map[string]string{
		alice: "alice-secret", "uid=alicia," + People: "alice-secret",
		"uid=frank," + People: "frank-secret", nina: "nina-secret",
	}
	for _, st := range steps {
		st.do()
		for dn, want := range st.binds {
			if err := bind(t, s, dn, passwords[dn]); (err == nil) != want {
				t.Errorf("%s: bind %s: %v, want success %v", st.name, dn, err, want)
			}
		}
	}
	if err := bind(t, s, ServiceDN, ServicePassword); err != nil {
		t.Fatalf("service account: %v", err)
	}

	s.Stop()
	if err := bind(t, s, ServiceDN, ServicePassword); err == nil {
		t.Fatal("bind after Stop succeeded")
	}
	s.Stop() // twice is harmless
	s.Start()
	if err := bind(t, s, "uid=alicia,"+People, "alice-secret"); err != nil {
		t.Fatalf("after a restart the changes must still be there: %v", err)
	}
}

// TestTLS: ldaps:// with the certificate of the test CA.
func TestTLS(t *testing.T) {
	s := Start(t, Options{TLS: true})
	if s.CA == nil || s.CAFile == "" || s.TLSURL == "" {
		t.Fatalf("TLS server without CA or URL: %+v", s)
	}
	l, err := ldap.DialURL(s.TLSURL, ldap.DialWithTLSConfig(&tls.Config{RootCAs: s.CA, ServerName: "localhost", MinVersion: tls.VersionTLS12}))
	if err != nil {
		t.Fatalf("ldaps: %v", err)
	}
	defer l.Close()
	if err := l.Bind(ServiceDN, ServicePassword); err != nil {
		t.Fatalf("bind over ldaps: %v", err)
	}
}
