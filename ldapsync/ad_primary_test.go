package ldapsync

import (
	"slices"
	"testing"
)

// TestADPrimaryGroup: "Domain Users" lists nobody in member (AD keeps the
// primary group in primaryGroupID); with the preset it is resolved
// through objectSid, so roster_groups = ["Domain Users"] works.
func TestADPrimaryGroup(t *testing.T) {
	ad := startAD(t)
	for _, tc := range []struct {
		name     string
		resolve  bool
		jdoeSees []string
	}{
		{"resolved", true, []string{"aschmidt", "jmueller", "leaver"}},
		{"without primaryGroupID", false, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := adConfig(ad)
			cfg.UserBaseDN = "OU=Staff," + adBase
			cfg.RosterGroups = []string{"Domain Users"}
			if !tc.resolve {
				cfg.PrimaryGroupAttr = "" // adConfig applied the preset already
			}
			d, _ := newDir(t, cfg, nil)
			mustSync(t, d)
			if got := usernames(d.Colleagues("jdoe")); !slices.Equal(got, tc.jdoeSees) && (len(got) > 0 || len(tc.jdoeSees) > 0) {
				t.Errorf("Colleagues(jdoe) = %q, want %q", got, tc.jdoeSees)
			}
			if tc.resolve {
				if p := mustLookup(t, d, "jdoe"); !slices.Contains(p.Groups, "Domain Users") {
					t.Errorf("jdoe's groups %q lack Domain Users", p.Groups)
				}
				sn := d.snap.Load()
				if u := sn.users[sn.people[sn.byName["jdoe"]].rec]; len(u.pgroup) < 10 || u.pgroup[len(u.pgroup)-4:] != "-513" {
					t.Errorf("jdoe's primary group SID %q, want the domain's ...-513", u.pgroup)
				}
			}
		})
	}
}
