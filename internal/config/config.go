// Package config is Moat's one typed configuration: defaults, a YAML file
// decoded strictly, MOAT_* environment variables and command-line flags, in
// that order of precedence (flags win). Every field carries its
// documentation and default next to it; Reference renders them for the
// README, so the documentation cannot drift from the code.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	env "github.com/caarlos0/env/v11"
	yaml "go.yaml.in/yaml/v3"

	"github.com/moatmail/moat/internal/dnsname"
)

// ErrInvalid is wrapped by every validation error. The message names the
// field (as spelled in the YAML file) and the offending value.
var ErrInvalid = errors.New("config: invalid")

// Config is the whole configuration. The struct tags are the schema:
// yaml is the key in the file, env the MOAT_ variable (nested structs add
// their prefix), flag the command-line flag of `moat serve` (when there is
// one), doc the documentation; the default is what Default sets.
type Config struct {
	DataDir  string   `yaml:"data" json:"data" env:"DATA" flag:"data" doc:"Data directory: the embedded SQLite database, the development CA. Created if absent."`
	Database string   `yaml:"database" json:"database" env:"DATABASE" flag:"database" doc:"Database URL. Empty: SQLite in the data directory. postgres://user:pass@host/db: PostgreSQL, shared by several instances."`
	Dev      bool     `yaml:"dev" json:"dev" env:"DEV" flag:"dev" doc:"Development mode: listeners on 127.0.0.1 on unprivileged ports, a local CA instead of ACME, a demo domain."`
	Roles    []string `yaml:"roles" json:"roles" env:"ROLES" flag:"roles" doc:"What this instance of moat serve does: dns (the authoritative DNS server), policy (MTA-STS policies over HTTPS), intake (TLS and DMARC reports by HTTPS, SMTP and IMAP), web (dashboard and API). A public edge runs dns,policy; a core behind it intake,web. The HTTPS listener runs for policy, and for intake and web when they serve their hosts there."`

	Zone       string `yaml:"zone" json:"zone" env:"ZONE" flag:"zone" doc:"Service zone delegated to Moat's DNS server; customers CNAME _mta-sts and _smtp._tls into it."`
	PolicyHost string `yaml:"policy_host" json:"policy_host" env:"POLICY_HOST" flag:"policy-host" doc:"Host name customers CNAME mta-sts.<domain> to; it must resolve to the HTTPS listener. Default: mta-sts.<zone>."`

	Log     Log     `yaml:"log" json:"log" envPrefix:"LOG_"`
	DNS     DNS     `yaml:"dns" json:"dns" envPrefix:"DNS_"`
	HTTPS   HTTPS   `yaml:"https" json:"https" envPrefix:"HTTPS_"`
	HTTP    HTTP    `yaml:"http" json:"http" envPrefix:"HTTP_"`
	ACME    ACME    `yaml:"acme" json:"acme" envPrefix:"ACME_"`
	TLSRPT  TLSRPT  `yaml:"tlsrpt" json:"tlsrpt" envPrefix:"TLSRPT_"`
	Intake  Intake  `yaml:"intake" json:"intake" envPrefix:"INTAKE_"`
	Web     Web     `yaml:"web" json:"web" envPrefix:"WEB_"`
	Metrics Metrics `yaml:"metrics" json:"metrics" envPrefix:"METRICS_"`
	Store   Store   `yaml:"store" json:"store" envPrefix:"STORE_"`

	Retention Retention `yaml:"retention" json:"retention" envPrefix:"RETENTION_"`
}

// Log configures logging.
type Log struct {
	Level  string `yaml:"level" json:"level" env:"LEVEL" flag:"log-level" doc:"Minimum level: debug, info, warn or error."`
	Format string `yaml:"format" json:"format" env:"FORMAT" flag:"log-format" doc:"text (human readable) or json."`
}

// DNS configures the authoritative DNS server for the service zone.
type DNS struct {
	Listen      string              `yaml:"listen" json:"listen" env:"LISTEN" flag:"dns-listen" doc:"UDP and TCP address of the authoritative DNS server. Empty disables it."`
	Nameservers []string            `yaml:"nameservers" json:"nameservers" env:"NAMESERVERS" doc:"NS names of the zone (the first is the SOA MNAME). Default: ns1.<zone>."`
	Hostmaster  string              `yaml:"hostmaster" json:"hostmaster" env:"HOSTMASTER" doc:"SOA contact mailbox. Default: hostmaster@<zone>."`
	Hosts       map[string][]string `yaml:"hosts" json:"hosts" env:"-" doc:"A/AAAA records served inside the zone, name to addresses (for in-zone NS names and the policy host). YAML only."`
	TTL         time.Duration       `yaml:"ttl" json:"ttl" env:"TTL" doc:"TTL of the TXT, NS and address records."`
}

