package conf

import (
	"bytes"
	"sort"
	"strconv"
	"strings"
)

// BurntSushi/toml v1.6 keeps key positions private (MetaData has no
// position accessor), and the ones it keeps internally are indexed by key
// name only, so every [[directory.user]] element shares one entry. To put a
// line number on every problem we scan the document ourselves. The scanner
// runs only after toml.Decode accepted the document, so it can assume valid
// TOML and stay small; on garbage it must merely terminate (FuzzKeyLines).

// keyLines maps a key path (see joinKey and indexKey) to the 1-based line
// where that key, table header or array element first appears.
type keyLines map[string]int

// line returns the line of path, or of its nearest ancestor that has one:
// a key missing from [[directory.user]] is reported at that table's header.
// It returns 0 when nothing on the path is in the document.
func (kl keyLines) line(path string) int {
	for path != "" {
		if n, ok := kl[path]; ok {
			return n
		}
		path = parentKey(path)
	}
	return 0
}

// joinKey appends one key component to a path, quoting it the way TOML
// would when it is not a bare key, so that a quoted "a.b" never collides
// with the table a's key b.
func joinKey(path, comp string) string {
	c := comp
	if !isBareKey(comp) {
		c = strconv.Quote(comp)
	}
	if path == "" {
		return c
	}
	return path + "." + c
}

// indexKey addresses element i of the array at path: "directory.user[2]".
func indexKey(path string, i int) string {
	return path + "[" + strconv.Itoa(i) + "]"
}

// parentKey strips the last component or index from a path.
func parentKey(path string) string {
	inQuote := false
	for i := len(path) - 1; i >= 0; i-- {
		switch c := path[i]; {
		case c == '"' && (i == 0 || path[i-1] != '\\'):
			inQuote = !inQuote
		case inQuote:
		case c == '.':
			return path[:i]
		case c == '[':
			return path[:i]
		}
	}
	return ""
}

