package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// IMAP is one mailbox the IMAP intake takes reports from (intake.imap).
type IMAP struct {
	URL             string        `yaml:"url" json:"url"`
	Password        string        `yaml:"password,omitempty" json:"password,omitempty"`
	PasswordFile    string        `yaml:"password_file,omitempty" json:"password_file,omitempty"`
	ProcessedFolder string        `yaml:"processed_folder" json:"processed_folder"`
	FailedFolder    string        `yaml:"failed_folder" json:"failed_folder"`
	PollInterval    time.Duration `yaml:"poll_interval" json:"poll_interval"`
	CAFile          string        `yaml:"ca_file,omitempty" json:"ca_file,omitempty"`
}

// Defaults of an intake.imap entry.
const (
	DefaultIMAPProcessed    = "Moat/Processed"
	DefaultIMAPFailed       = "Moat/Failed"
	DefaultIMAPPollInterval = time.Minute
)

// IMAPURL is a parsed mailbox URL: imap://USER[:PASSWORD]@HOST[:PORT]/FOLDER
// with ?starttls=1, or imaps://... (implicit TLS, RFC 8314).
type IMAPURL struct {
	TLS      bool   // imaps: TLS from the first byte
	StartTLS bool   // imap:// with ?starttls=1: STARTTLS required (RFC 3501 §6.2.1)
	Host     string // without brackets; the name the certificate must match
	Port     string // 993 for imaps, else 143 when the URL has none
	User     string
	Password string // from the URL; "" when it has none
	Folder   string // "INBOX" when the URL has no path; "/" separates levels
}

// Addr is host:port.
func (u IMAPURL) Addr() string { return net.JoinHostPort(u.Host, u.Port) }

// String is the URL without the password.
func (u IMAPURL) String() string {
	scheme, q := "imap", ""
	if u.TLS {
		scheme = "imaps"
	}
	if u.StartTLS {
		q = "?starttls=1"
	}
	return (&url.URL{Scheme: scheme, User: url.User(u.User), Host: u.Addr(), Path: "/" + u.Folder}).String() + q
}

// ParseIMAPURL parses a mailbox URL. The user name may hold an unescaped
// '@' (tlsrpt@example.net@imap.example.net: the last '@' ends it).
func ParseIMAPURL(s string) (IMAPURL, error) {
	u, err := url.Parse(s)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return IMAPURL{}, fmt.Errorf("not a URL: %w", err)
	}
	var r IMAPURL
	switch u.Scheme {
	case "imaps":
		r.TLS, r.Port = true, "993"
	case "imap":
		r.Port = "143"
	default:
		return IMAPURL{}, errors.New("want imap:// or imaps://")
	}
	if u.Opaque != "" || u.Host == "" {
		return IMAPURL{}, errors.New("no host: want imap://USER@HOST[:PORT]/FOLDER")
	}
	r.Host = u.Hostname()
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return IMAPURL{}, fmt.Errorf("port %q: want 1 to 65535", p)
		}
		r.Port = p
	}
	if u.User == nil || u.User.Username() == "" {
		return IMAPURL{}, errors.New("no user: want imap://USER@HOST[:PORT]/FOLDER")
	}
	r.User = u.User.Username()
	r.Password, _ = u.User.Password()
	r.Folder = strings.TrimPrefix(u.Path, "/")
	if r.Folder == "" {
		r.Folder = "INBOX"
	}
	if err := CheckIMAPFolder(r.Folder); err != nil {
		return IMAPURL{}, fmt.Errorf("folder: %w", err)
	}
	if u.Fragment != "" {
		return IMAPURL{}, errors.New("a fragment (#...) means nothing here")
	}
	for k, vs := range u.Query() {
		if k != "starttls" {
			return IMAPURL{}, fmt.Errorf("unknown parameter %q (only starttls=1)", k)
		}
		v := vs[len(vs)-1]
		on, err := strconv.ParseBool(v)
		if err != nil {
			return IMAPURL{}, fmt.Errorf("starttls=%q: want 1 or 0", v)
		}
		if on && r.TLS {
			return IMAPURL{}, errors.New("starttls=1 with imaps://: imaps is TLS from the start")
		}
		r.StartTLS = on
	}
	return r, nil
}