// HTTPS configures the policy server's TLS listener.
type HTTPS struct {
	Listen            string        `yaml:"listen" json:"listen" env:"LISTEN" flag:"https-listen" doc:"Address of the HTTPS policy server (and TLS-ALPN-01 challenges). Empty disables it."`
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout" json:"read_header_timeout" env:"READ_HEADER_TIMEOUT" doc:"Time limit of a client's TLS handshake and request headers (slow clients). The first handshake for a newly hosted name waits for its ACME order within it."`
}

// HTTP configures the plain HTTP listener (ACME HTTP-01 challenges only).
type HTTP struct {
	Listen string `yaml:"listen" json:"listen" env:"LISTEN" flag:"http-listen" doc:"Address of the HTTP listener for ACME HTTP-01 challenges. Empty disables it."`
}

// ACME configures certificate issuance for mta-sts.<domain> host names.
type ACME struct {
	CA     string `yaml:"ca" json:"ca" env:"CA" flag:"acme-ca" doc:"ACME directory URL."`
	Email  string `yaml:"email" json:"email" env:"EMAIL" flag:"acme-email" doc:"Contact address for the ACME account (expiry notices)."`
	CARoot string `yaml:"ca_root" json:"ca_root" env:"CA_ROOT" flag:"acme-ca-root" doc:"PEM file of roots to trust when talking to the ACME server (a private or test CA). Empty: the system roots."`
}

// TLSRPT configures what Moat publishes in every hosted domain's
// _smtp._tls record.
type TLSRPT struct {
	RUA []string `yaml:"rua" json:"rua" env:"RUA" doc:"Report URIs (mailto: or https:) published in every hosted domain's TLS-RPT record before the domain's own extra URIs. Empty: derived from the intake settings, mailto:<each intake address> and https://<intake.host>/v1/tlsrpt, so that reports come to Moat's intake."`
}

// Intake configures report intake: TLS-RPT (RFC 8460 §5) by HTTPS POST and
// by SMTP, DMARC (RFC 7489 §7) by SMTP, and both from IMAP mailboxes. The
// published rua (tlsrpt.rua, and the DMARC rua shown to domain owners) is
// derived from it.
type Intake struct {
	Host           string        `yaml:"host" json:"host" env:"HOST" doc:"Host name of the report intake: the https rua is https://<host>/v1/tlsrpt, and the SMTP server greets with it. It must resolve to Moat. Default: reports.<zone>."`
	Addresses      []string      `yaml:"addresses" json:"addresses" env:"ADDRESSES" doc:"Mailboxes the SMTP intake accepts reports for, published as mailto: rua; other recipients are refused. Default: tlsrpt@<host>."`
	DMARCAddresses []string      `yaml:"dmarc_addresses" json:"dmarc_addresses" env:"DMARC_ADDRESSES" doc:"Mailboxes the SMTP intake accepts DMARC aggregate (rua) and failure (ruf) reports for; the first is the rua and ruf each domain's records page shows. Reports belong to the organizations hosting their policy domain, whichever address they came to. Default: dmarc@<host>."`
	ReportListen   string        `yaml:"report_listen" json:"report_listen" env:"REPORT_LISTEN" flag:"report-listen" doc:"A separate listener for POST /v1/tlsrpt. Empty: the endpoint is served on the HTTPS listener for Host <intake.host>."`
	ReportTLS      bool          `yaml:"report_tls" json:"report_tls" env:"REPORT_TLS" doc:"Serve TLS on intake.report_listen (certificate for intake.host from ACME or the development CA). false: plain HTTP, for a TLS-terminating proxy in front."`
	SMTPListen     string        `yaml:"smtp_listen" json:"smtp_listen" env:"SMTP_LISTEN" flag:"smtp-listen" doc:"Address of the SMTP intake (STARTTLS offered). Empty disables it."`
	RequireDKIM    bool          `yaml:"require_dkim" json:"require_dkim" env:"REQUIRE_DKIM" doc:"Refuse reports by mail that are not DKIM-signed or whose signature fails (RFC 8460 §3 asks reporters to sign)."`
	MaxReportSize  int64         `yaml:"max_report_size" json:"max_report_size" env:"MAX_REPORT_SIZE" doc:"Largest report body (HTTPS) or message (SMTP) accepted, in bytes."`
	MaxReportJSON  int64         `yaml:"max_report_json" json:"max_report_json" env:"MAX_REPORT_JSON" doc:"Largest report after decompression, in bytes (gzip bombs are refused)."`
	MaxDMARCXML    int64         `yaml:"max_dmarc_xml" json:"max_dmarc_xml" env:"MAX_DMARC_XML" doc:"Largest DMARC aggregate report after decompression, in bytes. DMARC reports are read as a stream in constant memory, so this bounds the time one report takes (a million records is about 400 MB of XML), not memory."`
	RatePerIP      float64       `yaml:"rate_per_ip" json:"rate_per_ip" env:"RATE_PER_IP" doc:"HTTPS reports per second accepted from one client IP (bursts of five times as many); beyond it, 429."`
	SMTPConnsPerIP int64         `yaml:"smtp_conns_per_ip" json:"smtp_conns_per_ip" env:"SMTP_CONNS_PER_IP" doc:"Simultaneous SMTP connections accepted from one client IP address (IPv6: one /64); more are answered 421."`
	SMTPSpool      bool          `yaml:"smtp_spool" json:"smtp_spool" env:"SMTP_SPOOL" doc:"Answer report mail 250 once the message is committed to the spool (after checking that it holds a report), and store its reports afterwards, when the intake is quiet or the message has waited intake.spool_max_delay: the SMTP intake then keeps up with a burst of reports (all senders deliver just after midnight UTC) at the speed of the disk's commits. false: answer only once the reports are stored, with their ids. A spooled message whose reports cannot be stored for good is kept and logged."`
	SpoolMaxDelay  time.Duration `yaml:"spool_max_delay" json:"spool_max_delay" env:"SPOOL_MAX_DELAY" doc:"Longest time a spooled message waits while mail keeps arriving (intake.smtp_spool); after it the reports are stored beside the intake."`
	IMAP           []IMAP        `yaml:"imap" json:"imap" env:"-" doc:"Mailboxes to take reports from (IMAP IDLE, else polling), YAML only. Each entry: url (imaps://USER@HOST[:PORT]/FOLDER, or imap://...?starttls=1; FOLDER default INBOX), the password in the url, password or password_file (else MOAT_IMAP_PASSWORD), processed_folder (default Moat/Processed) and failed_folder (default Moat/Failed) where each message is moved once its reports are committed or found missing, poll_interval (default 1m), ca_file (PEM roots trusted besides the system's)."`
}

