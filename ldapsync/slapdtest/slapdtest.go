// Package slapdtest runs a throwaway OpenLDAP server for tests: Debian's
// slapd (OpenLDAP 2.5) on free loopback ports in a temporary directory, an
// mdb database loaded with slapadd from LDIF files (by default the ldapsync
// fixture company, ../testdata/corp.ldif), and helpers that change entries
// as the root DN while the server runs. Package ldapsync tests it against
// this server, and the e2e tests put it behind the xmppd binary.
//
// The server has what the fixture and ownChat's openldap preset need:
//   - the ppolicy overlay, so that pwdAccountLockedTime locks an account
//     (Lock, Unlock);
//   - refint, so that a renamed or deleted user's group memberships follow
//     (asynchronously: see Await), as in Active Directory;
//   - a limit of 1000 entries per search for the service account, as AD's
//     MaxPageSize, so that only paged searches (RFC 2696) see everything;
//   - optionally ldaps:// and StartTLS with a certificate from a CA made
//     for the test.
//
// Start skips the test when slapd is not installed (apt-get install slapd),
// or fails it when OWNCHAT_REQUIRE_E2E=1: CI must not pass by skipping.
package slapdtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// Paths of the Debian binaries.
const (
	SlapdBin   = "/usr/sbin/slapd"
	SlapaddBin = "/usr/sbin/slapadd"
)

// Names and passwords of the fixture directory. Every fixture user's
// password is "<uid>-secret" (see Person).
const (
	Suffix          = "dc=corp,dc=example"
	People          = "ou=People," + Suffix
	Groups          = "ou=Groups," + Suffix
	AdminDN         = "cn=admin," + Suffix // the root DN
	AdminPassword   = "admin-secret"
	ServiceDN       = "cn=xmppd,ou=Services," + Suffix // what ownChat binds as
	ServicePassword = "service-secret"
)

// lockedTime is a pwdAccountLockedTime that locks an account until an
// administrator removes it (ppolicy: the special value 000001010000Z).
const lockedTime = "000001010000Z"

// Fixture returns the path of the fixture LDIF (ldapsync/testdata/corp.ldif),
// found from this source file so that tests in any package can load it.
func Fixture() string {
	fixtureOnce.Do(func() {
		const rel = "ldapsync/testdata/corp.ldif"
		if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
			fixturePath = filepath.Join(filepath.Dir(file), "..", "testdata", "corp.ldif")
			return
		}
		// Built with -trimpath: look upwards from the working directory,
		// which go test sets to a package directory inside the module.
		dir, _ := os.Getwd()
		for ; ; dir = filepath.Dir(dir) {
			if p := filepath.Join(dir, rel); fileExists(p) {
				fixturePath = p
				return
			}
			if filepath.Dir(dir) == dir {
				fixturePath = rel
				return
			}
		}
	})
	return fixturePath
}

var (
	fixtureOnce sync.Once
	fixturePath string
)

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// Require skips t when slapd or slapadd is not installed, or fails it when
// OWNCHAT_REQUIRE_E2E=1.
func Require(t testing.TB) {
	t.Helper()
	for _, bin := range []string{SlapdBin, SlapaddBin} {
		if _, err := os.Stat(bin); err != nil {
			msg := fmt.Sprintf("%s not installed (apt-get install slapd): %v", bin, err)
			if os.Getenv("OWNCHAT_REQUIRE_E2E") == "1" {
				t.Fatalf("OWNCHAT_REQUIRE_E2E=1: %s", msg)
			}
			t.Skip(msg)
		}
	}
}

// Options describe the server Start makes.
type Options struct {
	// LDIF are the files slapadd loads, in order; default: Fixture().
	LDIF []string
	// TLS also listens on ldaps:// and allows StartTLS.
	TLS bool
	// CertHosts are the DNS names in the server certificate (default
	// "localhost"). The certificate never holds an IP address, so that
	// ldaps://127.0.0.1 fails the host name check.
	CertHosts []string
}

// Server is one slapd. Its helpers fail the test given to Start (or to
// SetTB) on any error.
type Server struct {
	URL     string         // ldap://127.0.0.1:Port
	Port    int            // plain LDAP (and StartTLS, when TLS)
	TLSURL  string         // ldaps://localhost:TLSPort, when TLS
	TLSPort int            // when TLS
	CA      *x509.CertPool // trusts the server certificate, when TLS
	CAFile  string         // the CA as PEM, when TLS
	Dir     string         // configuration, database and slapd.log

	conf  string
	tlsOn bool

	mu       sync.Mutex
	t        testing.TB
	cmd      *exec.Cmd
	waitDone chan struct{}
}

