package mtasts_test

// The bad-server matrix of postfix-mta-sts-resolver (tests/nginx.conf and
// tests/dnsmasq.conf.appendix), reproduced with a real DNS server and a
// real HTTPS server on 127.0.0.1. Each server's behaviour is derived from
// nginx.conf at test time; the verdicts are asserted per error sentinel and
// cross-checked against the resolver's own refdata*.tsv.

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moatmail/moat/internal/mtasts"
	"github.com/moatmail/moat/internal/testpki"
)

const resolverCorpus = "../../../shared/corpora/postfix-mta-sts-resolver/tests/"

// ngxDirective is one directive of an nginx configuration.
type ngxDirective struct {
	name  string
	args  []string
	block []*ngxDirective
	raw   string // body of a *_by_lua_block
}

func (d *ngxDirective) find(name string) []*ngxDirective {
	var out []*ngxDirective
	for _, c := range d.block {
		if c.name == name {
			out = append(out, c)
		}
	}
	return out
}

// parseNginx parses the subset of nginx configuration syntax the corpus
// uses: directives, blocks, quoted strings with escapes, comments, and raw
// *_by_lua_block bodies.
func parseNginx(t *testing.T, s string) *ngxDirective {
	t.Helper()
	pos := 0
	var parseBlock func() []*ngxDirective
	next := func() (tok string, quoted bool, ok bool) {
		for pos < len(s) {
			switch c := s[pos]; c {
			case '#':
				for pos < len(s) && s[pos] != '\n' {
					pos++
				}
			case ' ', '\t', '\n', '\r':
				pos++
			case '{', '}', ';':
				pos++
				return string(c), false, true
			case '"', '\'':
				pos++
				var b strings.Builder
				for pos < len(s) && s[pos] != c {
					if s[pos] == '\\' && pos+1 < len(s) {
						pos++
						switch s[pos] {
						case 'n':
							b.WriteByte('\n')
						case 't':
							b.WriteByte('\t')
						case 'r':
							b.WriteByte('\r')
						default:
							b.WriteByte(s[pos])
						}
					} else {
						b.WriteByte(s[pos])
					}
					pos++
				}
				pos++
				return b.String(), true, true
			default:
				start := pos
				for pos < len(s) && !strings.ContainsRune(" \t\r\n{};\"'", rune(s[pos])) {
					pos++
				}
				return s[start:pos], false, true
			}
		}
		return "", false, false
	}
	rawBlock := func() string {
		depth, start := 1, pos
		for ; pos < len(s) && depth > 0; pos++ {
			switch s[pos] {
			case '{':
				depth++
			case '}':
				depth--
			case '"':
				for pos++; pos < len(s) && s[pos] != '"'; pos++ {
					if s[pos] == '\\' {
						pos++
					}
				}
			}
		}
		return s[start : pos-1]
	}
	parseBlock = func() []*ngxDirective {
		var out []*ngxDirective
		var cur *ngxDirective
		for {
			tok, quoted, ok := next()
			if !ok || (tok == "}" && !quoted) {
				if cur != nil {
					t.Fatalf("nginx.conf: directive %q not terminated", cur.name)
				}
				return out
			}
			switch {
			case cur == nil:
				cur = &ngxDirective{name: tok}
			case tok == ";" && !quoted:
				out, cur = append(out, cur), nil
			case tok == "{" && !quoted:
				if strings.HasSuffix(cur.name, "_by_lua_block") {
					cur.raw = rawBlock()
				} else {
					cur.block = parseBlock()
				}
				out, cur = append(out, cur), nil
			default:
				cur.args = append(cur.args, tok)
			}
		}
	}
	return &ngxDirective{block: parseBlock()}
}

// ngxServer is what one nginx server block does for the policy URL.
type ngxServer struct {
	name        string
	certPath    string
	contentType string
	status      int
	body        string // for "return"
	lua         string // for content_by_lua_block
}