// Metrics configures the monitoring endpoints.
type Metrics struct {
	Listen string `yaml:"listen" json:"listen" env:"LISTEN" flag:"metrics-listen" doc:"Address of the monitoring listener (plain HTTP): Prometheus metrics at /metrics, /healthz (the process is up) and /readyz (the store answers, the snapshot is loaded, every listener is bound). Empty disables it; keep it off the internet."`
}

// Web configures the dashboard and the REST API.
type Web struct {
	Host            string        `yaml:"host" json:"host" env:"HOST" doc:"Host name of the dashboard and API on the HTTPS listener (certificate from ACME, like the policy hosts). It must resolve to Moat. Default: app.<zone>."`
	Listen          string        `yaml:"listen" json:"listen" env:"LISTEN" flag:"web-listen" doc:"A separate listener for the dashboard and API. TLS with the web host's certificate, except plain HTTP under --dev or behind a proxy listed in web.trusted_proxies. Empty: only the HTTPS listener, for web.host."`
	TrustedProxies  []string      `yaml:"trusted_proxies" json:"trusted_proxies" env:"TRUSTED_PROXIES" doc:"Addresses or networks (CIDR) of TLS-terminating reverse proxies in front of web.listen: it then serves plain HTTP, believes their X-Forwarded-For for rate limits and logs, and still marks cookies Secure."`
	SessionIdle     time.Duration `yaml:"session_idle" json:"session_idle" env:"SESSION_IDLE" doc:"A signed-in session ends after this long without a request."`
	SessionLifetime time.Duration `yaml:"session_lifetime" json:"session_lifetime" env:"SESSION_LIFETIME" doc:"A signed-in session ends after this long, however active."`
}

// Store configures the database.
type Store struct {
	PollInterval time.Duration `yaml:"poll_interval" json:"poll_interval" env:"POLL_INTERVAL" doc:"How often each instance checks the database for changes made elsewhere (CLI, other instances) and rebuilds what it serves."`
	LeaseTTL     time.Duration `yaml:"lease_ttl" json:"lease_ttl" env:"LEASE_TTL" doc:"Time to live of the leader lease: of the instances of moat serve sharing the database, the one holding it runs the background jobs (retention), renewing it every third of this; when the leader dies another takes over within about this time."`
}

// Retention configures how long reports are kept: periods written in days
// (90d) or as durations (2160h); 0 keeps forever.
type Retention struct {
	Raw     Period `yaml:"raw" json:"raw" env:"RAW" doc:"How long the raw bytes of a report (as received) are kept, from the end of the report's period; then they are deleted and the parsed report stays. At most retention.reports."`
	Reports Period `yaml:"reports" json:"reports" env:"REPORTS" doc:"How long parsed reports (their policies, failure details and intake log lines) are kept, from the end of their period, and the stored results of moat check, from when they were taken. At most retention.rollups."`
	Rollups Period `yaml:"rollups" json:"rollups" env:"ROLLUPS" doc:"How long the daily session counts that summaries and charts read are kept, in whole UTC days."`
}

