package ownchat_test

import (
	"os/exec"
	"sort"
	"strings"
	"testing"
)

const module = "github.com/ownchat/ownchat"

// allowed lists, for each package, the project packages it may depend on
// (transitively). The dependency direction is cmd -> xmppd -> (muc,
// ldapsync, store); store, the XML leaf, conf and the directory backends
// import no project package; only cmd/xmppd imports conf. See
// ARCHITECTURE.md.
var allowed = map[string][]string{
	"xmppd/wire":   nil,
	"store":        nil,
	"conf":         nil,
	"staticdir":    {"sharedroster", "textmatch"},
	"textmatch":    nil,
	"sharedroster": nil,
	"ldapsync":     {"store", "sharedroster", "textmatch"},
	// test support: a real slapd for ldapsync's and e2e's tests
	"ldapsync/slapdtest": nil,
	"muc":                {"store", "xmppd/wire", "mam"},
	"retention":          nil,
	"mam":                {"store", "xmppd/wire"},
	"compliance":         {"store", "retention", "xmppd/wire"},
	"xmppd":              {"store", "xmppd/wire", "muc", "ldapsync", "mam", "retention", "compliance"},
	"e2e":                {"*"},
	"cmd/":               {"*"},
}

func rule(pkg string) ([]string, bool) {
	if r, ok := allowed[pkg]; ok {
		return r, true
	}
	for k, r := range allowed {
		if strings.HasSuffix(k, "/") && strings.HasPrefix(pkg, k) {
			return r, true
		}
	}
	return nil, false
}

func TestImportRules(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}}", "./...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, full := range strings.Fields(string(out)) {
		pkg := strings.TrimPrefix(strings.TrimPrefix(full, module), "/")
		if pkg == "" || pkg == full {
			continue
		}
		deps, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", full).Output()
		if err != nil {
			t.Fatalf("go list -deps %s: %v", full, err)
		}
		r, known := rule(pkg)
		if !known {
			t.Errorf("%s: no import rule; add it to allowed and ARCHITECTURE.md", pkg)
			continue
		}
		var bad []string
		for _, d := range strings.Fields(string(deps)) {
			if d == full || !strings.HasPrefix(d, module+"/") {
				continue
			}
			dp := strings.TrimPrefix(d, module+"/")
			if dp == "conf" && !strings.HasPrefix(pkg, "cmd/xmppd") && pkg != "e2e" {
				bad = append(bad, dp+" (only cmd/xmppd reads conf)")
				continue
			}
			if strings.HasPrefix(dp, "cmd/") {
				bad = append(bad, dp+" (nothing imports a command)")
				continue
			}
			if !permitted(r, dp) {
				bad = append(bad, dp)
			}
		}
		sort.Strings(bad)
		if len(bad) > 0 {
			t.Errorf("%s must not depend on: %s", pkg, strings.Join(bad, ", "))
		}
	}
}

func permitted(r []string, dep string) bool {
	for _, a := range r {
		if a == "*" || a == dep {
			return true
		}
	}
	return false
}
