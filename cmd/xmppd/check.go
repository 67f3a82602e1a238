package main

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/ownchat/ownchat/conf"
	"github.com/ownchat/ownchat/ldapsync"
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
	users := ""
	switch cfg.Directory.Backend {
	case "ldap":
		report, err := checkLDAP(cfg)
		if report != "" {
			fmt.Fprint(stdout, report)
		}
		if err != nil {
			return fail(fmt.Errorf("%s: directory: %w", *path, err))
		}
		users = "LDAP directory"
	default:
		dir, err := staticdir.New(staticUsers(cfg), rosterRules(cfg)...)
		if err != nil {
			return fail(fmt.Errorf("%s: directory: %w", *path, err))
		}
		users = fmt.Sprintf("%d users (static directory)", len(dir.People()))
	}
	certNote := "self-signed certificate in data_dir"
	if cfg.TLS.CertFile != "" {
		if _, err := tls.LoadX509KeyPair(cfg.TLS.CertFile, cfg.TLS.KeyFile); err != nil {
			return fail(fmt.Errorf("%s: tls: %w", *path, err))
		}
		certNote = "certificate " + cfg.TLS.CertFile
	}
	fmt.Fprintf(stdout, "%s: OK: domain %s, %s, %s, data in %s\n", *path, cfg.Domain, users, certNote, cfg.DataDir)
	return 0
}

func staticUsers(cfg *conf.Config) []staticdir.User {
	users := make([]staticdir.User, 0, len(cfg.Directory.Users))
	for _, u := range cfg.Directory.Users {
		users = append(users, staticdir.User{Name: u.Name, DisplayName: u.DisplayName, Groups: u.Groups,
			PasswordHash: u.PasswordHash, Password: u.Password,
			GivenName: u.GivenName, Surname: u.Surname, Nickname: u.Nickname})
	}
	return users
}

// checkLDAP connects to the directory with the service account and reports
// what ownChat would see; misconfiguration comes back in plain words.
func checkLDAP(cfg *conf.Config) (string, error) {
	lc, err := ldapConfig(cfg.Directory)
	if err != nil {
		return "", err
	}
	d, err := ldapsync.New(lc, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		return "", err
	}
	defer d.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	report, err := d.Check(ctx)
	if err != nil {
		return report.String(), err
	}
	if len(report.Problems) > 0 {
		return report.String(), fmt.Errorf("%d problem(s) with the directory (see above)", len(report.Problems))
	}
	return report.String(), nil
}