// Period is a length of time written in days ("90d") or with the units of
// Go durations ("2160h", "90m"); "0" is zero.
type Period time.Duration

// ParsePeriod parses a Period.
func ParsePeriod(s string) (Period, error) {
	s = strings.TrimSpace(s)
	if s == "0" {
		return 0, nil
	}
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.ParseInt(n, 10, 64)
		if err != nil || days < 0 || days > 100*366 {
			return 0, fmt.Errorf("%q is not a number of days from 0 to 36600 followed by d", s)
		}
		return Period(time.Duration(days) * 24 * time.Hour), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a period such as 90d or 2160h", s)
	}
	return Period(d), nil
}

// String writes p in days when it is a whole number of them.
func (p Period) String() string {
	d := time.Duration(p)
	if d != 0 && d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	}
	if d == 0 {
		return "0"
	}
	return d.String()
}

// UnmarshalText implements encoding.TextUnmarshaler (the environment).
func (p *Period) UnmarshalText(b []byte) error {
	v, err := ParsePeriod(string(b))
	if err != nil {
		return err
	}
	*p = v
	return nil
}

// MarshalText implements encoding.TextMarshaler (moat config --json).
func (p Period) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// UnmarshalYAML implements yaml.Unmarshaler.
func (p *Period) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: want a period such as 90d or 2160h", n.Line)
	}
	if err := p.UnmarshalText([]byte(n.Value)); err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	return nil
}

// Roles of an instance (roles).
const (
	RoleDNS    = "dns"
	RolePolicy = "policy"
	RoleIntake = "intake"
	RoleWeb    = "web"
)

// HasRole reports whether the instance has role.
func (c *Config) HasRole(role string) bool {
	for _, r := range c.Roles {
		if r == role {
			return true
		}
	}
	return false
}

// Production defaults.
const (
	DefaultDataDir      = "./moat-data"
	DefaultACMECA       = "https://acme-v02.api.letsencrypt.org/directory"
	DefaultTTL          = 5 * time.Minute
	DefaultPollInterval = time.Second

	// DevZone is the service zone used by --dev when none is given.
	DevZone = "sts.moat.test"
)

// Default returns the production defaults.
func Default() Config {
	return Config{
		DataDir: DefaultDataDir,
		Roles:   []string{RoleDNS, RolePolicy, RoleIntake, RoleWeb},
		Log:     Log{Level: "info", Format: "text"},
		DNS:     DNS{Listen: ":53", TTL: DefaultTTL},
		HTTPS:   HTTPS{Listen: ":443", ReadHeaderTimeout: 10 * time.Second},
		HTTP:    HTTP{Listen: ":80"},
		ACME:    ACME{CA: DefaultACMECA},
		Store:   Store{PollInterval: DefaultPollInterval, LeaseTTL: 30 * time.Second},
		Retention: Retention{
			Raw: 90 * Period(24*time.Hour), Reports: 400 * Period(24*time.Hour), Rollups: 800 * Period(24*time.Hour),
		},
		Web: Web{SessionIdle: 12 * time.Hour, SessionLifetime: 30 * 24 * time.Hour},
		Intake: Intake{
			ReportTLS: true, SMTPListen: ":25",
			MaxReportSize: 10 << 20, MaxReportJSON: 64 << 20, MaxDMARCXML: 1 << 30, RatePerIP: 10, SMTPConnsPerIP: 20, SMTPSpool: true, SpoolMaxDelay: time.Minute,
		},
	}
}

// DevDefault returns the defaults of --dev: loopback, unprivileged ports, a
// fixed test zone and a report address under it.
func DevDefault() Config {
	c := Default()
	c.Dev = true
	c.Zone = DevZone
	c.DNS.Listen = "127.0.0.1:5353"
	c.HTTPS.Listen = "127.0.0.1:8443"
	c.HTTP.Listen = "127.0.0.1:8080"
	c.ACME.CA = ""
	c.Intake.SMTPListen = "127.0.0.1:2525"
	c.Web.Listen = "127.0.0.1:8081"
	c.Metrics.Listen = "127.0.0.1:9091"
	return c
}

// Source says where configuration comes from besides the defaults.
type Source struct {
	// File is a YAML file path; empty means none.
	File string
	// Environ is the environment as "KEY=value" pairs; nil means none.
	Environ []string
	// Flags are the flags the user set explicitly, by flag name (see the
	// flag tags), as their string values. Lists are comma-separated.
	Flags map[string]string
}