func nginxServers(t *testing.T, conf *ngxDirective) []*ngxServer {
	t.Helper()
	https := conf.find("http")
	if len(https) != 1 {
		t.Fatalf("nginx.conf: want one http block, have %d", len(https))
	}
	defaultType := "text/plain"
	if d := https[0].find("default_type"); len(d) == 1 {
		defaultType = d[0].args[0]
	}
	var out []*ngxServer
	for _, srv := range https[0].find("server") {
		s := &ngxServer{contentType: defaultType, status: 200}
		s.name = srv.find("server_name")[0].args[0]
		s.certPath = srv.find("ssl_certificate")[0].args[0]
		for _, loc := range srv.find("location") {
			if len(loc.args) != 2 || loc.args[0] != "=" || loc.args[1] != mtasts.WellKnownPath {
				continue
			}
			for _, d := range loc.block {
				switch d.name {
				case "types":
					// The URI ends in ".txt": a type mapped to "txt"
					// here is the response's Content-Type.
					for _, m := range d.block {
						for _, ext := range m.args {
							if ext == "txt" {
								s.contentType = m.name
							}
						}
					}
				case "return":
					s.status, _ = strconv.Atoi(d.args[0])
					if len(d.args) > 1 {
						s.body = d.args[1]
					}
				case "content_by_lua_block":
					s.lua = d.raw
				case "lua_http10_buffering":
				default:
					t.Fatalf("nginx.conf: server %s: unknown directive %q in the policy location", s.name, d.name)
				}
			}
		}
		out = append(out, s)
	}
	return out
}

var (
	luaHeader = regexp.MustCompile(`^ngx\.header\["([^"]+)"\] = "([^"]*)"$`)
	luaSay    = regexp.MustCompile(`^ngx\.(say|print)\("([^"]*)"\)$`)
	luaFor    = regexp.MustCompile(`^for \w+=(\d+), (\d+), 1 do$`)
)

// handler serves what the nginx server block serves. The Lua subset of
// the corpus (ngx.header, ngx.say, ngx.print, ngx.flush, numeric for) is
// interpreted; anything else fails the test.
func (s *ngxServer) handler(t *testing.T) http.Handler {
	t.Helper()
	type stmt struct {
		op, a string
	}
	var header [][2]string
	var prog []stmt
	if s.lua != "" {
		lines := strings.Split(s.lua, "\n")
		var loop []stmt
		repeat := 0
		for _, l := range lines {
			l = strings.TrimSpace(l)
			var st stmt
			switch m := luaSay.FindStringSubmatch(l); {
			case l == "" || l == "ngx.send_headers()":
				continue
			case l == "ngx.flush(true)":
				st = stmt{op: "flush"}
			case m != nil:
				st = stmt{op: m[1], a: m[2]}
			case luaHeader.MatchString(l):
				h := luaHeader.FindStringSubmatch(l)
				header = append(header, [2]string{h[1], h[2]})
				continue
			case luaFor.MatchString(l):
				f := luaFor.FindStringSubmatch(l)
				from, _ := strconv.Atoi(f[1])
				to, _ := strconv.Atoi(f[2])
				repeat, loop = to-from+1, []stmt{}
				continue
			case l == "end" && loop != nil:
				for range repeat {
					prog = append(prog, loop...)
				}
				loop = nil
				continue
			default:
				t.Fatalf("nginx.conf: server %s: unsupported Lua %q", s.name, l)
			}
			if loop != nil {
				loop = append(loop, st)
			} else {
				prog = append(prog, st)
			}
		}
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != mtasts.WellKnownPath {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", s.contentType)
		if s.lua == "" {
			w.WriteHeader(s.status)
			_, _ = w.Write([]byte(s.body))
			return
		}
		for _, h := range header {
			w.Header().Set(h[0], h[1])
		}
		flusher := w.(http.Flusher)
		for _, st := range prog {
			var err error
			switch st.op {
			case "say":
				_, err = w.Write([]byte(st.a + "\n"))
			case "print":
				_, err = w.Write([]byte(st.a))
			case "flush":
				flusher.Flush()
			}
			if err != nil {
				return // the client stopped reading
			}
		}
	})
}

// certNames transcribes the "-D" arguments of tests/install.debian.sh of
// postfix-mta-sts-resolver (not in the corpus): the names of each
// certificate file. Unlisted files "X.pem" are for X and mta-sts.X.
var certNames = map[string][]string{
	"bad-cert2.loc":       {"bad-cert2.loc"}, // lacks mta-sts.bad-cert2.loc
	"mta-sts.testing.loc": {"mta-sts.testing.loc"},
	"fast-expire.loc":     {"fast-expire.loc", "*.fast-expire.loc"},
}