// Start loads the LDIF files into a new database and runs slapd on it
// until the test ends.
func Start(t testing.TB, o Options) *Server {
	t.Helper()
	Require(t)
	s := &Server{t: t, Dir: t.TempDir(), Port: FreePort(t), tlsOn: o.TLS}
	s.URL = fmt.Sprintf("ldap://127.0.0.1:%d", s.Port)
	if err := os.Mkdir(filepath.Join(s.Dir, "db"), 0o700); err != nil {
		t.Fatal(err)
	}
	var tlsConf string
	if o.TLS {
		s.TLSPort = FreePort(t)
		s.TLSURL = fmt.Sprintf("ldaps://localhost:%d", s.TLSPort)
		hosts := o.CertHosts
		if hosts == nil {
			hosts = []string{"localhost"}
		}
		s.CA, s.CAFile = WriteCerts(t, s.Dir, hosts)
		tlsConf = fmt.Sprintf("TLSCACertificateFile %s\nTLSCertificateFile %s\nTLSCertificateKeyFile %s\n",
			s.CAFile, filepath.Join(s.Dir, "server.pem"), filepath.Join(s.Dir, "server.key"))
	}
	conf := fmt.Sprintf(`include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include /etc/ldap/schema/nis.schema
modulepath /usr/lib/ldap
moduleload back_mdb
moduleload ppolicy
moduleload refint
pidfile %[1]s/slapd.pid
argsfile %[1]s/slapd.args
%[2]s
database mdb
maxsize 4294967296
suffix "%[3]s"
rootdn "%[4]s"
rootpw %[5]s
directory %[1]s/db
index objectClass eq
index uid,cn,entryUUID,entryCSN eq
# As AD's MaxPageSize: 1000 entries per search unless paged.
limits dn.exact="%[6]s" size.soft=1000 size.hard=1000 size.pr=1000 size.prtotal=unlimited
access to attrs=userPassword
  by anonymous auth
  by * none
access to *
  by dn.exact="%[6]s" read
  by anonymous auth
  by self read
  by * none
overlay ppolicy
ppolicy_default "cn=default,ou=Policies,%[3]s"
overlay refint
refint_attributes member
`, s.Dir, tlsConf, Suffix, AdminDN, AdminPassword, ServiceDN)
	s.conf = filepath.Join(s.Dir, "slapd.conf")
	if err := os.WriteFile(s.conf, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	ldifs := o.LDIF
	if ldifs == nil {
		ldifs = []string{Fixture()}
	}
	for _, l := range ldifs {
		out, err := exec.Command(SlapaddBin, "-q", "-f", s.conf, "-l", l).CombinedOutput()
		if err != nil {
			t.Fatalf("slapdtest: slapadd %s: %v\n%s", l, err, out)
		}
	}
	s.Start()
	t.Cleanup(s.Stop)
	return s
}

// SetTB makes later helper calls report to t: for a server shared by
// several tests or benchmarks (started with a testing.TB whose Cleanup
// does nothing, and stopped by TestMain).
func (s *Server) SetTB(t testing.TB) {
	s.mu.Lock()
	s.t = t
	s.mu.Unlock()
}

func (s *Server) tb() testing.TB {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.t
}

// Start runs slapd again after Stop, on the same ports and database.
// slapd runs in the foreground (-d 0 keeps it attached) and Start returns
// once it accepts connections.
func (s *Server) Start() {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.t
	t.Helper()
	if s.cmd != nil {
		t.Fatalf("slapdtest: Start: slapd is running")
	}
	urls := s.URL + "/"
	if s.tlsOn {
		urls += fmt.Sprintf(" ldaps://127.0.0.1:%d/", s.TLSPort)
	}
	logf, err := os.OpenFile(filepath.Join(s.Dir, "slapd.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(SlapdBin, "-f", s.conf, "-h", urls, "-d", "0")
	cmd.Stdout, cmd.Stderr = logf, logf
	// slapd must not outlive a test binary that is killed.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("slapdtest: start slapd: %v", err)
	}
	s.cmd = cmd
	s.waitDone = make(chan struct{})
	go func(done chan struct{}) { cmd.Wait(); close(done) }(s.waitDone)
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", strings.TrimPrefix(s.URL, "ldap://"), time.Second)
		if err == nil {
			c.Close()
			return
		}
		select {
		case <-s.waitDone:
			s.cmd = nil
			log, _ := os.ReadFile(filepath.Join(s.Dir, "slapd.log"))
			t.Fatalf("slapdtest: slapd exited at start:\n%s", log)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("slapdtest: slapd does not accept connections on %s: %v", s.URL, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop ends slapd (SIGTERM, then SIGKILL after 10 s) and waits for it: the
// directory is down. The database stays, so Start brings it back.
// Stopping a stopped server does nothing.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.waitDone:
	case <-time.After(10 * time.Second):
		s.cmd.Process.Kill()
		<-s.waitDone
	}
	s.cmd = nil
}

// Admin returns a connection bound as the root DN; the caller closes it.
func (s *Server) Admin() *ldap.Conn {
	t := s.tb()
	t.Helper()
	l, err := ldap.DialURL(s.URL)
	if err != nil {
		t.Fatalf("slapdtest: admin dial: %v", err)
	}
	if err := l.Bind(AdminDN, AdminPassword); err != nil {
		l.Close()
		t.Fatalf("slapdtest: admin bind: %v", err)
	}
	return l
}

// do runs op on a fresh root DN connection, failing the test on error.
func (s *Server) do(what string, op func(l *ldap.Conn) error) {
	t := s.tb()
	t.Helper()
	l := s.Admin()
	defer l.Close()
	if err := op(l); err != nil {
		t.Fatalf("slapdtest: %s: %v", what, err)
	}
}

// Modify applies the changes change makes to a modify request for dn.
func (s *Server) Modify(dn string, change func(r *ldap.ModifyRequest)) {
	s.tb().Helper()
	r := ldap.NewModifyRequest(dn, nil)
	change(r)
	s.do("modify "+dn, func(l *ldap.Conn) error { return l.Modify(r) })
}

// Add creates the entry dn with attrs (see Person).
func (s *Server) Add(dn string, attrs map[string][]string) {
	s.tb().Helper()
	r := ldap.NewAddRequest(dn, nil)
	for k, v := range attrs {
		r.Attribute(k, v)
	}
	s.do("add "+dn, func(l *ldap.Conn) error { return l.Add(r) })
}

// Delete removes the entry dn. refint removes it from groups afterwards,
// asynchronously: Await the group change before relying on it.
func (s *Server) Delete(dn string) {
	s.tb().Helper()
	s.do("delete "+dn, func(l *ldap.Conn) error { return l.Del(ldap.NewDelRequest(dn, nil)) })
}

// Rename gives dn a new RDN ("uid=new") in the same parent; refint updates
// groups asynchronously (see Await).
func (s *Server) Rename(dn, newRDN string) {
	s.tb().Helper()
	s.do("rename "+dn, func(l *ldap.Conn) error {
		return l.ModifyDN(ldap.NewModifyDNRequest(dn, newRDN, true, ""))
	})
}

// AddMember puts memberDN into the groupOfNames groupDN.
func (s *Server) AddMember(groupDN, memberDN string) {
	s.tb().Helper()
	s.Modify(groupDN, func(r *ldap.ModifyRequest) { r.Add("member", []string{memberDN}) })
}

// Lock locks the account dn with the password policy (pwdAccountLockedTime):
// it can no longer bind, and the openldap preset's disabled_filter matches.
func (s *Server) Lock(dn string) {
	s.tb().Helper()
	s.Modify(dn, func(r *ldap.ModifyRequest) { r.Add("pwdAccountLockedTime", []string{lockedTime}) })
}

// Unlock removes the lock Lock set.
func (s *Server) Unlock(dn string) {
	s.tb().Helper()
	s.Modify(dn, func(r *ldap.ModifyRequest) { r.Delete("pwdAccountLockedTime", nil) })
}

// Await waits up to 10 s until the entry dn matches filter (want) or not
// (a missing entry does not match): refint changes groups after a rename
// or delete asynchronously.
func (s *Server) Await(dn, filter string, want bool) {
	t := s.tb()
	t.Helper()
	l := s.Admin()
	defer l.Close()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		res, err := l.Search(ldap.NewSearchRequest(dn, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 0, 0, false, filter, []string{"1.1"}, nil))
		if err != nil && !ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject) {
			t.Fatalf("slapdtest: await %s %s: %v", dn, filter, err)
		}
		if got := err == nil && len(res.Entries) > 0; got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("slapdtest: await %s %s: still %v", dn, filter, !want)
		}
	}
}