// Load builds the configuration from defaults, the file, the environment
// and the flags, and validates it. --dev (from any source) switches the
// defaults to DevDefault.
func Load(src Source) (*Config, error) {
	c, err := load(Default(), src)
	if err != nil {
		return nil, err
	}
	if c.Dev {
		if c, err = load(DevDefault(), src); err != nil {
			return nil, err
		}
	}
	c.applyDerived()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

func load(base Config, src Source) (*Config, error) {
	c := base
	if src.File != "" {
		f, err := os.Open(src.File)
		if err != nil {
			var pe *fs.PathError
			if errors.As(err, &pe) {
				err = pe.Err
			}
			return nil, fmt.Errorf("cannot read the configuration file %s: %w", src.File, err)
		}
		err = decodeYAML(f, &c)
		_ = f.Close() // read only
		if err != nil {
			return nil, fmt.Errorf("configuration file %s: %w", src.File, err)
		}
	}
	if src.Environ != nil {
		m := map[string]string{}
		for _, kv := range src.Environ {
			if k, v, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(k, "MOAT_") {
				m[k] = v
			}
		}
		if err := checkEnv(m); err != nil {
			return nil, err
		}
		if err := env.ParseWithOptions(&c, env.Options{Prefix: "MOAT_", Environment: m}); err != nil {
			return nil, fmt.Errorf("%w in the environment: %w", ErrInvalid, err)
		}
	}
	for name, value := range src.Flags {
		if err := setFlag(&c, name, value); err != nil {
			return nil, err
		}
	}
	return &c, nil
}

// decodeYAML decodes one YAML document strictly: unknown keys are errors
// that name the line.
func decodeYAML(r io.Reader, c *Config) error {
	data, err := io.ReadAll(io.LimitReader(r, 1<<20))
	if err != nil {
		return err
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil {
		return &yamlError{err: err}
	}
	return nil
}

// yamlError is a YAML decoding error in words: each problem with its line,
// without the Go types the decoder names. It wraps ErrInvalid.
type yamlError struct{ err error }

var (
	unknownKey = regexp.MustCompile(`field (\S+) not found in type \S+`)
	wrongType  = regexp.MustCompile("cannot unmarshal !!(\\w+) `([^`]*)` into (\\S+)")
)

func (e *yamlError) Error() string {
	var te *yaml.TypeError
	if !errors.As(e.err, &te) {
		return strings.TrimPrefix(e.err.Error(), "yaml: ")
	}
	msgs := make([]string, len(te.Errors))
	for i, m := range te.Errors {
		m = unknownKey.ReplaceAllString(m, `unknown key "$1"`)
		m = wrongType.ReplaceAllStringFunc(m, func(s string) string {
			sub := wrongType.FindStringSubmatch(s)
			want := sub[3]
			switch {
			case want == "time.Duration":
				want = "a duration such as 30s or 5m"
			case strings.HasPrefix(want, "[]"):
				want = "a list"
			case strings.HasPrefix(want, "map["):
				want = "a mapping"
			case strings.HasPrefix(want, "int"), strings.HasPrefix(want, "float"):
				want = "a number"
			case want == "bool":
				want = "true or false"
			case want == "string":
				want = "a string"
			}
			return fmt.Sprintf("%q is not %s", sub[2], want)
		})
		msgs[i] = m
	}
	return strings.Join(msgs, "; ")
}

func (e *yamlError) Unwrap() []error { return []error{ErrInvalid, e.err} }

// applyDerived fills the defaults that depend on other fields.
func (c *Config) applyDerived() {
	c.Zone = normalizeName(c.Zone)
	c.PolicyHost = normalizeName(c.PolicyHost)
	if c.PolicyHost == "" && c.Zone != "" {
		c.PolicyHost = "mta-sts." + c.Zone
	}
	if len(c.DNS.Nameservers) == 0 && c.Zone != "" {
		c.DNS.Nameservers = []string{"ns1." + c.Zone}
	}
	for i, ns := range c.DNS.Nameservers {
		c.DNS.Nameservers[i] = normalizeName(ns)
	}
	if c.DNS.Hostmaster == "" && c.Zone != "" {
		c.DNS.Hostmaster = "hostmaster@" + c.Zone
	}
	if c.DataDir == "" {
		c.DataDir = DefaultDataDir
	}
	c.Web.Host = normalizeName(c.Web.Host)
	if c.Web.Host == "" && c.Zone != "" {
		c.Web.Host = "app." + c.Zone
	}
	c.Intake.Host = normalizeName(c.Intake.Host)
	if c.Intake.Host == "" && c.Zone != "" {
		c.Intake.Host = "reports." + c.Zone
	}
	if len(c.Intake.Addresses) == 0 && c.Intake.Host != "" {
		c.Intake.Addresses = []string{"tlsrpt@" + c.Intake.Host}
	}
	for i, a := range c.Intake.Addresses {
		c.Intake.Addresses[i] = strings.ToLower(strings.TrimSpace(a))
	}
	if len(c.Intake.DMARCAddresses) == 0 && c.Intake.Host != "" {
		c.Intake.DMARCAddresses = []string{"dmarc@" + c.Intake.Host}
	}
	for i, a := range c.Intake.DMARCAddresses {
		c.Intake.DMARCAddresses[i] = strings.ToLower(strings.TrimSpace(a))
	}
	c.applyIMAPDefaults()
}

// PublishedRUA is the rua Moat publishes in every hosted domain's TLS-RPT
// record: tlsrpt.rua when set, else Moat's intake addresses and endpoint.
func (c *Config) PublishedRUA() []string {
	if len(c.TLSRPT.RUA) > 0 {
		return c.TLSRPT.RUA
	}
	var rua []string
	for _, a := range c.Intake.Addresses {
		rua = append(rua, "mailto:"+a)
	}
	if c.Intake.Host != "" {
		rua = append(rua, "https://"+c.Intake.Host+"/v1/tlsrpt")
	}
	return rua
}

func normalizeName(s string) string {
	return strings.ToLower(strings.TrimSuffix(strings.TrimSpace(s), "."))
}

func invalid(field string, value any, format string, args ...any) error {
	return &FieldError{Field: field, Value: fmt.Sprint(value), Reason: fmt.Sprintf(format, args...)}
}

// FieldError is a setting that is not valid: the key as spelled in the YAML
// file, the value, and why. It wraps ErrInvalid.
type FieldError struct {
	Field, Value, Reason string
}

func (e *FieldError) Error() string {
	return fmt.Sprintf("invalid setting %s %q: %s", e.Field, e.Value, e.Reason)
}

// Unwrap makes errors.Is(err, ErrInvalid) true.
func (e *FieldError) Unwrap() error { return ErrInvalid }

// invalidName reports a name refused by dnsname: the setting, the value
// and dnsname's reason.
func invalidName(field string, err error) error {
	var de *dnsname.Error
	if errors.As(err, &de) {
		return &FieldError{Field: field, Value: de.Input, Reason: de.Reason}
	}
	return &FieldError{Field: field, Reason: err.Error()}
}

// Validate checks every field and returns the first problem, naming the
// field and the value.
func (c *Config) Validate() error {
	if len(c.Roles) == 0 {
		return invalid("roles", "", "want at least one of dns, policy, intake, web")
	}
	for i, r := range c.Roles {
		r = strings.ToLower(strings.TrimSpace(r))
		switch r {
		case RoleDNS, RolePolicy, RoleIntake, RoleWeb:
			c.Roles[i] = r
		default:
			return invalid("roles", r, "want dns, policy, intake or web")
		}
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		return invalid("log.level", c.Log.Level, "want debug, info, warn or error")
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		return invalid("log.format", c.Log.Format, "want text or json")
	}
	if c.Database != "" {
		u, err := url.Parse(c.Database)
		if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
			return invalid("database", redactURL(c.Database), "want empty (SQLite in the data directory) or a postgres:// URL")
		}
	}
	if c.Zone != "" {
		if err := dnsname.Check(c.Zone, dnsname.Host); err != nil {
			return invalidName("zone", err)
		}
	}
	if c.PolicyHost != "" {
		if err := dnsname.Check(c.PolicyHost, dnsname.Host); err != nil {
			return invalidName("policy_host", err)
		}
	}
	for _, l := range []struct{ field, addr string }{
		{"dns.listen", c.DNS.Listen}, {"https.listen", c.HTTPS.Listen}, {"http.listen", c.HTTP.Listen},
	} {
		if l.addr == "" {
			continue
		}
		if _, port, err := net.SplitHostPort(l.addr); err != nil {
			return invalid(l.field, l.addr, "want host:port, e.g. 127.0.0.1:8443 or :443")
		} else if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
			return invalid(l.field, l.addr, "port must be a number from 0 to 65535")
		}
	}
	for _, ns := range c.DNS.Nameservers {
		if err := dnsname.Check(ns, dnsname.Host); err != nil {
			return invalidName("dns.nameservers", err)
		}
	}
	if c.DNS.Hostmaster != "" && !strings.Contains(c.DNS.Hostmaster, "@") {
		return invalid("dns.hostmaster", c.DNS.Hostmaster, "want a mailbox such as hostmaster@example.net")
	}
	for name, addrs := range c.DNS.Hosts {
		n := normalizeName(name)
		if err := dnsname.Check(n, dnsname.Owner); err != nil {
			return invalidName("dns.hosts", err)
		}
		if c.Zone == "" || (n != c.Zone && !strings.HasSuffix(n, "."+c.Zone)) {
			return invalid("dns.hosts", name, "name is outside the zone %q", c.Zone)
		}
		if len(addrs) == 0 {
			return invalid("dns.hosts", name, "no addresses")
		}
		for _, a := range addrs {
			if _, err := netip.ParseAddr(a); err != nil {
				return invalid("dns.hosts."+name, a, "not an IP address")
			}
		}
	}
	if c.DNS.TTL < time.Second || c.DNS.TTL > 7*24*time.Hour {
		return invalid("dns.ttl", c.DNS.TTL, "want between 1s and 168h")
	}
	if !c.Dev {
		if c.ACME.CA == "" {
			return invalid("acme.ca", "", "required outside --dev")
		}
	}
	if c.ACME.CA != "" {
		u, err := url.Parse(c.ACME.CA)
		if err != nil || u.Scheme != "https" || u.Host == "" {
			return invalid("acme.ca", c.ACME.CA, "want an https:// ACME directory URL")
		}
	}
	if c.ACME.Email != "" && !strings.Contains(c.ACME.Email, "@") {
		return invalid("acme.email", c.ACME.Email, "not an email address")
	}
	if c.ACME.CARoot != "" {
		if _, err := os.Stat(c.ACME.CARoot); err != nil {
			return invalid("acme.ca_root", c.ACME.CARoot, "%v", err)
		}
	}
	for _, u := range c.TLSRPT.RUA {
		if err := CheckRUA(u); err != nil {
			return invalid("tlsrpt.rua", u, "%v", err)
		}
	}
	if c.Intake.Host != "" {
		if err := dnsname.Check(c.Intake.Host, dnsname.Host); err != nil {
			return invalidName("intake.host", err)
		}
	}
	for _, a := range c.Intake.Addresses {
		if at := strings.LastIndexByte(a, '@'); at <= 0 || dnsname.Check(a[at+1:], dnsname.Host) != nil {
			return invalid("intake.addresses", a, "not an email address")
		}
	}
	for _, a := range c.Intake.DMARCAddresses {
		if at := strings.LastIndexByte(a, '@'); at <= 0 || dnsname.Check(a[at+1:], dnsname.Host) != nil {
			return invalid("intake.dmarc_addresses", a, "not an email address")
		}
		if slices.Contains(c.Intake.Addresses, a) {
			return invalid("intake.dmarc_addresses", a, "also in intake.addresses: TLS and DMARC reports need addresses of their own")
		}
	}
	if c.Web.Host != "" {
		if err := dnsname.Check(c.Web.Host, dnsname.Host); err != nil {
			return invalidName("web.host", err)
		}
		if c.Web.Host == c.Intake.Host || c.Web.Host == c.PolicyHost {
			return invalid("web.host", c.Web.Host, "must differ from intake.host and policy_host")
		}
	}
	if _, err := c.TrustedProxies(); err != nil {
		return err
	}
	if c.Web.SessionIdle < time.Minute || c.Web.SessionIdle > c.Web.SessionLifetime {
		return invalid("web.session_idle", c.Web.SessionIdle, "want at least 1m and at most web.session_lifetime")
	}
	if c.Web.SessionLifetime > 365*24*time.Hour {
		return invalid("web.session_lifetime", c.Web.SessionLifetime, "want at most 8760h (a year)")
	}
	for _, l := range []struct{ field, addr string }{
		{"intake.report_listen", c.Intake.ReportListen}, {"intake.smtp_listen", c.Intake.SMTPListen},
		{"web.listen", c.Web.Listen}, {"metrics.listen", c.Metrics.Listen},
	} {
		if l.addr == "" {
			continue
		}
		if _, port, err := net.SplitHostPort(l.addr); err != nil {
			return invalid(l.field, l.addr, "want host:port, e.g. 127.0.0.1:2525 or :25")
		} else if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
			return invalid(l.field, l.addr, "port must be a number from 0 to 65535")
		}
	}
	if c.Intake.MaxReportSize < 1024 || c.Intake.MaxReportSize > 1<<30 {
		return invalid("intake.max_report_size", c.Intake.MaxReportSize, "want 1024 to 1073741824 bytes")
	}
	if c.Intake.MaxReportJSON < c.Intake.MaxReportSize/10 || c.Intake.MaxReportJSON > 4<<30 {
		return invalid("intake.max_report_json", c.Intake.MaxReportJSON, "want at least a tenth of intake.max_report_size and at most 4 GiB")
	}
	if c.Intake.MaxDMARCXML < 1<<20 || c.Intake.MaxDMARCXML > 64<<30 {
		return invalid("intake.max_dmarc_xml", c.Intake.MaxDMARCXML, "want 1 MiB to 64 GiB")
	}
	if c.Intake.RatePerIP <= 0 {
		return invalid("intake.rate_per_ip", c.Intake.RatePerIP, "want a positive number of reports per second")
	}
	if c.Intake.SMTPConnsPerIP < 1 || c.Intake.SMTPConnsPerIP > 100000 {
		return invalid("intake.smtp_conns_per_ip", c.Intake.SMTPConnsPerIP, "want 1 to 100000")
	}
	if c.Intake.SpoolMaxDelay < time.Second || c.Intake.SpoolMaxDelay > 24*time.Hour {
		return invalid("intake.spool_max_delay", c.Intake.SpoolMaxDelay, "want between 1s and 24h")
	}
	if err := c.validateIMAP(); err != nil {
		return err
	}
	if c.HTTPS.ReadHeaderTimeout < time.Second || c.HTTPS.ReadHeaderTimeout > 10*time.Minute {
		return invalid("https.read_header_timeout", c.HTTPS.ReadHeaderTimeout, "want between 1s and 10m")
	}
	if c.Store.PollInterval < 100*time.Millisecond || c.Store.PollInterval > time.Minute {
		return invalid("store.poll_interval", c.Store.PollInterval, "want between 100ms and 1m")
	}
	if c.Store.LeaseTTL < 3*time.Second || c.Store.LeaseTTL > 10*time.Minute {
		return invalid("store.lease_ttl", c.Store.LeaseTTL, "want between 3s and 10m")
	}
	return c.Retention.validate()
}

