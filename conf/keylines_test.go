package conf

import (
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
)

func TestKeyLines(t *testing.T) {
	for _, tc := range []struct {
		name string
		doc  string
		want map[string]int // a subset of the result
	}{
		{"top and tables", `a = 1
# [fake] = 2
[t]
b = 2

[t.sub]   # comment
c = 3
[u]
d.e.f = 4
`, map[string]int{"a": 1, "t": 3, "t.b": 4, "t.sub": 6, "t.sub.c": 7, "u": 8, "u.d": 9, "u.d.e": 9, "u.d.e.f": 9}},

		{"arrays of tables", `[[directory.user]]
name = "a"

[[directory.user]]
name = "b"
groups = [
  "x",
  "y",
]
[[directory.user]]
name = "c"
`, map[string]int{
			"directory": 1, "directory.user": 1,
			"directory.user[0]": 1, "directory.user[0].name": 2,
			"directory.user[1]": 4, "directory.user[1].name": 5, "directory.user[1].groups": 6,
			"directory.user[1].groups[0]": 7, "directory.user[1].groups[1]": 8,
			"directory.user[2]": 10, "directory.user[2].name": 11,
		}},

		{"nested arrays of tables", `[[a]]
x = 1
[[a.b]]
y = 1
[[a.b]]
y = 2
[[a]]
[a.c]
z = 3
[[a.b]]
y = 3
`, map[string]int{
			"a[0]": 1, "a[0].x": 2, "a[0].b[0]": 3, "a[0].b[0].y": 4, "a[0].b[1].y": 6,
			"a[1]": 7, "a[1].c": 8, "a[1].c.z": 9, "a[1].b[0]": 10, "a[1].b[0].y": 11,
		}},

		{"inline tables and arrays", `t = { a = 1, b = { c = 2 } }
arr = [ { n = "x" },
  { n = "y", m = [1, 2] },
  { n = "z" } ]
nested = [[1, 2], [3,
  4]]
`, map[string]int{
			"t": 1, "t.a": 1, "t.b": 1, "t.b.c": 1,
			"arr": 2, "arr[0]": 2, "arr[0].n": 2, "arr[1]": 3, "arr[1].n": 3, "arr[1].m[1]": 3, "arr[2].n": 4,
			"nested[1]": 5, "nested[1][1]": 6,
		}},

		{"inline table over lines (TOML 1.1)", "t = {\n  a = 1,\n  b = 2,\n}\nafter = 1\n",
			map[string]int{"t": 1, "t.a": 2, "t.b": 3, "after": 5}},

		{"strings that look like keys", `s = """
fake = 1
[fake]
"""
l = '''
[[fake]] \'''
m = "a # not a comment [x] = \" "
n = 'c:\path\'
o = """ends with quotes"""""
after = 1
`, map[string]int{"s": 1, "l": 5, "m": 7, "n": 8, "o": 9, "after": 10}},

		{"quoted keys", `"quoted key" = 1
'literal.key' = 2
[ "t 1" . 'x' ]
a."b.c" = 3
`, map[string]int{`"quoted key"`: 1, `"literal.key"`: 2, `"t 1"`: 3, `"t 1".x`: 3, `"t 1".x.a."b.c"`: 4}},

		{"CRLF and tabs", "a = 1\r\n[t]\r\n\tb\t=\t2\r\n", map[string]int{"a": 1, "t": 2, "t.b": 3}},

		{"dates and numbers", "d = 1979-05-27 07:32:00Z\nf = -1.5e3\nh = 0xff\nafter = true\n",
			map[string]int{"d": 1, "f": 2, "h": 3, "after": 4}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var m map[string]any
			if _, err := toml.Decode(tc.doc, &m); err != nil {
				t.Fatalf("test document is not valid TOML: %v", err)
			}
			got := scanKeyLines([]byte(tc.doc))
			for k, want := range tc.want {
				if got[k] != want {
					t.Errorf("%s: line %d, want %d", k, got[k], want)
				}
			}
			for k := range got {
				if strings.Contains(k, "fake") {
					t.Errorf("key %q found inside a string", k)
				}
			}
		})
	}
}

func TestKeyHelpers(t *testing.T) {
	for _, tc := range []struct{ path, parent, display string }{
		{"a", "", "a"},
		{"a.b", "a", "a.b"},
		{"directory.user[2].name", "directory.user[2]", "directory.user.name"},
		{"directory.user[2]", "directory.user", "directory.user"},
		{`t."a.b[1]".c`, `t."a.b[1]"`, `t."a.b[1]".c`},
		{`x[0][1]`, `x[0]`, `x`},
	} {
		if got := parentKey(tc.path); got != tc.parent {
			t.Errorf("parentKey(%q) = %q, want %q", tc.path, got, tc.parent)
		}
		if got := displayKey(tc.path); got != tc.display {
			t.Errorf("displayKey(%q) = %q, want %q", tc.path, got, tc.display)
		}
	}
	if got := joinKey(joinKey("", "t"), "a b"); got != `t."a b"` {
		t.Errorf("joinKey = %q", got)
	}
	kl := keyLines{"directory.user[1]": 9}
	if got := kl.line("directory.user[1].name"); got != 9 {
		t.Errorf("line falls back to the parent: got %d, want 9", got)
	}
	if got := kl.line("domain"); got != 0 {
		t.Errorf("line of an absent key = %d, want 0", got)
	}
}

// FuzzKeyLines checks that the scanner terminates on any input and that,
// for documents the toml package accepts, it places every key the parser
// reports (bare keys only: the two quote keys differently).
func FuzzKeyLines(f *testing.F) {
	for _, s := range []string{
		"a = 1\n[t]\nb = 2\n[[u]]\nc = [1, {d = 2}]\n",
		"s = \"\"\"\nx = 1\n\"\"\"\n[[a]]\n[[a.b]]\nk = 'v'\n",
		"t = {\n a = 1,\n}\n",
		"[x.y]\nz.w = 1\n",
		"\"q\" = [[1], [2, [3]]]\n",
		"a = [\n# c\n1, # d\n]\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, doc string) {
		lines := scanKeyLines([]byte(doc))
		var m map[string]any
		md, err := toml.Decode(doc, &m)
		if err != nil {
			return
		}
		displayed := make(map[string]bool, len(lines))
		for p, n := range lines {
			if n < 1 || n > strings.Count(doc, "\n")+1 {
				t.Fatalf("%q: line %d out of range", p, n)
			}
			displayed[displayKey(p)] = true
		}
		for _, k := range md.Keys() {
			bare := true
			for _, c := range k {
				bare = bare && isBareKey(c)
			}
			if bare && !displayed[k.String()] {
				t.Fatalf("key %q not located; have %v", k.String(), lines)
			}
		}
	})
}
