package main

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// scanAll splits in with a fresh splitter, reading through r (which may
// hand out one byte at a time), and returns the tokens.
func scanAll(t *testing.T, in string, oneByte bool) ([]string, error) {
	t.Helper()
	var sp streamSplitter
	var r = strings.NewReader(in)
	sc := bufio.NewScanner(r)
	if oneByte {
		sc = bufio.NewScanner(iotest.OneByteReader(r))
	}
	sc.Buffer(make([]byte, 0, 16), 1<<16)
	sc.Split(sp.split)
	var out []string
	for sc.Scan() {
		out = append(out, sc.Text())
	}
	return out, sc.Err()
}

func TestSplit(t *testing.T) {
	header := `<?xml version='1.0'?><stream:stream from='example.com' id='x>y' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>`
	tests := []struct {
		name string
		in   string
		want []string
		err  error
	}{
		{
			name: "header and features",
			in:   header + `<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls></stream:features>`,
			want: []string{
				`<stream:stream from='example.com' id='x>y' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>`,
				`<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls></stream:features>`,
			},
		},
		{
			name: "self-closing, keepalives and close",
			in:   header + "<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/> \n <presence/>\t</stream:stream>",
			want: []string{
				header[len("<?xml version='1.0'?>"):],
				`<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>`,
				`<presence/>`,
				`</stream:stream>`,
			},
		},
		{
			name: "nested same names and quoted markup",
			in: header + `<message to="a@b/c" note='1 > 0 "quoted"'><body>a &lt; b &amp;&gt; c</body>` +
				`<x xmlns='y'><message><body/></message></x></message>`,
			want: []string{
				header[len("<?xml version='1.0'?>"):],
				`<message to="a@b/c" note='1 > 0 "quoted"'><body>a &lt; b &amp;&gt; c</body>` +
					`<x xmlns='y'><message><body/></message></x></message>`,
			},
		},
		{
			name: "CDATA and comment inside an element",
			in:   header + `<message><body><![CDATA[</message><x>]]></body><!-- </message> --></message><iq/>`,
			want: []string{
				header[len("<?xml version='1.0'?>"):],
				`<message><body><![CDATA[</message><x>]]></body><!-- </message> --></message>`,
				`<iq/>`,
			},
		},
		{
			name: "stream error",
			in:   header + `<stream:error><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></stream:stream>`,
			want: []string{
				header[len("<?xml version='1.0'?>"):],
				`<stream:error><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>`,
				`</stream:stream>`,
			},
		},
		{
			name: "truncated element",
			in:   header + `<message><body>hi</body>`,
			want: []string{header[len("<?xml version='1.0'?>"):]},
			err:  errTruncated,
		},
		{
			name: "only whitespace",
			in:   "  \n ",
		},
	}
	for _, tt := range tests {
		for _, oneByte := range []bool{false, true} {
			got, err := scanAll(t, tt.in, oneByte)
			if !errors.Is(err, tt.err) {
				t.Errorf("%s (oneByte=%v): err = %v, want %v", tt.name, oneByte, err, tt.err)
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("%s (oneByte=%v):\n got %q\nwant %q", tt.name, oneByte, got, tt.want)
			}
		}
	}
}

