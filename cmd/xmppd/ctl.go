package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/ownchat/ownchat/conf"
	"github.com/ownchat/ownchat/store"
	"github.com/ownchat/ownchat/xmppd"
)

// cmdCtl runs one admin command. With a server running it goes over the
// admin socket; with none, the store commands (storeCmds) open the store
// themselves (bbolt's lock makes that exclusive) and run the same code.
// Every failure exits non-zero with one line on stderr.
func cmdCtl(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("ctl", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := configFlag(fs)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() == 0 {
		fmt.Fprintln(stderr, "xmppd ctl: missing command (try: xmppd ctl help)")
		return 2
	}
	cfg, err := conf.Load(*path)
	if err != nil {
		fmt.Fprintln(stderr, oneLine(err.Error()))
		return 1
	}
	first, rest := fs.Arg(0), fs.Args()[1:]
	isStore := storeCmdGroup(first)
	var files ctlFiles
	if isStore {
		if rest, files, err = extractFileFlags(rest); err != nil {
			return ctlFail(stderr, err)
		}
	}
	nc, dialErr := net.DialTimeout("unix", cfg.Listen.AdminSocket, 3*time.Second)
	if dialErr == nil {
		defer nc.Close()
	}
	switch {
	case first == "help":
		return ctlHelp(nc, stdout, stderr)
	case dialErr == nil:
		return ctlOnline(nc, first, rest, &files, stdout, stderr)
	case isStore:
		return ctlOffline(cfg, first, rest, &files, stdout, stderr)
	}
	fmt.Fprintf(stderr, "xmppd ctl: no xmppd server is running for %s (cannot connect to %s: %v); %q needs a running server\n",
		*path, cfg.Listen.AdminSocket, dialErr, first)
	return 1
}

func ctlFail(stderr io.Writer, err error) int {
	var ae *xmppd.AdminError
	if errors.As(err, &ae) {
		err = errors.New(ae.Reason)
	}
	fmt.Fprintf(stderr, "xmppd ctl: %s\n", oneLine(err.Error()))
	return 1
}

// oneLine keeps a reason on the one line scripts expect.
func oneLine(s string) string {
	return strings.ReplaceAll(strings.TrimSpace(s), "\n", "; ")
}

// ctlOnline sends the command over the admin socket and writes what comes
// back: the main output to stdout or -o FILE, the manifest to -manifest
// FILE, notes to stderr.
func ctlOnline(nc net.Conn, first string, rest []string, files *ctlFiles, stdout, stderr io.Writer) int {
	req := xmppd.AdminRequest{Command: first, Args: rest}
	if files.manifestPath != "" {
		req.Outputs = []string{manifestStream}
	}
	out, err := files.open(stdout)
	if err != nil {
		return ctlFail(stderr, err)
	}
	b, _ := json.Marshal(req)
	if _, err := nc.Write(append(b, '\n')); err != nil {
		files.abort()
		return ctlFail(stderr, fmt.Errorf("sending the command: %w", err))
	}
	// Interrupted ctl: closing the socket stops the command in the server.
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(stop)
	go func() {
		if _, ok := <-stop; ok {
			nc.Close()
		}
	}()
	err = xmppd.ReadAdminAnswer(nc, map[string]io.Writer{"": out, xmppd.AdminStderr: stderr, manifestStream: files.manifest})
	if err != nil {
		files.abort()
		return ctlFail(stderr, err)
	}
	if err := files.finish(); err != nil {
		return ctlFail(stderr, err)
	}
	return 0
}

// ctlOffline runs a store command on the store of a stopped server.
func ctlOffline(cfg *conf.Config, first string, rest []string, files *ctlFiles, stdout, stderr io.Writer) (code int) {
	name, cmd, args, ok := lookupStoreCmd(first, rest)
	if !ok {
		return ctlFail(stderr, unknownStoreCmd(first, rest))
	}
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer cancel()
	env := storeEnv{
		Config: cfg,
		Actor:  xmppd.UIDActor(uint32(os.Getuid())),
		Now:    time.Now,
		Log:    slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		Stderr: stderr,
	}
	if !storeless[name] {
		st, err := store.Open(cfg.DataDir)
		if err != nil {
			return ctlFail(stderr, fmt.Errorf("no server answers on %s and the store cannot be opened: %w", cfg.Listen.AdminSocket, err))
		}
		env.Store = st
		defer func() {
			if err := st.Close(); err != nil && code == 0 {
				code = ctlFail(stderr, err)
			}
		}()
	}
	out, err := files.open(stdout)
	if err != nil {
		return ctlFail(stderr, err)
	}
	env.Manifest = files.manifest
	if err := cmd(ctx, &env, args, out); err != nil {
		files.abort()
		return ctlFail(stderr, err)
	}
	if err := files.finish(); err != nil {
		return ctlFail(stderr, err)
	}
	return 0
}

// ctlHelp lists the commands: the server's, or the store commands that
// also work without one.
func ctlHelp(nc net.Conn, stdout, stderr io.Writer) int {
	names := strings.Join(storeCmdNames(), ", ")
	if nc == nil {
		fmt.Fprintf(stdout, "no xmppd server is running; these work on its store directly: %s\n", names)
		return 0
	}
	b, _ := json.Marshal(xmppd.AdminRequest{Command: "help"})
	if _, err := nc.Write(append(b, '\n')); err != nil {
		return ctlFail(stderr, err)
	}
	if err := xmppd.ReadAdminAnswer(nc, map[string]io.Writer{"": stdout, xmppd.AdminStderr: stderr}); err != nil {
		return ctlFail(stderr, err)
	}
	fmt.Fprintf(stdout, "store commands (also with the server stopped): %s\n", names)
	return 0
}

// ctlFiles are the -o and -manifest files. ctl writes them, not the
// server: the server may run as another user, and the person asking for
// an export is the one who must own it.
type ctlFiles struct {
	outPath, manifestPath string
	outF, manF            *os.File
	outBuf                *bufio.Writer
	manifest              io.Writer // nil without -manifest
}

// extractFileFlags takes -o FILE and -manifest FILE (also -o=FILE,
// --o FILE) out of args.
func extractFileFlags(args []string) (rest []string, f ctlFiles, err error) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		name, val, hasVal := strings.Cut(strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-"), "=")
		if !strings.HasPrefix(a, "-") || (name != "o" && name != "manifest") {
			rest = append(rest, a)
			continue
		}
		if !hasVal {
			if i+1 >= len(args) {
				return nil, f, fmt.Errorf("%s needs a file name", a)
			}
			i++
			val = args[i]
		}
		if val == "" {
			return nil, f, fmt.Errorf("-%s needs a file name", name)
		}
		if name == "o" {
			f.outPath = val
		} else {
			f.manifestPath = val
		}
	}
	if f.outPath != "" && f.outPath == f.manifestPath {
		return nil, f, errors.New("-o and -manifest name the same file")
	}
	return rest, f, nil
}

