package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/ownchat/ownchat/conf"
	"github.com/ownchat/ownchat/xmppd"
)

// cmdCtl sends one command to the running server over the admin socket.
func cmdCtl(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("ctl", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := configFlag(fs)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() == 0 {
		fmt.Fprintln(stderr, "xmppd ctl: missing command (try: xmppd ctl sessions)")
		return 2
	}
	cfg, err := conf.Load(*path)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	nc, err := net.DialTimeout("unix", cfg.Listen.AdminSocket, 3*time.Second)
	if err != nil {
		fmt.Fprintf(stderr, "xmppd ctl: no xmppd server is running for %s (cannot connect to %s: %v)\n", *path, cfg.Listen.AdminSocket, err)
		return 1
	}
	defer nc.Close()
	req, _ := json.Marshal(xmppd.AdminRequest{Command: fs.Arg(0), Args: fs.Args()[1:]})
	if _, err := nc.Write(append(req, '\n')); err != nil {
		fmt.Fprintf(stderr, "xmppd ctl: %v\n", err)
		return 1
	}
	line, err := bufio.NewReader(nc).ReadBytes('\n')
	if err != nil {
		fmt.Fprintf(stderr, "xmppd ctl: reading the answer: %v\n", err)
		return 1
	}
	var resp xmppd.AdminResponse
	if err := json.Unmarshal(line, &resp); err != nil {
		fmt.Fprintf(stderr, "xmppd ctl: malformed answer: %v\n", err)
		return 1
	}
	io.WriteString(stdout, resp.Output)
	if !resp.OK {
		fmt.Fprintf(stderr, "xmppd ctl: %s\n", resp.Error)
		return 1
	}
	return 0
}