// Person returns the attributes of a new inetOrgPerson with password
// uid+"-secret" and sn the last word of cn; extra are more attribute/value
// pairs ("displayName", "Nina Nowak").
func Person(uid, cn string, extra ...string) map[string][]string {
	a := map[string][]string{
		"objectClass":  {"inetOrgPerson"},
		"uid":          {uid},
		"cn":           {cn},
		"sn":           {cn[strings.LastIndex(cn, " ")+1:]},
		"userPassword": {uid + "-secret"},
	}
	for i := 0; i+1 < len(extra); i += 2 {
		a[extra[i]] = append(a[extra[i]], extra[i+1])
	}
	return a
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("slapdtest: free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// WriteCerts makes a CA and a server certificate for hosts (DNS names
// only) in dir: ca.pem, server.pem, server.key. It returns a pool trusting
// the CA and the path of ca.pem.
func WriteCerts(t testing.TB, dir string, hosts []string) (*x509.CertPool, string) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ca := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ownChat test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: hosts[0]}, DNSNames: hosts,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, leaf, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(dir, "ca.pem")
	for name, block := range map[string]*pem.Block{
		"ca.pem":     {Type: "CERTIFICATE", Bytes: caDER},
		"server.pem": {Type: "CERTIFICATE", Bytes: der},
		"server.key": {Type: "PRIVATE KEY", Bytes: keyDER},
	} {
		if err := os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	pool := x509.NewCertPool()
	pool.AddCert(caCert)
	return pool, caFile
}
