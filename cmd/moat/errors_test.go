package main

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestMessagesForPeople runs the CLI's error paths and wants, for each, the
// exit code and one line on stderr that says what was wrong and what to
// do, in words, without a store, driver or parser internal.
func TestMessagesForPeople(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	mustMoat(t, "domains", "add", "hosted.example", "--mx", "mx.hosted.example", "--data", data)
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := dead.Addr().String()
	dead.Close()
	file := filepath.Join(t.TempDir(), "file")
	os.WriteFile(file, nil, 0o600)
	conf := filepath.Join(t.TempDir(), "moat.yaml")
	os.WriteFile(conf, []byte("zone: sts.test\nzonee: typo\ndns:\n  ttl: soon\n"), 0o600)

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"domains", "show", "x.example"}, `moat: no hosted domain "x.example" (see: moat domains list)`},
		{[]string{"domains", "set", "x.example", "--mode", "enforce"}, `moat: no hosted domain "x.example" (see: moat domains list)`},
		{[]string{"domains", "rm", "x.example"}, `moat: no hosted domain "x.example" (see: moat domains list)`},
		{[]string{"domains", "show", "X.Example."}, `moat: no hosted domain "x.example" (see: moat domains list)`},
		{[]string{"domains", "records", "x.example", "--zone", "sts.test"}, `moat: no hosted domain "x.example" (see: moat domains list)`},
		{[]string{"domains", "verify", "x.example", "--zone", "sts.test"}, `moat: no hosted domain "x.example" (see: moat domains list)`},
		{[]string{"domains", "add", "hosted.example", "--mx", "mx.hosted.example"}, `moat: domain "hosted.example" is already hosted (see: moat domains show hosted.example)`},
		{[]string{"domains", "set", "hosted.example", "--max-age", "abc"}, `moat: --max-age "abc": want a whole number`},
		{[]string{"domains", "add"}, "moat: domains add: missing argument (usage: moat domains add DOMAIN --mx PATTERN [--mx PATTERN ...] [--org NAME] [flags])"},
		{[]string{"domains", "list", "extra"}, `moat: domains list takes no arguments, got ["extra"] (usage: moat domains list [flags])`},
		{[]string{"domains", "list", "--bogus"}, "moat: unknown flag: --bogus (see: moat domains list --help)"},
		{[]string{"domains", "list", "--config", conf}, "moat: configuration file " + conf + `: line 2: unknown key "zonee"; line 4: "soon" is not a duration such as 30s or 5m`},
		{[]string{"domains", "list", "--config", conf + ".missing"}, "moat: cannot read the configuration file " + conf + ".missing: no such file or directory"},
		{[]string{"domains", "list", "--log-level", "loud"}, `moat: invalid setting log.level "loud": want debug, info, warn or error`},
		{[]string{"reports", "tlsrpt", "show", "7"}, `moat: no TLS report with id 7 (see: moat reports tlsrpt list)`},
		{[]string{"domains", "list", "--database", "postgres://moat:secret@" + deadAddr + "/moat"}, "moat: cannot open PostgreSQL at " + deadAddr + " (database moat): connection refused"},
		{[]string{"domains", "list", "--data", filepath.Join(file, "sub")}, "moat: cannot open the SQLite database in " + filepath.Join(file, "sub") + ": mkdir " + file + ": not a directory"},
	} {
		args := tc.args
		if !strings.Contains(strings.Join(args, " "), "--data") {
			args = append(args, "--data", data)
		}
		code, _, errs := moat(t, args...)
		if code != exitError {
			t.Errorf("moat %s: exit %d, want %d", strings.Join(tc.args, " "), code, exitError)
		}
		if got := strings.TrimRight(errs, "\n"); got != tc.want {
			t.Errorf("moat %s:\n got %q\nwant %q", strings.Join(tc.args, " "), got, tc.want)
		}
		for _, leak := range []string{"store:", "config:", "yaml: unmarshal", "strconv", "pgconn", "failed to connect", "%!", "secret", "arg(s)"} {
			if strings.Contains(errs, leak) {
				t.Errorf("moat %s: stderr %q shows %q", strings.Join(tc.args, " "), errs, leak)
			}
		}
	}
}
