package sharedroster

import (
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
)

type person struct {
	id     int32
	groups []string
}

// brute is the obvious O(people × groups) answer.
func brute(id int32, byPerson [][]int32, names []string) []person {
	var out []person
	for m := range byPerson {
		if int32(m) == id {
			continue
		}
		var shared []string
		for _, g := range byPerson[id] {
			if slices.Contains(byPerson[m], g) {
				shared = append(shared, names[g])
			}
		}
		if len(shared) > 0 {
			out = append(out, person{int32(m), shared})
		}
	}
	return out
}

func TestColleaguesMatchesBruteForce(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for round := 0; round < 200; round++ {
		nPeople, nGroups := 1+r.IntN(40), 1+r.IntN(12)
		names := make([]string, nGroups)
		oneGroup := make([][]string, nGroups)
		for g := range names {
			names[g] = string(rune('A' + g))
			oneGroup[g] = []string{names[g]}
		}
		byPerson := make([][]int32, nPeople)
		members := make([][]int32, nGroups)
		for p := range byPerson {
			for g := 0; g < nGroups; g++ {
				if r.IntN(4) == 0 {
					byPerson[p] = append(byPerson[p], int32(g))
					members[g] = append(members[g], int32(p))
				}
			}
		}
		for id := range byPerson {
			got := Colleagues(int32(id), byPerson[id], members, oneGroup,
				func(m int32, g []string) person { return person{m, g} })
			want := brute(int32(id), byPerson, names)
			if len(got) == 0 && len(want) == 0 {
				continue
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("round %d person %d: got %v, want %v", round, id, got, want)
			}
		}
	}
}

// TestGroupsCapped: appending to one result's groups never overwrites a
// neighbour's (the backing array is shared).
func TestGroupsCapped(t *testing.T) {
	members := [][]int32{{0, 1, 2}, {0, 1, 2}}
	oneGroup := [][]string{{"A"}, {"B"}}
	got := Colleagues(0, []int32{0, 1}, members, oneGroup,
		func(m int32, g []string) person { return person{m, g} })
	_ = append(got[0].groups, "X")
	if !slices.Equal(got[1].groups, []string{"A", "B"}) {
		t.Fatalf("neighbour's groups changed: %v", got[1].groups)
	}
}

func BenchmarkColleagues5000(b *testing.B) {
	const n = 5000
	members := [][]int32{make([]int32, n)}
	for i := range members[0] {
		members[0][i] = int32(i)
	}
	oneGroup := [][]string{{"All"}}
	b.ReportAllocs()
	for b.Loop() {
		Colleagues(7, []int32{0}, members, oneGroup,
			func(m int32, g []string) person { return person{m, g} })
	}
}
