package imapintake

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/moatmail/moat/internal/config"
	"github.com/moatmail/moat/internal/testpki"
)

// The tests run against a real IMAP server: Debian's Dovecot
// (dovecot-imapd), started by each test as a process of its own with a
// configuration in a temporary directory, listening on 127.0.0.1. Without
// it they skip, unless MOAT_REQUIRE_IMAP=1 (CI), which makes that a
// failure.

// dovecotOpts shape a test's server.
type dovecotOpts struct {
	// TLS gives the server a certificate of a test CA: STARTTLS on the
	// plain listener and an imaps listener.
	TLS bool
	// Caps, when set, are the capabilities announced after login
	// (imap_capability): leave out MOVE or IDLE to test the fallbacks.
	Caps string
	// Dot makes "." the hierarchy separator (Maildir++), instead of "/".
	Dot bool
}

// dovecot is a running test server with one user.
type dovecot struct {
	addr     string // plain listener (STARTTLS offered with TLS)
	tlsAddr  string // imaps listener, with TLS
	user     string
	password string
	caFile   string // the CA of its certificate, with TLS
	sep      string // hierarchy separator
	dir      string
}

func dovecotBinary(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("dovecot")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/dovecot"); serr == nil {
			return "/usr/sbin/dovecot"
		}
		if os.Getenv("MOAT_REQUIRE_IMAP") == "1" {
			t.Fatalf("MOAT_REQUIRE_IMAP=1 but dovecot is not installed (apt-get install dovecot-imapd): %v", err)
		}
		t.Skipf("SKIP: dovecot is not installed (apt-get install dovecot-imapd); the IMAP intake is not tested against a real server")
	}
	return bin
}

// freePort returns a port free on 127.0.0.1 a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = l.Close() }()
	return l.Addr().(*net.TCPAddr).Port
}

// startDovecot starts a server for the test and stops it when the test
// ends.
func startDovecot(t *testing.T, o dovecotOpts) *dovecot {
	t.Helper()
	bin := dovecotBinary(t)
	var last error
	for range 3 { // a port taken between freePort and the bind: try others
		d, err := tryDovecot(t, bin, o)
		if err == nil {
			return d
		}
		last = err
	}
	t.Fatalf("dovecot did not start: %v", last)
	return nil
}