// dnsmasqZone reads the dnsmasq.conf.appendix directives the corpus uses.
func dnsmasqZone(t *testing.T, conf string) *dnsZone {
	t.Helper()
	z := newZone()
	for _, line := range strings.Split(conf, "\n") {
		line = strings.TrimSpace(line)
		key, val, _ := strings.Cut(line, "=")
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case key == "address":
			parts := strings.Split(val, "/") // "/name/ip"
			z.addrs[parts[1]] = net.ParseIP(parts[2])
		case key == "txt-record":
			name, strs, _ := strings.Cut(val, ",")
			var q []string
			for _, s := range strings.Split(strs, ",") {
				q = append(q, strconv.Quote(strings.Trim(s, `"`)))
			}
			z.add(t, fmt.Sprintf("%s. 60 IN TXT %s", name, strings.Join(q, " ")))
		case key == "server":
			// "/blackhole.loc/240.0.0.1#5354": an upstream that never
			// answers. Nothing is sent anywhere: the server stays silent.
			z.blackhole = append(z.blackhole, strings.Split(val, "/")[1])
		case key == "resolv-file":
		default:
			t.Fatalf("dnsmasq.conf.appendix: unsupported line %q", line)
		}
	}
	return z
}

// matrixCase is the expected verdict for one domain of the matrix.
type matrixCase struct {
	recordErr error // from LookupRecord; nil: a valid record
	fetchErr  error // from Fetch; nil: a valid policy
	x509Err   any   // pointer to the x509 error type wrapped, for TLS failures
	mode      mtasts.Mode
	maxAge    int64
}

// The verdicts of tests/test_resolver.py of postfix-mta-sts-resolver
// (VALID, NONE, FETCH_ERROR), refined to the rule that fails.
var matrix = map[string]matrixCase{
	"good.loc":               {mode: mtasts.ModeEnforce, maxAge: 86400},
	"good.loc.":              {mode: mtasts.ModeEnforce, maxAge: 86400},
	"testing.loc":            {mode: mtasts.ModeTesting, maxAge: 86400},
	"valid-none.loc":         {mode: mtasts.ModeNone, maxAge: 86400},
	"fast-expire.loc":        {mode: mtasts.ModeEnforce, maxAge: 1}, // wildcard certificate
	".good.loc":              {recordErr: mtasts.ErrInvalidDomain},
	"no-record.loc":          {recordErr: mtasts.ErrNoRecord},
	"no-data.loc":            {recordErr: mtasts.ErrNoRecord},
	"bad-record1.loc":        {recordErr: mtasts.ErrNoRecord}, // "id=...; v=STSv1;" is discarded: v is not first
	"bad-record2.loc":        {recordErr: mtasts.ErrNoRecord}, // garbage is discarded
	"bad-record3.loc":        {recordErr: mtasts.ErrNoRecord}, // "v=STSv12" is another version
	"blackhole.loc":          {recordErr: mtasts.ErrRecordLookup},
	"bad-policy1.loc":        {fetchErr: mtasts.ErrPolicySyntax},   // "garbage"
	"bad-policy2.loc":        {fetchErr: mtasts.ErrPolicyMX},       // enforce without mx
	"bad-policy3.loc":        {fetchErr: mtasts.ErrFetchMediaType}, // text/html
	"bad-policy4.loc":        {fetchErr: mtasts.ErrFetchStatus},    // 404
	"bad-policy5.loc":        {fetchErr: mtasts.ErrPolicyMaxAge},   // "xxx"
	"bad-policy6.loc":        {fetchErr: mtasts.ErrPolicyMaxAge},   // 31557601
	"bad-policy7.loc":        {fetchErr: mtasts.ErrPolicyMode},     // no mode
	"bad-policy8.loc":        {fetchErr: mtasts.ErrPolicyMode},     // "doubt"
	"bad-cert1.loc":          {fetchErr: mtasts.ErrFetchTLS, x509Err: new(x509.UnknownAuthorityError)},
	"bad-cert2.loc":          {fetchErr: mtasts.ErrFetchTLS, x509Err: new(x509.HostnameError)},
	"static-overlength.loc":  {fetchErr: mtasts.ErrFetchTooLarge}, // Content-Length 131193
	"chunked-overlength.loc": {fetchErr: mtasts.ErrFetchTooLarge}, // chunked, no length
}

