package xmppd

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"
	"unicode/utf8"
)

// The admin protocol: the client sends one line, an AdminRequest. The
// server answers with any number of output lines {"output":"..."} (with
// "stream":"NAME" for a side stream the client asked for, or "stderr"),
// then exactly one final line that has the "ok" key: {"ok":true} or
// {"ok":false,"error":"..."}. A one-shot command (HandleAdmin) answers with
// the final line alone, its output in it, as before streaming existed, so
// either kind of client reads either kind of answer.

// AdminRequest is one line sent to the admin socket by `xmppd ctl`.
type AdminRequest struct {
	Command string   `json:"command"`
	Args    []string `json:"args,omitempty"`
	// Outputs names side streams the client keeps apart from the main
	// output (e.g. "manifest" for `-manifest FILE`); the command finds a
	// writer for each in AdminCall.Outputs.
	Outputs []string `json:"outputs,omitempty"`
}

// AdminResponse is the final line of an answer. Output is set only by
// one-shot commands.
type AdminResponse struct {
	OK     bool   `json:"ok"`
	Output string `json:"output,omitempty"`
	Error  string `json:"error,omitempty"`
}

// adminChunk is one streamed output line.
type adminChunk struct {
	Output string `json:"output"`
	Stream string `json:"stream,omitempty"`
}

// AdminStderr is the side stream every streaming command may write
// warnings or notes to; ctl prints it on its stderr.
const AdminStderr = "stderr"

// AdminFunc runs an admin command; its output is printed by `xmppd ctl`.
type AdminFunc func(args []string) (string, error)

// AdminCall is one streaming admin command invocation.
type AdminCall struct {
	Args []string
	// Actor is who asked, for audit logs: the uid and user name of the
	// socket peer from SO_PEERCRED ("uid 1000 (alice)"), which the kernel
	// vouches for, unlike anything the client could send.
	Actor string
	// Outputs holds a writer for AdminStderr and for every side stream the
	// client asked for in AdminRequest.Outputs; absent names were not asked
	// for.
	Outputs map[string]io.Writer
}

// AdminStreamFunc runs a streaming admin command. What it writes to w
// reaches the client as it is produced, in lines of at most
// adminChunkBytes, so an export of any size never sits in memory. ctx ends
// when the client goes away. A returned error becomes the client's
// one-line reason.
type AdminStreamFunc func(ctx context.Context, call AdminCall, w io.Writer) error

// adminChunkBytes is the most output one line carries. Big enough that
// JSON framing costs nothing measurable, small enough to bound the memory
// of a stream.
const adminChunkBytes = 32 << 10

// adminIdleTimeout bounds how long the server waits for the request line
// and for each write of the answer. It is renewed before every write, so an
// export that keeps producing output may run for hours, while a client
// that stops reading is dropped.
const adminIdleTimeout = 10 * time.Minute

// HandleAdmin registers an admin command (later issues add sync, archive,
// hold ...). Call before ServeAdmin.
func (s *Server) HandleAdmin(name string, f AdminFunc) {
	s.init()
	s.adminMu.Lock()
	defer s.adminMu.Unlock()
	if s.admin == nil {
		s.admin = make(map[string]AdminFunc)
	}
	s.admin[name] = f
}

// HandleAdminStream registers a streaming admin command. A name registered
// with both HandleAdmin and HandleAdminStream runs the streaming one. Call
// before ServeAdmin.
func (s *Server) HandleAdminStream(name string, f func(ctx context.Context, call AdminCall, w io.Writer) error) {
	s.init()
	s.adminMu.Lock()
	defer s.adminMu.Unlock()
	if s.adminSt == nil {
		s.adminSt = make(map[string]AdminStreamFunc)
	}
	s.adminSt[name] = f
}

func (s *Server) adminCommand(name string) (AdminFunc, AdminStreamFunc) {
	s.adminMu.Lock()
	defer s.adminMu.Unlock()
	switch name {
	case "sessions":
		return s.adminSessions, nil
	case "help":
		return s.adminHelp, nil
	}
	if f := s.adminSt[name]; f != nil {
		return nil, f
	}
	return s.admin[name], nil
}

// ServeAdmin answers admin requests on l (a unix socket created 0600 by the
// caller). One request per connection keeps the protocol trivial.
func (s *Server) ServeAdmin(l net.Listener) error {
	s.init()
	s.mu.Lock()
	s.listeners[l] = struct{}{}
	s.mu.Unlock()
	for {
		nc, err := l.Accept()
		if err != nil {
			if s.inShut.Load() || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return fmt.Errorf("xmppd: admin accept: %w", err)
		}
		go s.serveAdmin(nc)
	}
}

