package ldapsync

import (
	"reflect"
	"testing"

	"github.com/go-ldap/ldap/v3"

	"github.com/ownchat/ownchat/sharedroster"
)

// TestSyncDiffRule: with "Sales sees Legal" (neither a roster group), a
// new Legal member changes the rosters of the Sales members, who see
// Legal, and their own, but not those of the other Legal members, who see
// only Sales.
func TestSyncDiffRule(t *testing.T) {
	s := startSlapd(t, slapdOptions{})
	cfg := testConfig(s)
	cfg.RosterGroups = nil
	cfg.RosterRules = []sharedroster.Rule{{Group: "Sales", Sees: []string{"Legal"}}}
	d, _ := newDir(t, cfg, nil)
	mustSync(t, d)
	s.Modify("cn=Legal,ou=Groups,"+suffix, func(r *ldap.ModifyRequest) { r.Add("member", []string{"uid=bob,ou=People," + suffix}) })
	got := mustSync(t, d)
	normalize(&got)
	want := Diff{RosterChanged: []string{"bob", "carol", "dave", "grace"}, Regrouped: []string{"bob"},
		Summary: "users +0 -0, groups ~1, 4 rosters changed"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("diff\n got %+v\nwant %+v", got, want)
	}
	if cs := usernames(d.Colleagues("bob")); !reflect.DeepEqual(cs, []string{"carol", "dave", "grace"}) {
		t.Errorf("bob's colleagues: %v", cs)
	}
}
