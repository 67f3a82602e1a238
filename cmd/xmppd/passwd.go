package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/ownchat/ownchat/staticdir"
)

// cmdPasswd reads one password line from stdin and prints the PHC hash for
// password_hash in [[directory.user]]. The password is never echoed.
func cmdPasswd(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("passwd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && err != io.EOF {
		fmt.Fprintf(stderr, "xmppd passwd: reading stdin: %v\n", err)
		return 1
	}
	pw := strings.TrimRight(line, "\r\n")
	if pw == "" {
		fmt.Fprintln(stderr, "xmppd passwd: empty password on stdin (usage: echo 'secret' | xmppd passwd)")
		return 1
	}
	h, err := staticdir.HashPassword(pw)
	if err != nil {
		fmt.Fprintf(stderr, "xmppd passwd: %v\n", err)
		return 1
	}
	fmt.Fprintln(stdout, h)
	return 0
}
