package xmppd

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// AdminRequest is one line sent to the admin socket by `xmppd ctl`.
type AdminRequest struct {
	Command string   `json:"command"`
	Args    []string `json:"args,omitempty"`
}

// AdminResponse is the single-line answer.
type AdminResponse struct {
	OK     bool   `json:"ok"`
	Output string `json:"output,omitempty"`
	Error  string `json:"error,omitempty"`
}

// AdminFunc runs an admin command; its output is printed by `xmppd ctl`.
type AdminFunc func(args []string) (string, error)

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

func (s *Server) adminCommand(name string) AdminFunc {
	s.adminMu.Lock()
	defer s.adminMu.Unlock()
	switch name {
	case "sessions":
		return s.adminSessions
	case "help":
		return s.adminHelp
	}
	return s.admin[name]
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
	nc.SetDeadline(time.Now().Add(10 * time.Minute))
	br := bufio.NewReaderSize(nc, 4096)
	line, err := br.ReadSlice('\n')
	if err != nil {
		return
	}
	var req AdminRequest
	resp := AdminResponse{}
	if err := json.Unmarshal(line, &req); err != nil {
		resp.Error = "malformed request"
	} else if f := s.adminCommand(req.Command); f == nil {
		resp.Error = fmt.Sprintf("unknown command %q (try: help)", req.Command)
	} else {
		s.Logger.Info("admin command", "command", req.Command)
		out, err := f(req.Args)
		resp.Output = out
		if err != nil {
			resp.Error = err.Error()
		} else {
			resp.OK = true
		}
	}
	b, _ := json.Marshal(resp)
	nc.Write(append(b, '\n'))
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
	s.adminMu.Unlock()
	sort.Strings(names)
	return "commands: " + strings.Join(names, ", ") + "\n", nil
}
