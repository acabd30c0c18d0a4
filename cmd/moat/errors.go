package main

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/moatmail/moat/internal/hosting"
)

// hintedError is an error with what to do about it appended: the text
// people read, while errors.Is and errors.As still see the cause.
type hintedError struct {
	err  error
	hint string
}

func (e *hintedError) Error() string { return e.err.Error() + " (see: " + e.hint + ")" }
func (e *hintedError) Unwrap() error { return e.err }

// forPeople adds the hint a person needs to errors that name a thing that
// does not exist or exists already. The messages themselves come from the
// packages that know the thing, the same for every entry point.
func forPeople(err error) error {
	var notHosted *hosting.NotHostedError
	var hosted *hosting.AlreadyHostedError
	switch {
	case errors.As(err, &notHosted):
		return &hintedError{err: err, hint: "moat domains list"}
	case errors.As(err, &hosted):
		return &hintedError{err: err, hint: "moat domains show " + hosted.Domain}
	}
	return err
}

// flagError rewrites pflag's parse errors, which quote Go's strconv
// messages, into what the flag wants, and points at the command's help.
func flagError(cmd *cobra.Command, err error) error {
	var iv *pflag.InvalidValueError
	if errors.As(err, &iv) {
		f := iv.GetFlag()
		want := "a valid value"
		switch f.Value.Type() {
		case "int", "int64", "int32", "uint", "uint64":
			want = "a whole number"
		case "float64", "float32":
			want = "a number"
		case "duration":
			want = "a duration such as 30s, 5m or 2h"
		case "bool":
			want = "true or false"
		}
		return fmt.Errorf("--%s %s: want %s", f.Name, strconv.Quote(iv.GetValue()), want)
	}
	return &hintedError{err: err, hint: cmd.CommandPath() + " --help"}
}

// storeOpenError describes why the database could not be opened without
// the driver's internals: the address that refused, or the file that could
// not be created, and the system's reason.
type storeOpenError struct {
	what string // "PostgreSQL at 127.0.0.1:5432" or "the SQLite database in ./moat-data"
	err  error
}

func (e *storeOpenError) Error() string {
	var dnsErr *net.DNSError
	if errors.As(e.err, &dnsErr) {
		return fmt.Sprintf("cannot open %s: no such host %q", e.what, dnsErr.Name)
	}
	var op *net.OpError
	if errors.As(e.err, &op) && op.Err != nil {
		reason := op.Err.Error()
		if se := errors.Unwrap(op.Err); se != nil {
			reason = se.Error() // "connection refused", without "connect: "
		}
		return fmt.Sprintf("cannot open %s: %s", e.what, reason)
	}
	var pg *pgconn.PgError
	if errors.As(e.err, &pg) {
		return fmt.Sprintf("cannot open %s: %s", e.what, pg.Message)
	}
	var pe *fs.PathError
	if errors.As(e.err, &pe) {
		return fmt.Sprintf("cannot open %s: %s %s: %s", e.what, pe.Op, pe.Path, pe.Err)
	}
	return fmt.Sprintf("cannot open %s: %s", e.what, e.err)
}

func (e *storeOpenError) Unwrap() error { return e.err }

// nArgs checks the number of positional arguments, from min to max (max
// -1: any number), and says what the command takes when it is wrong.
func nArgs(minArgs, maxArgs int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		name := strings.TrimPrefix(cmd.CommandPath(), cmd.Root().Name()+" ")
		switch {
		case len(args) < minArgs:
			return fmt.Errorf("%s: missing argument (usage: %s)", name, cmd.UseLine())
		case maxArgs == 0 && len(args) > 0:
			return fmt.Errorf("%s takes no arguments, got %q (usage: %s)", name, args, cmd.UseLine())
		case maxArgs >= 0 && len(args) > maxArgs:
			return fmt.Errorf("%s: too many arguments, %q (usage: %s)", name, args[maxArgs:], cmd.UseLine())
		}
		return nil
	}
}