func tryDovecot(t *testing.T, bin string, o dovecotOpts) (*dovecot, error) {
	t.Helper()
	// Dovecot's mail processes run as the mail user and must reach the
	// home directory: a directory of our own, mode 755 (t.TempDir's are
	// 700).
	dir, err := os.MkdirTemp("", "moat-dovecot-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil { //nolint:gosec // the mail user must traverse it
		t.Fatal(err)
	}
	for _, sub := range []string{"run", "state", "home"} {
		if err := os.Mkdir(filepath.Join(dir, sub), 0o755); err != nil { //nolint:gosec // read by dovecot's processes
			t.Fatal(err)
		}
	}
	// Dovecot refuses to run mail processes as root: as root they run as
	// the mail user; otherwise as ourselves.
	uid, gid := os.Getuid(), os.Getgid()
	internalUser, loginUser := "dovecot", "dovenull"
	if uid == 0 {
		u, err := user.Lookup("mail")
		if err != nil {
			t.Fatalf("no mail user to run dovecot's mail processes as: %v", err)
		}
		uid, _ = strconv.Atoi(u.Uid)
		gid, _ = strconv.Atoi(u.Gid)
		if err := os.Chown(filepath.Join(dir, "home"), uid, gid); err != nil {
			t.Fatal(err)
		}
	} else {
		me, err := user.Current()
		if err != nil {
			t.Fatal(err)
		}
		internalUser, loginUser = me.Username, me.Username
	}
	d := &dovecot{user: "reports", password: "s3cret pass", sep: "/", dir: dir}
	d.addr = fmt.Sprintf("127.0.0.1:%d", freePort(t))
	tlsPort := 0
	if o.TLS {
		tlsPort = freePort(t)
		d.tlsAddr = fmt.Sprintf("127.0.0.1:%d", tlsPort)
	}
	passwd := fmt.Sprintf("%s:{PLAIN}%s:%d:%d::%s\n", d.user, d.password, uid, gid, filepath.Join(dir, "home"))
	if err := os.WriteFile(filepath.Join(dir, "passwd"), []byte(passwd), 0o644); err != nil { //nolint:gosec // read by dovecot's auth process
		t.Fatal(err)
	}
	mailLocation := "maildir:~/Maildir:LAYOUT=fs"
	if o.Dot {
		d.sep = "."
		mailLocation = "maildir:~/Maildir"
	}
	// lock_method flock: with fcntl locks, the kernel's deadlock
	// detection can refuse a lock that two imap processes (the poller's
	// session and a test's APPEND) take on the mailbox list index in
	// turn, and Dovecot panics on EDEADLK ("Resource deadlock avoided").
	var conf strings.Builder
	fmt.Fprintf(&conf, `base_dir = %[1]s/run
state_dir = %[1]s/state
instance_name = moat-test-%[2]d
default_internal_user = %[3]s
default_login_user = %[4]s
listen = 127.0.0.1
protocols = imap
log_path = %[1]s/dovecot.log
first_valid_uid = 1
first_valid_gid = 1
mail_location = %[5]s
mail_max_userip_connections = 100
lock_method = flock
disable_plaintext_auth = no
auth_mechanisms = plain login
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%%u %[1]s/passwd
}
userdb {
  driver = passwd-file
  args = username_format=%%u %[1]s/passwd
}
namespace inbox {
  inbox = yes
  separator = %[6]s
}
service imap-login {
  inet_listener imap {
    port = %[7]s
  }
  inet_listener imaps {
    port = %[8]d
  }
}
`, dir, os.Getpid(), internalUser, loginUser, mailLocation, d.sep, portOf(d.addr), tlsPort)
	if o.Caps != "" {
		fmt.Fprintf(&conf, "imap_capability = %s\n", o.Caps)
	}
	if o.TLS {
		d.caFile = writeCert(t, dir)
		fmt.Fprintf(&conf, "ssl = yes\nssl_cert = <%[1]s/cert.pem\nssl_key = <%[1]s/key.pem\nssl_min_protocol = TLSv1.2\n", dir)
	} else {
		conf.WriteString("ssl = no\n")
	}
	confFile := filepath.Join(dir, "dovecot.conf")
	if err := os.WriteFile(confFile, []byte(conf.String()), 0o644); err != nil { //nolint:gosec // no secret that matters
		t.Fatal(err)
	}
	var out bytes.Buffer
	cmd := exec.Command(bin, "-F", "-c", confFile)
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = childAttr()
	if err := cmd.Start(); err != nil {
		t.Fatalf("start dovecot: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop := func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}
	logs := func() string {
		b, _ := os.ReadFile(filepath.Join(dir, "dovecot.log"))
		return out.String() + string(b)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		if err := greets(d.addr); err == nil {
			break
		}
		select {
		case err := <-exited:
			exited <- err
			return nil, fmt.Errorf("dovecot exited (%w): %s", errors.Join(err, errors.New("")), logs())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			stop()
			return nil, fmt.Errorf("dovecot did not answer on %s within 20s: %s", d.addr, logs())
		}
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("dovecot log:\n%s", logs())
		}
	})
	return d, nil
}

func portOf(addr string) string {
	_, p, _ := net.SplitHostPort(addr)
	return p
}

// greets says whether addr answers with an IMAP greeting.
func greets(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer func() { _ = c.Close() }()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 4)
	if _, err := c.Read(buf); err != nil {
		return err
	}
	if string(buf) != "* OK" {
		return fmt.Errorf("greeting %q", buf)
	}
	return nil
}

