package ldapsync

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
	"unicode/utf16"

	"github.com/go-ldap/ldap/v3"
)

// The Active Directory tests run Samba's AD DC (Debian packages
// samba-ad-dc and samba-ad-provision), provisioned once per test binary
// in a temporary directory: LDAP only, on the loopback interface, with a
// certificate from the test CA for "localhost". Like a real AD it refuses
// simple binds without TLS, caps searches at 1,000 entries (MaxPageSize),
// and keeps objectGUID, uSNChanged, userAccountControl and accountExpires.
// Its LDAP ports are the standard ones (389, 636): samba has no setting to
// move them, so only one such test server runs at a time.

const (
	sambaBin     = "/usr/sbin/samba"
	sambaToolBin = "/usr/bin/samba-tool"
	adBase       = "DC=corp,DC=example"
	adAdminDN    = "CN=Administrator,CN=Users," + adBase
	adAdminPW    = "Adm1n-Secret!"
	adServiceDN  = "CN=xmppd,CN=Users," + adBase
	adServicePW  = "Svc-Secret-42!"
	adStaff      = "OU=Staff," + adBase
	adGroups     = "OU=Groups," + adBase
	adBulk       = "OU=Bulk," + adBase
	adBulkUsers  = 1100
)

type sambaAD struct {
	dir  string
	conf string
	URL  string // ldaps://localhost:636
	CA   *x509.CertPool
	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

var adServer struct {
	once sync.Once
	ad   *sambaAD
	err  error
}

func requireSamba(t testing.TB) {
	t.Helper()
	for _, bin := range []string{sambaBin, sambaToolBin, "/usr/share/samba/setup/ad-schema"} {
		if _, err := os.Stat(bin); err != nil {
			msg := fmt.Sprintf("%s missing (apt-get install samba-ad-dc samba-ad-provision): %v", bin, err)
			if os.Getenv("OWNCHAT_REQUIRE_E2E") == "1" {
				t.Fatalf("OWNCHAT_REQUIRE_E2E=1: %s", msg)
			}
			t.Skip(msg)
		}
	}
	if os.Geteuid() != 0 {
		t.Skip("Samba AD DC needs root to listen on 389/636")
	}
}

// startAD returns the package's AD DC, provisioning and starting it on
// first use; TestMain stops it.
func startAD(t testing.TB) *sambaAD {
	t.Helper()
	requireSamba(t)
	adServer.once.Do(func() {
		adServer.ad, adServer.err = provisionAD(t)
	})
	if adServer.err != nil {
		t.Fatalf("Samba AD DC: %v", adServer.err)
	}
	return adServer.ad
}

func provisionAD(t testing.TB) (*sambaAD, error) {
	for _, port := range []string{"389", "636"} {
		if c, err := net.DialTimeout("tcp", "127.0.0.1:"+port, 200*time.Millisecond); err == nil {
			c.Close()
			return nil, fmt.Errorf("port %s is in use: another directory server runs here", port)
		}
	}
	dir, err := os.MkdirTemp("", "ldapsync-ad")
	if err != nil {
		return nil, err
	}
	ad := &sambaAD{dir: dir, conf: filepath.Join(dir, "etc", "smb.conf"), URL: "ldaps://localhost:636"}
	ad.CA, _ = writeCerts(&onceTB{TB: t, dir: dir}, dir, []string{"localhost"})
	start := time.Now()
	out, err := exec.Command(sambaToolBin, "domain", "provision", "--realm=CORP.EXAMPLE", "--domain=CORP",
		"--server-role=dc", "--dns-backend=NONE", "--adminpass="+adAdminPW, "--targetdir="+dir,
		"--option=interfaces=lo", "--option=bind interfaces only=yes", "--option=server services=ldap",
		"--option=log file="+filepath.Join(dir, "log.%m"),
		// Its own pid file: the default /run/samba would clash with any
		// other samba on the machine (a concurrent test run, a real DC).
		"--option=pid directory="+filepath.Join(dir, "run"),
		"--option=tls enabled=yes", "--option=tls keyfile="+filepath.Join(dir, "server.key"),
		"--option=tls certfile="+filepath.Join(dir, "server.pem"), "--option=tls cafile="+filepath.Join(dir, "ca.pem"),
	).CombinedOutput()
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("provision: %v\n%s", err, out)
	}
	if err := ad.loadBulk(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if err := ad.start(); err != nil {
		ad.stop()
		os.RemoveAll(dir)
		return nil, err
	}
	if err := ad.populate(); err != nil {
		ad.stop()
		os.RemoveAll(dir)
		return nil, err
	}
	t.Logf("Samba AD DC provisioned, started and populated in %v", time.Since(start).Round(time.Millisecond))
	return ad, nil
}

func (ad *sambaAD) start() error {
	ad.mu.Lock()
	defer ad.mu.Unlock()
	logf, err := os.Create(filepath.Join(ad.dir, "samba.out"))
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(sambaBin, "-i", "-s", ad.conf)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own process group, so that stop ends the prefork children too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return err
	}
	ad.cmd, ad.done = cmd, make(chan struct{})
	go func(done chan struct{}) { cmd.Wait(); close(done) }(ad.done)
	deadline := time.Now().Add(90 * time.Second)
	for {
		l, err := ad.dial()
		if err == nil {
			l.Close()
			return nil
		}
		select {
		case <-ad.done:
			out, _ := os.ReadFile(filepath.Join(ad.dir, "samba.out"))
			return fmt.Errorf("samba exited at start:\n%s", out)
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("samba does not answer on %s: %v", ad.URL, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (ad *sambaAD) stop() {
	ad.mu.Lock()
	defer ad.mu.Unlock()
	if ad.cmd == nil {
		return
	}
	syscall.Kill(-ad.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-ad.done:
	case <-time.After(15 * time.Second):
		syscall.Kill(-ad.cmd.Process.Pid, syscall.SIGKILL)
		<-ad.done
	}
	ad.cmd = nil
}

// dial binds as the domain administrator over LDAPS.
func (ad *sambaAD) dial() (*ldap.Conn, error) {
	l, err := ldap.DialURL(ad.URL, ldap.DialWithTLSConfig(&tls.Config{RootCAs: ad.CA, ServerName: "localhost"}))
	if err != nil {
		return nil, err
	}
	if err := l.Bind(adAdminDN, adAdminPW); err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}

func (ad *sambaAD) admin(t testing.TB) *ldap.Conn {
	t.Helper()
	l, err := ad.dial()
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// unicodePwd encodes a password as AD wants it set: quoted, UTF-16LE.
func unicodePwd(pw string) string {
	u := utf16.Encode([]rune(`"` + pw + `"`))
	b := make([]byte, 2*len(u))
	for i, c := range u {
		binary.LittleEndian.PutUint16(b[2*i:], c)
	}
	return string(b)
}

// adUser returns the attributes of an enabled user with a password.
func adUser(sam, cn, upn, pw string, extra ...string) map[string][]string {
	a := map[string][]string{
		"objectClass":        {"user"},
		"cn":                 {cn},
		"sAMAccountName":     {sam},
		"displayName":        {cn},
		"userAccountControl": {"512"}, // NORMAL_ACCOUNT
		"unicodePwd":         {unicodePwd(pw)},
	}
	if upn != "" {
		a["userPrincipalName"] = []string{upn}
	}
	for i := 0; i+1 < len(extra); i += 2 {
		a[extra[i]] = append(a[extra[i]], extra[i+1])
	}
	return a
}

func adAdd(l *ldap.Conn, dn string, attrs map[string][]string) error {
	r := ldap.NewAddRequest(dn, nil)
	for k, v := range attrs {
		r.Attribute(k, v)
	}
	if err := l.Add(r); err != nil {
		return fmt.Errorf("add %s: %w", dn, err)
	}
	return nil
}

// populate creates the company: OUs, the service account, people (one
// with a UPN that differs from the sAMAccountName, one disabled, one
// expired), nested groups, and 1,100 more users for paging.
func (ad *sambaAD) populate() error {
	l, err := ad.dial()
	if err != nil {
		return err
	}
	defer l.Close()
	ou := func(dn, name string) error {
		return adAdd(l, dn, map[string][]string{"objectClass": {"organizationalUnit"}, "ou": {name}})
	}
	expired := strconv.FormatInt((time.Now().Add(-48*time.Hour).Unix()+11644473600)*10_000_000, 10)
	steps := []func() error{
		func() error { return ou(adStaff, "Staff") },
		func() error { return ou(adGroups, "Groups") },
		func() error { return adAdd(l, adServiceDN, adUser("xmppd", "xmppd", "", adServicePW)) },
		func() error {
			return adAdd(l, "CN=John Doe,"+adStaff, adUser("jdoe", "John Doe", "john.doe@corp.example", "Blue-Sky-2024!",
				"mail", "john.doe@corp.example", "title", "Engineer", "department", "Engineering", "givenName", "John", "sn", "Doe"))
		},
		func() error {
			return adAdd(l, "CN=Anna Schmidt,"+adStaff, adUser("ASchmidt", "Anna Schmidt", "anna@corp.example", "Green-Tree-2024!",
				"department", "Engineering"))
		},
		func() error {
			return adAdd(l, "CN=Jürgen Müller,"+adStaff, adUser("jmueller", "Jürgen Müller", "", "Red-Rock-2024!", "department", "Sales"))
		},
		func() error {
			return adAdd(l, "CN=Old Timer,"+adStaff, adUser("otimer", "Old Timer", "", "Gray-Cloud-2024!", "accountExpires", expired))
		},
		func() error {
			return adAdd(l, "CN=Leaver,"+adStaff, adUser("leaver", "Leaver", "", "Black-Sea-2024!"))
		},
		func() error {
			return adAdd(l, "CN=Backend,"+adGroups, map[string][]string{"objectClass": {"group"}, "sAMAccountName": {"Backend"},
				"member": {"CN=Anna Schmidt," + adStaff}})
		},
		func() error {
			return adAdd(l, "CN=Engineering,"+adGroups, map[string][]string{"objectClass": {"group"}, "sAMAccountName": {"Engineering"},
				"member": {"CN=John Doe," + adStaff, "CN=Backend," + adGroups}})
		},
		func() error {
			return adAdd(l, "CN=Sales,"+adGroups, map[string][]string{"objectClass": {"group"}, "sAMAccountName": {"Sales"},
				"member": {"CN=Jürgen Müller," + adStaff, "CN=Leaver," + adStaff}})
		},
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return err
		}
	}
	return nil
}

// loadBulkPy adds an LDIF to sam.ldb in one transaction with Samba's own
// Python bindings, before samba starts: over LDAP each add is its own
// transaction, about 60 ms, a minute for the bulk users.
const loadBulkPy = `import sys
from samba.samdb import SamDB
from samba.auth import system_session
from samba.param import LoadParm
lp = LoadParm()
lp.load(sys.argv[1])
db = SamDB(url=sys.argv[2], session_info=system_session(), lp=lp)
db.transaction_start()
db.add_ldif(open(sys.argv[3]).read())
db.transaction_commit()
`

// loadBulk creates OU=Bulk with adBulkUsers enabled users without a
// password (userAccountControl 544: NORMAL_ACCOUNT | PASSWD_NOTREQD) and
// the group "Everyone Bulk" of all of them.
func (ad *sambaAD) loadBulk() error {
	var b []byte
	b = fmt.Appendf(b, "dn: %s\nobjectClass: organizationalUnit\nou: Bulk\n\n", adBulk)
	for i := range adBulkUsers {
		b = fmt.Appendf(b, "dn: CN=bulk%04d,%s\nobjectClass: user\ncn: bulk%04d\nsAMAccountName: bulk%04d\nuserAccountControl: 544\n\n", i, adBulk, i, i)
	}
	b = fmt.Appendf(b, "dn: CN=Everyone Bulk,%s\nobjectClass: group\nsAMAccountName: EveryoneBulk\n", adBulk)
	for i := range adBulkUsers {
		b = fmt.Appendf(b, "member: CN=bulk%04d,%s\n", i, adBulk)
	}
	ldif, script := filepath.Join(ad.dir, "bulk.ldif"), filepath.Join(ad.dir, "load.py")
	if err := os.WriteFile(ldif, b, 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(script, []byte(loadBulkPy), 0o600); err != nil {
		return err
	}
	// The system Python: Samba's modules are installed for it.
	out, err := exec.Command("/usr/bin/python3", script, ad.conf, filepath.Join(ad.dir, "private", "sam.ldb"), ldif).CombinedOutput()
	if err != nil {
		return fmt.Errorf("loading bulk users: %v\n%s", err, out)
	}
	return nil
}

func (ad *sambaAD) tool(t testing.TB, args ...string) {
	t.Helper()
	args = append(args, "-H", filepath.Join(ad.dir, "private", "sam.ldb"))
	if out, err := exec.Command(sambaToolBin, args...).CombinedOutput(); err != nil {
		t.Fatalf("samba-tool %q: %v\n%s", args, err, out)
	}
}

func adConfig(ad *sambaAD) Config {
	c := Config{
		URLs: []string{ad.URL}, RootCAs: ad.CA,
		BindDN: adServiceDN, BindPassword: adServicePW, BaseDN: adBase,
		RosterGroups: []string{"*"}, DialTimeout: 5 * time.Second, RequestTimeout: 30 * time.Second,
	}
	if err := c.ApplyPreset(PresetActiveDirectory); err != nil {
		panic(err)
	}
	return c
}

// TestActiveDirectory runs the activedirectory preset against Samba's AD
// DC: UPN logins, disabled and expired accounts, nested groups, paging
// past AD's 1,000 entries, objectGUID identities and uSNChanged
// incremental syncs.
func TestActiveDirectory(t *testing.T) {
	ad := startAD(t)
	ctx := context.Background()
	cfg := adConfig(ad)
	cfg.UserBaseDN = "OU=Staff," + adBase // people only: no Administrator, krbtgt, service account
	d, _ := newDir(t, cfg, nil)
	mustSync(t, d)

	want := []string{"aschmidt", "jdoe", "jmueller", "leaver"}
	if got := usernames(d.People()); !slices.Equal(got, want) {
		t.Errorf("People = %q, want %q (otimer expired)", got, want)
	}
	if st := d.Stats(); st.Disabled != 1 {
		t.Errorf("Stats = %+v, want 1 disabled (expired)", st)
	}
	jdoe := mustLookup(t, d, "jdoe")
	if jdoe.DisplayName != "John Doe" || jdoe.Mail != "john.doe@corp.example" || jdoe.Department != "Engineering" ||
		jdoe.GivenName != "John" || jdoe.Surname != "Doe" || jdoe.Nickname != "John" ||
		!slices.Equal(jdoe.Groups, []string{"Engineering"}) {
		t.Errorf("jdoe = %+v", jdoe)
	}
	if id := d.snap.Load().users[d.snap.Load().people[d.snap.Load().byName["jdoe"]].rec].id; len(id) != 2+32 || id[:2] != "x:" {
		t.Errorf("objectGUID identity %q, want x: and 32 hex digits", id)
	}
	if got := usernames(d.Colleagues("jdoe")); !slices.Equal(got, []string{"aschmidt"}) {
		t.Errorf("Colleagues(jdoe) = %q: the nested Backend group is not expanded", got)
	}

	t.Run("logins", func(t *testing.T) {
		for _, tc := range []struct {
			user, pw string
			ok       bool
		}{
			{"jdoe", "Blue-Sky-2024!", true},
			{"john.doe", "Blue-Sky-2024!", true},   // userPrincipalName
			{"aschmidt", "Green-Tree-2024!", true}, // sAMAccountName ASchmidt
			{"anna", "Green-Tree-2024!", true},
			{"jmueller", "Red-Rock-2024!", true},
			{"jdoe", "wrong-password", false},
			{"otimer", "Gray-Cloud-2024!", false}, // accountExpires passed
			{"*)(sAMAccountName=*", "Blue-Sky-2024!", false},
			{"nobody", "Blue-Sky-2024!", false},
		} {
			err := d.Authenticate(ctx, tc.user, tc.pw)
			if tc.ok != (err == nil) || !tc.ok && !errors.Is(err, ErrBadCredentials) {
				t.Errorf("Authenticate(%q) = %v, want ok=%v", tc.user, err, tc.ok)
			}
		}
		if u, ok := d.Resolve("john.doe"); u != "jdoe" || !ok {
			t.Errorf("Resolve(john.doe) = %q, %v", u, ok)
		}
	})

	t.Run("plain simple bind refused", func(t *testing.T) {
		c := adConfig(ad)
		c.URLs, c.RootCAs, c.AllowInsecure = []string{"ldap://localhost:389"}, nil, true
		d, _ := newDir(t, c, nil)
		r, err := d.Check(ctx)
		if err == nil {
			t.Errorf("a simple bind in clear was accepted: %s", r)
		}
	})

	t.Run("disable", func(t *testing.T) {
		c := cfg
		c.FullSyncInterval = time.Hour
		inc, _ := newDir(t, c, nil)
		mustSync(t, inc)
		ad.tool(t, "user", "disable", "leaver")
		if err := d.Authenticate(ctx, "leaver", "Black-Sea-2024!"); !errors.Is(err, ErrBadCredentials) {
			t.Errorf("disabled user logs in: %v", err)
		}
		wantDiff := Diff{Disabled: []string{"leaver"}, RosterChanged: []string{"jmueller"}, LeaverGroups: map[string][]string{"leaver": {"Sales"}},
			Summary: "users +0 -1 (disabled 1), groups ~1, 1 rosters changed"}
		got := mustSync(t, d)
		normalize(&got)
		if !reflect.DeepEqual(got, wantDiff) {
			t.Errorf("full sync: %+v", got)
		}
		got, err := inc.sync(ctx, false)
		normalize(&got)
		if err != nil || !reflect.DeepEqual(got, wantDiff) {
			t.Errorf("incremental sync (uSNChanged): %+v, %v", got, err)
		}
		if m := inc.snap.Load().meta; m.fullAt.Equal(m.syncedAt) {
			t.Error("the sync was not incremental")
		}
		ad.tool(t, "user", "enable", "leaver")
	})

	t.Run("paging", func(t *testing.T) {
		// Samba, unlike Windows, enforces neither MaxPageSize (1000) nor
		// MaxValRange (1500): TestPaging proves the limit with slapd,
		// TestRangeRetrieval the member ranges. Here: AD's paged results
		// control over 4 pages.
		c := adConfig(ad)
		c.PageSize = 300
		c.RosterGroups = []string{"Everyone Bulk"}
		d, _ := newDir(t, c, nil)
		mustSync(t, d)
		n := 0
		for _, p := range d.People() {
			if len(p.Username) == 8 && p.Username[:4] == "bulk" {
				n++
			}
		}
		if n != adBulkUsers || len(d.Colleagues("bulk0001")) != adBulkUsers-1 {
			t.Errorf("%d bulk users, %d colleagues; want %d", n, len(d.Colleagues("bulk0001")), adBulkUsers)
		}
	})
}
