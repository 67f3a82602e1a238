package conf

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"mellium.im/xmpp/jid"
)

func defaultArchive() Archive {
	return Archive{
		Enabled:          true,
		DefaultRetention: "90d",
		Default:          Retention{Keep: 90 * day},
		PurgeInterval:    time.Hour,
		PurgeBatch:       1000,
		MaxPage:          250,
	}
}

// validateArchive checks [archive] and fills Archive.Default and each
// rule's Parsed. The rule checks mirror retention.New (conf imports
// nothing of the project), but here every problem names its line.
func validateArchive(p *problems, c *Config) {
	a := &c.Archive
	if r, err := parseRetention(a.DefaultRetention); err != nil {
		p.addf("archive.default_retention", "%v", err)
	} else {
		a.Default = r
	}
	if a.PurgeInterval < time.Second {
		p.addf("archive.purge_interval", "must be at least 1s (got %v)", a.PurgeInterval)
	}
	if a.PurgeBatch < 1 {
		p.addf("archive.purge_batch", "must be at least 1 (got %d)", a.PurgeBatch)
	}
	if a.MaxPage < 1 {
		p.addf("archive.max_page", "must be at least 1 (got %d)", a.MaxPage)
	}
	// seen maps a normalized match to the path of its first rule, so a
	// duplicate can say where the first one is.
	seen := make(map[string]string, len(a.Rules))
	for i := range a.Rules {
		r := &a.Rules[i]
		path := indexKey("archive.rule", i)
		if m, err := checkMatch(r.Match, c.Domain); err != nil {
			if _, set := p.lines[path+".match"]; !set && r.Match == "" {
				p.addf(path, "match: required (group:NAME, user:JID, room:JID or kind:chat|groupchat)")
			} else {
				p.addf(path+".match", "%v", err)
			}
		} else {
			key := strings.ToLower(m)
			if first, dup := seen[key]; dup {
				p.addf(path+".match", "%q is already matched by the rule at line %d; two rules for the same match contradict each other", r.Match, p.lines.line(first+".match"))
			} else {
				seen[key] = path
			}
			r.Match = m
		}
		if _, set := p.lines[path+".retention"]; !set && r.Retention == "" {
			p.addf(path, "retention: required (a duration such as \"90d\" or \"7y\", \"none\" or \"forever\")")
			continue
		}
		if ret, err := parseRetention(r.Retention); err != nil {
			p.addf(path+".retention", "%v", err)
		} else {
			r.Parsed = ret
		}
	}
}

// parseRetention reads "none", "forever" or a positive duration.
func parseRetention(s string) (Retention, error) {
	switch s {
	case "none":
		return Retention{None: true}, nil
	case "forever":
		return Retention{Forever: true}, nil
	case "":
		return Retention{}, errors.New(`must not be empty: a duration such as "90d" or "7y", "none" or "forever"`)
	}
	d, err := parseDuration(s)
	if err != nil {
		return Retention{}, fmt.Errorf("%v, or \"none\" or \"forever\"", err)
	}
	if d <= 0 {
		return Retention{}, fmt.Errorf("must be positive (got %q); \"none\" means never archived", s)
	}
	return Retention{Keep: d}, nil
}

// checkMatch validates a rule's match and returns it normalized: JIDs as
// PRECIS gives them (RFC 7622), so that "user:Alice@corp.example" and
// "user:alice@corp.example" are found to be the same rule. Group names keep
// their case (they are shown in previews); the duplicate check folds it.
func checkMatch(m, domain string) (string, error) {
	kind, arg, ok := strings.Cut(m, ":")
	if !ok {
		return "", fmt.Errorf("%q: want group:NAME, user:JID, room:JID or kind:chat|groupchat", m)
	}
	switch kind {
	case "user", "room":
		j, err := jid.Parse(arg)
		if err != nil || j.Localpart() == "" || j.Resourcepart() != "" {
			return "", fmt.Errorf("%q: want a bare JID (name@domain) after %s:", m, kind)
		}
		if kind == "user" && domain != "" && j.Domainpart() != domain {
			return "", fmt.Errorf("%q: not an account of %s; a rule for another domain never applies", m, domain)
		}
		return kind + ":" + j.String(), nil
	case "group":
		if strings.TrimSpace(arg) == "" {
			return "", fmt.Errorf("%q: empty group name", m)
		}
		return m, nil
	case "kind":
		if arg != "chat" && arg != "groupchat" {
			return "", fmt.Errorf("%q: unknown kind %q (want chat or groupchat)", m, arg)
		}
		return m, nil
	}
	return "", fmt.Errorf("unknown kind %q (want group:, user:, room: or kind:)", kind)
}