// CheckIMAPFolder validates a folder name: "/" separates hierarchy levels
// (translated to the server's delimiter), no empty level, no control
// characters, no IMAP wildcards.
func CheckIMAPFolder(f string) error {
	if f == "" {
		return errors.New("empty")
	}
	if strings.ContainsAny(f, "*%") {
		return errors.New("must not contain '*' or '%' (IMAP wildcards)")
	}
	for _, r := range f {
		if r < 0x20 || r == 0x7f {
			return errors.New("must not contain control characters")
		}
	}
	for _, level := range strings.Split(f, "/") {
		if level == "" {
			return errors.New("empty level (a leading, trailing or double '/')")
		}
	}
	return nil
}

// applyIMAPDefaults fills the defaults of each intake.imap entry.
func (c *Config) applyIMAPDefaults() {
	for i := range c.Intake.IMAP {
		m := &c.Intake.IMAP[i]
		if m.ProcessedFolder == "" {
			m.ProcessedFolder = DefaultIMAPProcessed
		}
		if m.FailedFolder == "" {
			m.FailedFolder = DefaultIMAPFailed
		}
		if m.PollInterval == 0 {
			m.PollInterval = DefaultIMAPPollInterval
		}
	}
}

// validateIMAP checks the intake.imap entries.
func (c *Config) validateIMAP() error {
	seen := map[string]bool{}
	for i, m := range c.Intake.IMAP {
		field := fmt.Sprintf("intake.imap[%d]", i)
		u, err := ParseIMAPURL(m.URL)
		if err != nil {
			return invalid(field+".url", redactIMAP(m.URL), "%v", err)
		}
		if seen[u.String()] {
			return invalid(field+".url", u.String(), "listed twice")
		}
		seen[u.String()] = true
		given := 0
		for _, p := range []string{u.Password, m.Password, m.PasswordFile} {
			if p != "" {
				given++
			}
		}
		if given > 1 {
			return invalid(field+".password", "(hidden)", "give the password once: in the url, password or password_file")
		}
		if m.PasswordFile != "" {
			if _, err := os.Stat(m.PasswordFile); err != nil {
				return invalid(field+".password_file", m.PasswordFile, "%v", err)
			}
		}
		if m.CAFile != "" {
			if _, err := os.Stat(m.CAFile); err != nil {
				return invalid(field+".ca_file", m.CAFile, "%v", err)
			}
		}
		folders := map[string]string{"folder of the url": u.Folder}
		for _, f := range []struct{ key, name string }{{"processed_folder", m.ProcessedFolder}, {"failed_folder", m.FailedFolder}} {
			if err := CheckIMAPFolder(f.name); err != nil {
				return invalid(field+"."+f.key, f.name, "%v", err)
			}
			for other, name := range folders {
				if strings.EqualFold(name, f.name) {
					return invalid(field+"."+f.key, f.name, "the same folder as the %s", other)
				}
			}
			folders[f.key] = f.name
		}
		if m.PollInterval < time.Second || m.PollInterval > 24*time.Hour {
			return invalid(field+".poll_interval", m.PollInterval, "want between 1s and 24h")
		}
	}
	return nil
}

// RedactedIMAP returns the intake.imap entries without their passwords,
// for `moat config show`.
func (c *Config) RedactedIMAP() []IMAP {
	if c.Intake.IMAP == nil {
		return nil
	}
	out := make([]IMAP, len(c.Intake.IMAP))
	for i, m := range c.Intake.IMAP {
		m.URL = redactIMAP(m.URL)
		if m.Password != "" {
			m.Password = "xxxxx"
		}
		out[i] = m
	}
	return out
}

// redactIMAP hides a password in a mailbox URL.
func redactIMAP(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}
