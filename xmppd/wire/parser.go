package wire

import (
	"bytes"
	"errors"
	"io"
	"strconv"
	"sync"
)

// Limits bound what one peer can make the parser buffer and build.
// The zero value of a field means its default.
type Limits struct {
	MaxStanzaBytes int // bytes of one top-level element incl. its tags (default 262144); enforced WHILE reading
	MaxDepth       int // element nesting inside a stanza, the stanza itself being 1 (default 64)
	MaxAttrs       int // attributes per element, namespace declarations included (default 64); also bounds the prefix declarations in scope at once
}

// Defaults for zero Limits fields.
const (
	DefaultMaxStanzaBytes = 256 << 10
	DefaultMaxDepth       = 64
	DefaultMaxAttrs       = 64
)

// maxStanzaCap keeps offsets inside int32 (see span).
const maxStanzaCap = 1 << 30

func (l Limits) withDefaults() Limits {
	if l.MaxStanzaBytes <= 0 {
		l.MaxStanzaBytes = DefaultMaxStanzaBytes
	}
	if l.MaxStanzaBytes > maxStanzaCap {
		l.MaxStanzaBytes = maxStanzaCap
	}
	if l.MaxDepth <= 0 {
		l.MaxDepth = DefaultMaxDepth
	}
	if l.MaxAttrs <= 0 {
		l.MaxAttrs = DefaultMaxAttrs
	}
	return l
}

// Kind tells what Next returned.
type Kind uint8

const (
	StreamStart Kind = iota + 1 // the <stream:stream> opening tag
	Stanza                      // a complete top-level element
	StreamEnd                   // </stream:stream>
)

