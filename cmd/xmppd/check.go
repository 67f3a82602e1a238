package main

import (
	"crypto/tls"
	"flag"
	"fmt"
	"io"

	"github.com/ownchat/ownchat/conf"
	"github.com/ownchat/ownchat/staticdir"
)

// cmdCheck validates the configuration and what it points to (users and
// their password hashes, certificate files) without touching a running
// server's files: the store stays closed, so check works next to serve.
func cmdCheck(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := configFlag(fs)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	fail := func(err error) int {
		fmt.Fprintln(stderr, err)
		fmt.Fprintf(stderr, "%s: configuration is NOT valid\n", *path)
		return 1
	}
	cfg, err := conf.Load(*path)
	if err != nil {
		return fail(err)
	}
	for _, w := range cfg.Warnings() {
		fmt.Fprintf(stdout, "warning: %s\n", w)
	}
	dir, err := staticdir.New(staticUsers(cfg))
	if err != nil {
		return fail(fmt.Errorf("%s: directory: %w", *path, err))
	}
	certNote := "self-signed certificate in data_dir"
	if cfg.TLS.CertFile != "" {
		if _, err := tls.LoadX509KeyPair(cfg.TLS.CertFile, cfg.TLS.KeyFile); err != nil {
			return fail(fmt.Errorf("%s: tls: %w", *path, err))
		}
		certNote = "certificate " + cfg.TLS.CertFile
	}
	fmt.Fprintf(stdout, "%s: OK: domain %s, %d users (%s directory), %s, data in %s\n", *path, cfg.Domain,
		len(dir.People()), cfg.Directory.Backend, certNote, cfg.DataDir)
	return 0
}

func staticUsers(cfg *conf.Config) []staticdir.User {
	users := make([]staticdir.User, 0, len(cfg.Directory.Users))
	for _, u := range cfg.Directory.Users {
		users = append(users, staticdir.User{Name: u.Name, DisplayName: u.DisplayName, Groups: u.Groups,
			PasswordHash: u.PasswordHash, Password: u.Password})
	}
	return users
}