func (s *Server) serveAdmin(nc net.Conn) {
	defer nc.Close()
	defer func() {
		if r := recover(); r != nil {
			s.Logger.Error("panic in admin command", "panic", r)
		}
	}()
	nc.SetDeadline(time.Now().Add(adminIdleTimeout))
	br := bufio.NewReaderSize(nc, 4096)
	line, err := br.ReadSlice('\n')
	if err != nil {
		return
	}
	var req AdminRequest
	resp := AdminResponse{}
	if err := json.Unmarshal(line, &req); err != nil {
		resp.Error = "malformed request"
		writeAdminFinal(nc, resp)
		return
	}
	one, stream := s.adminCommand(req.Command)
	actor := peerActor(nc)
	switch {
	case stream != nil:
		s.Logger.Info("admin command", "command", req.Command, "actor", actor)
		s.serveAdminStream(nc, req, actor, stream)
		return
	case one == nil:
		resp.Error = fmt.Sprintf("unknown command %q (try: help)", req.Command)
	default:
		s.Logger.Info("admin command", "command", req.Command, "actor", actor)
		out, err := one(req.Args)
		resp.Output = out
		if err != nil {
			resp.Error = err.Error()
		} else {
			resp.OK = true
		}
	}
	writeAdminFinal(nc, resp)
}

func writeAdminFinal(nc net.Conn, resp AdminResponse) {
	b, _ := json.Marshal(resp)
	nc.SetWriteDeadline(time.Now().Add(adminIdleTimeout))
	nc.Write(append(b, '\n'))
}

// serveAdminStream runs f with a context that ends when the client hangs
// up (ctl interrupted: a long export stops instead of running on into a
// dead socket).
func (s *Server) serveAdminStream(nc net.Conn, req AdminRequest, actor string, f AdminStreamFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	nc.SetReadDeadline(time.Time{})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		var b [64]byte
		for {
			if _, err := nc.Read(b[:]); err != nil {
				cancel()
				return
			}
		}
	}()
	defer func() {
		nc.Close()
		<-watched
	}()

	aw := &adminWriter{nc: nc}
	call := AdminCall{Args: req.Args, Actor: actor, Outputs: map[string]io.Writer{AdminStderr: aw.stream(AdminStderr)}}
	for _, name := range req.Outputs {
		if name != "" {
			call.Outputs[name] = aw.stream(name)
		}
	}
	err := runAdminStream(ctx, f, call, aw.stream(""))
	if ferr := aw.flush(); err == nil && ferr != nil {
		err = ferr
	}
	if aw.failed() {
		// The client is gone or stopped reading; nobody gets an answer.
		s.Logger.Warn("admin command: client went away", "command", req.Command, "err", err)
		return
	}
	resp := AdminResponse{OK: err == nil}
	if err != nil {
		resp.Error = err.Error()
	}
	writeAdminFinal(nc, resp)
}

func runAdminStream(ctx context.Context, f AdminStreamFunc, call AdminCall, w io.Writer) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("internal error: %v", r)
		}
	}()
	return f(ctx, call, w)
}

// adminWriter frames the output of one streaming command into lines. One
// buffer of adminChunkBytes is reused for the whole answer.
type adminWriter struct {
	mu  sync.Mutex
	nc  net.Conn
	buf []byte // pending bytes of stream cur
	cur string
	enc []byte
	err error
}

type adminStreamWriter struct {
	aw   *adminWriter
	name string
}

func (w adminStreamWriter) Write(p []byte) (int, error) { return w.aw.write(w.name, p) }

func (aw *adminWriter) stream(name string) io.Writer { return adminStreamWriter{aw, name} }

func (aw *adminWriter) failed() bool {
	aw.mu.Lock()
	defer aw.mu.Unlock()
	return aw.err != nil
}

func (aw *adminWriter) write(stream string, p []byte) (int, error) {
	aw.mu.Lock()
	defer aw.mu.Unlock()
	if aw.err != nil {
		return 0, aw.err
	}
	if stream != aw.cur && len(aw.buf) > 0 {
		if err := aw.send(len(aw.buf)); err != nil {
			return 0, err
		}
	}
	aw.cur = stream
	if aw.buf == nil {
		aw.buf = make([]byte, 0, adminChunkBytes)
	}
	n := len(p)
	for len(p) > 0 {
		k := min(adminChunkBytes-len(aw.buf), len(p))
		aw.buf = append(aw.buf, p[:k]...)
		p = p[k:]
		if len(aw.buf) == adminChunkBytes {
			if err := aw.send(runeCut(aw.buf)); err != nil {
				return n - len(p), err
			}
		}
	}
	return n, nil
}

