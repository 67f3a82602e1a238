package sharedroster

import (
	"fmt"
	"slices"
	"testing"
)

// company: 0 ann (Sales), 1 bob (Sales, Support), 2 cid (Support),
// 3 dan (Legal), 4 eve (Support, Legal).
var (
	names    = []string{"Legal", "Sales", "Support"}
	byPerson = [][]int32{{1}, {1, 2}, {2}, {0}, {0, 2}}
)

func company() (oneGroup [][]string, mids [][]int32) {
	mids = make([][]int32, len(names))
	for p, gs := range byPerson {
		for _, g := range gs {
			mids[g] = append(mids[g], int32(p))
		}
	}
	for _, n := range names {
		oneGroup = append(oneGroup, []string{n})
	}
	return oneGroup, mids
}

func TestRosterVisibility(t *testing.T) {
	who := []string{"ann", "bob", "cid", "dan", "eve"}
	tests := []struct {
		name  string
		self  []bool // per group: members see each other
		rules []Rule
		want  []string // per person: "colleague:groups" sorted by colleague
	}{
		{
			name: "no rules: shared groups only",
			self: []bool{true, true, true},
			want: []string{
				"bob:Sales",
				"ann:Sales cid:Support eve:Support",
				"bob:Support eve:Support",
				"eve:Legal",
				"bob:Support cid:Support dan:Legal",
			},
		},
		{
			name:  "Sales sees Support, both ways, under the other group's name",
			self:  []bool{false, false, false},
			rules: []Rule{{Group: "sales", Sees: []string{"SUPPORT"}}},
			want: []string{
				"bob:Support cid:Support eve:Support", // ann: Sales sees Support
				"ann:Sales cid:Support eve:Support",   // bob in both: sees both sides
				"ann:Sales bob:Sales",                 // cid: Support sees Sales back
				"",                                    // dan: Legal is nobody's
				"ann:Sales bob:Sales",
			},
		},
		{
			name:  "rule plus self groups; unknown group ignored",
			self:  []bool{true, false, false},
			rules: []Rule{{Group: "Legal", Sees: []string{"Sales", "Nowhere"}}, {Group: "Ghosts", Sees: []string{"Legal"}}},
			want: []string{
				"dan:Legal eve:Legal",
				"dan:Legal eve:Legal",
				"",
				"ann:Sales bob:Sales eve:Legal",
				"ann:Sales bob:Sales dan:Legal",
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			oneGroup, members := company()
			views := Views(names, func(g int32) bool { return tc.self[g] }, tc.rules)
			for id := range byPerson {
				view := PersonView(byPerson[id], views)
				got := Colleagues(int32(id), view, members, oneGroup,
					func(m int32, g []string) string { return fmt.Sprintf("%s:%s", who[m], join(g)) })
				if s := join(got); s != tc.want[id] {
					t.Errorf("%s sees %q, want %q", who[id], s, tc.want[id])
				}
			}
		})
	}
}

func join(s []string) string {
	out := ""
	for i, x := range s {
		if i > 0 {
			out += " "
		}
		out += x
	}
	return out
}

func TestPersonViewSharesWithoutRules(t *testing.T) {
	views := Views(names, func(int32) bool { return true }, nil)
	gids := []int32{0, 2}
	v := PersonView(gids, views)
	if &v[0] != &gids[0] {
		t.Fatal("a view equal to the membership was copied")
	}
	if got := PersonView([]int32{1}, views); !slices.Equal(got, []int32{1}) {
		t.Fatalf("one group: %v", got)
	}
}

// TestVisibilityIsMutual: whenever a sees b, b sees a with the same
// subscription, for every rule set over random memberships.
func TestVisibilityIsMutual(t *testing.T) {
	rules := []Rule{{Group: "Sales", Sees: []string{"Support"}}, {Group: "Legal", Sees: []string{"Legal"}}}
	oneGroup, members := company()
	views := Views(names, func(g int32) bool { return g == 1 }, rules)
	sees := map[[2]int32]bool{}
	for id := range byPerson {
		for _, m := range Colleagues(int32(id), PersonView(byPerson[id], views), members, oneGroup,
			func(m int32, _ []string) int32 { return m }) {
			sees[[2]int32{int32(id), m}] = true
		}
	}
	if len(sees) == 0 {
		t.Fatal("nobody sees anybody")
	}
	for k := range sees {
		if !sees[[2]int32{k[1], k[0]}] {
			t.Errorf("%d sees %d but not the other way", k[0], k[1])
		}
	}
}
