// Package sharedroster answers the shared-roster question both directory
// backends (staticdir, ldapsync) ask: who shares a group with a person,
// and which groups do they share. Each backend keeps the same index —
// person ids ascending in username order, every group's members as an
// ascending id list — and calls Colleagues with the groups a person sees:
// their own groups, or with roster rules ("members of X see members of
// Y", visibility.go) their PersonView.
package sharedroster

// Colleagues returns everyone who shares at least one of the groups gids
// (ascending group ids) with person id, in ascending id order, each made by
// person(m, groups) with only the names of the groups shared with id. members[g] lists group g's member ids ascending; oneGroup[g] is
// []string{name of g}, shared by every result that shares only g.
//
// A call costs the size of id's groups and at most two allocations (the
// result and, when someone shares several groups, one backing array for
// their group lists), whatever the directory size.
func Colleagues[P any](id int32, gids []int32, members [][]int32, oneGroup [][]string,
	person func(m int32, groups []string) P) []P {
	switch len(gids) {
	case 0:
		return nil
	case 1: // the common case: one department
		g := gids[0]
		ms := members[g]
		if len(ms) < 2 {
			return nil
		}
		out := make([]P, 0, len(ms)-1)
		for _, m := range ms {
			if m != id {
				out = append(out, person(m, oneGroup[g]))
			}
		}
		return out
	}

	// Several groups: merge their sorted member lists. A first pass sizes
	// the result and the backing array of the multi-group lists. The merge
	// state sits in arrays on this stack for up to 8 groups.
	var (
		lbuf   [8][]int32
		pbuf   [8]int
		sbuf   [8]int
		lists  = lbuf[:0]
		pos    = pbuf[:0]
		shared = sbuf[:0]
	)
	if len(gids) > len(lbuf) {
		lists, pos, shared = make([][]int32, 0, len(gids)), make([]int, 0, len(gids)), make([]int, len(gids))
	}
	for _, g := range gids {
		lists = append(lists, members[g])
		pos = append(pos, 0)
	}
	shared = shared[:len(gids)]

	n, multi := 0, 0
	for {
		m, k := nextMember(lists, pos, shared)
		if k == 0 {
			break
		}
		if m != id {
			n++
			if k > 1 {
				multi += k
			}
		}
	}
	if n == 0 {
		return nil
	}
	clear(pos)
	out := make([]P, 0, n)
	var names []string
	if multi > 0 {
		names = make([]string, 0, multi)
	}
	for {
		m, k := nextMember(lists, pos, shared)
		if k == 0 {
			break
		}
		if m == id {
			continue
		}
		groups := oneGroup[gids[shared[0]]]
		if k > 1 {
			start := len(names)
			for _, j := range shared[:k] {
				names = append(names, oneGroup[gids[j]][0])
			}
			groups = names[start:len(names):len(names)] // capped: an append copies
		}
		out = append(out, person(m, groups))
	}
	return out
}

// nextMember advances a merge of sorted lists, pos holding the next index
// into each. It returns the smallest member not yet returned and, in
// shared[:k], the indices of the lists holding it; k is 0 at the end.
// Taking and returning plain values keeps the caller's buffers on its stack.
func nextMember(lists [][]int32, pos, shared []int) (member int32, k int) {
	member = -1
	for j, l := range lists {
		if pos[j] >= len(l) {
			continue
		}
		switch v := l[pos[j]]; {
		case member < 0 || v < member:
			member, k = v, 0
			shared[k] = j
			k++
		case v == member:
			shared[k] = j
			k++
		}
	}
	for _, j := range shared[:k] {
		pos[j]++
	}
	return member, k
}