func createPrivate(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, err
	}
	// An existing file keeps its mode on open; exports are personal data.
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// open creates the files and returns where the main output goes.
func (f *ctlFiles) open(stdout io.Writer) (io.Writer, error) {
	var err error
	if f.manifestPath != "" {
		if f.manF, err = createPrivate(f.manifestPath); err != nil {
			return nil, fmt.Errorf("-manifest: %w", err)
		}
		f.manifest = f.manF
	}
	if f.outPath == "" {
		f.outBuf = bufio.NewWriterSize(stdout, 64<<10)
		return f.outBuf, nil
	}
	if f.outF, err = createPrivate(f.outPath); err != nil {
		f.abort()
		return nil, fmt.Errorf("-o: %w", err)
	}
	f.outBuf = bufio.NewWriterSize(f.outF, 64<<10)
	return f.outBuf, nil
}

// finish flushes and syncs the files: an export handed to a court must be
// on disk when ctl says it is done.
func (f *ctlFiles) finish() error {
	if f.outBuf != nil {
		if err := f.outBuf.Flush(); err != nil {
			f.abort()
			return fmt.Errorf("writing the output: %w", err)
		}
	}
	for _, file := range []*os.File{f.outF, f.manF} {
		if file == nil {
			continue
		}
		if err := file.Sync(); err != nil {
			f.abort()
			return fmt.Errorf("%s: %w", file.Name(), err)
		}
		if err := file.Close(); err != nil {
			f.abort()
			return fmt.Errorf("%s: %w", file.Name(), err)
		}
	}
	return nil
}

// abort removes the files of a failed command: a partial export must not
// pass for a complete one. Output already sent to stdout stays printed.
func (f *ctlFiles) abort() {
	if f.outBuf != nil && f.outF == nil {
		f.outBuf.Flush()
	}
	for _, file := range []*os.File{f.outF, f.manF} {
		if file != nil {
			file.Close()
			os.Remove(file.Name())
		}
	}
	f.outF, f.manF, f.outBuf = nil, nil, nil
}
