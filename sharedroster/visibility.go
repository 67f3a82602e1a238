package sharedroster

import (
	"slices"
	"strings"
)

// Rule lets the members of Group see the members of each group in Sees,
// under that group's name, as ejabberd's mod_shared_roster "displayed
// groups" does. Visibility is made mutual (the members of a Sees group
// get Group's members in their rosters, under Group's name) because the
// shared roster has subscription "both": a one-sided entry would show
// presence to one side only. Names compare case-insensitively, like
// directory group names.
type Rule struct {
	Group string
	Sees  []string
}

// RuleGroups returns the case-folded names of every group the rules
// mention: a backend must index their members even when they are not
// shared-roster groups themselves.
func RuleGroups(rules []Rule) map[string]bool {
	out := make(map[string]bool, 2*len(rules))
	for _, r := range rules {
		out[strings.ToLower(r.Group)] = true
		for _, g := range r.Sees {
			out[strings.ToLower(g)] = true
		}
	}
	return out
}

// Views returns, for each indexed group g (names[g], in id order), the
// ascending ids of the groups whose members the members of g see: g
// itself when self(g) (its members see each other), the groups g's rules
// name and the groups whose rules name g. Without rules, views[g] is
// {g} or empty, so a person's view is their membership.
func Views(names []string, self func(g int32) bool, rules []Rule) [][]int32 {
	byKey := make(map[string]int32, len(names))
	for i, n := range names {
		byKey[strings.ToLower(n)] = int32(i)
	}
	views := make([][]int32, len(names))
	for g := range names {
		if self(int32(g)) {
			views[g] = []int32{int32(g)}
		}
	}
	for _, r := range rules {
		x, ok := byKey[strings.ToLower(r.Group)]
		if !ok {
			continue // no members (yet)
		}
		for _, s := range r.Sees {
			y, ok := byKey[strings.ToLower(s)]
			if !ok {
				continue
			}
			views[x] = append(views[x], y)
			views[y] = append(views[y], x)
		}
	}
	for g := range views {
		slices.Sort(views[g])
		views[g] = slices.Clip(slices.Compact(views[g]))
	}
	return views
}

// PersonView returns the ascending ids of the groups a member of the
// groups gids (ascending) sees: the union of their views. With one group,
// and for every person when there are no rules, it is a shared slice and
// costs no allocation; do not modify the result.
func PersonView(gids []int32, views [][]int32) []int32 {
	switch len(gids) {
	case 0:
		return nil
	case 1:
		return views[gids[0]]
	}
	identity := true // the view is the membership: share gids
	n := 0
	for _, g := range gids {
		v := views[g]
		n += len(v)
		identity = identity && len(v) == 1 && v[0] == g
	}
	if identity {
		return gids
	}
	out := make([]int32, 0, n)
	for _, g := range gids {
		out = append(out, views[g]...)
	}
	slices.Sort(out)
	return slices.Clip(slices.Compact(out))
}