func (k Kind) String() string {
	switch k {
	case StreamStart:
		return "StreamStart"
	case Stanza:
		return "Stanza"
	case StreamEnd:
		return "StreamEnd"
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// bufSize is the size of pooled read buffers. A typical stanza is well under
// 1 KiB, so 4 KiB usually holds a whole read batch.
const bufSize = 4 << 10

// bufPool holds bufSize read buffers of parsers that are idle. Grown buffers
// (big stanzas) are not pooled: they are rare and would pin memory.
var bufPool = sync.Pool{New: func() any { b := make([]byte, bufSize); return &b }}

type phase uint8

const (
	phaseProlog phase = iota // before the stream header
	phaseStream              // between stanzas
	phaseEnded               // after </stream:stream>
)

// Frame scanner states (pass 1, see doc.go).
type frameState uint8

const (
	fsNone  frameState = iota // at a top-level boundary
	fsLt                      // after '<'
	fsStart                   // in a start tag, outside quotes
	fsQuote                   // in a quoted attribute value
	fsEnd                     // in an end tag
	fsText                    // in character data
	fsBang                    // after "<!"
	fsCDATA                   // in a CDATA section
	fsPI                      // in "<?...?>" (only the XML declaration gets here)
)

// What the frame being scanned is.
type frameMode uint8

const (
	modeStanza frameMode = iota
	modeHeader           // the stream header start tag
	modeEnd              // </stream:stream>
	modeDecl             // <?xml ...?>
)

// Parser reads one XMPP stream (RFC 6120 §4) from an io.Reader. It is not
// safe for concurrent use; each connection's reader goroutine owns one.
type Parser struct {
	rd  io.Reader
	lim Limits

	buf  []byte  // read buffer; nil while idle at a top-level boundary
	bufp *[]byte // pool handle of buf when it came from bufPool
	r, w int     // unread bytes are buf[r:w]
	off  int64   // stream offset of buf[r], for error reports
	rerr error   // read error that arrived with data, reported on the next read
	one  [1]byte // target of the idle 1-byte read

	phase      phase
	declOK     bool  // an XML declaration may still come (RFC 6120 §11.5)
	pendingEnd bool  // the stream header was self-closing
	err        error // sticky *Error

	// Frame scanner state, kept across reads so that a read error (e.g. a
	// deadline) in the middle of a stanza can be resumed by calling Next again.
	fs     frameState
	fmode  frameMode
	fpos   int // scan position relative to r
	fdepth int
	fquote byte
	fbang  int
	fopen  []int32 // offsets (relative to r) of the names of open start tags
	fend   int     // offset of the name of the end tag being scanned

	// Stream scope taken from the stream header.
	streamQName string       // qualified name of the stream element, for </stream:stream>
	binds       []streamBind // xmlns:p declarations of the header
	selfBind    int          // index in binds of the stream element's own prefix, or -1
	ext         []string     // strings spans may refer to: [0] default ns, [1] xml ns, [2+i] binds[i].uri
}

type streamBind struct {
	prefix string
	attr   string // "xmlns:" + prefix, as written
	uri    string
}

// xmlNS is the namespace bound to the "xml" prefix (Namespaces in XML §3).
const xmlNS = "http://www.w3.org/XML/1998/namespace"

// xmlnsNS is the namespace of the "xmlns" prefix, which must never be declared.
const xmlnsNS = "http://www.w3.org/2000/xmlns/"

// NewParser returns a parser that reads a stream from r.
func NewParser(r io.Reader, lim Limits) *Parser {
	p := &Parser{lim: lim.withDefaults()}
	p.Reset(r)
	return p
}

// Reset starts over on r, as needed for a stream restart (RFC 6120 §4.3.3)
// after STARTTLS or SASL success. Bytes buffered from the old reader are
// dropped: a peer must not pipeline past those points (RFC 6120 §5.4.3.3,
// §6.4.6), and keeping plaintext bytes across STARTTLS would allow command
// injection.
func (p *Parser) Reset(r io.Reader) {
	p.release()
	p.rd = r
	p.r, p.w, p.off = 0, 0, 0
	p.rerr, p.err = nil, nil
	p.phase, p.declOK, p.pendingEnd = phaseProlog, true, false
	p.fs = fsNone
	p.streamQName = ""
	p.binds = p.binds[:0]
	p.selfBind = -1
	p.ext = append(p.ext[:0], "", xmlNS)
}

// Next returns the next top-level event of the stream:
//
//   - StreamStart: the stream header, optionally preceded by an XML
//     declaration. el has Attrs, Space, Local and Prefix but no Nodes. The
//     element must be {http://etherx.jabber.org/streams}stream; checking the
//     content namespace and version is up to the caller.
//   - Stanza: a complete top-level element. Unprefixed elements without an
//     xmlns attribute are in the default namespace of the stream header.
//     A prefix declared on the stream header (other than the stream
//     element's own) that the stanza uses is declared again in the stanza's
//     Attrs, after its own attributes, so the stanza is self-contained.
//   - StreamEnd: </stream:stream>; el is nil. Later calls return io.EOF.
//
// White space between top-level elements is skipped. Returned elements belong
// to the caller and never alias the read buffer.
//
// Errors: an *Error (see the condition constants) is sticky: the stream must
// be closed with that stream error. Errors of the reader are returned as they
// are (io.EOF too, even in the middle of a stanza); they are not sticky, so
// after e.g. a read deadline expired Next may be called again and continues
// where it stopped.
func (p *Parser) Next() (kind Kind, el *Element, err error) {
	if p.err != nil {
		return 0, nil, p.err
	}
	if p.pendingEnd {
		p.pendingEnd = false
		p.phase = phaseEnded
		return StreamEnd, nil, nil
	}
	for {
		if p.phase == phaseEnded {
			return 0, nil, io.EOF
		}
		n, err := p.frame()
		if err != nil {
			return 0, nil, p.fail(err)
		}
		mode := p.fmode
		d := p.buf[p.r : p.r+n]
		switch mode {
		case modeDecl:
			err = p.parseDecl(d)
			p.declOK = false
		case modeEnd:
			err = p.parseEnd(d)
			kind = StreamEnd
			p.phase = phaseEnded
		case modeHeader:
			var selfClosed bool
			el, selfClosed, err = p.parseTree(d, true)
			if err == nil {
				err = p.setStream(el)
			}
			kind = StreamStart
			p.declOK = false
			p.phase = phaseStream
			p.pendingEnd = selfClosed
		default:
			el, _, err = p.parseTree(d, false)
			kind = Stanza
		}
		if err != nil {
			return 0, nil, p.fail(err)
		}
		p.consume(n)
		if mode != modeDecl {
			return kind, el, nil
		}
	}
}

// fail makes parse errors sticky and passes reader errors through.
func (p *Parser) fail(err error) error {
	var pe *Error
	if errors.As(err, &pe) {
		p.err = err
		p.release()
	}
	return err
}

func (p *Parser) errAt(cond string, i int, text string) *Error {
	return &Error{Condition: cond, Text: text, Offset: p.off + int64(i)}
}

// consume drops the n bytes of a finished frame. When nothing else is
// buffered the read buffer goes back to the pool right away, so a session
// that is parked between stanzas holds no buffer.
func (p *Parser) consume(n int) {
	p.r += n
	p.off += int64(n)
	p.fs = fsNone
	if p.r == p.w {
		p.release()
	}
}

func (p *Parser) acquire() {
	p.bufp = bufPool.Get().(*[]byte)
	p.buf = *p.bufp
	p.r, p.w = 0, 0
}

func (p *Parser) release() {
	if p.bufp != nil {
		bufPool.Put(p.bufp)
	}
	p.buf, p.bufp = nil, nil
	p.r, p.w = 0, 0
}

// waitIdle is called at a top-level boundary with nothing buffered. It gives
// the read buffer back and blocks in a 1-byte read into p.one, so an idle
// session costs one byte instead of a buffer. White space keepalives
// (RFC 6120 §4.6.1) are consumed here without ever taking a buffer. Once a
// real byte arrives a pooled buffer is taken and the rest of the stanza is
// read into it with ordinary large reads.
func (p *Parser) waitIdle() error {
	p.release()
	if p.rerr != nil {
		err := p.rerr
		p.rerr = nil
		return err
	}
	for empty := 0; ; {
		n, err := p.rd.Read(p.one[:])
		if n > 0 {
			if err != nil {
				p.rerr = err
			}
			if isSpace(p.one[0]) {
				p.off++
				if p.rerr != nil {
					err, p.rerr = p.rerr, nil
					return err
				}
				continue
			}
			p.acquire()
			p.buf[0] = p.one[0]
			p.w = 1
			return nil
		}
		if err != nil {
			return err
		}
		if empty++; empty >= 100 {
			return io.ErrNoProgress
		}
	}
}

// fill reads more bytes for the frame in progress, compacting or growing the
// buffer as needed. The buffer never exceeds MaxStanzaBytes + bufSize, and
// frame checks the limit before every fill, so a peer cannot make us buffer
// more than that.
func (p *Parser) fill() error {
	if p.rerr != nil {
		err := p.rerr
		p.rerr = nil
		return err
	}
	if p.buf == nil {
		p.acquire()
	}
	if p.r > 0 && (p.w == len(p.buf) || p.r >= len(p.buf)/2) {
		copy(p.buf, p.buf[p.r:p.w])
		p.w -= p.r
		p.r = 0
	}
	if p.w == len(p.buf) {
		max := p.lim.MaxStanzaBytes + bufSize
		n := 2 * len(p.buf)
		if n > max {
			n = max
		}
		if n <= len(p.buf) {
			return p.errAt(PolicyViolation, p.w, "stanza exceeds "+strconv.Itoa(p.lim.MaxStanzaBytes)+" bytes")
		}
		nb := make([]byte, n)
		copy(nb, p.buf[:p.w])
		if p.bufp != nil {
			bufPool.Put(p.bufp)
			p.bufp = nil
		}
		p.buf = nb
	}
	for empty := 0; ; {
		n, err := p.rd.Read(p.buf[p.w:])
		if n < 0 || n > len(p.buf)-p.w {
			return errors.New("wire: reader returned invalid count " + strconv.Itoa(n))
		}
		p.w += n
		if n > 0 {
			p.rerr = err
			return nil
		}
		if err != nil {
			return err
		}
		if empty++; empty >= 100 {
			return io.ErrNoProgress
		}
	}
}

// frame finds the next top-level frame (stanza, stream header, XML
// declaration or stream end) and returns its length; it starts at buf[r].
// It reads as needed and enforces MaxStanzaBytes and MaxDepth before the
// frame is complete.
func (p *Parser) frame() (int, error) {
	if p.fs == fsNone {
		for {
			for p.r < p.w && isSpace(p.buf[p.r]) {
				p.r++
				p.off++
			}
			if p.r < p.w {
				break
			}
			if err := p.waitIdle(); err != nil {
				return 0, err
			}
		}
		if p.buf[p.r] != '<' {
			if p.phase == phaseProlog {
				return 0, p.errAt(NotWellFormed, 0, "expected '<' at start of stream")
			}
			return 0, p.errAt(BadFormat, 0, "character data between stanzas")
		}
		p.fs, p.fpos, p.fdepth = fsLt, 1, 0
		p.fopen = p.fopen[:0]
		p.fmode = modeStanza
		if p.phase == phaseProlog {
			p.fmode = modeHeader
		}
	}
	for {
		n, done, err := p.scan()
		if err != nil {
			return 0, err
		}
		if done {
			if n > p.lim.MaxStanzaBytes {
				return 0, p.errAt(PolicyViolation, 0, "stanza exceeds "+strconv.Itoa(p.lim.MaxStanzaBytes)+" bytes")
			}
			return n, nil
		}
		if p.w-p.r > p.lim.MaxStanzaBytes {
			return 0, p.errAt(PolicyViolation, 0, "stanza exceeds "+strconv.Itoa(p.lim.MaxStanzaBytes)+" bytes")
		}
		if err := p.fill(); err != nil {
			return 0, err
		}
	}
}

// scan is pass 1: a small resumable state machine that only finds where the
// current frame ends. It tracks quotes, CDATA sections and nesting depth; it
// rejects early what can never become valid (comments, PIs, DTDs, too deep
// nesting) so hostile input is cut off before it is buffered. Everything
// else is validated by pass 2 on the complete frame.
func (p *Parser) scan() (int, bool, error) {
	b := p.buf[p.r:p.w]
	i := p.fpos
	for i < len(b) {
		switch p.fs {
		case fsText:
			j := bytes.IndexByte(b[i:], '<')
			if j < 0 {
				i = len(b)
				continue
			}
			i += j + 1
			p.fs = fsLt
		case fsLt:
			c := b[i]
			i++
			switch c {
			case '/':
				if p.fdepth == 0 {
					if p.phase != phaseStream {
						return 0, false, p.errAt(NotWellFormed, i-2, "end tag before stream header")
					}
					p.fmode = modeEnd
				}
				p.fs, p.fend = fsEnd, i
			case '!':
				p.fs, p.fbang = fsBang, 0
			case '?':
				if p.fdepth == 0 && p.declOK {
					p.fmode, p.fs = modeDecl, fsPI
				} else {
					return 0, false, p.errAt(RestrictedXML, i-2, "processing instruction")
				}
			default:
				p.fs = fsStart
				p.fopen = append(p.fopen, int32(i-1))
			}
		case fsStart:
			for i < len(b) {
				c := b[i]
				if c == '>' || c == '\'' || c == '"' || c == '<' || c == '/' {
					break
				}
				i++
			}
			if i == len(b) {
				continue
			}
			c := b[i]
			switch c {
			case '/':
				// Outside quotes '/' may only come right before '>'.
				if i+1 == len(b) {
					p.fpos = i // look again when the next byte is here
					return 0, false, nil
				}
				if b[i+1] != '>' {
					return 0, false, p.errAt(NotWellFormed, i, "'/' not followed by '>' in start tag")
				}
				i += 2
				if p.fmode == modeHeader {
					return i, true, nil
				}
				p.fopen = p.fopen[:len(p.fopen)-1]
				if p.fdepth == 0 {
					return i, true, nil
				}
				p.fs = fsText
			case '>':
				i++
				if p.fmode == modeHeader {
					return i, true, nil
				}
				p.fdepth++
				if p.fdepth > p.lim.MaxDepth {
					return 0, false, p.errAt(PolicyViolation, i-1, "elements nested deeper than "+strconv.Itoa(p.lim.MaxDepth))
				}
				p.fs = fsText
			case '<':
				return 0, false, p.errAt(NotWellFormed, i, "'<' in start tag")
			default:
				i++
				p.fquote, p.fs = c, fsQuote
			}
		case fsQuote:
			j := bytes.IndexByte(b[i:], p.fquote)
			if j < 0 {
				i = len(b)
				continue
			}
			i += j + 1
			p.fs = fsStart
		case fsEnd:
			j := bytes.IndexByte(b[i:], '>')
			if j < 0 {
				i = len(b)
				continue
			}
			i += j + 1
			if p.fmode == modeEnd {
				return i, true, nil
			}
			// Check the names now rather than in pass 2, so that a mismatch
			// is reported at once instead of after reading up to the limit.
			if len(p.fopen) == 0 || !sameTagName(b, int(p.fopen[len(p.fopen)-1]), b[p.fend:i-1]) {
				return 0, false, p.errAt(NotWellFormed, p.fend-2, "end tag does not match start tag")
			}
			p.fopen = p.fopen[:len(p.fopen)-1]
			p.fdepth--
			if p.fdepth <= 0 {
				return i, true, nil
			}
			p.fs = fsText
		case fsBang:
			c := b[i]
			if p.fbang == 0 {
				switch {
				case c == '-':
					return 0, false, p.errAt(RestrictedXML, i-2, "comment")
				case c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z':
					return 0, false, p.errAt(RestrictedXML, i-2, "document type declaration")
				case c != '[':
					return 0, false, p.errAt(NotWellFormed, i-2, "bad markup after '<!'")
				case p.fdepth == 0:
					return 0, false, p.errAt(BadFormat, i-2, "CDATA section between stanzas")
				}
			}
			const open = "[CDATA["
			if c != open[p.fbang] {
				return 0, false, p.errAt(NotWellFormed, i, "bad CDATA section start")
			}
			i++
			if p.fbang++; p.fbang == len(open) {
				p.fs = fsCDATA
			}
		case fsCDATA:
			j := bytes.IndexByte(b[i:], '>')
			if j < 0 {
				i = len(b)
				continue
			}
			i += j + 1
			if b[i-2] == ']' && b[i-3] == ']' {
				p.fs = fsText
			}
		case fsPI:
			j := bytes.IndexByte(b[i:], '>')
			if j < 0 {
				i = len(b)
				continue
			}
			i += j + 1
			if b[i-2] == '?' {
				return i, true, nil
			}
		}
	}
	p.fpos = i
	return 0, false, nil
}

// sameTagName reports whether the start tag name at b[start:] equals the
// end tag content name (which may have trailing white space).
func sameTagName(b []byte, start int, name []byte) bool {
	n := len(name)
	for n > 0 && isSpace(name[n-1]) {
		n--
	}
	name = name[:n]
	if start+n >= len(b) || !bytes.Equal(b[start:start+n], name) {
		return false
	}
	c := b[start+n]
	return isSpace(c) || c == '>' || c == '/'
}
