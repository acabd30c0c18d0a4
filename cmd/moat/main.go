// Command moat hosts MTA-STS for any number of domains and analyses their
// email transport security. See README.md.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

// Exit codes (documented in the README).
const (
	exitOK       = 0
	exitError    = 1 // operational error or invalid input
	exitNotGreen = 2 // the command ran, and what it checked is not in order
)

// exitErr carries an exit code other than exitError.
type exitErr struct {
	code int
	err  error
}

func (e *exitErr) Error() string { return e.err.Error() }
func (e *exitErr) Unwrap() error { return e.err }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run executes the command line args and returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := newRoot(stdout, stderr)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	err = forPeople(err)
	var ee *exitErr
	if errors.As(err, &ee) {
		if ee.err != nil && ee.err.Error() != "" {
			fmt.Fprintln(stderr, "moat:", ee.err)
		}
		return ee.code
	}
	fmt.Fprintln(stderr, "moat:", err)
	return exitError
}

func newRoot(stdout, stderr io.Writer) *cobra.Command {
	g := &globals{stdout: stdout, stderr: stderr}
	root := &cobra.Command{
		Use:   "moat",
		Short: "Hosted MTA-STS, TLS reporting and email transport security",
		Long: `Moat hosts MTA-STS for any number of domains: it serves the policy file over
HTTPS with certificates it obtains itself, and the _mta-sts and _smtp._tls TXT
records from its own DNS server, so a domain owner publishes three CNAMEs once.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(flagError)
	root.SetOut(stdout)
	root.SetErr(stderr)
	g.register(root)
	root.AddCommand(newServeCmd(g), newDomainsCmd(g), newImportCmd(g), newReportsCmd(g), newConfigCmd(g), newCheckCmd(g),
		newOrgsCmd(g), newUsersCmd(g), newTokensCmd(g), newSeedCmd(g), newVersionCmd(g),
		newBackupCmd(g), newRestoreCmd(g), newMigrateCmd(g))
	return root
}