// runeCut returns where b may be cut without splitting a UTF-8 sequence:
// a JSON string carries text, and each half of a split character would
// arrive as U+FFFD, changing the bytes (and an export's hash).
func runeCut(b []byte) int {
	for i := len(b) - 1; i >= 0 && i >= len(b)-utf8.UTFMax; i-- {
		if utf8.RuneStart(b[i]) {
			if !utf8.FullRune(b[i:]) {
				return i
			}
			break
		}
	}
	return len(b)
}

func (aw *adminWriter) flush() error {
	aw.mu.Lock()
	defer aw.mu.Unlock()
	if aw.err != nil || len(aw.buf) == 0 {
		return aw.err
	}
	return aw.send(len(aw.buf))
}

// send writes buf[:n] as one line and keeps the rest for the next one.
func (aw *adminWriter) send(n int) error {
	if n == 0 {
		n = len(aw.buf) // a chunk of nothing but a partial rune: invalid anyway
	}
	b, err := json.Marshal(adminChunk{Output: string(aw.buf[:n]), Stream: aw.cur})
	if err != nil {
		aw.err = fmt.Errorf("admin output: %w", err)
		return aw.err
	}
	aw.enc = append(append(aw.enc[:0], b...), '\n')
	aw.nc.SetWriteDeadline(time.Now().Add(adminIdleTimeout))
	if _, err := aw.nc.Write(aw.enc); err != nil {
		aw.err = fmt.Errorf("admin client: %w", err)
		return aw.err
	}
	aw.buf = aw.buf[:copy(aw.buf, aw.buf[n:])]
	return nil
}

// AdminError is a failure the server reported for a command.
type AdminError struct{ Reason string }

func (e *AdminError) Error() string { return e.Reason }

// ReadAdminAnswer reads the answer to one request from r: output lines go
// to outputs[stream] (the main output under ""; a stream without writer
// goes to the main output). It returns nil when the command succeeded, an
// *AdminError with the server's reason when it failed, and another error
// when the answer is broken or cut short.
func ReadAdminAnswer(r io.Reader, outputs map[string]io.Writer) error {
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		line, err := br.ReadBytes('\n')
		if err != nil {
			if errors.Is(err, io.EOF) {
				return errors.New("the server closed the connection before the command finished (see its log)")
			}
			return fmt.Errorf("reading the answer: %w", err)
		}
		var msg struct {
			OK     *bool  `json:"ok"`
			Output string `json:"output"`
			Stream string `json:"stream"`
			Error  string `json:"error"`
		}
		if err := json.Unmarshal(line, &msg); err != nil {
			return fmt.Errorf("malformed answer: %w", err)
		}
		w := outputs[msg.Stream]
		if w == nil {
			w = outputs[""]
		}
		if msg.Output != "" && w != nil {
			if _, err := io.WriteString(w, msg.Output); err != nil {
				return fmt.Errorf("writing the output: %w", err)
			}
		}
		if msg.OK == nil {
			continue
		}
		if !*msg.OK {
			if msg.Error == "" {
				msg.Error = "failed"
			}
			return &AdminError{Reason: msg.Error}
		}
		return nil
	}
}

func (s *Server) adminSessions(args []string) (string, error) {
	list := s.Sessions()
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "JID\tREMOTE\tTLS\tAUTH\tAVAILABLE\tPRIORITY\tSINCE")
	for _, si := range list {
		fmt.Fprintf(tw, "%s\t%s\t%v\t%s\t%v\t%d\t%s\n", si.JID, si.Remote, si.Secure, si.Mechanism, si.Available, si.Priority, si.Since.UTC().Format(time.RFC3339))
	}
	tw.Flush()
	fmt.Fprintf(&b, "%d session(s)\n", len(list))
	return b.String(), nil
}

func (s *Server) adminHelp(args []string) (string, error) {
	s.adminMu.Lock()
	names := []string{"help", "sessions"}
	for n := range s.admin {
		names = append(names, n)
	}
	for n := range s.adminSt {
		if _, dup := s.admin[n]; !dup {
			names = append(names, n)
		}
	}
	s.adminMu.Unlock()
	sort.Strings(names)
	return "commands: " + strings.Join(names, ", ") + "\n", nil
}