// TestSplitRestart checks that after reset a second stream header is
// recognised on the same scanner, as after SASL success.
func TestSplitRestart(t *testing.T) {
	var sp streamSplitter
	in := "<stream:stream><success/>"
	sc := bufio.NewScanner(strings.NewReader(in + "<stream:stream><stream:features/>"))
	sc.Split(sp.split)
	var got []string
	for sc.Scan() {
		got = append(got, sc.Text())
		if sc.Text() == "<success/>" {
			sp.reset()
		}
	}
	want := []string{"<stream:stream>", "<success/>", "<stream:stream>", "<stream:features/>"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestTokenName(t *testing.T) {
	tests := []struct{ in, want string }{
		{"<message to='x'>", "message"},
		{"<stream:features>", "stream:features"},
		{"<success xmlns='x'/>", "success"},
		{"<iq/>", "iq"},
		{"</stream:stream>", "/stream:stream"},
		{"<presence\n>", "presence"},
		{"x", ""},
	}
	for _, tt := range tests {
		if got := string(tokenName([]byte(tt.in))); got != tt.want {
			t.Errorf("tokenName(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestAttr(t *testing.T) {
	tests := []struct {
		tok, name, want string
		quote           byte
		ok              bool
	}{
		{`<iq type='get' id="p1">`, "type", "get", '\'', true},
		{`<iq type='get' id="p1">`, "id", "p1", '"', true},
		{`<iq xtype='get' type = 'set'>`, "type", "set", '\'', true},
		{`<iq from='a@b/it&apos;s'/>`, "from", "a@b/it&apos;s", '\'', true},
		{`<iq><x type='inner'/></iq>`, "type", "", 0, false},
		{`<iq note='type=x'>`, "type", "", 0, false},
		{`<iq>`, "id", "", 0, false},
	}
	for _, tt := range tests {
		v, q, ok := attr([]byte(tt.tok), tt.name)
		if string(v) != tt.want || q != tt.quote || ok != tt.ok {
			t.Errorf("attr(%q, %q) = %q, %q, %v; want %q, %q, %v", tt.tok, tt.name, v, q, ok, tt.want, tt.quote, tt.ok)
		}
	}
}

func TestChildText(t *testing.T) {
	tests := []struct {
		tok, name, want string
		ok              bool
	}{
		{`<iq type='result'><bind xmlns='b'><jid>u@d/r</jid></bind></iq>`, "jid", "u@d/r", true},
		{`<message><bodyx>no</bodyx><body xml:lang='en'>yes</body></message>`, "body", "yes", true},
		{`<message><body/></message>`, "body", "", true},
		{`<message/>`, "body", "", false},
	}
	for _, tt := range tests {
		v, ok := childText([]byte(tt.tok), tt.name)
		if string(v) != tt.want || ok != tt.ok {
			t.Errorf("childText(%q, %q) = %q, %v; want %q, %v", tt.tok, tt.name, v, ok, tt.want, tt.ok)
		}
	}
}

// FuzzSplit checks that arbitrary input never panics or loops and that
// every token is a slice of the input in order.
func FuzzSplit(f *testing.F) {
	f.Add([]byte("<stream:stream><message><body>x</body></message></stream:stream>"))
	f.Add([]byte("<?xml?><a b='>'><![CDATA[<]]><!-- - --></a>"))
	f.Add([]byte("<<</>/>"))
	f.Fuzz(func(t *testing.T, in []byte) {
		var sp streamSplitter
		sc := bufio.NewScanner(bytes.NewReader(in))
		sc.Buffer(make([]byte, 0, 16), 1<<16)
		sc.Split(sp.split)
		rest := in
		for sc.Scan() {
			i := bytes.Index(rest, sc.Bytes())
			if i < 0 {
				t.Fatalf("token %q not found in remaining input %q", sc.Bytes(), rest)
			}
			rest = rest[i+len(sc.Bytes()):]
		}
	})
}

// repeatReader yields a header and then msg n times, so a benchmark can
// scan b.N stanzas through one scanner.
type repeatReader struct {
	head, msg []byte
	n         int
	off       int
}

func (r *repeatReader) Read(p []byte) (int, error) {
	total := 0
	for len(p) > 0 {
		if len(r.head) > 0 {
			c := copy(p, r.head)
			r.head, p, total = r.head[c:], p[c:], total+c
			continue
		}
		if r.n == 0 {
			break
		}
		c := copy(p, r.msg[r.off:])
		r.off += c
		p, total = p[c:], total+c
		if r.off == len(r.msg) {
			r.off = 0
			r.n--
		}
	}
	if total == 0 {
		return 0, io.EOF
	}
	return total, nil
}

// benchMessage is a message as a server delivers it to a receiver.
const benchMessage = "<message from='user1@example.com/bench' to='user2@example.com/bench' type='chat' id='abc'>" +
	"<body>xbts=123456789:42:xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx</body></message>"

// BenchmarkSplitMessages scans a stream of benchmark messages as a
// receiver does; it must not allocate per stanza.
func BenchmarkSplitMessages(b *testing.B) {
	var sp streamSplitter
	sc := bufio.NewScanner(&repeatReader{head: []byte("<stream:stream>"), msg: []byte(benchMessage), n: b.N})
	sc.Buffer(make([]byte, 0, 4096), 1<<16)
	sc.Split(sp.split)
	b.SetBytes(int64(len(benchMessage)))
	b.ReportAllocs()
	b.ResetTimer()
	n := 0
	for sc.Scan() {
		n++
	}
	if n != b.N+1 {
		b.Fatalf("scanned %d tokens, want %d", n, b.N+1)
	}
}