type matrixEnv struct {
	resolver *net.Resolver
	fetcher  *mtasts.Fetcher
	servers  []*ngxServer
	zone     *dnsZone
}

func setupMatrix(t *testing.T, forceTCP bool) *matrixEnv {
	t.Helper()
	nginxConf, err1 := os.ReadFile(resolverCorpus + "nginx.conf")
	dnsmasqConf, err2 := os.ReadFile(resolverCorpus + "dnsmasq.conf.appendix")
	if err := errors.Join(err1, err2); err != nil {
		t.Skipf("postfix-mta-sts-resolver corpus absent, matrix not run: %v", err)
	}
	servers := nginxServers(t, parseNginx(t, string(nginxConf)))
	ca := testpki.NewCA(t, "Moat test CA")
	other := testpki.NewCA(t, "Untrusted CA")
	hosts := map[string]*vhost{}
	for _, s := range servers {
		dir, file := path.Split(s.certPath)
		base := strings.TrimSuffix(file, ".pem")
		names, ok := certNames[base]
		if !ok {
			names = []string{base}
			if !strings.HasPrefix(base, "mta-sts.") {
				names = append(names, "mta-sts."+base)
			}
		}
		issuer := ca
		if dir == "/tmp/bad-certs/" {
			issuer = other // tests/install.debian.sh: a separate, untrusted CA
		}
		hosts[s.name] = &vhost{cert: issuer.Valid(t, names...), handler: s.handler(t)}
	}
	srv := newHTTPSServer(t, hosts, servers[0].name, nil)
	zone := dnsmasqZone(t, string(dnsmasqConf))
	resolver := newResolver(startDNS(t, zone), forceTCP)
	fetcher := mtasts.NewFetcher(mtasts.FetchOpts{Resolver: resolver, RootCAs: ca.Pool, Port: srv.port, Timeout: 10 * time.Second})
	return &matrixEnv{resolver: resolver, fetcher: fetcher, servers: servers, zone: zone}
}

// discover runs policy discovery as a sender would: TXT record, then fetch.
func (e *matrixEnv) discover(ctx context.Context, domain string) (*mtasts.Policy, error, error) {
	_, _, err := mtasts.LookupRecord(ctx, e.resolver, domain)
	if err != nil {
		return nil, err, nil
	}
	res, err := e.fetcher.Fetch(ctx, domain)
	if err != nil {
		return nil, nil, err
	}
	return res.Policy, nil, nil
}

func TestResolverMatrix(t *testing.T) {
	for _, tcp := range []bool{false, true} {
		t.Run(fmt.Sprintf("tcp=%v", tcp), func(t *testing.T) {
			env := setupMatrix(t, tcp)
			// Every server and DNS name of the corpus has a verdict here.
			for _, s := range env.servers {
				if _, ok := matrix[strings.TrimPrefix(s.name, "mta-sts.")]; !ok {
					t.Errorf("nginx.conf server %s has no expected verdict", s.name)
				}
			}
			for name := range env.zone.rrs {
				if _, ok := matrix[strings.TrimSuffix(strings.TrimPrefix(name, "_mta-sts."), ".")]; !ok {
					t.Errorf("dnsmasq record %s has no expected verdict", name)
				}
			}
			for domain, want := range matrix {
				t.Run(domain, func(t *testing.T) {
					t.Parallel()
					timeout := 10 * time.Second
					if errors.Is(want.recordErr, mtasts.ErrRecordLookup) {
						timeout = 300 * time.Millisecond // the server never answers
					}
					ctx, cancel := context.WithTimeout(context.Background(), timeout)
					defer cancel()
					pol, recErr, fetchErr := env.discover(ctx, domain)
					checkMatrixVerdict(t, want, pol, recErr, fetchErr)
				})
			}
		})
	}
}