// validate checks that the periods nest (store.Retention.Validate holds
// the same rules): a report outlives its raw bytes (deleting a report
// deletes them), and the rollups the reports (the dashboard would list
// reports of days without sessions).
func (r Retention) validate() error {
	forever := func(p Period) Period {
		if p == 0 {
			return 1<<63 - 1
		}
		return p
	}
	for _, f := range []struct {
		key string
		p   Period
	}{{"retention.raw", r.Raw}, {"retention.reports", r.Reports}, {"retention.rollups", r.Rollups}} {
		if f.p < 0 || f.p > 0 && time.Duration(f.p) < 24*time.Hour {
			return invalid(f.key, f.p, "want 0 (keep forever) or at least 1d")
		}
	}
	if forever(r.Raw) > forever(r.Reports) {
		return invalid("retention.raw", r.Raw, "longer than retention.reports (%s): deleting a report deletes its raw bytes; want at most retention.reports (0 is forever)", r.Reports)
	}
	if forever(r.Reports) > forever(r.Rollups) {
		return invalid("retention.reports", r.Reports, "longer than retention.rollups (%s): the dashboard would list reports of days whose sessions are gone; want at most retention.rollups (0 is forever)", r.Rollups)
	}
	return nil
}

// ValidateServe checks what `moat serve` needs beyond Validate: a zone for
// the DNS server and the records it serves, and at least one listener.
func (c *Config) ValidateServe() error {
	if c.Zone == "" {
		return invalid("zone", "", "required by moat serve: the service zone delegated to Moat (--zone, MOAT_ZONE or zone:)")
	}
	serves := c.HasRole(RoleDNS) && c.DNS.Listen != "" ||
		c.HTTPS.Listen != "" && (c.HasRole(RolePolicy) || c.HasRole(RoleIntake) || c.HasRole(RoleWeb)) ||
		c.HasRole(RoleIntake) && (c.Intake.ReportListen != "" || c.Intake.SMTPListen != "") ||
		c.HasRole(RoleWeb) && c.Web.Listen != ""
	if !serves {
		return invalid("roles", strings.Join(c.Roles, ","), "nothing to serve: no listener of these roles is configured (dns.listen, https.listen, intake.report_listen, intake.smtp_listen, web.listen)")
	}
	return nil
}

