package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"filippo.io/age"
	"github.com/spf13/cobra"

	"github.com/moatmail/moat/internal/api"
	"github.com/moatmail/moat/internal/store"
)

// DMARC failure reports (RFC 6591): `moat reports dmarc failures`,
// `failure ID` and `decrypt`, and `moat orgs set --failure-report-key`.
// Every view is redacted unless --unredacted is given (dmarcrpt.RedactFailure);
// a report sealed to its organization's age key is opened only by
// `decrypt` with that organization's identity.

// newFailureCmds are the failure report commands of `moat reports dmarc`.
func newFailureCmds(g *globals) []*cobra.Command {
	return []*cobra.Command{newFailuresCmd(g), newFailureCmd(g), newDecryptCmd(g)}
}

func newFailuresCmd(g *globals) *cobra.Command {
	var (
		since  string
		limit  int
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "failures [DOMAIN] [--since 30d] [--limit N]",
		Short: "List received DMARC failure reports (RFC 6591), newest first: no addresses or subjects",
		Args:  nArgs(0, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			domain, err := optionalDomain(args)
			if err != nil {
				return err
			}
			from, err := parseSince(since, time.Now().UTC())
			if err != nil {
				return err
			}
			if limit <= 0 || limit > 1000 {
				return fmt.Errorf("--limit %d: want 1 to 1000", limit)
			}
			s, err := g.open(cmd)
			if err != nil {
				return err
			}
			defer s.close()
			l, err := s.st.DMARCFailures(cmd.Context(), store.DMARCFilter{Domain: domain, Since: from, Limit: limit})
			if err != nil {
				return err
			}
			if asJSON {
				out := api.DMARCFailureList{Failures: make([]api.DMARCFailure, 0, len(l))}
				for _, f := range l {
					out.Failures = append(out.Failures, api.DMARCFailureOf(f))
				}
				return printJSON(g.stdout, out)
			}
			if len(l) == 0 {
				fmt.Fprintln(g.stdout, "no failure reports")
				return nil
			}
			rows := [][]string{{"ID", "RECEIVED", "DOMAIN", "REPORTER", "FAILURE", "SOURCE IP", "DKIM", "RESULT", "STORED"}}
			for _, f := range l {
				dkim := "-"
				if f.DKIMDomain != "" {
					dkim = f.DKIMDomain + "/" + dash(f.DKIMSelector)
				}
				stored := "plain"
				if f.Sealed != "" {
					stored = "encrypted"
				}
				rows = append(rows, []string{strconv.FormatInt(f.ID, 10), f.ReceivedAt.Format("2006-01-02 15:04"), dash(f.Domain),
					dash(f.Reporter), dash(f.AuthFailure), dash(f.SourceIP), dkim, dash(f.DeliveryResult), stored})
			}
			return table(g.stdout, rows)
		},
	}
	f := cmd.Flags()
	f.StringVar(&since, "since", "", "only reports received after this (30d, a date); default everything")
	f.IntVar(&limit, "limit", 100, "at most this many reports (1 to 1000)")
	f.BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func newFailureCmd(g *globals) *cobra.Command {
	var raw, unredacted, asJSON bool
	cmd := &cobra.Command{
		Use:   "failure ID [--raw] [--unredacted]",
		Short: "Show one DMARC failure report, redacted (addresses masked, subject and message removed) unless --unredacted",
		Args:  nArgs(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseID(args[0], "failure report id", "moat reports dmarc failures")
			if err != nil {
				return err
			}
			s, err := g.open(cmd)
			if err != nil {
				return err
			}
			defer s.close()
			f, err := s.st.DMARCFailureByID(cmd.Context(), id)
			if errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("no DMARC failure report with id %d (see: moat reports dmarc failures)", id)
			}
			if err != nil {
				return err
			}
			if raw {
				// The ciphertext of a sealed report is safe to print: it is
				// what decrypt reads. The plain message is not redacted.
				if f.Sealed == "" && !unredacted {
					return &hintedError{err: fmt.Errorf("failure report %d is stored unencrypted: its raw message holds people's addresses and subjects", id),
						hint: fmt.Sprintf("moat reports dmarc failure %d --raw --unredacted", id)}
				}
				_, err := g.stdout.Write(f.Raw)
				return err
			}
			v := api.FailureViewOf(f, unredacted)
			if asJSON {
				return printJSON(g.stdout, v)
			}
			return printFailure(g, v)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&raw, "raw", false, "print the message as stored: the age ciphertext of an encrypted report (for decrypt), the plain message with --unredacted")
	f.BoolVar(&unredacted, "unredacted", false, "show people's addresses, the subject and the reported message's header (off by default)")
	f.BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// printFailure prints the view of one failure report.
func printFailure(g *globals, v api.DMARCFailureView) error {
	rows := [][]string{
		{"id:", strconv.FormatInt(v.ID, 10)},
		{"received:", v.ReceivedAt.Format(time.RFC3339) + " by " + v.Source},
		{"domain:", dash(v.Domain)},
		{"reporter:", dash(v.Reporter)},
		{"auth failure:", dash(v.AuthFailure)},
		{"source ip:", dash(v.SourceIP)},
	}
	if v.SealedTo != "" {
		rows = append(rows, []string{"stored:", "encrypted to " + v.SealedTo})
	}
	if err := table(g.stdout, rows); err != nil {
		return err
	}
	switch {
	case v.SealedTo != "":
		fmt.Fprintf(g.stdout, "\nThis report is encrypted to your organization's age key %s; the server cannot read it.\n"+
			"Decrypt it with the identity file of that key:\n  moat reports dmarc decrypt --identity KEYFILE %d\n", v.SealedTo, v.ID)
	case v.Redacted != nil:
		fmt.Fprintf(g.stdout, "\n%s", v.Redacted)
		fmt.Fprintln(g.stdout, "\n(redacted: addresses masked, subjects and the reported message removed; --unredacted shows them)")
	case v.Report != nil:
		b, err := jsonIndent(v.Report)
		if err != nil {
			return err
		}
		fmt.Fprintf(g.stdout, "\n%s\n", b)
	}
	if v.Error != "" {
		fmt.Fprintf(g.stdout, "\nthe stored message no longer parses: %s\n", v.Error)
	}
	return nil
}

func jsonIndent(v any) (string, error) {
	var b bytes.Buffer
	if err := printJSON(&b, v); err != nil {
		return "", err
	}
	return strings.TrimRight(b.String(), "\n"), nil
}

func newDecryptCmd(g *globals) *cobra.Command {
	var identity string
	cmd := &cobra.Command{
		Use:   "decrypt --identity FILE ID|FILE...",
		Short: "Decrypt failure reports encrypted to your organization's age key (by id from the store, or files from failure ID --raw or the API) and print them",
		Args:  nArgs(1, 1000),
		RunE: func(cmd *cobra.Command, args []string) error {
			if identity == "" {
				return &hintedError{err: errors.New("--identity FILE is required: the age identity file of your organization's key"),
					hint: "age-keygen -o key.txt (then set its public key: moat orgs set ORG --failure-report-key age1...)"}
			}
			kf, err := os.Open(identity) //nolint:gosec // G304: the identity file the user names
			if err != nil {
				return fmt.Errorf("--identity: %w", err)
			}
			ids, err := age.ParseIdentities(kf)
			_ = kf.Close()
			if err != nil {
				return fmt.Errorf("--identity %s: %w", identity, err)
			}
			var s *session
			defer func() {
				if s != nil {
					s.close()
				}
			}()
			for _, arg := range args {
				var sealed []byte
				if id, err := strconv.ParseInt(arg, 10, 64); err == nil && id > 0 && !fileExists(arg) {
					if s == nil {
						if s, err = g.open(cmd); err != nil {
							return err
						}
					}
					f, err := s.st.DMARCFailureByID(cmd.Context(), id)
					if errors.Is(err, store.ErrNotFound) {
						return fmt.Errorf("no DMARC failure report with id %d (see: moat reports dmarc failures)", id)
					} else if err != nil {
						return err
					}
					if f.Sealed == "" {
						return &hintedError{err: fmt.Errorf("failure report %d is not encrypted", id),
							hint: fmt.Sprintf("moat reports dmarc failure %d --unredacted", id)}
					}
					sealed = f.Raw
				} else {
					if sealed, err = os.ReadFile(arg); err != nil { //nolint:gosec // G304: a file the user names
						return err
					}
					if !bytes.HasPrefix(sealed, []byte(store.SealPrefix)) {
						return fmt.Errorf("%s: not an age-encrypted file (it does not begin with %q)", arg, strings.TrimSpace(store.SealPrefix))
					}
				}
				plain, err := store.Unseal(sealed, ids...)
				if err != nil {
					return fmt.Errorf("%s: %w", arg, err)
				}
				if _, err := g.stdout.Write(plain); err != nil {
					return err
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&identity, "identity", "", "the age identity file (AGE-SECRET-KEY-1...) of your organization's key")
	return cmd
}

func fileExists(name string) bool {
	_, err := os.Stat(name)
	return err == nil
}

// newOrgSetCmd is `moat orgs set NAME --failure-report-key age1...|none`.
func newOrgSetCmd(g *globals) *cobra.Command {
	var key string
	cmd := &cobra.Command{
		Use:   "set NAME --failure-report-key age1...|none",
		Short: "Change an organization's settings: the age key its DMARC failure reports are encrypted to",
		Args:  nArgs(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !cmd.Flags().Changed("failure-report-key") {
				return errors.New("nothing to set: give --failure-report-key age1... (or none)")
			}
			if key == "none" {
				key = ""
			}
			if err := store.CheckFailureKey(key); err != nil {
				return &hintedError{err: fmt.Errorf("--failure-report-key %q: want an age X25519 recipient, age1... (or none)", key),
					hint: "age-keygen -o key.txt prints the recipient as its public key"}
			}
			s, err := g.open(cmd)
			if err != nil {
				return err
			}
			defer s.close()
			o, err := lookupOrg(cmd.Context(), s.st, args[0])
			if err != nil {
				return err
			}
			if err := s.st.Scoped(store.Scope{Operator: true}).SetFailureKey(cmd.Context(), o.ID, key); err != nil {
				return err
			}
			if key == "" {
				fmt.Fprintf(g.stdout, "failure reports of %s are stored unencrypted from now on\n", o.Name)
			} else {
				fmt.Fprintf(g.stdout, "failure reports of %s are encrypted to %s from now on\n", o.Name, key)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&key, "failure-report-key", "", "the age X25519 recipient (age1...) to encrypt the organization's DMARC failure reports to; none to stop")
	return cmd
}