func checkMatrixVerdict(t *testing.T, want matrixCase, pol *mtasts.Policy, recErr, fetchErr error) {
	t.Helper()
	if !errors.Is(recErr, want.recordErr) || (want.recordErr == nil) != (recErr == nil) {
		t.Fatalf("record: got %v, want %v", recErr, want.recordErr)
	}
	if recErr != nil {
		var le *mtasts.LookupError
		if !errors.As(recErr, &le) {
			t.Errorf("record error %T is not a *LookupError", recErr)
		}
		return
	}
	if !errors.Is(fetchErr, want.fetchErr) || (want.fetchErr == nil) != (fetchErr == nil) {
		t.Fatalf("fetch: got %v, want %v", fetchErr, want.fetchErr)
	}
	if fetchErr != nil {
		var fe *mtasts.FetchError
		if !errors.As(fetchErr, &fe) {
			t.Errorf("fetch error %T is not a *FetchError", fetchErr)
		}
		if want.x509Err != nil && !errors.As(fetchErr, want.x509Err) {
			t.Errorf("fetch error %v does not wrap %T", fetchErr, want.x509Err)
		}
		if errors.Is(want.fetchErr, mtasts.ErrFetchStatus) && fe.StatusCode != 404 {
			t.Errorf("status %d, want 404", fe.StatusCode)
		}
		if errors.Is(want.fetchErr, mtasts.ErrFetchMediaType) && fe.MediaType != "text/html" {
			t.Errorf("media type %q, want text/html", fe.MediaType)
		}
		return
	}
	if pol.Mode != want.mode || pol.MaxAge != want.maxAge {
		t.Errorf("policy mode %q max_age %d, want %q %d", pol.Mode, pol.MaxAge, want.mode, want.maxAge)
	}
	if pol.Mode != mtasts.ModeNone && !pol.Match("mail.loc") {
		t.Errorf("policy %+v does not match mail.loc", pol)
	}
}

// TestResolverRefdata checks our discovery against the verdicts recorded
// by postfix-mta-sts-resolver: "OK secure match=mail.loc" exactly when a
// valid enforce policy (or, in strict mode, a testing one too) is found.
func TestResolverRefdata(t *testing.T) {
	t.Parallel()
	env := setupMatrix(t, false)
	for file, strict := range map[string]bool{"refdata.tsv": false, "refdata_strict.tsv": true} {
		data, err := os.ReadFile(resolverCorpus + file)
		if err != nil {
			t.Skipf("%s absent: %v", file, err)
		}
		for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
			query, verdict, _ := strings.Cut(line, "\t")
			_, nexthop, _ := strings.Cut(query, " ")
			t.Run(file+"/"+nexthop, func(t *testing.T) {
				domain := nexthopDomain(nexthop)
				got := false
				if _, err := netip.ParseAddr(domain); err != nil {
					// RFC 8461 §3.4: no policy for address literals.
					ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
					defer cancel()
					pol, _, _ := env.discover(ctx, domain)
					got = pol != nil && (pol.Mode == mtasts.ModeEnforce || strict && pol.Mode == mtasts.ModeTesting)
					if got && !pol.Match("mail.loc") {
						t.Errorf("policy does not match mail.loc")
					}
				}
				want := strings.HasPrefix(verdict, "OK secure match=mail.loc")
				if !want && !strings.HasPrefix(verdict, "NOTFOUND") {
					t.Fatalf("unknown verdict %q", verdict)
				}
				if got != want {
					t.Errorf("%s: policy applied %v, refdata says %q", nexthop, got, verdict)
				}
			})
		}
	}
}

// nexthopDomain strips Postfix next-hop syntax: "[name]", "[name]:port",
// "name:port".
func nexthopDomain(s string) string {
	if rest, ok := strings.CutPrefix(s, "["); ok {
		name, _, _ := strings.Cut(rest, "]")
		return name
	}
	if i := strings.LastIndexByte(s, ':'); i > 0 {
		if _, err := strconv.Atoi(s[i+1:]); err == nil {
			return s[:i]
		}
	}
	return s
}

// The certificate of a failed handshake is still reported, for a checker.
func TestResolverMatrixCertsOnFailure(t *testing.T) {
	t.Parallel()
	env := setupMatrix(t, false)
	res, err := env.fetcher.Fetch(context.Background(), "bad-cert2.loc")
	if !errors.Is(err, mtasts.ErrFetchTLS) {
		t.Fatalf("got %v, want ErrFetchTLS", err)
	}
	if res == nil || len(res.Certs) == 0 || res.Certs[0].DNSNames[0] != "bad-cert2.loc" {
		t.Fatalf("result %+v lacks the presented certificate", res)
	}
	if res.TLS != nil {
		t.Errorf("TLS state set after a failed handshake")
	}
}