// writeCert writes a certificate for 127.0.0.1 and localhost, signed by a
// test CA, and returns the CA's PEM file.
func writeCert(t *testing.T, dir string) string {
	t.Helper()
	ca := testpki.NewCA(t, "Moat IMAP test CA")
	leaf := ca.Sign(t, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "localhost"},
		DNSNames:    []string{"localhost"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:   time.Now().Add(-time.Hour),
		NotAfter:    time.Now().Add(24 * time.Hour),
	})
	keyDER, err := x509.MarshalECPrivateKey(leaf.PrivateKey.(*ecdsa.PrivateKey))
	if err != nil {
		t.Fatal(err)
	}
	write := func(name, typ string, der []byte, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("cert.pem", "CERTIFICATE", leaf.Certificate[0], 0o644)
	write("key.pem", "EC PRIVATE KEY", keyDER, 0o600)
	return write("ca.pem", "CERTIFICATE", ca.Cert.Raw, 0o644)
}

// url is the mailbox URL of folder on the plain listener, with query q.
func (d *dovecot) url(t *testing.T, folder, q string) config.IMAPURL {
	t.Helper()
	s := fmt.Sprintf("imap://%s@%s/%s", d.user, d.addr, folder)
	if q != "" {
		s += "?" + q
	}
	mb, err := ParseURL(s)
	if err != nil {
		t.Fatal(err)
	}
	return mb
}

// client logs in on the plain listener, for the test's own looks.
func (d *dovecot) client(t *testing.T) *imapclient.Client {
	t.Helper()
	c, err := imapclient.DialInsecure(d.addr, &imapclient.Options{Dialer: &net.Dialer{Timeout: 10 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if err := c.Login(d.user, d.password).Wait(); err != nil {
		t.Fatal(err)
	}
	return c
}

// name is folder ("/"-separated) on the server.
func (d *dovecot) name(folder string) string { return strings.ReplaceAll(folder, "/", d.sep) }

// appendMsgs puts messages into folder (created when absent), with CRLF
// line ends.
func (d *dovecot) appendMsgs(t *testing.T, folder string, msgs ...[]byte) {
	t.Helper()
	c := d.client(t)
	defer func() { _ = c.Logout().Wait() }()
	if folder != "INBOX" {
		_ = c.Create(d.name(folder), nil).Wait() // may exist
	}
	for _, m := range msgs {
		m = crlf(m)
		cmd := c.Append(d.name(folder), int64(len(m)), nil)
		if _, err := cmd.Write(m); err != nil {
			t.Fatal(err)
		}
		if err := cmd.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := cmd.Wait(); err != nil {
			t.Fatalf("append to %s: %v", folder, err)
		}
	}
}

func crlf(b []byte) []byte {
	b = bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n"))
	return bytes.ReplaceAll(b, []byte("\n"), []byte("\r\n"))
}

// folderState is what a folder holds: how many messages, how many of them
// flagged \Seen or \Deleted.
type folderState struct{ messages, seen, deleted int }

// state looks at folder; an absent folder is empty.
func (d *dovecot) state(t *testing.T, folder string) folderState {
	t.Helper()
	c := d.client(t)
	defer func() { _ = c.Logout().Wait() }()
	sel, err := c.Select(d.name(folder), &imap.SelectOptions{ReadOnly: true}).Wait()
	if err != nil {
		var ie *imap.Error
		if errors.As(err, &ie) && ie.Code == imap.ResponseCodeNonExistent {
			return folderState{}
		}
		t.Fatalf("select %s: %v", folder, err)
	}
	fs := folderState{messages: int(sel.NumMessages)}
	if fs.messages == 0 {
		return fs
	}
	var all imap.SeqSet
	all.AddRange(1, sel.NumMessages)
	msgs, err := c.Fetch(all, &imap.FetchOptions{Flags: true}).Collect()
	if err != nil {
		t.Fatalf("fetch flags of %s: %v", folder, err)
	}
	for _, m := range msgs {
		for _, f := range m.Flags {
			switch f {
			case imap.FlagSeen:
				fs.seen++
			case imap.FlagDeleted:
				fs.deleted++
			}
		}
	}
	return fs
}