// displayKey drops array indices, giving the key as the user wrote it:
// "directory.user[2].name" -> "directory.user.name". The line number
// already tells which element is meant.
func displayKey(path string) string {
	if !strings.Contains(path, "[") {
		return path
	}
	var b strings.Builder
	inQuote, inIndex := false, false
	for i := 0; i < len(path); i++ {
		c := path[i]
		switch {
		case inQuote:
			if c == '"' && path[i-1] != '\\' {
				inQuote = false
			}
		case c == '"':
			inQuote = true
		case c == '[':
			inIndex = true
			continue
		case inIndex:
			if c == ']' {
				inIndex = false
			}
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

func isBareKey(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isBareChar(s[i]) {
			return false
		}
	}
	return true
}

func isBareChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}

// scanKeyLines records where every key of a TOML document is defined
// (TOML v1.0 §Keys, §Table, §Array of Tables, §Inline Table).
func scanKeyLines(src []byte) keyLines {
	// Most lines hold one key: size the maps and the index once.
	n := bytes.Count(src, []byte{'\n'})
	s := &lineScanner{src: src, offs: make(map[string]int, n+1), arrays: map[string]int{}}
	s.document()

	newlines := make([]int, 0, n)
	for i, c := range src {
		if c == '\n' {
			newlines = append(newlines, i)
		}
	}
	kl := make(keyLines, len(s.offs))
	for path, off := range s.offs {
		kl[path] = 1 + sort.SearchInts(newlines, off)
	}
	return kl
}

type lineScanner struct {
	src    []byte
	i      int
	offs   map[string]int // path -> byte offset of its first appearance
	arrays map[string]int // path of an array of tables -> elements seen so far
}

func (s *lineScanner) eof() bool { return s.i >= len(s.src) }

func (s *lineScanner) peek(k int) byte {
	if s.i+k < len(s.src) {
		return s.src[s.i+k]
	}
	return 0
}

func (s *lineScanner) record(path string, off int) {
	if _, ok := s.offs[path]; !ok {
		s.offs[path] = off
	}
}

// blank skips spaces and tabs.
func (s *lineScanner) blank() {
	for !s.eof() && (s.src[s.i] == ' ' || s.src[s.i] == '\t') {
		s.i++
	}
}

// space skips whitespace, newlines and comments.
func (s *lineScanner) space() {
	for !s.eof() {
		switch s.src[s.i] {
		case ' ', '\t', '\r', '\n':
			s.i++
		case '#':
			s.skipLine()
		default:
			return
		}
	}
}

// skipLine moves to the start of the next line.
func (s *lineScanner) skipLine() {
	for !s.eof() && s.src[s.i] != '\n' {
		s.i++
	}
}

func (s *lineScanner) document() {
	table := "" // path of the current [table] or [[array]] element
	for {
		s.space()
		if s.eof() {
			return
		}
		start := s.i
		if s.src[s.i] == '[' {
			array := s.peek(1) == '['
			if array {
				s.i += 2
			} else {
				s.i++
			}
			table = s.header(s.key(), array, start)
			s.skipLine()
			continue
		}
		comps := s.key()
		if s.i == start { // not a key: skip the line rather than loop
			s.skipLine()
			continue
		}
		s.keyValue(table, comps, start)
	}
}

// header resolves a table header against the arrays of tables seen so far:
// in [[a.b]] "a" means the last element of [[a]] (TOML v1.0 §Array of Tables).
func (s *lineScanner) header(comps []string, array bool, start int) string {
	path := ""
	for j, c := range comps {
		path = joinKey(path, c)
		if array && j == len(comps)-1 {
			n := s.arrays[path]
			s.arrays[path] = n + 1
			s.record(path, start)
			path = indexKey(path, n)
		} else if n, ok := s.arrays[path]; ok && n > 0 {
			path = indexKey(path, n-1)
		}
		s.record(path, start)
	}
	return path
}

// keyValue scans "= value" after a (dotted) key whose components are comps.
func (s *lineScanner) keyValue(table string, comps []string, start int) {
	path := table
	for _, c := range comps {
		path = joinKey(path, c)
		s.record(path, start)
	}
	s.blank()
	if s.peek(0) == '=' {
		s.i++
		s.blank()
		s.value(path)
	}
}

// key scans a possibly dotted key and returns its components.
func (s *lineScanner) key() []string {
	var comps []string
	for {
		s.blank()
		if s.eof() {
			return comps
		}
		var c string
		switch s.src[s.i] {
		case '"':
			start := s.i
			s.basicString()
			raw := string(s.src[start:s.i])
			if u, err := strconv.Unquote(raw); err == nil {
				c = u
			} else {
				c = strings.Trim(raw, `"`)
			}
		case '\'':
			start := s.i + 1
			s.literalString()
			c = string(s.src[start:max(start, s.i-1)])
		default:
			start := s.i
			for !s.eof() && isBareChar(s.src[s.i]) {
				s.i++
			}
			if s.i == start {
				return comps
			}
			c = string(s.src[start:s.i])
		}
		comps = append(comps, c)
		s.blank()
		if s.peek(0) != '.' {
			return comps
		}
		s.i++
	}
}

func (s *lineScanner) value(path string) {
	if s.eof() {
		return
	}
	switch s.src[s.i] {
	case '{':
		s.inlineTable(path)
	case '[':
		s.array(path)
	case '"':
		if s.peek(1) == '"' && s.peek(2) == '"' {
			s.multiline('"')
		} else {
			s.basicString()
		}
	case '\'':
		if s.peek(1) == '\'' && s.peek(2) == '\'' {
			s.multiline('\'')
		} else {
			s.literalString()
		}
	default: // number, boolean, date-time: runs to a delimiter
		for !s.eof() {
			switch s.src[s.i] {
			case ',', ']', '}', '#', '\n', '\r':
				return
			}
			s.i++
		}
	}
}

func (s *lineScanner) inlineTable(path string) {
	s.i++ // {
	for {
		s.space() // TOML 1.1 allows newlines in inline tables
		if s.eof() {
			return
		}
		switch s.src[s.i] {
		case '}':
			s.i++
			return
		case ',':
			s.i++
			continue
		}
		start := s.i
		comps := s.key()
		if s.i == start {
			s.i++ // unexpected byte: step over it
			continue
		}
		s.keyValue(path, comps, start)
	}
}

func (s *lineScanner) array(path string) {
	s.i++ // [
	n := 0
	for {
		s.space()
		if s.eof() {
			return
		}
		switch s.src[s.i] {
		case ']':
			s.i++
			return
		case ',':
			s.i++
			n++
			continue
		}
		start := s.i
		elem := indexKey(path, n)
		s.record(elem, start)
		s.value(elem)
		if s.i == start {
			s.i++
		}
	}
}

// basicString scans "..." with backslash escapes.
func (s *lineScanner) basicString() {
	s.i++
	for !s.eof() {
		switch s.src[s.i] {
		case '\\':
			s.i += 2
			continue
		case '"':
			s.i++
			return
		case '\n':
			return
		}
		s.i++
	}
	s.i = min(s.i, len(s.src))
}

// literalString scans '...' (no escapes).
func (s *lineScanner) literalString() {
	s.i++
	for !s.eof() {
		switch s.src[s.i] {
		case '\'':
			s.i++
			return
		case '\n':
			return
		}
		s.i++
	}
}

// multiline scans a multi-line string delimited by three q bytes. Up to
// two more q may precede the closing delimiter; they belong to the content
// (TOML v1.0 §String).
func (s *lineScanner) multiline(q byte) {
	s.i += 3
	for !s.eof() {
		c := s.src[s.i]
		if c == '\\' && q == '"' {
			s.i += 2
			continue
		}
		if c == q && s.peek(1) == q && s.peek(2) == q {
			s.i += 3
			for extra := 0; extra < 2 && s.peek(0) == q; extra++ {
				s.i++
			}
			return
		}
		s.i++
	}
	s.i = min(s.i, len(s.src))
}