// CheckRUA validates one TLS-RPT report URI (RFC 8460 §3: mailto: or
// https:).
func CheckRUA(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("not a URI: %w", err)
	}
	switch u.Scheme {
	case "mailto":
		addr := u.Opaque
		if at := strings.LastIndexByte(addr, '@'); at <= 0 || at == len(addr)-1 {
			return errors.New("mailto: needs an address like mailto:tlsrpt@example.net")
		}
	case "https":
		if u.Host == "" {
			return errors.New("https: URI without a host")
		}
	default:
		return fmt.Errorf("scheme %q: TLS-RPT accepts only the mailto: and https: schemes", u.Scheme)
	}
	if strings.ContainsAny(s, ",; \t") {
		return errors.New("must not contain ',', ';' or white space (they delimit the TXT record)")
	}
	return nil
}

// TrustedProxies parses web.trusted_proxies: addresses (a /32 or /128) or
// CIDR networks.
func (c *Config) TrustedProxies() ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range c.Web.TrustedProxies {
		s = strings.TrimSpace(s)
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, invalid("web.trusted_proxies", s, "want an IP address or a network such as 10.0.0.0/8")
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return out, nil
}

// DataPath joins the data directory and name.
func (c *Config) DataPath(name string) string { return filepath.Join(c.DataDir, name) }

// redactURL hides a password in a database URL.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

// Redacted returns the database URL without its password, for logs.
func (c *Config) Redacted() string { return redactURL(c.Database) }
