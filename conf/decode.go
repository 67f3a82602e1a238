package conf

import (
	"fmt"
	"log/slog"
	"reflect"
	"sort"
	"strings"
	"time"
)

// toml.Decode into the Config struct would stop at the first type error,
// could not parse "90d", and its MetaData.Undecoded() can tell neither the
// line of an unknown key nor which [[directory.user]] it sits in. So conf
// lets the toml package parse the document into maps and decodes those
// into Config itself, driven by the same `toml:"..."` tags: every problem
// is collected, and each one knows its exact key path.

var (
	durationType   = reflect.TypeFor[time.Duration]()
	levelType      = reflect.TypeFor[slog.Level]()
	stringListType = reflect.TypeFor[StringList]()
)

func structOf(c *Config) reflect.Value { return reflect.ValueOf(c).Elem() }

// decodeTable decodes the TOML table m at path into the struct rv. Keys
// without a field are reported as unknown; fields without a key keep their
// value (the default).
func decodeTable(p *problems, path string, m map[string]any, rv reflect.Value) {
	fields := tomlFields(rv.Type())
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys) // deterministic order for problems on one line
	for _, k := range keys {
		kp := joinKey(path, k)
		i, ok := fields[k]
		if !ok {
			p.add(kp, "unknown key%s", suggest(k, fields))
			continue
		}
		decodeValue(p, kp, m[k], rv.Field(i))
	}
}

// tomlFields maps the toml tag of each exported field of t to its index.
func tomlFields(t reflect.Type) map[string]int {
	fields := make(map[string]int, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
		if name == "" || name == "-" {
			continue
		}
		fields[name] = i
	}
	return fields
}

// decodeValue stores the TOML value v (as produced by toml.Decode into a
// map: string, int64, float64, bool, time.Time, []any, map[string]any,
// []map[string]any) into fv.
func decodeValue(p *problems, path string, v any, fv reflect.Value) {
	switch fv.Type() {
	case durationType:
		s, ok := v.(string)
		if !ok {
			p.badf(path, "expected a duration string such as \"30s\" or \"90d\" (got %s)", describe(v))
			return
		}
		d, err := parseDuration(s)
		if err != nil {
			p.badf(path, "%v", err)
			return
		}
		fv.SetInt(int64(d))
		return
	case levelType:
		s, ok := v.(string)
		if !ok {
			p.badf(path, "expected a string (got %s)", describe(v))
			return
		}
		l, ok := logLevels[strings.ToLower(s)]
		if !ok {
			p.badf(path, "must be one of \"debug\", \"info\", \"warn\", \"error\" (got %q)", s)
			return
		}
		fv.SetInt(int64(l))
		return
	case stringListType:
		if s, ok := v.(string); ok {
			fv.Set(reflect.ValueOf(StringList{s}))
			return
		}
		if _, ok := v.([]any); !ok {
			p.badf(path, "expected a string or an array of strings (got %s)", describe(v))
			return
		}
	}

	switch fv.Kind() {
	case reflect.String:
		s, ok := v.(string)
		if !ok {
			p.badf(path, "expected a string (got %s)", describe(v))
			return
		}
		fv.SetString(s)
	case reflect.Bool:
		b, ok := v.(bool)
		if !ok {
			p.badf(path, "expected true or false (got %s)", describe(v))
			return
		}
		fv.SetBool(b)
	case reflect.Int, reflect.Int64:
		n, ok := v.(int64)
		if !ok {
			p.badf(path, "expected an integer (got %s)", describe(v))
			return
		}
		if fv.OverflowInt(n) {
			p.badf(path, "%d is out of range", n)
			return
		}
		fv.SetInt(n)
	case reflect.Float64:
		switch n := v.(type) {
		case int64:
			fv.SetFloat(float64(n))
		case float64:
			fv.SetFloat(n)
		default:
			p.badf(path, "expected a number (got %s)", describe(v))
		}
	case reflect.Slice:
		var elems []any
		switch a := v.(type) {
		case []any:
			elems = a
		case []map[string]any: // [[array.of.tables]]
			elems = make([]any, len(a))
			for i := range a {
				elems[i] = a[i]
			}
		default:
			p.badf(path, "expected an array (got %s)", describe(v))
			return
		}
		out := reflect.MakeSlice(fv.Type(), len(elems), len(elems))
		for i, e := range elems {
			decodeValue(p, indexKey(path, i), e, out.Index(i))
		}
		fv.Set(out)
	case reflect.Struct:
		m, ok := v.(map[string]any)
		if !ok {
			p.badf(path, "expected a table (got %s)", describe(v))
			return
		}
		decodeTable(p, path, m, fv)
	default:
		// Only reachable by adding a field of a new kind to Config.
		panic(fmt.Sprintf("conf: no decoder for %s (%s)", fv.Type(), path))
	}
}

var logLevels = map[string]slog.Level{
	"debug": slog.LevelDebug,
	"info":  slog.LevelInfo,
	"warn":  slog.LevelWarn,
	"error": slog.LevelError,
}

// describe names a decoded TOML value for a type error.
func describe(v any) string {
	switch v := v.(type) {
	case string:
		if len(v) > 40 {
			v = v[:37] + "..."
		}
		return fmt.Sprintf("string %q", v)
	case int64:
		return fmt.Sprintf("integer %d", v)
	case float64:
		return fmt.Sprintf("float %v", v)
	case bool:
		return fmt.Sprintf("boolean %v", v)
	case []any, []map[string]any:
		return "an array"
	case map[string]any:
		return "a table"
	default: // the date and time types
		return fmt.Sprintf("date-time %v", v)
	}
}

// suggest returns ` (did you mean "x"?)` for the known key closest to an
// unknown one, if any is close: a typo, a case slip or '-' for '_'.
func suggest(unknown string, known map[string]int) string {
	norm := func(s string) string { return strings.ReplaceAll(strings.ToLower(s), "-", "_") }
	u := norm(unknown)
	best, bestDist := "", 3 // at most two edits
	for k := range known {
		d := editDistance(u, norm(k))
		if d < bestDist || d == bestDist && k < best {
			best, bestDist = k, d
		}
	}
	if best == "" || bestDist > len(u)/2 && bestDist > 0 {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

// editDistance is the Levenshtein distance of a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
