package xmppd

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// serveAdminTest serves ts's admin commands on a fresh unix socket.
func serveAdminTest(t *testing.T, ts *testServer) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "admin.sock")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- ts.ServeAdmin(l) }()
	t.Cleanup(func() {
		l.Close()
		if err := <-done; err != nil {
			t.Errorf("ServeAdmin: %v", err)
		}
	})
	return path
}

// adminStreamCall sends req and reads the answer with ReadAdminAnswer,
// returning the raw answer lines as well.
func adminStreamCall(t *testing.T, path string, req AdminRequest) (outputs map[string]*bytes.Buffer, lines [][]byte, err error) {
	t.Helper()
	nc, derr := net.DialTimeout("unix", path, testTimeout)
	if derr != nil {
		t.Fatal(derr)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(testTimeout))
	b, _ := json.Marshal(req)
	if _, werr := nc.Write(append(b, '\n')); werr != nil {
		t.Fatal(werr)
	}
	raw, rerr := io.ReadAll(nc)
	if rerr != nil {
		t.Fatal(rerr)
	}
	outputs = map[string]*bytes.Buffer{"": {}, AdminStderr: {}, "manifest": {}}
	ws := map[string]io.Writer{}
	for k, v := range outputs {
		ws[k] = v
	}
	err = ReadAdminAnswer(bytes.NewReader(raw), ws)
	return outputs, bytes.SplitAfter(raw, []byte("\n")), err
}

func TestAdminStream(t *testing.T) {
	ts := newTestServer(t)
	// 200,000 lines with multi-byte characters: chunk boundaries fall
	// inside UTF-8 sequences many times.
	var big bytes.Buffer
	for i := range 200000 {
		fmt.Fprintf(&big, "%d ünïcødé €%d\n", i, i*7)
	}
	var actor string
	ts.HandleAdminStream("export", func(ctx context.Context, call AdminCall, w io.Writer) error {
		actor = call.Actor
		fmt.Fprint(call.Outputs[AdminStderr], "note\n")
		data := big.Bytes()
		for len(data) > 0 { // odd write sizes
			n := min(len(data), 1000+len(data)%7919)
			if _, err := w.Write(data[:n]); err != nil {
				return err
			}
			data = data[n:]
		}
		if m := call.Outputs["manifest"]; m != nil {
			fmt.Fprint(m, `{"count":200000}`)
		} else {
			fmt.Fprint(w, "inline manifest\n")
		}
		return nil
	})
	ts.HandleAdminStream("broken", func(ctx context.Context, call AdminCall, w io.Writer) error {
		fmt.Fprint(w, "partial\n")
		return errors.New("it broke halfway")
	})
	ts.HandleAdminStream("panics", func(ctx context.Context, call AdminCall, w io.Writer) error {
		panic("boom")
	})
	ts.HandleAdmin("echo", func(args []string) (string, error) { return strings.Join(args, " "), nil })
	path := serveAdminTest(t, ts)

	for _, tt := range []struct {
		name     string
		req      AdminRequest
		wantErr  string
		main     string
		stderr   string
		manifest string
	}{
		{"stream with manifest side stream", AdminRequest{Command: "export", Outputs: []string{"manifest"}}, "", big.String(), "note\n", `{"count":200000}`},
		{"stream without", AdminRequest{Command: "export"}, "", big.String() + "inline manifest\n", "note\n", ""},
		{"error after output", AdminRequest{Command: "broken"}, "it broke halfway", "partial\n", "", ""},
		{"panic", AdminRequest{Command: "panics"}, "internal error: boom", "", "", ""},
		{"one-shot", AdminRequest{Command: "echo", Args: []string{"a", "b"}}, "", "a b", "", ""},
		{"unknown", AdminRequest{Command: "nope"}, `unknown command "nope" (try: help)`, "", "", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			out, lines, err := adminStreamCall(t, path, tt.req)
			var ae *AdminError
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("error %v", err)
			case tt.wantErr != "" && (!errors.As(err, &ae) || ae.Reason != tt.wantErr):
				t.Fatalf("error %v, want %q", err, tt.wantErr)
			}
			if got := out[""].String(); got != tt.main {
				t.Errorf("main output: %d bytes, want %d", len(got), len(tt.main))
			}
			if got := out[AdminStderr].String(); got != tt.stderr {
				t.Errorf("stderr %q, want %q", got, tt.stderr)
			}
			if got := out["manifest"].String(); got != tt.manifest {
				t.Errorf("manifest %q, want %q", got, tt.manifest)
			}
			for i, l := range lines {
				var c adminChunk
				if json.Unmarshal(l, &c) == nil && len(c.Output) > adminChunkBytes {
					t.Errorf("line %d carries %d bytes, more than %d", i, len(c.Output), adminChunkBytes)
				}
			}
			if tt.main == big.String() && len(lines) < len(tt.main)/adminChunkBytes {
				t.Errorf("%d lines for %d bytes: output not streamed in chunks", len(lines), len(tt.main))
			}
		})
	}
	if want := fmt.Sprintf("uid %d", os.Getuid()); !strings.HasPrefix(actor, want) {
		t.Errorf("actor %q, want prefix %q", actor, want)
	}
}

// TestAdminStreamClientGone: a client that hangs up cancels the command,
// so an export to a dead ctl does not run on.
func TestAdminStreamClientGone(t *testing.T) {
	ts := newTestServer(t)
	started := make(chan struct{})
	ended := make(chan error, 1)
	ts.HandleAdminStream("slow", func(ctx context.Context, call AdminCall, w io.Writer) error {
		close(started)
		select {
		case <-ctx.Done():
			ended <- ctx.Err()
		case <-time.After(testTimeout):
			ended <- errors.New("not cancelled")
		}
		return ctx.Err()
	})
	path := serveAdminTest(t, ts)
	nc, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	nc.Write([]byte(`{"command":"slow"}` + "\n"))
	<-started
	nc.Close()
	if err := <-ended; !errors.Is(err, context.Canceled) {
		t.Fatalf("command ended with %v, want context.Canceled", err)
	}
}

func TestRuneCut(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want int
	}{
		{"abc", 3},
		{"ab\xc3", 2},        // first byte of ü
		{"ab\xc3\xbc", 4},    // whole ü
		{"a\xe2\x82", 1},     // two of €'s three bytes
		{"a\xe2\x82\xac", 4}, // whole €
		{"\xf0\x9f\x98", 0},  // three of four: cut before
		{"a\xf0\x9f\x98\x80", 5},
	} {
		if got := runeCut([]byte(tt.in)); got != tt.want {
			t.Errorf("runeCut(%q) = %d, want %d", tt.in, got, tt.want)
		}
	}
}
