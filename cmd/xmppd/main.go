// Command xmppd is the ownChat XMPP server.
//
//	xmppd serve  -config FILE   run in the foreground
//	xmppd check  -config FILE   validate the configuration
//	xmppd passwd                read a password on stdin, print its hash
//	xmppd ctl    -config FILE COMMAND [ARGS]   talk to the running server
//
// This package only wires the parts together: it reads the configuration,
// builds the store, the directory and the server, and handles signals.
package main

import (
	"fmt"
	"io"
	"os"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

const defaultConfig = "./xmppd.toml"

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	switch args[0] {
	case "serve":
		return cmdServe(args[1:], stderr)
	case "check":
		return cmdCheck(args[1:], stdout, stderr)
	case "passwd":
		return cmdPasswd(args[1:], stdin, stdout, stderr)
	case "ctl":
		return cmdCtl(args[1:], stdout, stderr)
	case "version", "-version", "--version":
		fmt.Fprintln(stdout, "xmppd", version)
		return 0
	case "help", "-h", "-help", "--help":
		usage(stdout)
		return 0
	}
	fmt.Fprintf(stderr, "xmppd: unknown command %q\n", args[0])
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprint(w, `usage:
  xmppd serve  [-config FILE]                run the server in the foreground
  xmppd check  [-config FILE]                validate the configuration and exit 0/1
  xmppd passwd                               read a password on stdin, print an argon2id hash
  xmppd ctl    [-config FILE] COMMAND [ARGS] talk to the running server (sessions, help)
  xmppd version
The default FILE is ./xmppd.toml.
`)
}
